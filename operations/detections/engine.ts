/**
 * The detection engine: rules evaluated over an injected clock and a stream of device events
 * (connection opened/closed with its address, message counts, authentications, firmware reports),
 * with no sockets, no timers and no I/O of its own. The gateway and legacy front ends feed it where
 * they report activity (feed.ts); a timer calls `checkSilence()`; tests drive it on a virtual clock.
 *
 * Every call is on a hot path (a handshake, a chunk of messages): a Map lookup and a few additions;
 * the IANA-zone hour is computed only for successful authentications. A rule fires at most once per
 * device until `rearm(deviceId, rule)` (its detection resolved), so a device stuck in a bad state
 * makes one detection, not one per message.
 */
import type { DetectionAction, DetectionTemplate, RuleName, TemplateRules } from './template.js';
import { NetworkList } from './networks.js';
import { inWindow, localMinuteOfDay, minutesOf } from './local-time.js';
import { compareFirmware } from './firmware-order.js';
import type { SessionCounts } from './session-counts.js';
import { InProcessSessionCounts } from './session-counts.js';

/** A rule that fired: the responder (responder.ts) makes it a detection and runs its action. */
export interface Finding {
  deviceId: string;
  rule: RuleName;
  templateId: string;
  templateVersion: number;
  action: DetectionAction;
  at: Date;
  /** One line for an operator: what was seen against which threshold. */
  summary: string;
  /** The observed values and the thresholds they were held to. */
  evidence: Record<string, unknown>;
}

/** A template with its lists parsed once. */
export interface CompiledTemplate {
  id: string;
  version: number;
  rules: TemplateRules;
  networks?: NetworkList;
  hours?: { from: number; to: number; timeZone: string };
}

export function compileTemplate(t: Pick<DetectionTemplate, 'id' | 'version' | 'rules'>): CompiledTemplate {
  const h = t.rules.usualHours;
  return {
    id: t.id, version: t.version, rules: t.rules,
    ...(t.rules.networks !== undefined && { networks: new NetworkList(t.rules.networks.allowed) }),
    ...(h !== undefined && { hours: { from: minutesOf(h.from)!, to: minutesOf(h.to)!, timeZone: h.timeZone } }),
  };
}

/** Counts over a sliding window, approximated by two fixed buckets (the previous one weighted by overlap). */
class SlidingCount {
  private start = 0;
  private prev = 0;
  private cur = 0;
  constructor(private readonly windowMs: number) {}

  add(n: number, now: number): number {
    const w = this.windowMs;
    if (now >= this.start + w) {
      this.prev = now >= this.start + 2 * w ? 0 : this.cur;
      this.cur = 0;
      this.start = now - (now % w);
    }
    this.cur += n;
    return this.cur + this.prev * (1 - (now - this.start) / w);
  }
}

interface DeviceState {
  template: CompiledTemplate;
  /** Last message, connection or authentication (ms); the silence rule's clock. */
  lastActivityMs: number;
  lastMessageMs: number;
  rate?: SlidingCount;
  burstUntilMs: number;
  burstLeft: number;
  auth?: SlidingCount;
  firmwareHighest?: string;
  /** Rules that fired and are not re-armed yet. */
  fired: Set<RuleName>;
}

export interface DetectionEngineOptions {
  /** The device's template now; undefined: the device is not evaluated. Called once per device (until `retemplate`). */
  templateOf(deviceId: string): CompiledTemplate | undefined;
  onFinding(finding: Finding): void;
  now?: () => number;
  sessions?: SessionCounts;
}

export class DetectionEngine {
  private readonly devices = new Map<string, DeviceState>();
  private readonly now: () => number;
  readonly sessions: SessionCounts;
  /** Findings made since start (for /metrics and the bench). */
  findings = 0;

  constructor(private readonly o: DetectionEngineOptions) {
    this.now = o.now ?? Date.now;
    this.sessions = o.sessions ?? new InProcessSessionCounts();
  }

