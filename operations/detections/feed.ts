/**
 * Feeds the detection engine from the device front ends: an ActivityRecorder that hands every
 * call to the activity aggregator (unchanged) and to the engine, and the gateway's SessionGate
 * (the clone rule's refusal). Both are on hot paths: Map lookups, no I/O in the call.
 *
 * A device's template depends on who it is (manufacturer, certificate profile, common auth ID),
 * which the front ends do not say; the first event of a device starts one registry lookup, and its
 * events until the answer are kept (at most 64 per device, with their times) and replayed, so the
 * first session of a device counts toward the clone rule too. Before the answer the gate admits.
 */
import type { ActivityRecorder, FrontEnd } from '../../gateway-auth/activity-recorder.js';
import type { SessionGate } from '../../gateway-auth/session-gate.js';
import { compileTemplate, DetectionEngine, type CompiledTemplate, type Finding } from './engine.js';
import type { SessionCounts } from './session-counts.js';
import { templateForSubject, type DetectionTemplate, type DeviceSubject } from './template.js';

const MAX_PENDING_PER_DEVICE = 64;
const MAX_PENDING_DEVICES = 10_000;

export interface DetectionFeedOptions {
  /** The activity aggregator (or NO_ACTIVITY): every call goes there first, unchanged. */
  inner: ActivityRecorder;
  /** Who the device is (registry lookup); undefined for an unknown device. */
  subjectOf(deviceId: string): Promise<DeviceSubject | undefined>;
  onFinding(finding: Finding): void;
  now?: () => number;
  sessions?: SessionCounts;
  onLookupError?: (error: unknown, deviceId: string) => void;
}

export class DetectionFeed implements ActivityRecorder, SessionGate {
  readonly engine: DetectionEngine;
  private templates: { template: DetectionTemplate; compiled: CompiledTemplate }[] = [];
  /** deviceId → its template (null: none applies). */
  private readonly assigned = new Map<string, CompiledTemplate | null>();
  private readonly pending = new Map<string, { at: number; run: () => void }[]>();
  private replayAt: number | undefined;
  private anyAssigned = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** Events not evaluated because too many devices waited for their lookup at once. */
  overflow = 0;

  constructor(private readonly o: DetectionFeedOptions) {
    this.now = o.now ?? Date.now;
    this.engine = new DetectionEngine({
      now: () => this.replayAt ?? this.now(),
      templateOf: (id) => this.assigned.get(id) ?? undefined,
      onFinding: o.onFinding,
      ...(o.sessions !== undefined && { sessions: o.sessions }),
    });
  }

  /** The templates now (all latest versions): each device picks its own again at its next event. */
  setTemplates(templates: readonly DetectionTemplate[]): void {
    this.templates = templates.map((template) => ({ template, compiled: compileTemplate(template) }));
    // Nothing assigned (the shipped templates as installed): no device is looked up at all.
    this.anyAssigned = templates.some((t) => t.assignedTo.manufacturerIds.length + t.assignedTo.profiles.length + t.assignedTo.commonAuthIds.length > 0);
    this.assigned.clear();
    this.engine.retemplate();
  }

  private evaluate(deviceId: string, run: () => void): void {
    const known = this.assigned.get(deviceId);
    if (known === null) return;
    if (known !== undefined) {
      run();
      return;
    }
    if (!this.anyAssigned) return;
    let waiting = this.pending.get(deviceId);
    if (waiting === undefined) {
      if (this.pending.size >= MAX_PENDING_DEVICES) {
        this.overflow++;
        return;
      }
      this.pending.set(deviceId, waiting = []);
      void this.lookup(deviceId);
    }
    if (waiting.length < MAX_PENDING_PER_DEVICE) waiting.push({ at: this.now(), run });
    else this.overflow++;
  }

  private async lookup(deviceId: string): Promise<void> {
    let compiled: CompiledTemplate | null = null;
    try {
      const subject = await this.o.subjectOf(deviceId);
      const t = subject === undefined ? undefined : templateForSubject(this.templates.map((x) => x.template), subject);
      compiled = t === undefined ? null : this.templates.find((x) => x.template === t)!.compiled;
    } catch (e) {
      this.o.onLookupError?.(e, deviceId);
      // Asked again at the device's next event.
      this.pending.delete(deviceId);
      return;
    }
    this.assigned.set(deviceId, compiled);
    const waiting = this.pending.get(deviceId) ?? [];
    this.pending.delete(deviceId);
    if (compiled === null) return;
    for (const w of waiting) {
      this.replayAt = w.at;
      try {
        w.run();
      } finally {
        this.replayAt = undefined;
      }
    }
  }

  /** Resolves when no lookup is in flight (tests). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await new Promise((r) => setTimeout(r, 5));
  }

  // ---- SessionGate ----
  refuse(deviceId: string, remoteAddress: string | undefined): string | undefined {
    if (!this.assigned.get(deviceId)) return undefined;
    return this.engine.refuseSession(deviceId, remoteAddress);
  }

  // ---- ActivityRecorder ----
  admitted(deviceId: string, remoteAddress: string | undefined, frontEnd: FrontEnd): void {
    this.o.inner.admitted(deviceId, remoteAddress, frontEnd);
    this.evaluate(deviceId, () => this.engine.opened(deviceId, remoteAddress));
  }

  refused(deviceId: string | undefined, reason: string, remoteAddress: string | undefined, frontEnd: FrontEnd): void {
    this.o.inner.refused(deviceId, reason, remoteAddress, frontEnd);
    if (deviceId !== undefined) this.evaluate(deviceId, () => this.engine.authentication(deviceId, false, remoteAddress));
  }

  closed(deviceId: string, remoteAddress: string | undefined, frontEnd: FrontEnd): void {
    this.o.inner.closed(deviceId, remoteAddress, frontEnd);
    this.evaluate(deviceId, () => this.engine.closed(deviceId, remoteAddress));
  }

  traffic(deviceId: string, messages: number, bytes: number): void {
    this.o.inner.traffic(deviceId, messages, bytes);
    if (messages > 0) this.evaluate(deviceId, () => this.engine.messages(deviceId, messages));
  }

  tokenResult(deviceId: string | undefined, ok: boolean, remoteAddress: string | undefined): void {
    this.o.inner.tokenResult(deviceId, ok, remoteAddress);
    if (deviceId !== undefined) this.evaluate(deviceId, () => this.engine.authentication(deviceId, ok, remoteAddress));
  }

  firmware(deviceId: string, firmwareVersion: string, frontEnd: FrontEnd): void {
    this.o.inner.firmware(deviceId, firmwareVersion, frontEnd);
    this.evaluate(deviceId, () => this.engine.firmware(deviceId, firmwareVersion));
  }

  /** The silence timer. */
  start(silenceCheckMs: number): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.engine.checkSilence(), silenceCheckMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
