/**
 * Follows the revocation feed of any registry adapter: reads "everything after the last seq it
 * delivered" every `pollIntervalMs` and hands the entries, in seq order, to `onEntries`.
 *
 * - One poll at a time: the next read starts only when the previous delivery has settled, so
 *   `onEntries` never runs concurrently with itself. A `poke()` during a poll runs one more poll
 *   right after it (pokes during the same poll share it).
 * - Exactly once: the position moves past a batch only when `onEntries` has returned (or its
 *   promise resolved). If it throws, the error goes to `onError` and the same entries come again
 *   on the next poll; an entry is never skipped and never repeated after a successful delivery.
 * - A backlog is read in batches of `batchSize` without waiting between them.
 * - `lastSuccessAt`: the follower has delivered every entry committed before this time. It is the
 *   start of the last read that found nothing more to deliver, so it stops advancing while the
 *   registry is unreachable, while `onEntries` keeps failing, and while a backlog is being worked
 *   off. The gateway fails closed when it is too old.
 *
 * In the process that commits a change, `poke()` right after the commit lets consumers see it at
 * once; other processes sharing the store see it within one poll interval (SQLite: ≤ 100 ms).
 * Timers are unref'd: a follower alone does not keep a process alive.
 */
import type { FeedEntry, Registry } from './port.js';

export interface FeedFollowerOptions {
  /** Deliver entries with seq greater than this (typically `latestFeedSeq()` read before loading a snapshot). */
  afterSeq: number;
  /** Pause between polls, in milliseconds. Default 100. */
  pollIntervalMs?: number;
  /** Most entries per `readFeed` call and per `onEntries` call. Default 1000, at most 10000. */
  batchSize?: number;
  onEntries: (entries: FeedEntry[]) => void | Promise<void>;
  /** A failed read or delivery; the follower retries after `pollIntervalMs`. */
  onError?: (error: unknown) => void;
}

export const DEFAULT_POLL_INTERVAL_MS = 100;
export const DEFAULT_FEED_BATCH_SIZE = 1000;
const MAX_FEED_BATCH_SIZE = 10_000;

export class FeedFollower {
  private seq: number;
  private successAt: Date | undefined;
  private running = false;
  private polling: Promise<void> | undefined;
  private unwatch: (() => void) | undefined;
  private pollAgain = false;
  private timer: NodeJS.Timeout | undefined;
  /** Resolvers of poke() promises, settled when a poll that started after the poke ends. */
  private pokeWaiters: (() => void)[] = [];
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;

  constructor(private readonly registry: Pick<Registry, 'readFeed' | 'watchFeed'>, private readonly options: FeedFollowerOptions) {
    if (registry === null || typeof registry !== 'object' || typeof registry.readFeed !== 'function') {
      throw new TypeError('FeedFollower needs a registry with readFeed');
    }
    if (options === null || typeof options !== 'object') throw new TypeError('FeedFollower options must be an object');
    const { afterSeq, pollIntervalMs = DEFAULT_POLL_INTERVAL_MS, batchSize = DEFAULT_FEED_BATCH_SIZE, onEntries, onError } = options;
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new RangeError('afterSeq must be a non-negative integer');
    if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 1) throw new RangeError('pollIntervalMs must be at least 1');
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_FEED_BATCH_SIZE) {
      throw new RangeError(`batchSize must be an integer from 1 to ${MAX_FEED_BATCH_SIZE}`);
    }
    if (typeof onEntries !== 'function') throw new TypeError('onEntries must be a function');
    if (onError !== undefined && typeof onError !== 'function') throw new TypeError('onError must be a function');
    this.seq = afterSeq;
    this.pollIntervalMs = pollIntervalMs;
    this.batchSize = batchSize;
  }

  /** The seq of the last entry delivered (or `afterSeq`). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Every entry committed before this time has been delivered; undefined until the first poll catches up. */
  get lastSuccessAt(): Date | undefined {
    return this.successAt;
  }

  /** Starts polling (the first poll at once). Calling it again while running does nothing. */
  start(): void {
    if (this.running) return;
    this.running = true;
    // Where the registry can tell us of commits by other processes (a MongoDB change stream), a
    // commit is read at once instead of at the next poll; the polls go on regardless.
    this.unwatch = this.registry.watchFeed?.(() => { void this.poke(); });
    this.schedule(0);
  }

  /** Stops polling; resolves when a poll in progress has settled. No `onEntries` call starts after stop(). */
  async stop(): Promise<void> {
    this.running = false;
    this.unwatch?.();
    this.unwatch = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.polling;
    this.releasePokes(this.pokeWaiters.splice(0));
  }

  /**
   * Polls now (or right after the poll in progress). The promise resolves when a poll that started
   * after this call has ended, delivered or failed; it never rejects. Does nothing when stopped.
   */
  poke(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.pokeWaiters.push(resolve);
      if (this.polling !== undefined) {
        this.pollAgain = true;
      } else {
        this.schedule(0);
      }
    });
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.runPolls();
    }, delayMs);
    this.timer.unref();
  }

  private runPolls(): void {
    if (!this.running || this.polling !== undefined) return;
    this.polling = this.pollLoop();
  }

  private async pollLoop(): Promise<void> {
    try {
      do {
        this.pollAgain = false;
        const waiters = this.pokeWaiters.splice(0);
        await this.pollOnce();
        this.releasePokes(waiters);
      } while (this.pollAgain && this.running);
    } finally {
      // In the same synchronous step as the last check of pollAgain: a poke arriving from here on
      // finds no poll in progress and schedules its own.
      this.polling = undefined;
      if (this.running) this.schedule(this.pollIntervalMs);
    }
  }

  /** Reads and delivers until caught up; on failure reports it and leaves the position where it was. */
  private async pollOnce(): Promise<void> {
    try {
      for (;;) {
        const startedAt = new Date();
        const entries = await this.registry.readFeed(this.seq, this.batchSize);
        if (!this.running) return;
        if (entries.length > 0) {
          await this.options.onEntries(entries);
          this.seq = entries[entries.length - 1].seq;
        }
        if (entries.length < this.batchSize) {
          this.successAt = startedAt;
          return;
        }
      }
    } catch (e) {
      try {
        this.options.onError?.(e);
      } catch {
        // A failing error handler must not stop the follower; the stale lastSuccessAt shows the trouble.
      }
    }
  }

  private releasePokes(waiters: (() => void)[]): void {
    for (const resolve of waiters) resolve();
  }
}
