/**
 * Device activity, aggregated in memory and flushed in batches (DESIGN.md "The event loop"). This
 * is the gateway's ActivityRecorder: each call is a Map lookup and a few additions, no I/O, no
 * promise; `flush()` (every activity.flushSeconds) hands the accumulated counts to the ActivityStore
 * in one batch. A crash loses at most what accumulated since the last flush.
 *
 * Refusals of devices whose status is revoked or suspended are also handed to `onNotable` at once
 * (the events out: "revoked device seen from 198.51.100.7").
 */
import { randomUUID } from 'node:crypto';
import type { ActivityRecorder, FrontEnd } from '../../gateway-auth/activity-recorder.js';
import type { ActivityBatch, ActivityCounts, ActivityStore, LastSeen, Refusal } from '../../registry/activity.js';
import { REFUSALS_PER_DEVICE_PER_BATCH } from '../../registry/activity.js';
import { truncateAddress } from './address.js';

const HOUR_MS = 3_600_000;

interface Pending {
  counts: ActivityCounts;
  hour: number;
  lastSeen?: LastSeen;
  /** Set by traffic after lastSeen: the last time the device was seen, when later than lastSeen.at. */
  lastSeenAtMs?: number;
  refusals: Refusal[];
  firmwareVersion?: string;
}

export interface NotableRefusal {
  deviceId: string;
  reason: string;
  address?: string;
  frontEnd: FrontEnd;
  at: Date;
}

export interface ActivityAggregatorOptions {
  store: ActivityStore;
  /** Batches are written this often (activity.flushSeconds × 1000). */
  flushIntervalMs: number;
  /** IPv4 prefix bits / IPv6 prefix bits kept of source addresses (activity.addressPrefix); undefined: whole. */
  addressPrefix?: { v4: number; v6: number };
  /** Names this process in the sessions table; default a random UUID. */
  recorderId?: string;
  /** A refusal whose reason says the device is revoked or suspended (once per device per flush). */
  onNotable?: (refusal: NotableRefusal) => void;
  onFlushError?: (error: unknown) => void;
  now?: () => number;
}

/** Admission reasons (gateway-auth/admission.ts, status sources) that name a device shut out on purpose. */
const NOTABLE = /\b(revoked|suspended|held|retired)\b/;

function zero(): ActivityCounts {
  return { messages: 0, bytes: 0, admitted: 0, refused: 0, tokenOk: 0, tokenFailed: 0 };
}

export class ActivityAggregator implements ActivityRecorder {
  readonly recorderId: string;
  private pending = new Map<string, Pending>();
  /** deviceId → its open sessions (an array: one device may connect twice from one address). */
  private readonly sessions = new Map<string, { address: string; frontEnd: FrontEnd }[]>();
  private sessionsChanged = false;
  private notedThisFlush = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  flushes = 0;

  constructor(private readonly o: ActivityAggregatorOptions) {
    this.recorderId = o.recorderId ?? randomUUID();
    this.now = o.now ?? Date.now;
  }

  private entry(deviceId: string, now: number): Pending {
    const hour = now - (now % HOUR_MS);
    let p = this.pending.get(deviceId);
    if (p === undefined) {
      p = { counts: zero(), hour, refusals: [] };
      this.pending.set(deviceId, p);
    } else if (p.hour !== hour) {
      // An hour boundary inside one flush interval: the rest counts in the new hour; the old
      // hour's counts are flushed under a key of their own.
      this.pending.set(`${deviceId}\u0000${p.hour}`, p);
      this.pending.delete(deviceId);
      this.pending.set(deviceId, p = { counts: zero(), hour, refusals: [] });
    }
    return p;
  }

  private address(a: string | undefined): string | undefined {
    return a === undefined || this.o.addressPrefix === undefined ? a : truncateAddress(a, this.o.addressPrefix);
  }

  admitted(deviceId: string, remoteAddress: string | undefined, frontEnd: FrontEnd): void {
    const now = this.now();
    const p = this.entry(deviceId, now);
    const address = this.address(remoteAddress);
    p.counts.admitted++;
    p.lastSeen = { at: new Date(now), ...(address !== undefined && { address }), frontEnd };
    p.lastSeenAtMs = undefined;
    const session = { address: address ?? '', frontEnd };
    const open = this.sessions.get(deviceId);
    if (open === undefined) this.sessions.set(deviceId, [session]);
    else open.push(session);
    this.sessionsChanged = true;
  }

  closed(deviceId: string, remoteAddress: string | undefined): void {
    const open = this.sessions.get(deviceId);
    if (open === undefined) return;
    const address = this.address(remoteAddress) ?? '';
    const i = open.findIndex((s) => s.address === address);
    open.splice(i === -1 ? 0 : i, 1);
    if (open.length === 0) this.sessions.delete(deviceId);
    this.sessionsChanged = true;
  }