  private state(deviceId: string, now: number): DeviceState | undefined {
    let s = this.devices.get(deviceId);
    if (s !== undefined) return s;
    const template = this.o.templateOf(deviceId);
    if (template === undefined) return undefined;
    s = {
      template, lastActivityMs: now, lastMessageMs: now, burstUntilMs: 0, burstLeft: 0, fired: new Set(),
      ...(template.rules.rate !== undefined && { rate: new SlidingCount(template.rules.rate.perSeconds * 1000) }),
      ...(template.rules.authBurst !== undefined && { auth: new SlidingCount(template.rules.authBurst.perSeconds * 1000) }),
    };
    this.devices.set(deviceId, s);
    return s;
  }

  private fire(deviceId: string, s: DeviceState, rule: RuleName, now: number, summary: string, evidence: Record<string, unknown>): void {
    if (s.fired.has(rule)) return;
    const r = s.template.rules[rule];
    if (r === undefined) return;
    s.fired.add(rule);
    this.findings++;
    try {
      this.o.onFinding({
        deviceId, rule, templateId: s.template.id, templateVersion: s.template.version, action: r.action, at: new Date(now), summary,
        evidence: { ...evidence, rule: { name: rule, ...r } },
      });
    } catch { /* the responder's failure is not the front end's */ }
  }

  /**
   * Whether a new session of the device from `address` is to be refused (the `sessions` rule with
   * refuseExtra): answered before the gateway admits it. A refusal is the clone's detection too.
   */
  refuseSession(deviceId: string, address: string | undefined): string | undefined {
    const now = this.now();
    const s = this.state(deviceId, now);
    const rule = s?.template.rules.sessions;
    if (s === undefined || rule === undefined || !rule.refuseExtra) return undefined;
    const open = this.sessions.addresses(deviceId);
    const from = address ?? 'unknown';
    if (open.includes(from) || open.length < rule.maxConcurrent) return undefined;
    this.fire(deviceId, s, 'sessions', now, `a session from ${from} while ${open.length} other address(es) held one (at most ${rule.maxConcurrent}); refused`,
      { openAddresses: [...open], newAddress: from, refused: true });
    return `detection: more than ${rule.maxConcurrent} concurrent session(s) from different addresses`;
  }

  /** An admitted connection (mTLS): a session opens, and an authentication succeeded. */
  opened(deviceId: string, address: string | undefined): void {
    const now = this.now();
    const s = this.state(deviceId, now);
    if (s === undefined) return;
    const from = address ?? 'unknown';
    const distinct = this.sessions.open(deviceId, from);
    this.reconnect(s, now);
    s.lastActivityMs = now;
    const rules = s.template.rules;
    if (rules.sessions !== undefined && distinct > rules.sessions.maxConcurrent) {
      this.fire(deviceId, s, 'sessions', now, `${distinct} sessions at once from different addresses (at most ${rules.sessions.maxConcurrent})`,
        { openAddresses: [...this.sessions.addresses(deviceId)], newAddress: from, refused: false });
    }
    this.network(deviceId, s, address, now);
    this.authenticated(deviceId, s, true, now);
  }

  closed(deviceId: string, address: string | undefined): void {
    this.sessions.closed(deviceId, address ?? 'unknown');
  }

  /** `count` messages (a chunk of MQTT PUBLISHes, HTTP requests, TCP reads). */
  messages(deviceId: string, count: number): void {
    if (count <= 0) return;
    const now = this.now();
    const s = this.state(deviceId, now);
    if (s === undefined) return;
    s.lastActivityMs = now;
    s.lastMessageMs = now;
    const rule = s.template.rules.rate;
    if (rule === undefined || s.rate === undefined) return;
    let n = count;
    let buffered = 0;
    if (now < s.burstUntilMs && s.burstLeft > 0) {
      buffered = Math.min(n, s.burstLeft);
      s.burstLeft -= buffered;
      n -= buffered;
    }
    const rate = s.rate.add(n, now);
    if (rate > rule.maxMessages) {
      this.fire(deviceId, s, 'rate', now, `${Math.round(rate)} messages in ${rule.perSeconds} s (at most ${rule.maxMessages})`,
        { messagesInWindow: Math.round(rate), burstAllowanceLeft: now < s.burstUntilMs ? s.burstLeft : 0 });
    }
  }

