/**
 * Enrollments per second over CMP (p10cr, signature protection with a station certificate) against
 * EST simpleenroll and REST POST /api/v1/enroll, in the same run against one `kakuin serve` in this
 * process (issue 23). Each device is one request: REST and EST with the station's API key, CMP
 * signed with the station certificate and with implicitConfirm (RFC 9483 §4.1.1; without it each
 * device costs a second round trip, certConf → pkiConf). Keep-alive HTTPS, 16 in flight.
 *
 * The client (CSR and PKIMessage building, HTTPS, reading answers) runs in a forked child, so its
 * CPU is not the server's; both share the machine. Server CPU per request is measured per phase
 * (process.cpuUsage, all threads), and the CMP-specific CPU is split by timing its three steps in
 * this process on the same messages: parsing the PKIMessage, checking it (the protection signature
 * and the CSR's proof of possession), and signing the answer's ProtectedPart.
 */
import { fork } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../cli/config.js';
import { createLogger } from '../cli/logger.js';
import { startService } from '../cli/serve.js';
import { newStationApiKey, tokenHmac } from '../management-api/admin-tokens.js';
import {
  encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, fromPem, parseCertificate, parsePkiMessage, readCsr, toPem,
  verifyCsr, verifySignature,
} from '../pkix/index.js';
import { buildCmpRequest, p10crBody } from '../test/enrollment/cmp-client.js';
import { makeP256Csrs, runConcurrent } from './fixtures.js';

const CLIENT_FLAG = 'KAKUIN_BENCH_CMP_CLIENT';
const CONCURRENCY = 16;

type Phase = 'rest' | 'est' | 'cmp';
type ClientJob =
  | { type: 'setup'; apiUrl: string; ca: string; apiKey: string; stationId: string; perPhase: number; stationCertPem: string; stationKeyPem: string }
  | { type: 'run'; phase: Phase };
type ClientReply = { type: 'ready' } | { type: 'done'; failed: number; firstError?: string } | { type: 'error'; message: string };

function call(url: string, ca: string, agent: https.Agent | false, headers: Record<string, string>, body: string | Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca, agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const serialsOf = (phase: Phase, n: number) => Array.from({ length: n }, (_, i) => `CMPB-${phase}-${i}`);

function runClient(): void {
  let job: Extract<ClientJob, { type: 'setup' }> | undefined;
  const bodies = new Map<Phase, (string | Buffer)[]>();
  const reply = (m: ClientReply) => process.send!(m);
  process.on('message', (m: ClientJob) => {
    (async () => {
      if (m.type === 'setup') {
        job = m;
        const stationKey = createPrivateKey(m.stationKeyPem);
        const certificates = fromPem(m.stationCertPem, 'CERTIFICATE');
        const rest = makeP256Csrs(serialsOf('rest', m.perPhase));
        bodies.set('rest', rest.map((der, i) => JSON.stringify({ serialNumber: `CMPB-rest-${i}`, csr: toPem('CERTIFICATE REQUEST', der) })));
        bodies.set('est', makeP256Csrs(serialsOf('est', m.perPhase)).map((der) => der.toString('base64')));
        bodies.set('cmp', makeP256Csrs(serialsOf('cmp', m.perPhase)).map((der) => buildCmpRequest({
          body: p10crBody(der), implicitConfirm: true, protect: { signatureWith: { certificates, key: stationKey } },
        })));
        reply({ type: 'ready' });
        return;
      }
      const j = job!;
      const agent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
      const list = bodies.get(m.phase)!;
      const target = { rest: '/api/v1/enroll', est: '/.well-known/est/simpleenroll', cmp: '/.well-known/cmp' }[m.phase];
      const headers: Record<string, string> = {
        rest: { authorization: `Bearer ${j.apiKey}`, 'content-type': 'application/json' },
        est: { authorization: `Basic ${Buffer.from(`${j.stationId}:${j.apiKey}`).toString('base64')}`, 'content-type': 'application/pkcs10' },
        cmp: { 'content-type': 'application/pkixcmp' },
      }[m.phase] as Record<string, string>;
      let failed = 0;
      let firstError: string | undefined;
      await runConcurrent(list.length, CONCURRENCY, async (i) => {
        const r = await call(`${j.apiUrl}${target}`, j.ca, agent, headers, list[i]);
        const ok = m.phase === 'cmp' ? r.status === 200 && r.body[0] === 0x30 && parsePkiMessage(r.body).bodyTag === 3 : r.status === 200 || r.status === 201;
        if (!ok) {
          failed++;
          firstError ??= `${r.status} ${r.body.toString('latin1').slice(0, 300)}`;
        }
      });
      agent.destroy();
      reply({ type: 'done', failed, firstError });
    })().catch((e: unknown) => reply({ type: 'error', message: String((e as Error)?.stack ?? e) }));
  });
}

if (process.env[CLIENT_FLAG] === '1' && process.send) runClient();

/** µs per call of `fn` over `n` calls (after a warm-up of a tenth). */
function microseconds(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.ceil(n / 10); i++) fn(i % n);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Math.round(Number(process.hrtime.bigint() - t) / 1000 / n * 10) / 10;
}

