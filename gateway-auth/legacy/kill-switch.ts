/**
 * The kill switch of the legacy path: an in-memory view, per device with enabled legacy
 * credentials, of its current credential generation and whether the device is usable. Loaded from
 * the registry, then kept current by the revocation feed (FeedFollower): a suspension, revocation or
 * retirement of the device (device entries) and a replacement or deletion of its credentials
 * (legacy-credentials entries) fail its tokens at once in every process. The process that made the
 * change pokes it, so the API call returns only once its own tokens are dead.
 *
 * Snapshot-then-follow as in gateway-auth/feed-status.ts: note the latest seq, load, follow after it;
 * replaying entries the snapshot already reflects is harmless (each carries the new state).
 */
import type { DeviceStatus, FeedEntry, Registry } from '../../registry/port.js';
import { FeedFollower } from '../../registry/feed-follower.js';
import type { GatewayLogger } from '../options.js';

const BLOCKED: ReadonlySet<string> = new Set<DeviceStatus>(['suspended', 'revoked', 'retired']);

export class LegacyKillSwitch {
  private readonly generations = new Map<string, number>();
  /** deviceId → its blocking status (revoked, suspended, ...), so a refusal can say which. */
  private readonly blocked = new Map<string, string>();
  private follower: FeedFollower | undefined;
  private loadedAt: number | undefined;

  constructor(private readonly o: {
    registry: Pick<Registry, 'readFeed' | 'latestFeedSeq' | 'listLegacyCredentialStates'>;
    logger: GatewayLogger;
    statusGraceMs: number;
    pollIntervalMs?: number;
    now?: () => number;
  }) {}

  async start(): Promise<void> {
    const afterSeq = await this.o.registry.latestFeedSeq();
    for (const s of await this.o.registry.listLegacyCredentialStates()) {
      this.generations.set(s.deviceId, s.generation);
      if (BLOCKED.has(s.deviceStatus)) this.blocked.set(s.deviceId, s.deviceStatus);
    }
    this.loadedAt = this.now();
    this.follower = new FeedFollower(this.o.registry, {
      afterSeq, pollIntervalMs: this.o.pollIntervalMs,
      onEntries: (entries) => this.apply(entries),
      onError: (e) => this.o.logger.warn('legacy kill switch cannot read the revocation feed', { error: String(e) }),
    });
    this.follower.start();
  }

  async stop(): Promise<void> {
    await this.follower?.stop();
  }

  /** Read the feed now (after a change in this process); resolves once applied. */
  async poke(): Promise<void> {
    await this.follower?.poke();
  }

  apply(entries: FeedEntry[]): void {
    for (const e of entries) {
      if (e.deviceId === undefined) continue;
      if (e.kind === 'device') {
        if (BLOCKED.has(e.status)) this.blocked.set(e.deviceId, e.status);
        else this.blocked.delete(e.deviceId);
      } else if (e.kind === 'legacy-credentials' && e.generation !== undefined) {
        if (e.status === 'enabled') this.generations.set(e.deviceId, e.generation);
        else this.generations.delete(e.deviceId);
      }
      // Certificate entries (and kinds added later) do not concern legacy tokens.
    }
  }

  /** True when a token of this device and generation may be honoured now. */
  allows(deviceId: string, generation: number): boolean {
    return this.generations.get(deviceId) === generation && !this.blocked.has(deviceId);
  }

  /** Why `allows` says no: `device revoked` (the status), or `credentials replaced or deleted`. */
  refusalReason(deviceId: string): string {
    const status = this.blocked.get(deviceId);
    return status !== undefined ? `device ${status}` : 'credentials replaced or deleted';
  }

  /** The view is trustworthy: the feed was read within statusGraceMs (otherwise fail closed). */
  isFresh(): boolean {
    const last = Math.max(this.loadedAt ?? -Infinity, this.follower?.lastSuccessAt?.getTime() ?? -Infinity);
    return Number.isFinite(last) && this.now() - last < this.o.statusGraceMs;
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }
}
