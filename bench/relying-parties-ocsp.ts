/**
 * Issue 16: revoke (HTTPS API) → refused by a relying party that checks OCSP at the certificates'
 * own URLs, p50/p99 over 20 revocations, one at a time, each a new device:
 *   - nginx `ssl_verify_client on` + `ssl_ocsp on`, no cache (device and device CA checked);
 *   - FreeRADIUS EAP-TLS with `ocsp { enable = yes }`, one `eapol_test` run per attempt (the figure
 *     includes starting eapol_test, ~20 ms, and the whole EAP-TLS exchange).
 * kakuin runs in this process; the times run from the revoke call to the first refusal.
 * `node dist/bench/relying-parties-ocsp.js [revocations]` runs it alone.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../cli/config.js';
import { createLogger } from '../cli/logger.js';
import { startService } from '../cli/serve.js';
import { encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, toPem } from '../pkix/index.js';
import { fixtureCertificate } from './ocsp-fixtures.js';
import { eapolNetworkConf } from '../test/revocation-sync/freeradius.js';
import { freeUdpPort } from '../test/support/index.js';

const RADIUS_SECRET = 'kakuin-bench-radius';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)); });
  });
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

/** One EAP-TLS authentication by eapol_test: true on Access-Accept. */
function eapTls(conf: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('eapol_test', ['-c', conf, '-a', '127.0.0.1', '-p', String(port), '-s', RADIUS_SECRET, '-t', '10', '-n'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    child.on('close', () => resolve(/code=2 \(Access-Accept\)/.test(out)));
  });
}

/** The recipe's FreeRADIUS configuration (as in test/integration/relying-party-freeradius.test.ts, without check_cert_cn). */
function radiusConf(dir: string, port: number, certFile: string, keyFile: string, caFile: string): string {
  return `prefix = /usr
localstatedir = ${dir}
logdir = ${dir}
raddbdir = ${dir}
confdir = ${dir}
run_dir = ${dir}
libdir = /usr/lib/freeradius
pidfile = ${dir}/radiusd.pid
max_request_time = 30
log {
  destination = stdout
}
security {
  reject_delay = 0
}
client localhost {
  ipaddr = 127.0.0.1
  secret = ${RADIUS_SECRET}
}
modules {
  eap {
    default_eap_type = tls
    tls-config tls-common {
      private_key_file = ${keyFile}
      certificate_file = ${certFile}
      ca_file = ${caFile}
      tls_max_version = "1.2"
      cache {
        enable = no
      }
      ocsp {
        enable = yes
        override_cert_url = no
        use_nonce = yes
        timeout = 5
      }
    }
    tls {
      tls = tls-common
    }
  }
}
server default {
  listen {
    type = auth
    ipaddr = 127.0.0.1
    port = ${port}
  }
  authorize {
    eap {
      ok = return
    }
  }
  authenticate {
    eap
  }
  post-auth {
    Post-Auth-Type REJECT {
      eap
    }
  }
}
`;
}

