/**
 * How the responder follows the registry's revocation feed. The responder depends only on this
 * small interface; `feedFollowerFactory` builds it on the registry's FeedFollower (polling, so other
 * processes sharing the SQLite file are followed too; DESIGN.md "Storage").
 */
import { FeedFollower } from '../registry/feed-follower.js';
import type { FeedEntry, Registry } from '../registry/port.js';

export interface FeedSubscription {
  start(): void;
  stop(): void | Promise<void>;
  /** Read now instead of at the next poll (a caller waits for a sequence number). */
  poke(): void;
  /** The last sequence number handed to onEntries. */
  readonly lastSeq: number;
  /** When the feed was last read successfully (undefined before the first read). */
  readonly lastSuccessAt: Date | number | undefined;
}

export interface FeedHandlers {
  /** Entries after `afterSeq`, ascending. The next read waits for the returned promise. */
  onEntries(entries: FeedEntry[]): Promise<void>;
  onError(error: unknown): void;
}

export type FeedFactory = (afterSeq: number, handlers: FeedHandlers) => FeedSubscription;

/** Follows the feed with the registry's FeedFollower (DESIGN.md "Storage": polling every ≤ 100 ms). */
export function feedFollowerFactory(
  registry: Pick<Registry, 'readFeed' | 'watchFeed'>, options: { pollIntervalMs?: number; batchSize?: number } = {},
): FeedFactory {
  return (afterSeq, handlers) => new FeedFollower(registry, {
    afterSeq, pollIntervalMs: options.pollIntervalMs, batchSize: options.batchSize, onEntries: handlers.onEntries, onError: handlers.onError,
  });
}
