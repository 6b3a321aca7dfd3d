/**
 * Issue 17, the sidecar side:
 *   (a) `revocation sync` change detection: a plain-HTTP server in front of it switches to a new CRL
 *       (with an ETag, as kakuin's listener sends); time until the sidecar has verified it and written
 *       the bundle, p50/p99 over 20 changes at its default 500 ms poll (an unchanged CRL: a 304, no body);
 *   (b) what a poll costs when the CRL has 1,000,000 entries and the server sends no validators
 *       (download on 127.0.0.1 + parse + signature check);
 *   (c) nginx with `ssl_crl` holding that bundle at 100k and 1M entries: start until it answers TLS,
 *       reload (SIGHUP until the new worker exists), and RSS of master + worker.
 *
 * `node dist/bench/revocation-sync.js` runs it alone.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { pathToFileURL } from 'node:url';
import {
  basicConstraintsExt, encodeCertificateList, encodeName, encodeTbsCertList, keyIdentifier, keyUsageExt, parseCrl,
  RevokedEntriesWriter, toPem, verifyCrlSignature, parseCertificate,
} from '../pkix/index.js';
import { RevocationSync } from '../revocation-sync/sidecar.js';
import { fixtureCertificate } from './ocsp-fixtures.js';

const DAY = 86_400_000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface BenchRoot {
  der: Buffer;
  pem: string;
  key: ReturnType<typeof generateKeyPairSync>['privateKey'];
  name: Buffer;
  keyId: Buffer;
}

function benchRoot(): BenchRoot {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
  const name = encodeName([{ type: 'O', value: 'kakuin bench' }, { type: 'CN', value: 'Sync Root' }]);
  const keyId = keyIdentifier(spki);
  const der = fixtureCertificate({
    issuerName: name, issuerKey: keys.privateKey, issuerKeyId: keyId, subject: name, spki, serial: randomBytes(16).fill(1, 0, 1), days: 365,
    extensions: [basicConstraintsExt({ ca: true }), keyUsageExt(['digitalSignature', 'keyCertSign', 'cRLSign'])],
  });
  return { der, pem: toPem('CERTIFICATE', der), key: keys.privateKey, name, keyId };
}

function benchCrl(root: BenchRoot, number: bigint, entries: number): Buffer {
  const w = new RevokedEntriesWriter(entries * 50 + 1024);
  const now = Date.now();
  const serial = randomBytes(16);
  for (let i = 0; i < entries; i++) {
    serial.writeUInt32BE(i, 12);
    serial[0] = 0x11;
    w.add(serial, now - (i % 86_400) * 1000, 'keyCompromise');
  }
  const tbs = encodeTbsCertList({
    signatureAlgorithm: 'ecdsa-with-SHA256', issuer: root.name, thisUpdate: new Date(now - 1000), nextUpdate: new Date(now + DAY),
    revokedEntries: w.finish(), crlNumber: number, authorityKeyId: root.keyId,
  });
  return encodeCertificateList(tbs, 'ecdsa-with-SHA256', sign('sha256', tbs, { key: root.key, dsaEncoding: 'der' }));
}

async function detection(root: BenchRoot, dir: string, changes: number, log: (l: string) => void): Promise<Record<string, number>> {
  let current = { der: benchCrl(root, 1n, 10), etag: '"1"' };
  const server = http.createServer((req, res) => {
    if (req.url === '/ca/root.cer') return void res.writeHead(200).end(root.der);
    if (req.url !== '/crl/root.crl') return void res.writeHead(404).end();
    if (req.headers['if-none-match'] === current.etag) {
      res.writeHead(304, { etag: current.etag }).end();
      return;
    }
    res.writeHead(200, { etag: current.etag, 'content-type': 'application/pkix-crl' }).end(current.der);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  let onWritten: (() => void) | undefined;
  const sync = new RevocationSync({
    url, trustPem: root.pem, issuers: ['root'], withChain: false, pemOut: path.join(dir, 'bundle.pem'), pollIntervalMs: 500,
    logger: { info: (m) => { if (m === 'CRL bundle written') onWritten?.(); }, warn: (m, f) => log(`  ! ${m} ${JSON.stringify(f)}`) },
  });
  try {
    await sync.start();
    const latencies: number[] = [];
    for (let i = 0; i < changes; i++) {
      const written = new Promise<void>((r) => { onWritten = r; });
      const n = BigInt(i + 2);
      const der = benchCrl(root, n, 10 + i);
      const t = performance.now();
      current = { der, etag: `"${n}"` };
      await written;
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, Math.random() * 300));
    }
    const s = latencies.sort((a, b) => a - b);
    const out = {
      sync_detect_p50_ms: Math.round(percentile(s, 50)),
      sync_detect_p99_ms: Math.round(percentile(s, 99)),
    };
    log(`  change → verified and written: p50 ${out.sync_detect_p50_ms} ms, p99 ${out.sync_detect_p99_ms} ms (${changes} changes, poll every 500 ms, ETag)`);
    return out;
  } finally {
    sync.stop();
    server.close();
  }
}

function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function tlsUp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

async function nginxWithBundle(root: BenchRoot, dir: string, entries: number, bundle: string): Promise<{ startMs: number; reloadMs: number; rssMb: number }> {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const server = fixtureCertificate({
    issuerName: root.name, issuerKey: root.key, issuerKeyId: root.keyId, subject: encodeName([{ type: 'CN', value: '127.0.0.1' }]),
    spki: keys.publicKey.export({ type: 'spki', format: 'der' }), serial: randomBytes(16).fill(2, 0, 1), days: 2, extensions: [basicConstraintsExt({ ca: false })],
  });
  const d = path.join(dir, `nginx-${entries}`);
  mkdirSync(path.join(d, 'tmp'), { recursive: true });
  writeFileSync(path.join(d, 'server.pem'), toPem('CERTIFICATE', server));
  writeFileSync(path.join(d, 'server.key'), keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  writeFileSync(path.join(d, 'root.pem'), root.pem);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  writeFileSync(path.join(d, 'nginx.conf'), `pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${d}/tmp/b; proxy_temp_path ${d}/tmp/p; fastcgi_temp_path ${d}/tmp/f; uwsgi_temp_path ${d}/tmp/u; scgi_temp_path ${d}/tmp/s;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${d}/server.pem; ssl_certificate_key ${d}/server.key;
    ssl_client_certificate ${d}/root.pem; ssl_verify_client on; ssl_crl ${bundle};
    location / { return 200 "ok\\n"; }
  }
}
`);
  const t0 = performance.now();
  const child = spawn('nginx', ['-p', d, '-c', path.join(d, 'nginx.conf'), '-e', path.join(d, 'error.log'), '-g', 'daemon off; worker_processes 1;'], { stdio: 'ignore' });
  try {
    while (!(await tlsUp(port))) {
      if (performance.now() - t0 > 120_000 || child.exitCode !== null) throw new Error(`nginx did not start: ${readFileSync(path.join(d, 'error.log'), 'utf8')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const startMs = performance.now() - t0;
    const rss = rssKb(child.pid!) + children(child.pid!).reduce((a, p) => a + rssKb(p), 0);
    const before = new Set(children(child.pid!));
    const t1 = performance.now();
    child.kill('SIGHUP');
    while (!children(child.pid!).some((p) => !before.has(p))) {
      if (performance.now() - t1 > 120_000) throw new Error('nginx did not reload');
      await new Promise((r) => setTimeout(r, 10));
    }
    return { startMs: Math.round(startMs), reloadMs: Math.round(performance.now() - t1), rssMb: Math.round(rss / 1024) };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGQUIT');
    await exited;
  }
}

export async function benchRevocationSync(scale: number, log: (l: string) => void): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-sync-'));
  try {
    const root = benchRoot();
    const figures: Record<string, number> = await detection(root, dir, 20, log);
    const hasNginx = !spawnSync('nginx', ['-v']).error;
    for (const entries of [Math.round(100_000 * scale), Math.round(1_000_000 * scale)]) {
      const der = benchCrl(root, 100n, entries);
      const t = performance.now();
      const crl = parseCrl(der);
      if (!verifyCrlSignature(crl, parseCertificate(root.der).spki)) throw new Error('bench CRL does not verify');
      const verifyMs = Math.round(performance.now() - t);
      const bundle = path.join(dir, `bundle-${entries}.pem`);
      writeFileSync(bundle, toPem('X509 CRL', der));
      const k = `${Math.round(entries / 1000)}k`;
      figures[`sync_verify_${k}_ms`] = verifyMs;
      figures[`sync_bundle_${k}_bytes`] = readFileSync(bundle).length;
      let line = `  ${entries.toLocaleString('en')} entries (${(der.length / 1048576).toFixed(1)} MiB DER): parse + signature check ${verifyMs} ms per changed CRL`;
      if (hasNginx) {
        const n = await nginxWithBundle(root, dir, entries, bundle);
        figures[`nginx_crl_${k}_start_ms`] = n.startMs;
        figures[`nginx_crl_${k}_reload_ms`] = n.reloadMs;
        figures[`nginx_crl_${k}_rss_mb`] = n.rssMb;
        line += `; nginx ssl_crl: start ${n.startMs} ms, reload ${n.reloadMs} ms, RSS master + worker ${n.rssMb} MB`;
      }
      log(line);
    }
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log('revocation sync sidecar and nginx ssl_crl');
  console.log(JSON.stringify(await benchRevocationSync(Number(process.env.KAKUIN_BENCH_SCALE ?? '1'), (l) => console.log(l))));
}
