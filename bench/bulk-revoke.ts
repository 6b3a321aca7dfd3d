/**
 * Bulk revoke of a cohort (issue 20): 100,000 devices (KAKUIN_BENCH_SCALE scales it), each with a
 * certificate record, revoked by one `POST /api/v1/devices/bulk` job through the running
 * service (SQLite, OCSP responder, gateway, all in one process). Figures: devices/s over the job's
 * run (startedAt → finishedAt), and for the last device of the frozen set the time from its
 * revocation's commit (its audit event) to the OCSP responder answering revoked, and to the gateway
 * closing that device's open keep-alive connection.
 *
 * Devices and their certificate records are written straight into the registry (no HTTP, no key
 * generation; only the last device's certificate is issued for real), to keep the set-up short.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../cli/config.js';
import { createLogger } from '../cli/logger.js';
import { startService } from '../cli/serve.js';
import {
  encodeCertId, encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, encodeOcspRequest, parseCertificate, parseOcspResponse, toPem,
} from '../pkix/index.js';
import { runConcurrent } from './fixtures.js';

function api(url: string, ca: string, token: string, method: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = https.request(url, {
      method, ca, headers: { authorization: `Bearer ${token}`, ...(data !== undefined && { 'content-type': 'application/json', 'content-length': data.length }) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** A device's keep-alive mTLS connection to the gateway (one GET /healthz answered); resolves its close time. */
function openDeviceConnection(gatewayUrl: string, cert: string, key: string, ca: string): Promise<{ closed: Promise<number> }> {
  const { hostname, port } = new URL(gatewayUrl);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), cert, key, ca, servername: 'localhost', checkServerIdentity: () => undefined }, () => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n');
    });
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    socket.once('data', () => resolve({ closed }));
    socket.once('error', reject);
  });
}

