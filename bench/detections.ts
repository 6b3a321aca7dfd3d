/**
 * Detections (issue 20): what evaluating the rules costs, and how soon each rule detects.
 *
 * - Evaluation cost: the simulated trial fleet (test/operations/detection-fleet.ts: vehicles and
 *   cameras every 60 s, school and home devices every 300 s, vehicles re-attaching hourly with
 *   two failed SIM attempts) run for 6 virtual hours with the shipped templates, against the same
 *   simulation with no template assigned (its own loop cost); the difference, in CPU µs per 1,000
 *   device-intervals (one device's expected interval: its message plus its share of connections,
 *   authentications and silence checks).
 * - Detection latency per rule, two parts: virtual (engine) time from the start of the pattern to
 *   the finding, with the shipped templates' figures and the default 10 s silence check; and wall
 *   time from the triggering call to the detection stored and its action done (SQLite registry,
 *   RevocationService for `suspend`), median of 50 devices each.
 *
 * `node dist/bench/detections.js [--json]` runs it alone (~15 s at scale 1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RevocationService } from '../ca/revocation.js';
import { compileTemplate, DetectionEngine, type Finding } from '../operations/detections/engine.js';
import { DetectionResponder } from '../operations/detections/responder.js';
import { DetectionService } from '../operations/detections/service.js';
import { SHIPPED_TEMPLATES } from '../operations/detections/shipped-templates.js';
import type { RuleName } from '../operations/detections/template.js';
import { openSqliteRegistry, type SqliteRegistry } from '../registry/sqlite/index.js';
import { Fleet, minutes } from '../test/operations/detection-fleet.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function fleetCpu(devices: number, evaluate: boolean): { ms: number; deviceIntervals: number; calls: number } {
  const per = Math.round(devices / 10);
  const fleet = new Fleet({ vehicle: 3 * per, school: 2 * per, home: 3 * per, camera: 2 * per }, undefined, evaluate);
  fleet.start();
  const t0 = cpuMs();
  fleet.run(minutes(6 * 60));
  return { ms: cpuMs() - t0, deviceIntervals: fleet.deviceIntervals, calls: fleet.calls };
}

/** Rule → how to make it fire on a fresh engine with the template that has it (virtual ms from the pattern's start). */
interface Scenario { rule: RuleName; template: string; trigger(e: DetectionEngine, id: string, clock: { now: number; start?: number }): void }

const SCENARIOS: Scenario[] = [
  // Last message, then nothing; the silence timer every 10 s (detections.silenceCheckSeconds).
  { rule: 'silence', template: 'camera', trigger: (e, id, c) => {
    e.messages(id, 1);
    for (let i = 0; i < 200 && e.findings === 0; i++) {
      c.now += 10_000;
      e.checkSilence();
    }
  } },
  // A meter that sent every 300 s starts sending every second.
  { rule: 'rate', template: 'home', trigger: (e, id, c) => {
    for (let i = 0; i < 3600 && e.findings === 0; i++) {
      c.now += 1_000;
      e.messages(id, 1);
    }
  } },
  { rule: 'networks', template: 'camera', trigger: (e, id) => e.opened(id, '203.0.113.50') },
  { rule: 'sessions', template: 'vehicle', trigger: (e, id) => {
    if (e.refuseSession(id, '100.100.7.7') === undefined) e.opened(id, '100.100.7.7');
  } },
  // Authentications every 3 s (a SIM retry loop gone wrong).
  { rule: 'authBurst', template: 'vehicle', trigger: (e, id, c) => {
    for (let i = 0; i < 100 && e.findings === 0; i++) {
      c.now += 3_000;
      e.authentication(id, false, '100.64.0.9');
    }
  } },
  { rule: 'usualHours', template: 'school', trigger: (e, id, c) => {
    c.now = Date.UTC(2026, 11, 7, 22, 30); // 23:30 in Berlin: the pattern starts with this success
    c.start = c.now;
    e.authentication(id, true, '10.30.0.9');
  } },
  { rule: 'firmwareDowngrade', template: 'camera', trigger: (e, id) => e.firmware(id, '2.9.0') },
];

