/**
 * Gateway benchmark (issue 4), loopback only, bounded in counts and time (about 30 s):
 *
 * 1. Full mTLS handshakes per second of the gateway against `openssl s_server -Verify 1` with the
 *    same server certificate chain, the same trust anchors, the same device certificate and the
 *    same client load in the same run. The load is a child process (bench/gateway-load.ts) with 16
 *    concurrent Node `tls.connect` loops, so on a 2-core machine the server has a core of its own;
 *    the client's CPU share is reported so a saturated client would show. Gateway and s_server
 *    alternate twice and the means are reported. Also per second of server CPU, which does not
 *    depend on how hard the client pushes.
 * 2. Resumed handshakes per second (TLS 1.3 PSK; the gateway still checks revocation on each).
 * 3. 1,000 device connections open and idle; 100 of them revoked one at a time through the
 *    registry (`applyStatusChange`) + feed poke, as the API does: time from the revoke call to that
 *    connection's close as the client sees it (p50/p99), and the other 900 must stay connected.
 *
 * `node dist/bench/gateway.js [--json]` runs it alone.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createDeviceGateway, type DeviceGateway } from '../gateway-auth/index.js';
import { createGatewayPki, makeKey, type GatewayPki, type TestDevice } from '../test/gateway-auth/pki.js';
import type { HandshakeJob, IdleJob, LoadMessage } from './gateway-load.js';

const LOAD_SCRIPT = fileURLToPath(new URL('./gateway-load.js', import.meta.url));
const CLK_TCK = 100;

export interface GatewayBenchOptions {
  concurrency?: number;
  warmupMs?: number;
  durationMs?: number;
  idleDevices?: number;
  revocations?: number;
  log?: (line: string) => void;
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** CPU ms used so far by another process (utime + stime from /proc). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

export interface LoadResult {
  perSecond: number;
  perServerCpuSecond: number;
  reusedShare: number;
  clientCpuShare: number;
  failed: number;
}

/** Runs one handshake job against `port`, sampling the server's CPU over the measured window. */
export async function runHandshakes(job: HandshakeJob, serverCpuMs: () => number): Promise<LoadResult> {
  const child = fork(LOAD_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let cpuStart = 0;
  const done = new Promise<LoadResult>((resolve, reject) => {
    child.on('message', (m: LoadMessage) => {
      if (m.type === 'window-start') cpuStart = serverCpuMs();
      else if (m.type === 'window-end') {
        const serverCpu = serverCpuMs() - cpuStart;
        resolve({
          perSecond: (m.completed * 1000) / m.windowMs,
          perServerCpuSecond: (m.completed * 1000) / Math.max(1, serverCpu),
          reusedShare: m.completed === 0 ? 0 : m.reused / m.completed,
          clientCpuShare: m.clientCpuMs / m.windowMs,
          failed: m.failed,
        });
      }
    });
    child.on('exit', (code) => { if (code !== 0) reject(new Error(`load generator exited ${code}`)); });
  });
  child.send(job);
  const r = await done;
  if (child.exitCode === null) await once(child, 'exit');
  return r;
}

/** `openssl s_server` with the gateway's certificates, requiring a client certificate. */
async function startSServer(pki: GatewayPki): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  writeFileSync(pki.file('trust.pem'), [pki.root.pem, pki.deviceCa.pem, pki.stationCa.pem].join(''));
  const child = spawn('openssl', [
    's_server', '-accept', `127.0.0.1:${port}`, '-cert', pki.file('server.pem'), '-key', pki.file('server.key'),
    '-cert_chain', pki.file('infra-ca.pem'), '-CAfile', pki.file('trust.pem'), '-Verify', '1', '-quiet',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { if (err.length < 4096) err += c.toString(); });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  };
  // -quiet prints no ACCEPT line: wait until the port takes connections.
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100 || child.exitCode !== null) {
      await stop();
      throw new Error(`openssl s_server did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, child, stop };
}

async function revokeToClose(pki: GatewayPki, gateway: DeviceGateway, port: number, n: number, revocations: number, log: (l: string) => void): Promise<Record<string, number>> {
  const started = performance.now();
  const devices: TestDevice[] = [];
  for (let i = 0; i < n; i += 100) {
    devices.push(...await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => pki.newDevice({ key: makeKey(), writeFiles: false }))));
  }
  log(`  ${n} devices created and recorded in ${round((performance.now() - started) / 1000, 2)} s`);
  const child = fork(LOAD_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const closed = new Map<number, number>();
  const waiters = new Map<number, (at: number) => void>();
  let onConnected: (m: { count: number; failed: number }) => void = () => {};
  let onOpen: (count: number) => void = () => {};
  child.on('message', (m: LoadMessage) => {
    if (m.type === 'closed') {
      closed.set(m.index, m.at);
      waiters.get(m.index)?.(m.at);
    } else if (m.type === 'connected') onConnected(m);
    else if (m.type === 'open') onOpen(m.count);
  });
  try {
    const connecting = performance.now();
    const connected = new Promise<{ count: number; failed: number }>((resolve) => { onConnected = resolve; });
    const job: IdleJob = { kind: 'idle', port, devices: devices.map((d) => ({ certPem: d.cert.pem, keyPem: d.cert.key.keyPem })), concurrency: 32 };
    child.send(job);
    const c = await connected;
    log(`  ${c.count} idle device connections open (${c.failed} failed) in ${round((performance.now() - connecting) / 1000, 2)} s`);
    if (c.count !== n) throw new Error(`only ${c.count} of ${n} devices connected`);
    const step = Math.floor(n / revocations);
    const latencies: number[] = [];
    for (let i = 0; i < revocations; i++) {
      const index = i * step;
      const closedAt = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`connection ${index} still open 5 s after its revocation`)), 5_000);
        waiters.set(index, (at) => {
          clearTimeout(timer);
          resolve(at);
        });
      });
      const t0 = performance.timeOrigin + performance.now();
      await pki.revoke(devices[index]);
      void gateway.pokeFeed();
      latencies.push((await closedAt) - t0);
      waiters.delete(index);
    }
    const open = await new Promise<number>((resolve) => {
      onOpen = resolve;
      child.send({ type: 'count' });
    });
    const unexpected = [...closed.keys()].filter((k) => k % step !== 0 || k / step >= revocations).length;
    latencies.sort((a, b) => a - b);
    return {
      gateway_revoke_to_close_p50_ms: round(percentile(latencies, 50), 2),
      gateway_revoke_to_close_p99_ms: round(percentile(latencies, 99), 2),
      gateway_revoke_to_close_max_ms: round(latencies[latencies.length - 1], 2),
      gateway_idle_connections_still_open: open,
      gateway_idle_connections_closed_unexpectedly: unexpected,
    };
  } finally {
    child.send({ type: 'exit' });
    if (child.exitCode === null) await once(child, 'exit');
  }
}

export async function benchGateway(o: GatewayBenchOptions = {}): Promise<Record<string, number>> {
  const log = o.log ?? (() => {});
  const concurrency = o.concurrency ?? 16;
  const warmupMs = o.warmupMs ?? 500;
  const durationMs = o.durationMs ?? 2_500;
  const pki = await createGatewayPki();
  const quiet = { info() {}, warn() {}, error(m: string, f?: Record<string, unknown>) { log(`  gateway error: ${m} ${JSON.stringify(f)}`); } };
  const gateway = createDeviceGateway({
    serverCertificates: [pki.server.der, pki.infraCa.der],
    serverKeyPem: pki.server.key.keyPem,
    trustAnchors: [pki.root.der, pki.deviceCa.der, pki.stationCa.der],
    deviceIssuers: [{ id: 'device', certificate: pki.deviceCa.der }],
    registry: pki.registry,
    logger: quiet,
    telemetry: { sink: { record: async () => {} } },
  });
  const figures: Record<string, number> = {};
  let sServer: Awaited<ReturnType<typeof startSServer>> | undefined;
  try {
    sServer = await startSServer(pki);
    const { port } = await gateway.listen(0, '127.0.0.1');
    const device = await pki.newDevice();
    const job = (p: number, resume: boolean): HandshakeJob => ({
      kind: 'handshakes', port: p, certPem: device.cert.pem, keyPem: device.cert.key.keyPem, concurrency, warmupMs, durationMs, resume,
    });
    const ownCpu = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const s = sServer;
    const sServerCpu = () => processCpuMs(s.child.pid!);
    const mean = (rs: LoadResult[], k: keyof LoadResult) => rs.reduce((s, r) => s + r[k], 0) / rs.length;

    log(`\ngateway: full mTLS handshakes (P-256, TLS 1.3), ${concurrency} concurrent Node tls.connect loops in a child process`);
    const gw: LoadResult[] = [];
    const ss: LoadResult[] = [];
    for (let round_ = 0; round_ < 2; round_++) {
      const before = gateway.stats();
      gw.push(await runHandshakes(job(port, false), ownCpu));
      const after = gateway.stats();
      if (after.refused !== before.refused) throw new Error('the gateway refused benchmark connections');
      ss.push(await runHandshakes(job(s.port, false), sServerCpu));
    }
    figures.gateway_full_handshakes_per_s = round(mean(gw, 'perSecond'));
    figures.gateway_openssl_s_server_handshakes_per_s = round(mean(ss, 'perSecond'));
    figures.gateway_vs_s_server_ratio = round(figures.gateway_full_handshakes_per_s / figures.gateway_openssl_s_server_handshakes_per_s, 3);
    figures.gateway_full_handshakes_per_server_cpu_s = round(mean(gw, 'perServerCpuSecond'));
    figures.gateway_openssl_s_server_handshakes_per_server_cpu_s = round(mean(ss, 'perServerCpuSecond'));
    figures.gateway_load_client_cpu_share_ratio = round(Math.max(mean(gw, 'clientCpuShare'), mean(ss, 'clientCpuShare')), 2);
    const failed = [...gw, ...ss].reduce((n, r) => n + r.failed, 0);
    if (failed > 0) log(`  ${failed} handshakes failed`);
    log(`  gateway          ${figures.gateway_full_handshakes_per_s} handshakes/s  (${figures.gateway_full_handshakes_per_server_cpu_s} per server CPU-s, client CPU ${round(mean(gw, 'clientCpuShare') * 100, 0)}%)`);
    log(`  openssl s_server ${figures.gateway_openssl_s_server_handshakes_per_s} handshakes/s  (${figures.gateway_openssl_s_server_handshakes_per_server_cpu_s} per server CPU-s, client CPU ${round(mean(ss, 'clientCpuShare') * 100, 0)}%)`);
    log(`  gateway / s_server ${figures.gateway_vs_s_server_ratio}x`);

    log('\ngateway: resumed handshakes (TLS 1.3 PSK), revocation checked on each');
    const refusedBefore = gateway.stats().refused;
    const gr = await runHandshakes(job(port, true), ownCpu);
    if (gateway.stats().refused !== refusedBefore) throw new Error('the gateway refused benchmark connections');
    const sr = await runHandshakes(job(s.port, true), sServerCpu);
    figures.gateway_resumed_handshakes_per_s = round(gr.perSecond);
    figures.gateway_resumed_share_ratio = round(gr.reusedShare, 3);
    figures.gateway_openssl_s_server_resumed_handshakes_per_s = round(sr.perSecond);
    log(`  gateway          ${figures.gateway_resumed_handshakes_per_s} handshakes/s (${round(gr.reusedShare * 100, 1)}% resumed)`);
    log(`  openssl s_server ${figures.gateway_openssl_s_server_resumed_handshakes_per_s} handshakes/s (${round(sr.reusedShare * 100, 1)}% resumed)`);

    const n = o.idleDevices ?? 1000;
    const revocations = o.revocations ?? 100;
    log(`\ngateway: ${n} idle device connections, revoke ${revocations} one at a time (applyStatusChange + feed poke)`);
    Object.assign(figures, await revokeToClose(pki, gateway, port, n, revocations, log));
    log(`  revoke → close  p50 ${figures.gateway_revoke_to_close_p50_ms} ms  p99 ${figures.gateway_revoke_to_close_p99_ms} ms  max ${figures.gateway_revoke_to_close_max_ms} ms`);
    log(`  still connected: ${figures.gateway_idle_connections_still_open} (closed unexpectedly: ${figures.gateway_idle_connections_closed_unexpectedly})`);
  } finally {
    await sServer?.stop();
    await gateway.close();
    await pki.cleanup();
  }
  return figures;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const json = process.argv.includes('--json');
  benchGateway({ log: json ? undefined : (l) => process.stdout.write(`${l}\n`) }).then((f) => {
    if (json) process.stdout.write(`${JSON.stringify(f)}\n`);
  }, (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
