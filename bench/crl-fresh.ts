/**
 * Issue 17: at N revoked (1,000,000 at scale 1), one more revocation → listed in the full CRL.
 *
 * A SQLite registry holds N revoked certificates of the device CA (fixture rows) and a few good
 * ones; a CrlPublisher with its worker thread (as `serve` runs it, crl.fullCoalesceMs 5000) has
 * published the full CRL. Then, one at a time, a good certificate is revoked through the registry
 * port (applyStatusChange, which appends to the feed) and handed to the publisher as the revocation
 * plane does; the time until the stored full CRL reflects that feed entry is the latency. Also:
 * the walk (from-scratch) build for comparison, the CPU time of the whole process (every thread)
 * per incremental full CRL, the bytes signed per change, the longest main-event-loop stall
 * (signing runs there; the SQLite store of a large CRL runs in a worker) and the peak RSS of the process (VmHWM: main + worker).
 *
 * `node dist/bench/crl-fresh.js [entries] [revocations]` runs it alone.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CrlPublisher } from '../ca/crl/crl-publisher.js';
import { WorkerCrlBodyBuilder } from '../ca/crl/crl-builder.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';
import { insertRevoked } from './crl.js';
import { BENCH_URLS, createBenchCa, type BenchCa } from './fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function vmHwmMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function benchCrlFreshness(ca: BenchCa, entries: number, revocations: number, log: (line: string) => void): Promise<Record<string, number>> {
  const dbPath = path.join(ca.dir, 'crl-fresh.db');
  const registry = await openSqliteRegistry({ path: dbPath });
  for (const issuer of [ca.hierarchy.root, ca.hierarchy.device, ca.hierarchy.infrastructure]) await registry.putIssuer({ ...issuer.record });
  insertRevoked(dbPath, entries);
  const good = insertRevoked(dbPath, revocations, 'good');
  const builder = new WorkerCrlBodyBuilder({ module: pathToFileURL(path.join(here, '..', 'registry', 'sqlite', 'worker-open.js')).href, options: { path: dbPath } });
  const fulls: Record<string, unknown>[] = [];
  // Stored full CRLs seen as they are stored (reading the latest back would copy ~50 MB per poll).
  let storedFullSeq = -1;
  let onStored: (() => void) | undefined;
  const view = {
    nextCrlNumber: registry.nextCrlNumber.bind(registry), getLatestCrl: registry.getLatestCrl.bind(registry), latestFeedSeq: registry.latestFeedSeq.bind(registry),
    putCrl: async (crl: Parameters<typeof registry.putCrl>[0]) => {
      await registry.putCrl(crl);
      if (crl.kind === 'full') { storedFullSeq = crl.feedSeq; onStored?.(); }
    },
  };
  const publisher = new CrlPublisher(view, [ca.hierarchy.device], BENCH_URLS, builder,
    { coalesceMs: 1000, fullCoalesceMs: 5000, fullValidityMs: 86_400_000, fullRebuildMs: 3600_000, deltaValidityMs: 3600_000 },
    { info: (_m, f) => { if (f?.kind === 'full') fulls.push(f); }, error: (m, f) => log(`  ! ${m} ${JSON.stringify(f)}`) });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  try {
    let t = process.hrtime.bigint();
    await publisher.start();
    const walkS = Number(process.hrtime.bigint() - t) / 1e9;
    const walk = fulls[fulls.length - 1];
    t = process.hrtime.bigint();
    await publisher.publish('device', 'full');
    const walkAgainS = Number(process.hrtime.bigint() - t) / 1e9;
    log(`  start (first walk build, worker cold): ${walkS.toFixed(2)} s; a walk build: ${walkAgainS.toFixed(2)} s (build ${String(walk.buildMs)} ms in the worker, sign ${String(walk.signMs)} ms, store ${String(walk.storeMs)} ms), ${(Number(walk.bytes) / 1048576).toFixed(1)} MiB`);

    const latencies: number[] = [];
    const cpuPerFull: number[] = [];
    const buildMs: number[] = [];
    loop.enable();
    for (let i = 0; i < revocations; i++) {
      const before = fulls.length;
      const cpu0 = process.cpuUsage();
      const started = performance.now();
      const feed = await registry.applyStatusChange({
        certificates: [{ serialHex: good[i], from: ['good'], to: 'revoked', reason: 'keyCompromise', revokedAt: new Date() }], audit: [],
      });
      const seq = feed[feed.length - 1].seq;
      publisher.onFeedEntries(feed);
      await new Promise<void>((resolve) => {
        onStored = () => { if (storedFullSeq >= seq) resolve(); };
        onStored();
      });
      latencies.push(performance.now() - started);
      // Its delta follows the full CRL; let it finish so its CPU counts here.
      await new Promise((r) => setTimeout(r, 100));
      const cpu = process.cpuUsage(cpu0);
      cpuPerFull.push((cpu.user + cpu.system) / 1000);
      const f = fulls[fulls.length - 1];
      if (fulls.length > before) buildMs.push(Number(f.buildMs) + Number(f.signMs) + Number(f.storeMs));
      if (Number(f.encoded) !== 1 || Number(f.entries) !== entries + i + 1) throw new Error(`incremental full CRL: ${JSON.stringify(f)}`);
      // A pause between revocations, as between stolen devices (the next one starts a new window).
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 300));
    }
    loop.disable();
    const lastFull = fulls[fulls.length - 1];
    log(`  last incremental full CRL: worker ${String(lastFull.buildMs)} ms (incl. transfer), sign ${String(lastFull.signMs)} ms, store ${String(lastFull.storeMs)} ms (main thread)`);
    const sorted = [...latencies].sort((a, b) => a - b);
    const bytes = Number(fulls[fulls.length - 1].bytes);
    const figures = {
      crl_fresh_entries: entries,
      crl_fresh_revocations: revocations,
      crl_fresh_listed_p50_ms: Math.round(percentile(sorted, 50)),
      crl_fresh_listed_p99_ms: Math.round(percentile(sorted, 99)),
      crl_fresh_incremental_build_sign_store_p50_ms: Math.round(percentile([...buildMs].sort((a, b) => a - b), 50)),
      crl_fresh_walk_build_sign_store_s: Math.round(walkAgainS * 100) / 100,
      crl_fresh_cpu_per_change_ms: Math.round(percentile([...cpuPerFull].sort((a, b) => a - b), 50)),
      crl_fresh_bytes_signed_per_change: bytes,
      crl_fresh_main_loop_max_stall_ms: Math.round(loop.max / 1e6),
      crl_fresh_peak_rss_mb: vmHwmMb(),
    };
    log(`  one more revocation → in the full CRL: p50 ${figures.crl_fresh_listed_p50_ms} ms, p99 ${figures.crl_fresh_listed_p99_ms} ms (${revocations} revocations; crl.fullCoalesceMs 5000, target p99 ≤ 6 s)`);
    log(`  incremental full CRL: build + sign + store p50 ${figures.crl_fresh_incremental_build_sign_store_p50_ms} ms, CPU ${figures.crl_fresh_cpu_per_change_ms} ms per change (all threads, with its delta), ${(bytes / 1048576).toFixed(1)} MiB signed per change`);
    log(`  main event loop: longest stall ${figures.crl_fresh_main_loop_max_stall_ms} ms (hashing + signing run there; SQLite stores a CRL ≥ 1 MiB from a worker); peak RSS ${figures.crl_fresh_peak_rss_mb} MB (process: main + CRL worker)`);
    return figures;
  } finally {
    await publisher.stop();
    await registry.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const entries = Number(process.argv[2] ?? 1_000_000);
  const revocations = Number(process.argv[3] ?? 10);
  const ca = await createBenchCa();
  try {
    console.log(`full CRL freshness at ${entries.toLocaleString('en')} revoked`);
    console.log(JSON.stringify(await benchCrlFreshness(ca, entries, revocations, (l) => console.log(l))));
  } finally {
    ca.cleanup();
  }
}
