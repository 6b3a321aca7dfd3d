/**
 * `feed` status source: an in-memory view of which device certificates are revoked or held, kept
 * current by the registry's revocation feed.
 *
 * Start: note the feed's latest seq N, load every revoked or held certificate of the device issuers
 * (`forEachCrlEntry(issuer, {})` lists exactly those, RFC 5280 §5.1 "revokedCertificates"), then
 * follow the feed after N. The snapshot may already contain changes after N; replaying them is
 * harmless, because each entry carries the new status and entries come in commit order.
 *
 * A certificate entry `revoked` or `held` makes it bad; `good` with previousStatus `held` (released
 * from hold, RFC 5280 §5.3.1 certificateHold) makes it good again. Device entries go to the device
 * cache and close the device's connections when it is no longer active.
 */
import { describeError, GOOD, throttledWarn, toMillis, type CertificateStatusSource, type CertificateVerdict, type GatewayReadiness, type StatusEvents } from './status-source.js';
import { certKeyOf, type DeviceIdentity } from './device-identity.js';
import type { FeedEntry, DeviceStatus } from '../registry/port.js';
import type { FeedFactory, FeedSubscription, GatewayLogger, GatewayRegistry } from './options.js';

export interface FeedStatusOptions {
  registry: Pick<GatewayRegistry, 'forEachCrlEntry' | 'latestFeedSeq'>;
  issuerIds: readonly string[];
  statusGraceMs: number;
  factory: FeedFactory;
  events: StatusEvents;
  logger: GatewayLogger;
  now: () => number;
}

export class FeedStatusView implements CertificateStatusSource {
  readonly kind = 'feed' as const;
  private readonly bad = new Map<string, 'revoked' | 'held'>();
  private readonly issuerIds: ReadonlySet<string>;
  private subscription: FeedSubscription | undefined;
  private loadedAt: number | undefined;
  private readonly warnFeedError: (fields: Record<string, unknown>) => void;

  constructor(private readonly o: FeedStatusOptions) {
    this.issuerIds = new Set(o.issuerIds);
    this.warnFeedError = throttledWarn(o.logger, 'gateway cannot read the revocation feed');
  }

  async start(): Promise<void> {
    const afterSeq = await this.o.registry.latestFeedSeq();
    for (const issuerId of this.issuerIds) {
      await this.o.registry.forEachCrlEntry(issuerId, {}, (serialHex, status) => {
        if (status === 'revoked' || status === 'held') this.bad.set(certKeyOf(issuerId, serialHex), status);
      });
    }
    this.loadedAt = this.o.now();
    this.o.logger.info('gateway loaded revoked and held device certificates', { count: this.bad.size, afterSeq });
    this.subscription = this.o.factory(afterSeq, {
      onEntries: (entries) => this.apply(entries),
      onError: (e) => this.warnFeedError({ error: describeError(e), feedLagMs: this.lagMs() }),
    });
    this.subscription.start();
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = undefined;
  }

  async poke(): Promise<void> {
    await this.subscription?.poke();
  }

  /** Applies feed entries in order; exposed for tests that drive the view directly. */
  apply(entries: FeedEntry[]): void {
    for (const e of entries) {
      if (e.kind === 'certificate') this.applyCertificate(e);
      else if (e.kind === 'device' && e.deviceId !== undefined) this.o.events.deviceStatus(e.deviceId, e.status as DeviceStatus);
    }
  }

  private applyCertificate(e: FeedEntry): void {
    if (e.serialHex === undefined || e.issuerId === undefined || !this.issuerIds.has(e.issuerId)) return;
    const key = certKeyOf(e.issuerId, e.serialHex);
    if (e.status === 'revoked' || e.status === 'held') {
      this.bad.set(key, e.status);
      this.o.events.certificateBad(key, `certificate ${e.status}${e.reason ? ` (${e.reason})` : ''}`);
    } else if (e.status === 'good') {
      this.bad.delete(key);
    }
  }

  check(id: DeviceIdentity): CertificateVerdict {
    const bad = this.bad.get(id.certKey);
    if (bad !== undefined) return { ok: false, reason: `certificate ${bad}` };
    if (!this.isFresh()) return { ok: false, reason: `revocation feed last read ${this.lagMs()} ms ago (grace ${this.o.statusGraceMs} ms)`, stale: true };
    return GOOD;
  }

  isFresh(): boolean {
    const lag = this.lagMs();
    return lag !== undefined && lag < this.o.statusGraceMs;
  }

  /** ms since the last successful read of the registry (the start-up load counts). */
  lagMs(): number | undefined {
    const last = Math.max(this.loadedAt ?? -Infinity, toMillis(this.subscription?.lastSuccessAt) ?? -Infinity);
    return Number.isFinite(last) ? Math.max(0, this.o.now() - last) : undefined;
  }

  readiness(): GatewayReadiness {
    const feedLagMs = this.lagMs();
    const ready = this.isFresh();
    return {
      ready, statusSource: 'feed', statusGraceMs: this.o.statusGraceMs,
      ...(feedLagMs !== undefined && { feedLagMs }),
      ...(this.subscription !== undefined && { lastFeedSeq: this.subscription.lastSeq }),
      ...(!ready && { reason: feedLagMs === undefined ? 'revocation feed not loaded yet' : 'revocation feed is stale' }),
    };
  }
}
