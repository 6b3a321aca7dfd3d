/**
 * Reconnect-storm bounds for every TLS listener of the gateway (gateway.ts deviceListener()).
 *
 * Two checks run on a freshly accepted TCP connection, before a byte of TLS is read:
 * - handshakes in flight across all listeners stay at or below `maxPendingHandshakes`. A server
 *   TLS handshake's crypto runs on the event loop; libuv hands every readable socket to JS in one
 *   poll phase, so N ClientHellos waiting at once cost N handshakes' worth of CPU before a timer
 *   (the feed poll, a kill switch) can run. Bounding N bounds that stall.
 * - a per-source token bucket (`perSourceConnectionsPerSecond`, burst `perSourceBurst`): one
 *   misbehaving address cannot take the whole handshake budget.
 *
 * A connection beyond either is destroyed at once (shed), not left in the kernel backlog: Node 20
 * has no public way to stop accepting without closing the listener (`server.maxConnections` also
 * accepts, then closes), and a device waiting in the backlog learns nothing until its connect or
 * handshake timeout, while a closed connection tells it to back off and retry now. Shedding costs an
 * accept and a close, no TLS work. The kernel backlog (511) still absorbs the very first burst.
 */
export interface ConnectionLimitOptions {
  /** Handshakes in flight across all listeners; beyond it new connections are shed. */
  maxPendingHandshakes: number;
  /** Token refill per source address per second; 0 turns the per-source limit off. */
  perSourceConnectionsPerSecond: number;
  /** Bucket size per source (connections a source may open at once). */
  perSourceBurst: number;
}

export type ShedReason = 'handshakes' | 'source_rate';

export interface ShedStats {
  /** Connections shed because `maxPendingHandshakes` handshakes were in flight. */
  handshakes: number;
  /** Connections shed because their source address was over its rate. */
  sourceRate: number;
}

/** How long after the last shed connection `shedding` stays true (readiness, metrics). */
export const SHEDDING_WINDOW_MS = 5_000;
/** Source buckets untouched this long are full again and are dropped (memory stays bounded by rate). */
const SWEEP_INTERVAL_MS = 10_000;

interface Bucket { tokens: number; at: number }

export class ConnectionLimits {
  readonly shed: ShedStats = { handshakes: 0, sourceRate: 0 };
  private lastShedAt = Number.NEGATIVE_INFINITY;
  private readonly buckets = new Map<string, Bucket>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(readonly options: Readonly<ConnectionLimitOptions>, private readonly now: () => number = Date.now) {}

  /** Null when the connection may start its handshake, else why it is shed (already counted). */
  admit(pendingHandshakes: number, source: string | undefined): ShedReason | null {
    if (pendingHandshakes > this.options.maxPendingHandshakes) return this.count('handshakes');
    const rate = this.options.perSourceConnectionsPerSecond;
    if (rate > 0 && source !== undefined) {
      const t = this.now();
      const burst = this.options.perSourceBurst;
      let b = this.buckets.get(source);
      if (b === undefined) {
        b = { tokens: burst, at: t };
        this.buckets.set(source, b);
        this.startSweeper();
      } else {
        b.tokens = Math.min(burst, b.tokens + ((t - b.at) * rate) / 1_000);
        b.at = t;
      }
      if (b.tokens < 1) return this.count('source_rate');
      b.tokens -= 1;
    }
    return null;
  }

  /** True while connections were shed within the last SHEDDING_WINDOW_MS. */
  shedding(): boolean {
    return this.now() - this.lastShedAt < SHEDDING_WINDOW_MS;
  }

  /** Source addresses with a bucket now (tests, metrics). */
  trackedSources(): number {
    return this.buckets.size;
  }

  stop(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private count(reason: ShedReason): ShedReason {
    if (reason === 'handshakes') this.shed.handshakes++;
    else this.shed.sourceRate++;
    this.lastShedAt = this.now();
    return reason;
  }

  private startSweeper(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(() => {
      const t = this.now();
      const { perSourceConnectionsPerSecond: rate, perSourceBurst: burst } = this.options;
      for (const [source, b] of this.buckets) {
        if (b.tokens + ((t - b.at) * rate) / 1_000 >= burst) this.buckets.delete(source);
      }
      if (this.buckets.size === 0) this.stop();
    }, SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }
}