  refused(deviceId: string | undefined, reason: string, remoteAddress: string | undefined, frontEnd: FrontEnd): void {
    if (deviceId === undefined) return; // nothing to file it under; the gateway's log has it
    const now = this.now();
    const p = this.entry(deviceId, now);
    const address = this.address(remoteAddress);
    p.counts.refused++;
    const refusal = { at: new Date(now), reason, ...(address !== undefined && { address }), frontEnd };
    if (p.refusals.length < REFUSALS_PER_DEVICE_PER_BATCH) p.refusals.push(refusal);
    if (this.o.onNotable !== undefined && NOTABLE.test(reason) && !this.notedThisFlush.has(deviceId)) {
      this.notedThisFlush.add(deviceId);
      try {
        this.o.onNotable({ deviceId, ...refusal, frontEnd });
      } catch { /* an event sink's failure is not the gateway's */ }
    }
  }

  traffic(deviceId: string, messages: number, bytes: number): void {
    const now = this.now();
    const p = this.entry(deviceId, now);
    p.counts.messages += messages;
    p.counts.bytes += bytes;
    // A number, not a Date: traffic is the per-message path (the Date is made once, at flush).
    if (p.lastSeen !== undefined) p.lastSeenAtMs = now;
    else {
      // A long session: still seen now, from where it was admitted.
      const s = this.sessions.get(deviceId)?.[0];
      if (s !== undefined) p.lastSeen = { at: new Date(now), ...(s.address !== '' && { address: s.address }), frontEnd: s.frontEnd };
    }
  }

  tokenResult(deviceId: string | undefined, ok: boolean, remoteAddress: string | undefined): void {
    if (deviceId === undefined) return;
    const now = this.now();
    const p = this.entry(deviceId, now);
    if (ok) {
      p.counts.tokenOk++;
      const address = this.address(remoteAddress);
      p.lastSeen = { at: new Date(now), ...(address !== undefined && { address }), frontEnd: 'legacy' };
      p.lastSeenAtMs = undefined;
    } else p.counts.tokenFailed++;
  }

  firmware(deviceId: string, firmwareVersion: string): void {
    this.entry(deviceId, this.now()).firmwareVersion = firmwareVersion;
  }

  /** Open sessions in this process now (for tests and /metrics). */
  openSessions(deviceId: string): readonly string[] {
    return (this.sessions.get(deviceId) ?? []).map((s) => s.address);
  }

  /** Writes what accumulated; flushes never overlap. A failed batch is put back and retried next time. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce());
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.pending.size === 0 && !this.sessionsChanged && this.sessions.size === 0) return;
    const taken = this.pending;
    this.pending = new Map();
    this.notedThisFlush = new Set();
    this.sessionsChanged = false;
    const batch: ActivityBatch = {
      recorderId: this.recorderId,
      at: new Date(this.now()),
      devices: [...taken].map(([key, p]) => ({
        deviceId: key.split('\u0000')[0], hour: new Date(p.hour), counts: p.counts, refusals: p.refusals,
        ...(p.lastSeen !== undefined && { lastSeen: p.lastSeenAtMs === undefined ? p.lastSeen : { ...p.lastSeen, at: new Date(p.lastSeenAtMs) } }),
        ...(p.firmwareVersion !== undefined && { firmwareVersion: p.firmwareVersion }),
      })),
      // Every flush restates the open sessions, so a reader can tell a live recorder's sessions from
      // a crashed one's by updated_at.
      sessions: [...this.sessions].map(([deviceId, open]) => ({ deviceId, addresses: open.map((s) => s.address || 'unknown') })),
    };
    try {
      await this.o.store.recordActivity(batch);
      this.flushes++;
    } catch (e) {
      this.putBack(taken);
      this.sessionsChanged = true;
      this.o.onFlushError?.(e);
    }
  }

  private putBack(taken: Map<string, Pending>): void {
    for (const [key, old] of taken) {
      const deviceId = key.split('\u0000')[0];
      const cur = this.pending.get(key);
      if (cur === undefined || cur.hour !== old.hour) {
        this.pending.set(cur === undefined ? key : `${deviceId}\u0000${old.hour}`, old);
        continue;
      }
      for (const k of Object.keys(old.counts) as (keyof ActivityCounts)[]) cur.counts[k] += old.counts[k];
      cur.refusals = [...old.refusals, ...cur.refusals].slice(0, REFUSALS_PER_DEVICE_PER_BATCH);
      if (cur.lastSeen === undefined) {
        cur.lastSeen = old.lastSeen;
        cur.lastSeenAtMs = old.lastSeenAtMs;
      }
      cur.firmwareVersion ??= old.firmwareVersion;
    }
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => { void this.flush(); }, this.o.flushIntervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is left. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
