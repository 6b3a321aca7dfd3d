/**
 * The low-latency wake-up of revocation-feed consumers on MongoDB: a change stream on the feed
 * collection. `readFeed` stays the source of truth (FeedFollower, registry/feed-follower.ts, polls
 * it and never skips an entry); the change stream only tells a follower "something was committed,
 * read now" (`onChange`, typically `follower.poke()`), so a revocation reaches every process in
 * one network round trip instead of one poll interval. If the stream fails, the follower's poll
 * still delivers everything; the stream reopens after `retryMs`.
 *
 * Resume tokens survive a restart: after each delivered change the token is saved in the
 * `feedCursors` collection under the consumer's name, and the next start resumes after it, so a
 * consumer that only follows the stream (no polling) also misses nothing that is still in the
 * oplog. When the saved token has fallen off the oplog (ChangeStreamHistoryLost, code 286), the
 * stream starts from now and `onResumeLost` is called: the consumer must then resynchronise from
 * `readFeed(itsLastSeq)`, which is why readFeed remains the source of truth.
 */
import { MongoServerError, type ChangeStream, type ChangeStreamDocument, type Db, type ResumeToken } from 'mongodb';
import type { FeedEntry } from '../port.js';
import { COLLECTIONS, feedEntryFromDoc, type FeedCursorDoc, type FeedDoc } from './documents.js';
import { MongoRegistry } from './mongodb-registry.js';

/** Only inserts: feed entries are appended, never changed. */
export const FEED_CHANGE_PIPELINE = [{ $match: { operationType: 'insert' } }] as const;

/** Server code for a resume token no longer in the oplog. */
export const CHANGE_STREAM_HISTORY_LOST = 286;

export interface ChangeFeedOptions {
  /** Names this consumer's saved resume token (`gateway-<host>`, `ocsp-<host>`). */
  consumer: string;
  /** Called with each committed feed entry, in commit order. */
  onChange: (entry: FeedEntry) => void | Promise<void>;
  /** The saved token was too old to resume from: reconcile through readFeed. */
  onResumeLost?: () => void;
  onError?: (error: unknown) => void;
  /** Pause before reopening a failed stream. Default 1000 ms. */
  retryMs?: number;
}

/** Where a consumer resumes: after its saved token, if any. */
export function resumeOptions(saved: FeedCursorDoc | null): { resumeAfter?: ResumeToken } {
  return saved === null || saved.resumeToken === undefined || saved.resumeToken === null ? {} : { resumeAfter: saved.resumeToken as ResumeToken };
}

export class MongoChangeFeed {
  private stream: ChangeStream<FeedDoc> | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private endPause: (() => void) | undefined;

  constructor(private readonly db: Db, private readonly options: ChangeFeedOptions) {
    if (typeof options.consumer !== 'string' || options.consumer.length === 0) throw new TypeError('consumer must be a non-empty string');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.endPause?.();
    await this.stream?.close().catch(() => undefined);
    await this.loop;
  }

  private async run(): Promise<void> {
    const cursors = this.db.collection<FeedCursorDoc>(COLLECTIONS.feedCursors);
    while (this.running) {
      try {
        const saved = await cursors.findOne({ _id: this.options.consumer });
        let resume = resumeOptions(saved);
        try {
          await this.follow(resume);
        } catch (e) {
          if (!(e instanceof MongoServerError && e.code === CHANGE_STREAM_HISTORY_LOST) || resume.resumeAfter === undefined) throw e;
          await cursors.deleteOne({ _id: this.options.consumer });
          this.options.onResumeLost?.();
          resume = {};
          await this.follow(resume);
        }
      } catch (e) {
        if (!this.running) return;
        this.options.onError?.(e);
      }
      // A failed stream, or one the server ended (an invalidate event): reopen after a pause.
      if (this.running) await this.pause();
    }
  }

  private pause(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.endPause = resolve;
      this.retryTimer = setTimeout(resolve, this.options.retryMs ?? 1000);
      this.retryTimer.unref();
    });
  }

  private async follow(resume: { resumeAfter?: ResumeToken }): Promise<void> {
    const cursors = this.db.collection<FeedCursorDoc>(COLLECTIONS.feedCursors);
    this.stream = this.db.collection<FeedDoc>(COLLECTIONS.feed).watch<FeedDoc, ChangeStreamDocument<FeedDoc>>([...FEED_CHANGE_PIPELINE], resume);
    try {
      for await (const change of this.stream) {
        if (!this.running) return;
        if (change.operationType !== 'insert') continue;
        await this.options.onChange(feedEntryFromDoc(change.fullDocument));
        // Saved after delivery: a crash in between delivers the change again (at least once).
        await cursors.updateOne({ _id: this.options.consumer }, { $set: { resumeToken: change._id, updatedAt: new Date() } }, { upsert: true });
      }
    } finally {
      await this.stream.close().catch(() => undefined);
    }
  }
}

/**
 * For the composition root: when `registry` is the MongoDB adapter, start a change feed that calls
 * `wake` (a FeedFollower's `poke`) on every committed feed entry; undefined for other adapters
 * (SQLite followers poll a local file, every 100 ms). The follower still reads `readFeed` and
 * decides what is delivered; the stream only makes it read at once.
 */
export function startFeedWakeUp(
  registry: unknown, consumer: string, wake: () => void, onError?: (error: unknown) => void,
): MongoChangeFeed | undefined {
  if (!(registry instanceof MongoRegistry)) return undefined;
  const feed = new MongoChangeFeed(registry.database(), {
    consumer,
    onChange: () => { wake(); },
    // The stream starts from now: the follower's own position covers whatever came before.
    onResumeLost: () => { wake(); },
    ...(onError !== undefined && { onError }),
  });
  feed.start();
  return feed;
}
