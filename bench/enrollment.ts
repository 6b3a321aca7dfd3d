/**
 * Production-line enrollment end to end over HTTPS against `kakuin serve` in this process:
 * pre-registration (import), one NDJSON batch (CSR parse + proof of possession + issue + committed
 * record + pre-signed OCSP response), and EST simpleenroll on keep-alive connections with Basic keys.
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../cli/config.js';
import { createLogger } from '../cli/logger.js';
import { startService } from '../cli/serve.js';
import { newStationApiKey, tokenHmac } from '../ca/api/admin-tokens.js';
import { toPem } from '../pkix/index.js';
import { makeP256Csrs, runConcurrent } from './fixtures.js';

function call(url: string, ca: string, agent: https.Agent | false, headers: Record<string, string>, body: string | Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function benchEnrollment(batchSize: number, estCount: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-enroll-'));
  const token = `kkbench_${randomBytes(24).toString('base64url')}`;
  const env = { KAKUIN_DATA_DIR: dir, KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0', KAKUIN_KEY_PASSPHRASE: 'bench-passphrase-not-secret', KAKUIN_ADMIN_TOKEN: token, KAKUIN_LOG_LEVEL: 'error' };
  const service = await startService(loadConfig(env), createLogger('error'), env);
  try {
    const { registry, pepper } = service.kakuin;
    const ca = readFileSync(path.join(dir, 'ca', 'root.pem'), 'utf8');
    const m = await registry.createManufacturer({ name: 'Bench factory' });
    const apiKey = newStationApiKey();
    const station = await registry.createStation({ manufacturerId: m.id, name: 'bench', keyHmac: tokenHmac(pepper, apiKey) }, { type: 'station.created', actor: 'bench' });
    const serials = Array.from({ length: batchSize + estCount }, (_, i) => `BENCH-${i}`);
    const auth = { authorization: `Bearer ${apiKey}` };

    let t = process.hrtime.bigint();
    for (let i = 0; i < serials.length; i += 10_000) {
      const rows = serials.slice(i, i + 10_000).map((serialNumber) => ({ serialNumber }));
      const r = await call(`${service.apiUrl}/api/v1/devices/import`, ca, false, { ...auth, 'content-type': 'application/json' }, JSON.stringify(rows));
      if (r.status !== 201) throw new Error(`import failed: ${r.status} ${r.text.slice(0, 300)}`);
    }
    const importS = Number(process.hrtime.bigint() - t) / 1e9;

    const csrs = makeP256Csrs(serials);
    const ndjson = serials.slice(0, batchSize).map((serialNumber, i) => JSON.stringify({ serialNumber, csr: toPem('CERTIFICATE REQUEST', csrs[i]) })).join('\n');
    t = process.hrtime.bigint();
    const batch = await call(`${service.apiUrl}/api/v1/enroll/batch`, ca, false, { ...auth, 'content-type': 'application/x-ndjson' }, ndjson);
    const batchS = Number(process.hrtime.bigint() - t) / 1e9;
    const lines = batch.text.trim().split('\n').map((l) => JSON.parse(l) as { error?: unknown });
    const failed = lines.filter((l) => l.error).length;
    if (lines.length !== batchSize || failed > 0) throw new Error(`batch: ${lines.length} lines, ${failed} failed: ${JSON.stringify(lines.find((l) => l.error))}`);

    const agent = new https.Agent({ keepAlive: true, maxSockets: 16 });
    const basic = { authorization: `Basic ${Buffer.from(`${station.id}:${apiKey}`).toString('base64')}`, 'content-type': 'application/pkcs10' };
    const estS = await runConcurrent(estCount, 16, async (i) => {
      const r = await call(`${service.apiUrl}/.well-known/est/simpleenroll`, ca, agent, basic, csrs[batchSize + i].toString('base64'));
      if (r.status !== 200) throw new Error(`EST simpleenroll: ${r.status} ${r.text}`);
    });
    agent.destroy();
    return {
      enrollment_import_devices_per_s: Math.round(serials.length / importS),
      enrollment_batch_devices_per_s: Math.round(batchSize / batchS),
      enrollment_est_simpleenroll_per_s: Math.round(estCount / estS),
    };
  } finally {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
