/**
 * Production-line enrollment end to end over HTTPS against `kakuin serve`: pre-registration (import),
 * one NDJSON batch (CSR parse + proof of possession + issue + committed record + pre-signed OCSP
 * response), and EST simpleenroll on keep-alive connections with Basic keys.
 *
 * The service runs in this process; the client (CSR generation, HTTPS requests, reading the answers)
 * runs in a child process (this same module, forked), so the client's TLS and parsing work is not
 * charged to the server's event loop. Both still share the machine's cores.
 *
 * A phase is timed from the moment the client is told to start until the last answer has arrived
 * AND this process's OCSP responder has stored the pre-signed responses of every certificate issued
 * (it follows the revocation feed up to the last entry): the work per device is complete.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../cli/config.js';
import { createLogger } from '../cli/logger.js';
import { startService } from '../cli/serve.js';
import { newStationApiKey, tokenHmac } from '../management-api/admin-tokens.js';
import { toPem } from '../pkix/index.js';
import { makeP256Csrs, runConcurrent } from './fixtures.js';

const CLIENT_FLAG = 'KAKUIN_BENCH_ENROLLMENT_CLIENT';
const EST_CONCURRENCY = 16;

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

/** What the parent tells the client. */
type ClientJob =
  | { type: 'setup'; apiUrl: string; ca: string; apiKey: string; stationId: string; batchSize: number; estCount: number }
  | { type: 'batch' }
  | { type: 'est' };

/** What the client answers. */
type ClientReply =
  | { type: 'ready' }
  | { type: 'batch-done'; lines: number; failed: number; firstError?: string }
  | { type: 'est-done'; failed: number; firstError?: string }
  | { type: 'error'; message: string };

/** The client side: runs in the forked child. */
function runClient(): void {
  let job: Extract<ClientJob, { type: 'setup' }> | undefined;
  let csrs: Buffer[] = [];
  let ndjson = '';
  const reply = (m: ClientReply) => process.send!(m);
  process.on('message', (m: ClientJob) => {
    (async () => {
      if (m.type === 'setup') {
        job = m;
        const serials = Array.from({ length: m.batchSize + m.estCount }, (_, i) => `BENCH-${i}`);
        csrs = makeP256Csrs(serials);
        ndjson = serials.slice(0, m.batchSize).map((serialNumber, i) => JSON.stringify({ serialNumber, csr: toPem('CERTIFICATE REQUEST', csrs[i]) })).join('\n');
        reply({ type: 'ready' });
      } else if (m.type === 'batch') {
        const j = job!;
        const r = await call(`${j.apiUrl}/api/v1/enroll/batch`, j.ca, false, { authorization: `Bearer ${j.apiKey}`, 'content-type': 'application/x-ndjson' }, ndjson);
        if (r.status !== 200) throw new Error(`batch: ${r.status} ${r.text.slice(0, 300)}`);
        const lines = r.text.trim().split('\n').map((l) => JSON.parse(l) as { error?: unknown });
        const bad = lines.filter((l) => l.error);
        reply({ type: 'batch-done', lines: lines.length, failed: bad.length, firstError: bad.length > 0 ? JSON.stringify(bad[0]) : undefined });
      } else {
        const j = job!;
        const agent = new https.Agent({ keepAlive: true, maxSockets: EST_CONCURRENCY });
        const basic = { authorization: `Basic ${Buffer.from(`${j.stationId}:${j.apiKey}`).toString('base64')}`, 'content-type': 'application/pkcs10' };
        const bodies = csrs.slice(j.batchSize).map((der) => der.toString('base64'));
        let failed = 0;
        let firstError: string | undefined;
        await runConcurrent(j.estCount, EST_CONCURRENCY, async (i) => {
          const r = await call(`${j.apiUrl}/.well-known/est/simpleenroll`, j.ca, agent, basic, bodies[i]);
          if (r.status !== 200) {
            failed++;
            firstError ??= `${r.status} ${r.text.slice(0, 300)}`;
          }
        });
        agent.destroy();
        reply({ type: 'est-done', failed, firstError });
      }
    })().catch((e: unknown) => reply({ type: 'error', message: String((e as Error)?.stack ?? e) }));
  });
}

if (process.env[CLIENT_FLAG] === '1' && process.send) runClient();