export async function benchBulkRevoke(options: { scale: number; log: (line: string) => void }): Promise<Record<string, number>> {
  const count = Math.max(1000, Math.round(100_000 * options.scale));
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-bulk-'));
  const token = `kkbench_${randomBytes(24).toString('base64url')}`;
  const config = path.join(dir, 'kakuin.json');
  writeFileSync(config, JSON.stringify({ approvals: { bulkThreshold: count }, activity: { enabled: false } }));
  const env = {
    KAKUIN_DATA_DIR: path.join(dir, 'data'), KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0',
    KAKUIN_KEY_PASSPHRASE: 'bench-passphrase-not-secret', KAKUIN_KEY_KDF_COST: '10', KAKUIN_ADMIN_TOKEN: token, KAKUIN_LOG_LEVEL: 'error', KAKUIN_CONFIG: config,
  };
  const service = await startService(loadConfig(env), createLogger('error'), env);
  try {
    const { registry, deviceIssuer, hierarchy } = service.kakuin;
    const setupStart = Date.now();
    const m = await registry.createManufacturer({ name: 'Bench bulk' });
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push((await registry.createDevice({ manufacturerId: m.id, serialNumber: `BULK-${i}` })).id);
    // Every device but the last gets a certificate record written straight into the registry (its
    // DER is random bytes: revocation, the feed, OCSP and CRLs go by serial and issuer); the last
    // one is issued for real and keeps its key, to connect to the gateway.
    const issuerId = hierarchy.device.id;
    await runConcurrent(count - 1, 100, (i) => {
      const der = randomBytes(300);
      const serial = randomBytes(16);
      serial[0] &= 0x7f;
      const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
      const serialHex = serial.toString('hex').toUpperCase();
      return registry.recordIssuance({
        certificate: {
          serialHex, issuerId, deviceId: ids[i], profile: 'device', der, fingerprintSha256: createHash('sha256').update(der).digest('hex'),
          publicKeySha256: randomBytes(32).toString('hex'), notBefore, notAfter: new Date(notBefore.getTime() + 365 * 86_400_000),
        },
        audit: { type: 'certificate.issued', actor: 'bench', deviceId: ids[i], serialHex, details: {} },
      });
    });
    const last = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const info = encodeCertificationRequestInfo(encodeName([{ type: 'serialNumber', value: `BULK-${count - 1}` }]), last.publicKey.export({ type: 'spki', format: 'der' }));
    const lastIssued = await deviceIssuer.issue({ deviceId: ids[count - 1], csr: encodeCertificationRequest(info, 'ecdsa-with-SHA256', sign('sha256', info, last.privateKey)), actor: 'bench' });
    options.log(`  set-up: ${count.toLocaleString('en')} devices with certificates in ${((Date.now() - setupStart) / 1000).toFixed(1)} s`);

    const rootPem = readFileSync(path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem'), 'utf8');
    // The last device connects near the end of the job (an idle keep-alive connection would be closed by the gateway's timeout long before).
    const connect = () => openDeviceConnection(service.gatewayUrl, toPem('CERTIFICATE', lastIssued.der), last.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, rootPem);
    let connection: { closed: Promise<number> } | undefined;
    let connectedAt = 0;
    const issuerCert = parseCertificate(hierarchy.device.record.certificateDer);
    const ocspRequest = encodeOcspRequest([encodeCertId('sha1', issuerCert.subject.rawDer, issuerCert.spki.subjectPublicKey, Buffer.from(lastIssued.record.serialHex, 'hex'))]);

    const started = await api(`${service.apiUrl}/api/v1/devices/bulk`, rootPem, token, 'POST', { action: 'revoke', filter: { manufacturerId: m.id }, reason: 'keyCompromise', ticket: 'BENCH' });
    if (started.status !== 202) throw new Error(`bulk answered ${started.status}: ${JSON.stringify(started.json)}`);
    const jobId = started.json.job.id as string;
    let ocspRevokedAt: number | undefined;
    let job;
    for (;;) {
      job = (await api(`${service.apiUrl}/api/v1/jobs/${jobId}`, rootPem, token, 'GET')).json;
      if (job.state !== 'running') break;
      if (connection === undefined && job.progress.acted >= count - Math.min(5000, count / 2)) {
        connection = await connect();
        connectedAt = Date.now();
      }
      // Near the end, watch the last device's OCSP answer closely.
      if (job.progress.acted >= count - 500) {
        for (;;) {
          const r = await fetch(`${service.httpUrl}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: ocspRequest });
          if (parseOcspResponse(Buffer.from(await r.arrayBuffer())).responses[0]?.certStatus.status === 'revoked') {
            ocspRevokedAt = Date.now();
            break;
          }
          await new Promise((res) => setTimeout(res, 2));
        }
      } else {
        await new Promise((res) => setTimeout(res, 200));
      }
    }
    if (job.state !== 'done') throw new Error(`the bulk job ended ${job.state}: ${job.error}`);
    if (connection === undefined) throw new Error('the job ended before the last device connected');
    const closedAt = await Promise.race([connection.closed, new Promise<number>((r) => setTimeout(() => r(Number.NaN), 10_000))]);
    const [revoked] = await registry.listAuditEvents({ deviceId: ids[count - 1], type: 'device.revoked', limit: 1 });
    const committedAt = revoked.at.getTime();
    const seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
    const figures = {
      bulk_revoke_devices: count,
      bulk_revoke_devices_per_s: Math.round(count / seconds),
      bulk_revoke_last_to_ocsp_revoked_ms: ocspRevokedAt === undefined ? Number.NaN : Math.max(0, ocspRevokedAt - committedAt),
      bulk_revoke_last_to_session_cut_ms: closedAt - committedAt,
    };
    if (!(closedAt >= committedAt)) throw new Error(`the last device's connection (open since ${new Date(connectedAt).toISOString()}) closed before its revocation committed, or not within 10 s`);
    options.log(`  ${count.toLocaleString('en')} devices revoked in ${seconds.toFixed(1)} s: ${figures.bulk_revoke_devices_per_s.toLocaleString('en')} devices/s (${job.progress.acted} acted, ${job.progress.skipped} skipped)`);
    options.log(`  last device: revoke committed → OCSP revoked ${figures.bulk_revoke_last_to_ocsp_revoked_ms} ms (polled every ~2 ms), → its open gateway connection closed ${figures.bulk_revoke_last_to_session_cut_ms} ms`);
    return figures;
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// `node dist/bench/bulk-revoke.js` runs this one alone.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  const scale = Number(process.env.KAKUIN_BENCH_SCALE ?? '1');
  benchBulkRevoke({ scale, log: (l) => process.stdout.write(`${l}\n`) }).then((f) => process.stdout.write(`${JSON.stringify(f)}\n`), (e: unknown) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exitCode = 1;
  });
}