  /** A legacy token request (ok or not), or a refused mTLS connection that named the device. */
  authentication(deviceId: string, ok: boolean, address: string | undefined): void {
    const now = this.now();
    const s = this.state(deviceId, now);
    if (s === undefined) return;
    if (ok) {
      this.reconnect(s, now);
      s.lastActivityMs = now;
      this.network(deviceId, s, address, now);
    }
    this.authenticated(deviceId, s, ok, now);
  }

  firmware(deviceId: string, version: string): void {
    const now = this.now();
    const s = this.state(deviceId, now);
    if (s === undefined) return;
    const highest = s.firmwareHighest;
    if (highest === undefined || compareFirmware(version, highest) > 0) {
      s.firmwareHighest = version;
      return;
    }
    if (compareFirmware(version, highest) < 0) {
      this.fire(deviceId, s, 'firmwareDowngrade', now, `firmware ${version} reported after ${highest}`, { reported: version, highestBefore: highest });
    }
  }

  /** Fires the silence rule of every device quiet past its limit; a timer calls it (every few seconds). */
  checkSilence(): void {
    const now = this.now();
    for (const [deviceId, s] of this.devices) {
      const rule = s.template.rules.silence;
      if (rule === undefined || s.fired.has('silence')) continue;
      const quietMs = now - s.lastActivityMs;
      if (quietMs > rule.silenceLimitSeconds * 1000) {
        this.fire(deviceId, s, 'silence', now, `silent for ${Math.round(quietMs / 1000)} s (limit ${rule.silenceLimitSeconds} s, expected every ${rule.expectedIntervalSeconds} s)`,
          { lastSeenAt: new Date(s.lastActivityMs).toISOString(), silentSeconds: Math.round(quietMs / 1000) });
      }
    }
  }

  /** The rule may fire again for the device (its detection was resolved). */
  rearm(deviceId: string, rule: RuleName): void {
    this.devices.get(deviceId)?.fired.delete(rule);
  }

  /** Templates changed: each device picks its template again at its next event (its counts start over). */
  retemplate(deviceId?: string): void {
    if (deviceId !== undefined) this.devices.delete(deviceId);
    else this.devices.clear();
  }

  /** Devices with state here (for /metrics and tests). */
  get size(): number {
    return this.devices.size;
  }

  private reconnect(s: DeviceState, now: number): void {
    const burst = s.template.rules.rate?.burstAfterReconnect;
    // The car park: a unit that was out of reach sends what it buffered when it is back.
    if (burst !== undefined && now - s.lastMessageMs >= burst.minGapSeconds * 1000) {
      s.burstUntilMs = now + burst.withinSeconds * 1000;
      s.burstLeft = burst.maxMessages;
    }
  }

  private network(deviceId: string, s: DeviceState, address: string | undefined, now: number): void {
    const list = s.template.networks;
    if (list === undefined || list.includes(address)) return;
    this.fire(deviceId, s, 'networks', now, `connected from ${address ?? 'an unknown address'}, outside its allowed networks`,
      { address: address ?? null, allowed: list.cidrs });
  }

  private authenticated(deviceId: string, s: DeviceState, ok: boolean, now: number): void {
    const burst = s.template.rules.authBurst;
    if (burst !== undefined && s.auth !== undefined) {
      const n = s.auth.add(1, now);
      if (n >= burst.maxAttempts) {
        this.fire(deviceId, s, 'authBurst', now, `${Math.round(n)} authentications in ${burst.perSeconds} s (alert from ${burst.maxAttempts})`,
          { attemptsInWindow: Math.round(n), lastOk: ok });
      }
    }
    const h = s.template.hours;
    if (ok && h !== undefined) {
      const minute = localMinuteOfDay(now, h.timeZone);
      if (!inWindow(minute, h.from, h.to)) {
        const local = `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
        this.fire(deviceId, s, 'usualHours', now, `authenticated at ${local} ${h.timeZone}, outside ${s.template.rules.usualHours!.from}–${s.template.rules.usualHours!.to}`,
          { localTime: local });
      }
    }
  }
}