export async function benchEnrollment(batchSize: number, estCount: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-enroll-'));
  const token = `kkbench_${randomBytes(24).toString('base64url')}`;
  const env = { KAKUIN_DATA_DIR: dir, KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0', KAKUIN_KEY_PASSPHRASE: 'bench-passphrase-not-secret', KAKUIN_ADMIN_TOKEN: token, KAKUIN_LOG_LEVEL: 'error', KAKUIN_GATEWAY_WORKERS: '1' };
  const service = await startService(loadConfig(env), createLogger('error'), env);
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, [CLIENT_FLAG]: '1' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies: ClientReply[] = [];
  let wake: (() => void) | undefined;
  child.on('message', (m: ClientReply) => {
    replies.push(m);
    wake?.();
  });
  child.on('exit', () => wake?.());
  const next = async (): Promise<ClientReply> => {
    while (replies.length === 0) {
      if (child.exitCode !== null) throw new Error(`the bench client exited (${child.exitCode})`);
      await new Promise<void>((resolve) => { wake = resolve; });
    }
    const m = replies.shift()!;
    if (m.type === 'error') throw new Error(`bench client: ${m.message}`);
    return m;
  };
  try {
    const { registry, pepper } = service.kakuin;
    const responder = service.plane.responder;
    /** Resolves when the OCSP responder has stored responses for every feed entry so far. */
    const ocspCaughtUp = async () => {
      if (!(await responder.waitForSeq(await registry.latestFeedSeq(), 120_000))) throw new Error('the OCSP responder did not catch up');
    };
    const ca = readFileSync(path.join(dir, 'ca', 'root.pem'), 'utf8');
    const m = await registry.createManufacturer({ name: 'Bench factory' });
    const apiKey = newStationApiKey();
    const station = await registry.createStation({ manufacturerId: m.id, name: 'bench', keyHmac: tokenHmac(pepper, apiKey) }, { type: 'station.created', actor: 'bench' });
    const serials = Array.from({ length: batchSize + estCount }, (_, i) => `BENCH-${i}`);
    const auth = { authorization: `Bearer ${apiKey}` };

    child.send({ type: 'setup', apiUrl: service.apiUrl, ca, apiKey, stationId: station.id, batchSize, estCount } satisfies ClientJob);
    if ((await next()).type !== 'ready') throw new Error('bench client: expected ready');

    let t = process.hrtime.bigint();
    for (let i = 0; i < serials.length; i += 10_000) {
      const rows = serials.slice(i, i + 10_000).map((serialNumber) => ({ serialNumber }));
      const r = await call(`${service.apiUrl}/api/v1/devices/import`, ca, false, { ...auth, 'content-type': 'application/json' }, JSON.stringify(rows));
      if (r.status !== 201) throw new Error(`import failed: ${r.status} ${r.text.slice(0, 300)}`);
    }
    const importS = Number(process.hrtime.bigint() - t) / 1e9;
    await ocspCaughtUp();

    const cpuMs = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    t = process.hrtime.bigint();
    let cpu = cpuMs();
    child.send({ type: 'batch' } satisfies ClientJob);
    const batch = await next();
    await ocspCaughtUp();
    const batchS = Number(process.hrtime.bigint() - t) / 1e9;
    const batchCpuMs = cpuMs() - cpu;
    if (batch.type !== 'batch-done' || batch.lines !== batchSize || batch.failed > 0) throw new Error(`batch: ${JSON.stringify(batch)}`);

    t = process.hrtime.bigint();
    cpu = cpuMs();
    child.send({ type: 'est' } satisfies ClientJob);
    const est = await next();
    await ocspCaughtUp();
    const estS = Number(process.hrtime.bigint() - t) / 1e9;
    const estCpuMs = cpuMs() - cpu;
    if (est.type !== 'est-done' || est.failed > 0) throw new Error(`EST simpleenroll: ${JSON.stringify(est)}`);
    return {
      enrollment_import_devices_per_s: Math.round(serials.length / importS),
      enrollment_batch_devices_per_s: Math.round(batchSize / batchS),
      enrollment_est_simpleenroll_per_s: Math.round(estCount / estS),
      // Server CPU (all its threads) per device: steadier than the rates when the machine is shared.
      enrollment_batch_server_cpu_us_per_device: Math.round((batchCpuMs * 1000) / batchSize),
      enrollment_est_server_cpu_us_per_request: Math.round((estCpuMs * 1000) / estCount),
    };
  } finally {
    child.kill();
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