export async function benchDetections(opts: { scale: number; log: (line: string) => void }): Promise<Record<string, number>> {
  const { log } = opts;
  const figures: Record<string, number> = {};
  const devices = Math.max(1_000, Math.round(10_000 * opts.scale));
  fleetCpu(1_000, true); // warm-up (JIT)
  const base = fleetCpu(devices, false);
  const withRules = fleetCpu(devices, true);
  const perK = ((withRules.ms - base.ms) * 1000) / (withRules.deviceIntervals / 1000);
  figures.detections_eval_cpu_us_per_1000_device_intervals = round(perK, 1);
  figures.detections_eval_ns_per_engine_call = round(((withRules.ms - base.ms) * 1e6) / withRules.calls, 0);
  log(`  rule evaluation, ${devices.toLocaleString('en')} devices × 6 virtual hours (${withRules.deviceIntervals.toLocaleString('en')} device-intervals, ${withRules.calls.toLocaleString('en')} engine calls)`);
  log(`    ${figures.detections_eval_cpu_us_per_1000_device_intervals} CPU µs per 1,000 device-intervals (${round(withRules.ms, 0)} ms with the shipped templates − ${round(base.ms, 0)} ms simulation alone); ${figures.detections_eval_ns_per_engine_call} ns per engine call`);

  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-detections-'));
  let registry: SqliteRegistry | undefined;
  try {
    registry = await openSqliteRegistry({ path: path.join(dir, 'registry.db') });
    await new DetectionService({ store: registry.detections }).ensureShippedTemplates();
    const revocation = new RevocationService(registry);
    const m = await registry.createManufacturer({ name: 'bench' });
    log('  detection latency per rule (shipped templates): virtual time from the pattern\'s start to the finding; wall time from the triggering call to the detection stored and its action done (median of 50)');
    for (const s of SCENARIOS) {
      const t = SHIPPED_TEMPLATES.find((x) => x.id === s.template)!;
      const compiled = compileTemplate({ ...t, version: 1 });
      const walls: number[] = [];
      let virtualMs = 0;
      for (let i = 0; i < 50; i++) {
        const id = (await registry.createDevice({ manufacturerId: m.id, serialNumber: `B-${s.rule}-${i}` })).id;
        const clock: { now: number; start?: number } = { now: Date.UTC(2026, 11, 7, 12, 0) };
        let found: Finding | undefined;
        const responder = new DetectionResponder({ store: registry.detections, suspender: revocation, audit: registry });
        const e = new DetectionEngine({ now: () => clock.now, templateOf: () => compiled, onFinding: (f) => { found = f; responder.accept(f); } });
        // The device's normal life first: its own network, its firmware, a session.
        const home = s.template === 'camera' ? '10.20.0.9' : s.template === 'vehicle' ? '100.64.0.9' : s.template === 'school' ? '10.30.0.9' : '198.51.100.9';
        e.opened(id, home);
        e.firmware(id, '3.0.0');
        const start = clock.now;
        const w0 = performance.now();
        s.trigger(e, id, clock);
        await responder.idle();
        walls.push(performance.now() - w0);
        if (found === undefined || found.rule !== s.rule) throw new Error(`bench scenario ${s.rule} did not fire its rule (got ${found?.rule ?? 'nothing'})`);
        virtualMs = found.at.getTime() - (clock.start ?? start);
      }
      const action = (t.rules as Record<string, { action: string }>)[s.rule].action;
      figures[`detections_latency_${s.rule}_virtual_s`] = round(virtualMs / 1000, 1);
      figures[`detections_latency_${s.rule}_wall_ms`] = round(median(walls), 2);
      log(`    ${s.rule.padEnd(18)} ${s.template.padEnd(8)} ${action.padEnd(8)} virtual ${String(round(virtualMs / 1000, 1)).padStart(7)} s   wall ${round(median(walls), 2)} ms`);
    }
  } finally {
    await registry?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const json = process.argv.includes('--json');
  const figures = await benchDetections({ scale: Number(process.env.KAKUIN_BENCH_SCALE ?? '1'), log: (l) => { if (!json) process.stdout.write(`${l}\n`); } });
  if (json) process.stdout.write(`${JSON.stringify(figures)}\n`);
}
