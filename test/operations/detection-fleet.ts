/**
 * A simulated fleet on a virtual clock, for the detection engine (test/operations/detections-engine
 * and bench/detections): the trial's patterns, with no sockets. Devices send on a timer wheel of
 * 10 s steps; each step calls the engine the way the gateway's front ends would (refuseSession
 * before opened, closed, message counts, authentications), then the silence timer.
 *
 * Patterns (docs/detections.md "The trial"): vehicles report every 60 s from the carrier's pool and
 * drop and re-attach once an hour with two failed SIM attempts first; school devices every 300 s
 * from the school network; home devices every 300 s from household lines; cameras every 60 s from
 * their site. Scenarios inject the five cases of issue 20 item 4.
 */
import { DetectionEngine, compileTemplate, type CompiledTemplate, type Finding } from '../../operations/detections/engine.js';
import { SHIPPED_TEMPLATES } from '../../operations/detections/shipped-templates.js';

export const STEP_MS = 10_000;
export const T0 = Date.UTC(2026, 11, 7, 13, 0, 0); // 14:00 in Berlin, a school day

export type Kind = 'vehicle' | 'school' | 'home' | 'camera';

export interface SimDevice {
  id: string;
  kind: Kind;
  intervalSteps: number;
  phase: number;
  address: string;
  /** Online and sending on schedule. */
  online: boolean;
  /** Extra messages per step (a hijack). */
  extraPerStep: number;
  /** Hour offset (in steps) of its hourly reconnect (vehicles). */
  reconnectAt: number;
}

/** At a step: something a scenario does to one device. */
export type ScenarioAction = (fleet: Fleet) => void;

export class Fleet {
  now = T0;
  step = 0;
  readonly devices: SimDevice[] = [];
  readonly byId = new Map<string, SimDevice>();
  readonly findings: Finding[] = [];
  readonly refusals: { deviceId: string; reason: string; at: number }[] = [];
  readonly engine: DetectionEngine;
  private readonly wheel: SimDevice[][];
  private readonly scheduled = new Map<number, ScenarioAction[]>();
  /** Messages and events handed to the engine (for the bench's cost per device-interval). */
  calls = 0;
  /** Scheduled sends done (one device, one expected interval): the bench's unit. */
  deviceIntervals = 0;

  /** `evaluate: false`: no device has a template (the bench's baseline: the simulation's own cost). */
  constructor(counts: Record<Kind, number>, onFinding?: (f: Finding) => void, evaluate = true) {
    const compiled = new Map<string, CompiledTemplate>(SHIPPED_TEMPLATES.map((t) => [t.id, compileTemplate({ ...t, version: 1 })]));
    this.engine = new DetectionEngine({
      now: () => this.now,
      templateOf: (id) => (evaluate ? compiled.get(this.byId.get(id)?.kind ?? '') : undefined),
      onFinding: (f) => {
        this.findings.push(f);
        onFinding?.(f);
      },
    });
    this.wheel = Array.from({ length: 30 }, () => []);
    let n = 0;
    for (const kind of ['vehicle', 'school', 'home', 'camera'] as const) {
      for (let i = 0; i < counts[kind]; i++, n++) {
        const intervalSteps = kind === 'vehicle' || kind === 'camera' ? 6 : 30;
        const d: SimDevice = {
          id: `${kind}-${i}`, kind, intervalSteps, phase: n % intervalSteps, address: homeAddress(kind, i),
          online: true, extraPerStep: 0, reconnectAt: kind === 'vehicle' ? (n * 7) % 360 : -1,
        };
        this.devices.push(d);
        this.byId.set(d.id, d);
        for (let s = d.phase; s < 30; s += intervalSteps) this.wheel[s].push(d);
      }
    }
  }

  at(step: number, action: ScenarioAction): void {
    const list = this.scheduled.get(step) ?? [];
    list.push(action);
    this.scheduled.set(step, list);
  }

  /** What the gateway does for one new connection: ask first, then open (or report the refusal). */
  connect(d: SimDevice, address = d.address): boolean {
    this.calls++;
    const refusal = this.engine.refuseSession(d.id, address);
    if (refusal !== undefined) {
      this.refusals.push({ deviceId: d.id, reason: refusal, at: this.now });
      this.engine.authentication(d.id, false, address);
      return false;
    }
    this.engine.opened(d.id, address);
    return true;
  }

  disconnect(d: SimDevice, address = d.address): void {
    this.calls++;
    this.engine.closed(d.id, address);
  }

  /** Every device opens its session at the start. */
  start(): void {
    for (const d of this.devices) this.connect(d);
  }

