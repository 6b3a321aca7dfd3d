/**
 * Abuse detection of the legacy path, without letting anyone lock a device out. Anyone who reads an
 * IMEI printed on a device knows half of its identity, so nothing here ever refuses a correct
 * credential: secrets are ≥ 128-bit (generated) or checked for strength (imported), and a lock would
 * buy no security, only a way to take devices offline.
 *
 * Failure counts live in the registry (shared by every process), in fixed one-minute windows read as
 * a sliding window: count = this window + the previous one weighted by how much of it still lies
 * within the last minute (rounded up: at a window boundary a burst is not forgotten).
 *
 * - one identity (common auth ID, unique ID): each failure is answered after an exponential backoff,
 *   `backoffBaseMs · 2^(n−1)` for the n-th failure within the minute, at most `backoffMaxMs`; at
 *   `burstLimit` failures, or `burstLimit` successful authentications (counted in this process), the
 *   `legacy.burst` alert (once per identity, kind and window);
 * - one common auth ID or one source address: at their limits an alert event (`legacy.throttled`,
 *   once per key and window) and failed attempts from there are answered 429 after a delay; correct
 *   credentials are still served, so a carrier NAT or a product line is never locked out.
 */
import type { Registry } from '../../registry/port.js';

export const FAILURE_WINDOW_MS = 60_000;

export interface AbusePolicy {
  /** Failures or authentications within a minute for one identity that raise `legacy.burst`. */
  burstLimit: number;
  commonAuthIdLimit: number;
  sourceLimit: number;
  /** The first failure's delay; each further failure within the minute doubles it, up to backoffMaxMs. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface FailureVerdict {
  /** How long to hold the failure's answer (the identity's backoff). */
  delayMs: number;
  /** The identity's failures just reached burstLimit (first time in this window): raise `legacy.burst`. */
  burst?: { count: number };
  /** Throttled scopes just over their limit (for the alert event) and whether to answer 429. */
  alerts: ('commonAuthId' | 'source')[];
  throttled: boolean;
}

const MEMORY_LIMIT = 10_000;

export class LegacyAbuseGuard {
  private readonly alerted = new Map<string, number>();
  /** Successful authentications per identity in this process: the current and previous window. */
  private readonly successes = new Map<string, { window: number; current: number; previous: number }>();

  constructor(private readonly registry: Pick<Registry, 'countLegacyFailures'>, private readonly policy: AbusePolicy) {}

  /** The backoff of the n-th failure within a minute (n ≥ 1). */
  backoffMs(n: number): number {
    const { backoffBaseMs: base, backoffMaxMs: max } = this.policy;
    return Math.min(max, base * 2 ** Math.min(30, Math.max(0, n - 1)));
  }

  async recordFailure(commonAuthId: string, uniqueId: string, source: string, nowMs: number): Promise<FailureVerdict> {
    const windowStart = Math.floor(nowMs / FAILURE_WINDOW_MS) * FAILURE_WINDOW_MS;
    const weight = 1 - (nowMs - windowStart) / FAILURE_WINDOW_MS;
    const keys = [identityKey(commonAuthId, uniqueId), `c:${commonAuthId}`, `s:${source}`];
    const counts = await this.registry.countLegacyFailures(keys, new Date(windowStart), FAILURE_WINDOW_MS);
    const [device, cai, src] = counts.map((c) => c.current + Math.ceil(c.previous * weight));
    const alerts: FailureVerdict['alerts'] = [];
    const over = (scope: 'commonAuthId' | 'source', key: string, n: number, limit: number) => {
      if (n < limit) return false;
      if (this.firstInWindow(key, windowStart)) alerts.push(scope);
      return true;
    };
    const throttledCai = over('commonAuthId', keys[1], cai, this.policy.commonAuthIdLimit);
    const throttledSrc = over('source', keys[2], src, this.policy.sourceLimit);
    const burst = device >= this.policy.burstLimit && this.firstInWindow(`bf:${keys[0]}`, windowStart) ? { count: device } : undefined;
    return { delayMs: this.backoffMs(device), ...(burst && { burst }), alerts, throttled: throttledCai || throttledSrc };
  }

  /**
   * Counts a successful authentication; answers the count when it just reached burstLimit (raise
   * `legacy.burst`). Kept in this process's memory, so a success costs no registry write: a device
   * authenticates about once per token lifetime, so `burstLimit` within a minute at one process is
   * already far off any device's habit.
   */
  recordSuccess(commonAuthId: string, uniqueId: string, nowMs: number): number | undefined {
    const windowStart = Math.floor(nowMs / FAILURE_WINDOW_MS) * FAILURE_WINDOW_MS;
    const key = identityKey(commonAuthId, uniqueId);
    let s = this.successes.get(key);
    if (s === undefined || s.window < windowStart - FAILURE_WINDOW_MS) {
      if (this.successes.size > MEMORY_LIMIT) this.successes.clear();
      s = { window: windowStart, current: 0, previous: 0 };
      this.successes.set(key, s);
    } else if (s.window < windowStart) {
      s.previous = s.current;
      s.current = 0;
      s.window = windowStart;
    }
    s.current += 1;
    const n = s.current + Math.ceil(s.previous * (1 - (nowMs - windowStart) / FAILURE_WINDOW_MS));
    return n >= this.policy.burstLimit && this.firstInWindow(`ba:${key}`, windowStart) ? n : undefined;
  }

  private firstInWindow(key: string, windowStart: number): boolean {
    if (this.alerted.get(key) === windowStart) return false;
    if (this.alerted.size > MEMORY_LIMIT) this.alerted.clear();
    this.alerted.set(key, windowStart);
    return true;
  }
}

function identityKey(commonAuthId: string, uniqueId: string): string {
  return `d:${commonAuthId}\u0000${uniqueId}`;
}
