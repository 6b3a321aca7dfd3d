/**
 * Abuse detection of the legacy path, as in the field trials, without letting an attacker lock out a
 * fleet. Failure counts live in the registry (shared by every process), in fixed one-minute windows
 * read as a sliding window: count = this window + the previous one weighted by how much of it still
 * lies within the last minute (rounded up: at a window boundary a burst is not forgotten).
 *
 * - one (common auth ID, unique ID): at `deviceLimit` failures that device's credentials are locked
 *   for `lockMs` (429 + Retry-After, audit event `legacy.locked`);
 * - one common auth ID or one source address: at their limits an alert event (`legacy.throttled`,
 *   once per key and window) and failed attempts from there are answered 429 after a delay; correct
 *   credentials are still served, so a carrier NAT or a product line is never locked out.
 */
import type { Registry } from '../../registry/port.js';

export const FAILURE_WINDOW_MS = 60_000;

export interface AbusePolicy {
  deviceLimit: number;
  commonAuthIdLimit: number;
  sourceLimit: number;
  lockMs: number;
  throttleDelayMs: number;
}

export interface FailureVerdict {
  /** Lock this device's credentials (the limit was just reached). */
  lockDevice: boolean;
  /** Throttled scopes just over their limit (for the alert event) and whether to answer 429. */
  alerts: ('commonAuthId' | 'source')[];
  throttled: boolean;
}

export class LegacyAbuseGuard {
  private readonly alerted = new Map<string, number>();

  constructor(private readonly registry: Pick<Registry, 'countLegacyFailures'>, private readonly policy: AbusePolicy) {}

  async recordFailure(commonAuthId: string, uniqueId: string, source: string, nowMs: number): Promise<FailureVerdict> {
    const windowStart = Math.floor(nowMs / FAILURE_WINDOW_MS) * FAILURE_WINDOW_MS;
    const weight = 1 - (nowMs - windowStart) / FAILURE_WINDOW_MS;
    const keys = [`d:${commonAuthId}\u0000${uniqueId}`, `c:${commonAuthId}`, `s:${source}`];
    const counts = await this.registry.countLegacyFailures(keys, new Date(windowStart), FAILURE_WINDOW_MS);
    const [device, cai, src] = counts.map((c) => c.current + Math.ceil(c.previous * weight));
    const alerts: FailureVerdict['alerts'] = [];
    const over = (scope: 'commonAuthId' | 'source', key: string, n: number, limit: number) => {
      if (n < limit) return false;
      if (this.alerted.get(key) !== windowStart) {
        this.alerted.set(key, windowStart);
        if (this.alerted.size > 10_000) this.alerted.clear();
        alerts.push(scope);
      }
      return true;
    };
    const throttledCai = over('commonAuthId', keys[1], cai, this.policy.commonAuthIdLimit);
    const throttledSrc = over('source', keys[2], src, this.policy.sourceLimit);
    return { lockDevice: device >= this.policy.deviceLimit, alerts, throttled: throttledCai || throttledSrc };
  }
}