  run(steps: number): void {
    const e = this.engine;
    for (let k = 0; k < steps; k++) {
      this.step++;
      this.now += STEP_MS;
      for (const action of this.scheduled.get(this.step) ?? []) action(this);
      for (const d of this.wheel[this.step % 30]) {
        if (!d.online) continue;
        if (d.reconnectAt >= 0 && this.step % 360 === d.reconnectAt) {
          // The SIM re-attaches: the session drops, two failed attempts, then it is back.
          this.disconnect(d);
          e.authentication(d.id, false, d.address);
          e.authentication(d.id, false, d.address);
          this.calls += 2;
          this.connect(d);
        }
        e.messages(d.id, 1);
        this.calls++;
        this.deviceIntervals++;
      }
      for (const d of this.hijacked) {
        e.messages(d.id, d.extraPerStep);
        this.calls++;
      }
      // The silence timer of production runs every few seconds; once a virtual minute here.
      if (this.step % 6 === 0) e.checkSilence();
    }
  }

  readonly hijacked: SimDevice[] = [];

  findingsOf(deviceId: string): Finding[] {
    return this.findings.filter((f) => f.deviceId === deviceId);
  }
}

function homeAddress(kind: Kind, i: number): string {
  const a = (i >> 8) & 255;
  const b = i & 255;
  switch (kind) {
    case 'vehicle': return i % 5 === 0 ? `2001:db8:a000:${(i & 0xfff).toString(16)}::${(b + 1).toString(16)}` : `100.${64 + (a & 63)}.${b}.${(i % 250) + 1}`;
    case 'school': return `10.30.${a}.${b}`;
    case 'home': return i % 3 === 0 ? `2001:db8:${(i & 0xffff).toString(16)}::1` : `198.51.${a & 255}.${b}`;
    case 'camera': return i % 4 === 0 ? `2001:db8:ca00:${(i & 0xff).toString(16)}::${(b + 1).toString(16)}` : `10.20.${a}.${b}`;
  }
}

export const STEPS_PER_MINUTE = 6;
export const minutes = (m: number) => m * STEPS_PER_MINUTE;

/**
 * The five injected devices of issue 20 item 4, at fixed virtual times; answers their ids and when
 * each case began (ms), so a test can hold each detection to its rule's window.
 */
export function injectTrialCases(fleet: Fleet): {
  stolen: string; hijacked: string; clone: string; carPark: string; child: string;
  stolenReappearsAt: number; hijackStartsAt: number; cloneAt: number;
} {
  const stolen = fleet.byId.get('camera-17')!;
  const hijacked = fleet.byId.get('home-42')!;
  const clone = fleet.byId.get('vehicle-99')!;
  const carPark = fleet.byId.get('vehicle-123')!;
  const child = fleet.byId.get('school-7')!;
  const t = (step: number) => T0 + step * STEP_MS;

  // Stolen camera: unplugged at 13:30 UTC, plugged in at 14:30 on a stranger's line.
  fleet.at(minutes(30), (f) => {
    stolen.online = false;
    f.disconnect(stolen);
  });
  fleet.at(minutes(90), (f) => {
    stolen.address = '203.0.113.50';
    stolen.online = f.connect(stolen);
  });
  // Hijacked meter: from 15:00 it sends a message every second on its existing session.
  fleet.at(minutes(120), (f) => {
    hijacked.extraPerStep = 10;
    f.hijacked.push(hijacked);
  });
  // Clone: at 16:00 a second unit with the same certificate attaches from another cell.
  fleet.at(minutes(180), (f) => {
    f.connect(clone, '100.100.7.7');
  });
  // Car park: into an underground car park at 13:20 for 3 hours, then the buffered burst (180
  // reports) in 2 minutes, then on schedule again.
  fleet.at(minutes(20), (f) => {
    carPark.online = false;
    f.disconnect(carPark);
  });
  fleet.at(minutes(200), (f) => {
    f.connect(carPark);
    carPark.online = true;
    carPark.extraPerStep = 15;
    f.hijacked.push(carPark);
  });
  fleet.at(minutes(202), (f) => {
    carPark.extraPerStep = 0;
    f.hijacked.splice(f.hijacked.indexOf(carPark), 1);
  });
  // The child goes home at 15:30 Berlin (14:30 UTC) and uses the device there until the end.
  fleet.at(minutes(90), (f) => {
    child.online = false;
    f.disconnect(child);
  });
  fleet.at(minutes(120), (f) => {
    child.address = '192.0.2.77';
    child.online = f.connect(child);
  });
  return {
    stolen: stolen.id, hijacked: hijacked.id, clone: clone.id, carPark: carPark.id, child: child.id,
    stolenReappearsAt: t(minutes(90)), hijackStartsAt: t(minutes(120)), cloneAt: t(minutes(180)),
  };
}
