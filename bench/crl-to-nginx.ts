/**
 * Issue 17: revoke (HTTPS API) → refused at nginx (`ssl_crl` fed by `revocation sync`), p50/p99.
 * kakuin runs in this process with its defaults (crl.fullCoalesceMs 5000); the sidecar polls every
 * 500 ms and reloads nginx (SIGHUP) with --min-reload-interval 0, so the figure is the CRL path's
 * own latency; with the default 60 s interval, add up to 60 s after the first change of a burst.
 * One revocation at a time, each a new device; a few revocations (each takes ~5 s).
 *
 * `node dist/bench/crl-to-nginx.js [revocations]` runs it alone.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import https from 'node:https';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../cli/config.js';
import { createLogger } from '../cli/logger.js';
import { startService } from '../cli/serve.js';
import { encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, toPem } from '../pkix/index.js';
import { Reloader } from '../revocation-sync/reloader.js';
import { RevocationSync } from '../revocation-sync/sidecar.js';
import { fixtureCertificate } from './ocsp-fixtures.js';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function get(url: string, cert: string, key: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { cert, key, rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.on('error', () => resolve(0));
  });
}

function post(url: string, ca: string, token: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = https.request(url, { method: 'POST', ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': data.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(data);
  });
}

export async function benchCrlToNginx(revocations: number, log: (l: string) => void): Promise<Record<string, number>> {
  if (spawnSync('nginx', ['-v']).error) {
    log('  nginx not installed: skipped');
    return {};
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-nginx-'));
  const token = `kkbench_${randomBytes(24).toString('base64url')}`;
  const env = {
    KAKUIN_DATA_DIR: path.join(dir, 'data'), KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0',
    KAKUIN_KEY_PASSPHRASE: 'bench-passphrase-not-secret', KAKUIN_ADMIN_TOKEN: token, KAKUIN_LOG_LEVEL: 'error', KAKUIN_GATEWAY_WORKERS: '1',
  };
  const service = await startService(loadConfig(env), createLogger('error'), env);
  let sync: RevocationSync | undefined;
  const nginxDir = path.join(dir, 'nginx');
  mkdirSync(path.join(nginxDir, 'tmp'), { recursive: true });
  let nginx: ReturnType<typeof spawn> | undefined;
  try {
    const { registry, deviceIssuer, hierarchy } = service.kakuin;
    const rootPem = readFileSync(path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem'), 'utf8');
    const m = await registry.createManufacturer({ name: 'Bench nginx' });
    const devices: { serialHex: string; cert: string; key: string }[] = [];
    for (let i = 0; i <= revocations; i++) {
      const serialNumber = `NGX-${i}`;
      const device = await registry.createDevice({ manufacturerId: m.id, serialNumber });
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const info = encodeCertificationRequestInfo(encodeName([{ type: 'serialNumber', value: serialNumber }]), publicKey.export({ type: 'spki', format: 'der' }));
      const issued = await deviceIssuer.issue({ deviceId: device.id, csr: encodeCertificationRequest(info, 'ecdsa-with-SHA256', sign('sha256', info, privateKey)), actor: 'bench' });
      devices.push({ serialHex: issued.record.serialHex, cert: toPem('CERTIFICATE', issued.record.der), key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string });
    }
    // nginx's own TLS certificate: any will do (the clients here do not check it).
    const sk = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sName = encodeName([{ type: 'CN', value: '127.0.0.1' }]);
    const sSpki = sk.publicKey.export({ type: 'spki', format: 'der' });
    writeFileSync(path.join(nginxDir, 'server.pem'), toPem('CERTIFICATE', fixtureCertificate({
      issuerName: sName, issuerKey: sk.privateKey, issuerKeyId: randomBytes(20), subject: sName, spki: sSpki, serial: Buffer.from([1, 2, 3]), extensions: [], days: 2,
    })));
    writeFileSync(path.join(nginxDir, 'server.key'), sk.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    writeFileSync(path.join(nginxDir, 'clients.pem'), toPem('CERTIFICATE', hierarchy.device.record.certificateDer) + rootPem);
    const bundle = path.join(nginxDir, 'crls.pem');
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    writeFileSync(path.join(nginxDir, 'nginx.conf'), `pid ${nginxDir}/nginx.pid;
error_log ${nginxDir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${nginxDir}/tmp/b; proxy_temp_path ${nginxDir}/tmp/p; fastcgi_temp_path ${nginxDir}/tmp/f; uwsgi_temp_path ${nginxDir}/tmp/u; scgi_temp_path ${nginxDir}/tmp/s;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${nginxDir}/server.pem; ssl_certificate_key ${nginxDir}/server.key;
    ssl_client_certificate ${nginxDir}/clients.pem; ssl_verify_client on; ssl_verify_depth 2; ssl_crl ${bundle};
    location / { return 200 "ok\\n"; }
  }
}
`);
    const reload = new Reloader(0, async () => { nginx?.kill('SIGHUP'); }, (e) => log(`  ! reload ${String(e)}`));
    sync = new RevocationSync({
      url: service.httpUrl, trustPem: rootPem, issuers: ['device'], withChain: true, pemOut: bundle, pollIntervalMs: 500, reload,
      logger: { info: () => {}, warn: (msg, f) => log(`  ! ${msg} ${JSON.stringify(f)}`) },
    });
    await sync.start();
    nginx = spawn('nginx', ['-p', nginxDir, '-c', path.join(nginxDir, 'nginx.conf'), '-e', path.join(nginxDir, 'error.log'), '-g', 'daemon off; worker_processes 1;'], { stdio: 'ignore' });
    const url = `https://127.0.0.1:${port}/`;
    const good = devices[revocations];
    for (let t = Date.now(); (await get(url, good.cert, good.key)) !== 200;) {
      if (Date.now() - t > 10_000) throw new Error('nginx did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    const latencies: number[] = [];
    for (let i = 0; i < revocations; i++) {
      const d = devices[i];
      const started = performance.now();
      const status = await post(`${service.apiUrl}/api/v1/certificates/${d.serialHex}/revoke`, rootPem, token, { reason: 'keyCompromise' });
      if (status !== 200) throw new Error(`revoke answered ${status}`);
      while ((await get(url, d.cert, d.key)) === 200) {
        if (performance.now() - started > 60_000) throw new Error('nginx never refused the revoked device');
        await new Promise((res) => setTimeout(res, 50));
      }
      latencies.push(performance.now() - started);
    }
    const s = latencies.sort((a, b) => a - b);
    const out = { crl_revoke_to_nginx_refused_p50_ms: Math.round(percentile(s, 50)), crl_revoke_to_nginx_refused_p99_ms: Math.round(percentile(s, 99)) };
    log(`  revoke → refused at nginx: p50 ${out.crl_revoke_to_nginx_refused_p50_ms} ms, p99 ${out.crl_revoke_to_nginx_refused_p99_ms} ms (${revocations} revocations; crl.fullCoalesceMs 5000, poll 500 ms, reload interval 0; target p99 ≤ 7 s)`);
    return out;
  } finally {
    sync?.stop();
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((r) => nginx!.once('exit', r));
      nginx.kill('SIGQUIT');
      await exited;
    }
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log('revoke → refused at nginx (ssl_crl via revocation sync)');
  console.log(JSON.stringify(await benchCrlToNginx(Number(process.argv[2] ?? 8), (l) => console.log(l))));
}
