/**
 * Per-station rate limit on enrollments (items, so a batch counts each line): a token bucket per
 * station, refilled at `perSecond` with a burst of `burst`. In-process only: with several kakuin
 * processes each applies its own limit. A compromised station key can then issue at most this fast
 * until it is disabled.
 */
import { KakuinError } from '../errors/index.js';

export class StationRateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** `perSecond` 0 turns the limit off. */
  constructor(private readonly perSecond: number, private readonly burst: number, private readonly clock: () => number = Date.now) {}

  /** Takes one token for the station or throws KAKUIN_E_STATION_RATE_LIMITED. */
  take(stationId: string): void {
    if (this.perSecond <= 0) return;
    const now = this.clock();
    const b = this.buckets.get(stationId) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    this.buckets.set(stationId, b);
    if (b.tokens < 1) {
      throw new KakuinError('KAKUIN_E_STATION_RATE_LIMITED', `this station may enroll at most ${this.perSecond} devices per second (burst ${this.burst}); slow down`);
    }
    b.tokens -= 1;
  }
}
