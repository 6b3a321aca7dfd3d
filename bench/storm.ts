/**
 * Reconnect storm (issue 18 item 4), loopback only, bounded (a few seconds per run): `devices`
 * devices (2,000 at scale 1) open their mTLS connections to one gateway at the same moment, from a
 * child process (bench/storm-load.ts, on CPU 1 with `taskset`; the gateway's process on CPU 0).
 * Shed connections are retried after a 50–250 ms jittered backoff. Reported per run: time until
 * every device is connected, handshake p50/p99 (the successful attempt, client side), the longest
 * event-loop stall of the gateway (perf_hooks monitorEventLoopDelay, max), connections shed, and
 * devices wrongly refused (must be 0). Runs with the default bound (64) and without one.
 *
 * `node dist/bench/storm.js` runs it alone.
 */
import { fork, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createDeviceGateway, GatewayCluster, type DeviceGateway } from '../gateway-auth/index.js';
import { createGatewayPki, makeKey, type GatewayPki, type TestDevice } from '../test/gateway-auth/pki.js';
import type { StormJob, StormResult } from './storm-load.js';
import type { StormWorkerPayload } from './storm-worker.js';

const LOAD_SCRIPT = fileURLToPath(new URL('./storm-load.js', import.meta.url));
const WORKER_SCRIPT = fileURLToPath(new URL('./storm-worker.js', import.meta.url));

/** gateway.maxPendingHandshakes' default (gateway-auth/options.ts). */
const DEFAULT_BOUND = 64;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

async function stormOnce(pki: GatewayPki, devices: TestDevice[], maxPendingHandshakes: number, workers = 1): Promise<Record<string, number>> {
  const logger = { info() {}, warn() {}, error() {} };
  const gateway: DeviceGateway = workers > 1
    // gateway.workers: the workers open the bench registry read-only (bench/storm-worker.ts); this process is their primary.
    ? new GatewayCluster({
      workers, exec: WORKER_SCRIPT, logger, statusSource: 'feed', statusGraceMs: 10_000,
      payload: {
        registryPath: pki.file('registry.db'), serverCertificatesPem: [pki.server.pem, pki.infraCa.pem], serverKeyPem: pki.server.key.keyPem,
        trustAnchorsPem: [pki.root.pem, pki.deviceCa.pem], deviceCaPem: pki.deviceCa.pem, maxPendingHandshakes,
      } satisfies StormWorkerPayload,
    })
    : createDeviceGateway({
      serverCertificates: [pki.server.der, pki.infraCa.der], serverKeyPem: pki.server.key.keyPem,
      trustAnchors: [pki.root.pem, pki.deviceCa.der], deviceIssuers: [{ id: 'device', certificate: pki.deviceCa.der }],
      registry: pki.registry, logger, telemetry: { sink: { record: async () => {} } },
      maxPendingHandshakes,
    });
  const { port } = await gateway.listen(0, '127.0.0.1');
  const child = fork(LOAD_SCRIPT, [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    ...(hasTaskset && { execPath: 'taskset', execArgv: ['-c', '1', process.execPath] }),
  });
  const delay = monitorEventLoopDelay({ resolution: 5 });
  const job: StormJob = { port, devices: devices.map((d) => ({ certPem: d.cert.pem, keyPem: d.cert.key.keyPem })), backoffMs: [50, 250] };
  const exited = once(child, 'exit');
  child.send(job);
  const cpu0 = process.cpuUsage();
  delay.enable();
  const [r] = await once(child, 'message') as [StormResult];
  delay.disable();
  const cpu = process.cpuUsage(cpu0);
  // A cluster's figures come from the workers' reports (every second; a poke makes each report at once).
  if (workers > 1) await gateway.pokeFeed();
  const stats = gateway.stats();
  await exited;
  await gateway.close();
  const hs = [...r.handshakeMs].sort((a, b) => a - b);
  return {
    all_connected_ms: round(r.allConnectedMs, 0), handshake_p50_ms: round(percentile(hs, 50)), handshake_p99_ms: round(percentile(hs, 99)),
    max_stall_ms: round(delay.max / 1e6), shed: stats.shed.handshakes, wrongly_refused: r.wronglyRefused + stats.refused,
    connected: r.connected, gateway_cpu_s: round((cpu.user + cpu.system) / 1e6, 2),
  };
}

export async function benchStorm(o: { scale: number; log: (line: string) => void }): Promise<Record<string, number>> {
  const n = Math.max(200, Math.round(2_000 * o.scale));
  const pki = await createGatewayPki();
  const devices: TestDevice[] = [];
  for (let i = 0; i < n; i += 200) devices.push(...await Promise.all(Array.from({ length: Math.min(200, n - i) }, () => pki.newDevice({ key: makeKey(), writeFiles: false }))));
  const figures: Record<string, number> = {};
  try {
    const bounds = (process.env.KAKUIN_BENCH_STORM_BOUNDS ?? `${DEFAULT_BOUND},1000000`).split(',').map(Number);
    for (const bound of bounds) {
      const label = bound >= 1_000_000 ? 'unbounded' : `bound ${bound}`;
      const f = await stormOnce(pki, devices, bound);
      o.log(`  ${n} devices at once, ${label.padEnd(9)}: all connected in ${f.all_connected_ms} ms, handshake p50 ${f.handshake_p50_ms} / p99 ${f.handshake_p99_ms} ms, `
        + `longest stall ${f.max_stall_ms} ms, shed ${f.shed}, wrongly refused ${f.wrongly_refused}, gateway CPU ${f.gateway_cpu_s} s`);
      const key = bound === DEFAULT_BOUND ? 'storm' : bound >= 1_000_000 ? 'storm_unbounded' : `storm_bound_${bound}`;
      for (const [k, v] of Object.entries(f)) figures[`${key}_${k}`] = v;
    }
    // gateway.workers 2, default bound per worker: correctness on this 2-core box (none wrongly
    // refused), not speed. The stall and CPU figures are the primary's (it accepts and hands over).
    const f = await stormOnce(pki, devices, DEFAULT_BOUND, 2);
    o.log(`  ${n} devices at once, 2 workers: all connected in ${f.all_connected_ms} ms, handshake p50 ${f.handshake_p50_ms} / p99 ${f.handshake_p99_ms} ms, `
      + `primary's longest stall ${f.max_stall_ms} ms, shed ${f.shed}, wrongly refused ${f.wrongly_refused}, primary CPU ${f.gateway_cpu_s} s`);
    for (const [k, v] of Object.entries(f)) figures[`storm_workers2_${k}`] = v;
  } finally {
    await pki.cleanup();
  }
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  await benchStorm({ scale: Number(process.env.KAKUIN_BENCH_SCALE ?? '1'), log: console.log });
}
