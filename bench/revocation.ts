/**
 * Revocation benchmarks through the running service:
 * - revocation call (HTTPS API) → OCSP answers revoked (plain HTTP, pre-signed path): p50 / p99;
 * - a full CRL with 1,000,000 revoked entries: built (worker thread, streaming from SQLite) and
 *   signed, with the extra memory it took.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../cli/config.js';
import { createLogger } from '../cli/logger.js';
import { startService } from '../cli/serve.js';
import {
  encodeCertId, encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, encodeOcspRequest,
  parseCertificate, parseOcspResponse,
} from '../pkix/index.js';
import { sign } from 'node:crypto';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
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

export async function benchRevocationToOcsp(count: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-rev-'));
  const token = `kkbench_${randomBytes(24).toString('base64url')}`;
  const env = { KAKUIN_DATA_DIR: dir, KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_KEY_PASSPHRASE: 'bench-passphrase-not-secret', KAKUIN_ADMIN_TOKEN: token, KAKUIN_LOG_LEVEL: 'error', KAKUIN_GATEWAY_WORKERS: '1' };
  const service = await startService(loadConfig(env), createLogger('error'), env);
  try {
    const { registry, deviceIssuer, hierarchy } = service.kakuin;
    const m = await registry.createManufacturer({ name: 'Bench revocation' });
    const issuerCert = parseCertificate(hierarchy.device.record.certificateDer);
    const certs: { serialHex: string; request: Buffer }[] = [];
    for (let i = 0; i < count; i++) {
      const serialNumber = `REV-${i}`;
      const device = await registry.createDevice({ manufacturerId: m.id, serialNumber });
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const info = encodeCertificationRequestInfo(encodeName([{ type: 'serialNumber', value: serialNumber }]), publicKey.export({ type: 'spki', format: 'der' }));
      const issued = await deviceIssuer.issue({ deviceId: device.id, csr: encodeCertificationRequest(info, 'ecdsa-with-SHA256', sign('sha256', info, privateKey)), actor: 'bench' });
      const certId = encodeCertId('sha1', issuerCert.subject.rawDer, issuerCert.spki.subjectPublicKey, Buffer.from(issued.record.serialHex, 'hex'));
      certs.push({ serialHex: issued.record.serialHex, request: encodeOcspRequest([certId]) });
    }
    const rootPem = (await import('node:fs')).readFileSync(path.join(dir, 'ca', 'root.pem'), 'utf8');
    const latencies: number[] = [];
    for (const c of certs) {
      const start = process.hrtime.bigint();
      const status = await post(`${service.apiUrl}/api/v1/certificates/${c.serialHex}/revoke`, rootPem, token, { reason: 'keyCompromise' });
      if (status !== 200) throw new Error(`revoke answered ${status}`);
      for (;;) {
        const r = await fetch(`${service.httpUrl}/ocsp`, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: c.request });
        const parsed = parseOcspResponse(Buffer.from(await r.arrayBuffer()));
        if (parsed.responses[0]?.certStatus.status === 'revoked') break;
      }
      latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    latencies.sort((a, b) => a - b);
    return {
      revocation_to_ocsp_revoked_p50_ms: Math.round(percentile(latencies, 50) * 10) / 10,
      revocation_to_ocsp_revoked_p99_ms: Math.round(percentile(latencies, 99) * 10) / 10,
    };
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