export async function benchCmp(perPhase: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-cmp-'));
  const token = `kkbench_${randomBytes(24).toString('base64url')}`;
  const env = { KAKUIN_DATA_DIR: dir, KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0', KAKUIN_KEY_PASSPHRASE: 'bench-passphrase-not-secret', KAKUIN_ADMIN_TOKEN: token, KAKUIN_LOG_LEVEL: 'error' };
  const service = await startService(loadConfig(env), createLogger('error'), env);
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, [CLIENT_FLAG]: '1' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies: ClientReply[] = [];
  let wake: (() => void) | undefined;
  child.on('message', (m: ClientReply) => { replies.push(m); wake?.(); });
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
    const ca = readFileSync(path.join(dir, 'ca', 'root.pem'), 'utf8');
    const m = await registry.createManufacturer({ name: 'CMP bench factory' });
    const apiKey = newStationApiKey();
    const station = await registry.createStation({ manufacturerId: m.id, name: 'bench', keyHmac: tokenHmac(pepper, apiKey) }, { type: 'station.created', actor: 'bench' });
    // A station certificate for CMP signature protection, through the admin route as an operator would.
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const info = encodeCertificationRequestInfo(encodeName([{ type: 'CN', value: 'bench' }]), publicKey.export({ type: 'spki', format: 'der' }));
    const csr = toPem('CERTIFICATE REQUEST', encodeCertificationRequest(info, 'ecdsa-with-SHA256', sign('sha256', info, privateKey)));
    const issued = await call(`${service.apiUrl}/api/v1/stations/${station.id}/certificate`, ca, false, { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify({ csr }));
    if (issued.status !== 201) throw new Error(`station certificate: ${issued.status} ${issued.body.toString()}`);
    const stationCertPem = JSON.parse(issued.body.toString()).certificate as string;
    const all = (['rest', 'est', 'cmp'] as const).flatMap((p) => serialsOf(p, perPhase));
    for (let i = 0; i < all.length; i += 10_000) {
      const rows = all.slice(i, i + 10_000).map((serialNumber) => ({ serialNumber }));
      const r = await call(`${service.apiUrl}/api/v1/devices/import`, ca, false, { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, JSON.stringify(rows));
      if (r.status !== 201) throw new Error(`import failed: ${r.status}`);
    }
    child.send({ type: 'setup', apiUrl: service.apiUrl, ca, apiKey, stationId: station.id, perPhase, stationCertPem, stationKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string } satisfies ClientJob);
    if ((await next()).type !== 'ready') throw new Error('bench client: expected ready');

    const figures: Record<string, number> = {};
    const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
    for (const phase of ['rest', 'est', 'cmp'] as const) {
      const t = process.hrtime.bigint();
      const cpu = cpuMs();
      child.send({ type: 'run', phase } satisfies ClientJob);
      const r = await next();
      const s = Number(process.hrtime.bigint() - t) / 1e9;
      if (r.type !== 'done' || r.failed > 0) throw new Error(`${phase}: ${JSON.stringify(r)}`);
      figures[`cmp_bench_${phase}_enrollments_per_s`] = Math.round(perPhase / s);
      figures[`cmp_bench_${phase}_server_cpu_us_per_enrollment`] = Math.round(((cpuMs() - cpu) * 1000) / perPhase);
    }
    figures.cmp_bench_cmp_vs_est_ratio = Math.round((figures.cmp_bench_est_enrollments_per_s / figures.cmp_bench_cmp_enrollments_per_s) * 100) / 100;

    // The CPU split of the CMP-specific steps, on messages like the ones sent.
    const n = Math.min(perPhase, 2000);
    const stationCert = parseCertificate(fromPem(stationCertPem, 'CERTIFICATE')[0]);
    const messages = makeP256Csrs(Array.from({ length: n }, (_, i) => `SPLIT-${i}`)).map((der) => buildCmpRequest({
      body: p10crBody(der), implicitConfirm: true, protect: { signatureWith: { certificates: [stationCert.rawDer], key: privateKey } },
    }));
    const parsed = messages.map((d) => parsePkiMessage(d));
    figures.cmp_bench_parse_us = microseconds(n, (i) => { parsePkiMessage(messages[i]); });
    figures.cmp_bench_check_us = microseconds(n, (i) => {
      const msg = parsed[i];
      if (!verifySignature(msg.protectedPartDer, msg.header.protectionAlg!, msg.protection!, stationCert.spki)) throw new Error('protection');
      verifyCsr(readCsr((msg.body as { csr: { rawDer: Buffer } }).csr.rawDer));
    });
    const answerKey: KeyObject = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const answer = randomBytes(1400);
    figures.cmp_bench_sign_answer_us = microseconds(n, () => { sign('sha256', answer, answerKey); });
    return figures;
  } finally {
    child.kill();
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// `node dist/bench/cmp.js` runs this benchmark alone.
if (process.env[CLIENT_FLAG] !== '1' && process.argv[1] === fileURLToPath(import.meta.url)) {
  benchCmp(Number(process.env.KAKUIN_BENCH_CMP_N ?? '1000')).then((f) => process.stdout.write(`${JSON.stringify(f, null, 1)}\n`), (e) => { console.error(e); process.exit(1); });
}
