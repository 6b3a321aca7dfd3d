/**
 * The default feed follower: the registry's FeedFollower, polling `readFeed` every
 * `pollIntervalMs` (DESIGN.md "Storage": other processes on the same SQLite file follow commits by
 * polling the feed sequence), and read at once when poked after a revocation in this process.
 */
import { FeedFollower } from '../registry/feed-follower.js';
import type { FeedFactory, GatewayRegistry } from './options.js';

export function registryFeedFactory(registry: GatewayRegistry, o: { pollIntervalMs: number; batchSize: number }): FeedFactory {
  return (afterSeq, handlers) => new FeedFollower(registry, {
    afterSeq,
    pollIntervalMs: o.pollIntervalMs,
    batchSize: o.batchSize,
    onEntries: (entries) => handlers.onEntries(entries),
    onError: (e: unknown) => handlers.onError(e),
  });
}