async function stop(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

export async function benchRelyingPartiesOcsp(revocations: number, log: (l: string) => void): Promise<Record<string, number>> {
  const haveNginx = !spawnSync('nginx', ['-v']).error;
  const haveRadius = !spawnSync('freeradius', ['-v']).error && !spawnSync('eapol_test', ['-h']).error;
  if (!haveNginx && !haveRadius) {
    log('  nginx, freeradius and eapol_test not installed: skipped');
    return {};
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-rp-ocsp-'));
  const token = `kkbench_${randomBytes(24).toString('base64url')}`;
  const ocspPort = await freeTcpPort();
  const env = {
    KAKUIN_DATA_DIR: path.join(dir, 'data'), KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: String(ocspPort), KAKUIN_PUBLIC_HTTP_URL: `http://127.0.0.1:${ocspPort}`,
    KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0', KAKUIN_KEY_PASSPHRASE: 'bench-passphrase-not-secret', KAKUIN_ADMIN_TOKEN: token, KAKUIN_LOG_LEVEL: 'error', KAKUIN_GATEWAY_WORKERS: '1',
  };
  const service = await startService(loadConfig(env), createLogger('error'), env);
  let nginx: ChildProcess | undefined;
  let radius: ChildProcess | undefined;
  const out: Record<string, number> = {};
  try {
    const { registry, deviceIssuer, hierarchy } = service.kakuin;
    const rootPem = readFileSync(path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem'), 'utf8');
    const m = await registry.createManufacturer({ name: 'Bench relying parties' });
    let n = 0;
    const newDevice = async () => {
      const serialNumber = `RP-${n++}`;
      const device = await registry.createDevice({ manufacturerId: m.id, serialNumber });
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const info = encodeCertificationRequestInfo(encodeName([{ type: 'serialNumber', value: serialNumber }]), publicKey.export({ type: 'spki', format: 'der' }));
      const issued = await deviceIssuer.issue({ deviceId: device.id, csr: encodeCertificationRequest(info, 'ecdsa-with-SHA256', sign('sha256', info, privateKey)), actor: 'bench' });
      const cert = toPem('CERTIFICATE', issued.record.der);
      const key = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      writeFileSync(path.join(dir, `${serialNumber}.pem`), cert);
      writeFileSync(path.join(dir, `${serialNumber}.key`), key);
      return { serialHex: issued.record.serialHex, cert, key, certFile: path.join(dir, `${serialNumber}.pem`), keyFile: path.join(dir, `${serialNumber}.key`) };
    };
    const revoke = async (serialHex: string) => {
      const status = await post(`${service.apiUrl}/api/v1/certificates/${serialHex}/revoke`, rootPem, token, { reason: 'keyCompromise' });
      if (status !== 200) throw new Error(`revoke answered ${status}`);
    };
    // The servers' own TLS certificate: any will do (the clients here do not check it).
    const sk = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sName = encodeName([{ type: 'CN', value: '127.0.0.1' }]);
    const serverCert = path.join(dir, 'server.pem');
    const serverKey = path.join(dir, 'server.key');
    writeFileSync(serverCert, toPem('CERTIFICATE', fixtureCertificate({
      issuerName: sName, issuerKey: sk.privateKey, issuerKeyId: randomBytes(20), subject: sName, spki: sk.publicKey.export({ type: 'spki', format: 'der' }), serial: Buffer.from([1, 2, 3]), extensions: [], days: 2,
    })));
    writeFileSync(serverKey, sk.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const clientsCa = path.join(dir, 'clients.pem');
    writeFileSync(clientsCa, toPem('CERTIFICATE', hierarchy.device.record.certificateDer) + rootPem);

    /** Revoke → refused, sorted; and how long one admitted attempt (a good device's) takes, sorted. */
    const measure = async (name: string, admitted: (d: Awaited<ReturnType<typeof newDevice>>) => Promise<boolean>): Promise<{ refused: number[]; attempt: number[] }> => {
      const latencies: number[] = [];
      const attempts: number[] = [];
      for (let i = 0; i < revocations; i++) {
        const d = await newDevice();
        const tried = performance.now();
        if (!(await admitted(d))) throw new Error(`${name}: a good device was refused`);
        attempts.push(performance.now() - tried);
        const started = performance.now();
        await revoke(d.serialHex);
        while (await admitted(d)) {
          if (performance.now() - started > 30_000) throw new Error(`${name} never refused the revoked device`);
        }
        latencies.push(performance.now() - started);
      }
      return { refused: latencies.sort((a, b) => a - b), attempt: attempts.sort((a, b) => a - b) };
    };
    const round = (x: number) => Math.round(x * 10) / 10;

    if (haveNginx) {
      const nginxDir = path.join(dir, 'nginx');
      mkdirSync(path.join(nginxDir, 'tmp'), { recursive: true });
      const port = await freeTcpPort();
      writeFileSync(path.join(nginxDir, 'nginx.conf'), `pid ${nginxDir}/nginx.pid;
error_log ${nginxDir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${nginxDir}/tmp/b; proxy_temp_path ${nginxDir}/tmp/p; fastcgi_temp_path ${nginxDir}/tmp/f; uwsgi_temp_path ${nginxDir}/tmp/u; scgi_temp_path ${nginxDir}/tmp/s;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${serverCert}; ssl_certificate_key ${serverKey};
    ssl_client_certificate ${clientsCa}; ssl_verify_client on; ssl_verify_depth 2; ssl_ocsp on;
    location / { return 200 "ok\\n"; }
  }
}
`);
      nginx = spawn('nginx', ['-p', nginxDir, '-c', path.join(nginxDir, 'nginx.conf'), '-e', path.join(nginxDir, 'error.log'), '-g', 'daemon off; worker_processes 1;'], { stdio: 'ignore' });
      const url = `https://127.0.0.1:${port}/`;
      const first = await newDevice();
      for (let t = Date.now(); (await get(url, first.cert, first.key)) !== 200;) {
        if (Date.now() - t > 10_000) throw new Error('nginx did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
      const { refused, attempt } = await measure('nginx', async (d) => (await get(url, d.cert, d.key)) === 200);
      out.ocsp_revoke_to_nginx_refused_p50_ms = round(percentile(refused, 50));
      out.ocsp_revoke_to_nginx_refused_p99_ms = round(percentile(refused, 99));
      out.ocsp_nginx_admitted_request_p50_ms = round(percentile(attempt, 50));
      log(`  nginx ssl_ocsp on, no cache: revoke → 400, p50 ${out.ocsp_revoke_to_nginx_refused_p50_ms} ms, p99 ${out.ocsp_revoke_to_nginx_refused_p99_ms} ms (${revocations} revocations; target p99 ≤ 100 ms); a good device's request (new TLS connection, two OCSP checks) p50 ${out.ocsp_nginx_admitted_request_p50_ms} ms`);
    } else log('  nginx not installed: skipped');

    if (haveRadius) {
      const radiusDir = path.join(dir, 'radius');
      mkdirSync(radiusDir, { recursive: true });
      const port = await freeUdpPort();
      writeFileSync(path.join(radiusDir, 'radiusd.conf'), radiusConf(radiusDir, port, serverCert, serverKey, clientsCa));
      radius = spawn('freeradius', ['-f', '-l', 'stdout', '-d', radiusDir, '-n', 'radiusd'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let radiusLog = '';
      radius.stdout!.on('data', (d: Buffer) => { radiusLog += d.toString(); });
      radius.stderr!.on('data', (d: Buffer) => { radiusLog += d.toString(); });
      for (let t = Date.now(); !/Ready to process requests/.test(radiusLog);) {
        if (Date.now() - t > 20_000 || radius.exitCode !== null) throw new Error(`freeradius did not start:\n${radiusLog}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const s = await measure('FreeRADIUS', (d) => {
        const conf = path.join(radiusDir, `${d.serialHex}.conf`);
        writeFileSync(conf, eapolNetworkConf('device', d));
        return eapTls(conf, port);
      });
      out.ocsp_revoke_to_radius_reject_p50_ms = round(percentile(s.refused, 50));
      out.ocsp_revoke_to_radius_reject_p99_ms = round(percentile(s.refused, 99));
      out.ocsp_radius_accept_run_p50_ms = round(percentile(s.attempt, 50));
      log(`  FreeRADIUS EAP-TLS + OCSP (eapol_test): revoke → Access-Reject, p50 ${out.ocsp_revoke_to_radius_reject_p50_ms} ms, p99 ${out.ocsp_revoke_to_radius_reject_p99_ms} ms (${revocations} revocations; target p99 ≤ 100 ms); one whole eapol_test run to Access-Accept (process start + EAP-TLS + OCSP) p50 ${out.ocsp_radius_accept_run_p50_ms} ms`);
    } else log('  freeradius / eapol_test not installed: skipped');
    return out;
  } finally {
    await stop(nginx, 'SIGQUIT');
    await stop(radius, 'SIGTERM');
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchRelyingPartiesOcsp(Number(process.argv[2] ?? '20'), (l) => process.stdout.write(`${l}\n`)).catch((e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
