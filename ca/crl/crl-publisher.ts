/**
 * CRL publication per issuing CA: full CRLs and delta CRLs (RFC 5280 §5.2.4), one CRL-number
 * sequence shared by both, signed with the CA's own key (cRLSign) and stored in the registry, from
 * where every responder process serves them.
 *
 * - A status change schedules a delta within `coalesceMs` (many revocations in a burst: one CRL).
 * - A full CRL is rebuilt every `fullRebuildMs` when something changed, and always before half its
 *   validity has passed, so it is replaced long before nextUpdate; a new delta follows each full.
 * - A delta is rebuilt before half its validity has passed even when nothing changed.
 */
import type { FeedEntry, Registry, CrlRecord } from '../../registry/port.js';
import { encodeCertificateList } from '../../pkix/index.js';
import type { LoadedIssuer } from '../issuer.js';
import type { PublicUrls } from '../urls.js';
import type { CrlBodyBuilder } from './crl-builder.js';

export interface CrlPolicy {
  coalesceMs: number;
  fullValidityMs: number;
  fullRebuildMs: number;
  deltaValidityMs: number;
}

export const DEFAULT_CRL_POLICY: CrlPolicy = {
  coalesceMs: 1000,
  fullValidityMs: 24 * 3600_000,
  fullRebuildMs: 3600_000,
  deltaValidityMs: 3600_000,
};

/** What the publisher needs of a logger. */
export interface CrlLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

type CrlRegistryView = Pick<Registry, 'nextCrlNumber' | 'putCrl' | 'getLatestCrl' | 'latestFeedSeq'>;

interface IssuerState {
  issuer: LoadedIssuer;
  /** Serialises builds of one issuer. */
  queue: Promise<unknown>;
  changedSinceFull: boolean;
  deltaTimer?: NodeJS.Timeout;
}

export class CrlPublisher {
  private readonly states = new Map<string, IssuerState>();
  private ticker?: NodeJS.Timeout;
  private stopped = false;
  /**
   * Called with every CRL once it is stored, before publish() resolves: the listener of the same
   * process serves it at once (Publications.crlPublished), so a forced CRL is live when the call returns.
   */
  readonly published: ((record: CrlRecord) => void)[] = [];

  constructor(
    private readonly registry: CrlRegistryView,
    issuers: LoadedIssuer[],
    private readonly urls: PublicUrls,
    private readonly builder: CrlBodyBuilder,
    private readonly policy: CrlPolicy,
    private readonly logger: CrlLogger,
    private readonly clock: () => number = Date.now,
  ) {
    for (const issuer of issuers) this.states.set(issuer.id, { issuer, queue: Promise.resolve(), changedSinceFull: false });
  }

  /** Publish whatever is missing or stale now, then keep CRLs fresh. */
  async start(): Promise<void> {
    await Promise.all([...this.states.keys()].map((id) => this.refresh(id)));
    // Checked often enough that no CRL passes half its validity unnoticed.
    const period = Math.max(1000, Math.min(60_000, this.policy.deltaValidityMs / 4, this.policy.fullRebuildMs / 4));
    this.ticker = setInterval(() => {
      for (const id of this.states.keys()) this.refresh(id).catch((e) => this.logger.error('CRL refresh failed', { issuerId: id, error: String(e) }));
    }, period);
    this.ticker.unref();
  }

  /** Feed entries from the revocation feed: certificate changes schedule a delta of their issuer. */
  onFeedEntries(entries: FeedEntry[]): void {
    for (const e of entries) {
      // Issuance (a new good certificate) changes no CRL; only revocation, hold and release do.
      if (e.kind !== 'certificate' || !e.issuerId) continue;
      if (e.status === 'good' && e.previousStatus !== 'held') continue;
      const state = this.states.get(e.issuerId);
      if (!state) continue;
      state.changedSinceFull = true;
      if (!state.deltaTimer && !this.stopped) {
        state.deltaTimer = setTimeout(() => {
          state.deltaTimer = undefined;
          this.publish(e.issuerId!, 'delta').catch((err) => this.logger.error('delta CRL failed', { issuerId: e.issuerId, error: String(err) }));
        }, this.policy.coalesceMs);
      }
    }
  }

  publishes(issuerId: string): boolean {
    return this.states.has(issuerId);
  }

  /** Build, sign and store one CRL now (serialised per issuer). A full CRL is followed by a new delta. */
  publish(issuerId: string, kind: 'full' | 'delta'): Promise<CrlRecord> {
    const state = this.states.get(issuerId);
    if (!state) return Promise.reject(new Error(`no CRL issuer ${issuerId}`));
    const run = state.queue.then(async () => {
      const record = await this.build(state, kind);
      if (kind === 'full') {
        state.changedSinceFull = false;
        await this.build(state, 'delta');
      }
      return record;
    });
    state.queue = run.catch(() => undefined);
    return run;
  }

  private async refresh(issuerId: string): Promise<void> {
    const state = this.states.get(issuerId)!;
    const now = this.clock();
    const full = await this.registry.getLatestCrl(issuerId, 'full');
    const fullAge = full ? now - full.thisUpdate.getTime() : Infinity;
    if (!full || fullAge >= this.policy.fullValidityMs / 2 || (state.changedSinceFull && fullAge >= this.policy.fullRebuildMs)) {
      await this.publish(issuerId, 'full');
      return;
    }
    const delta = await this.registry.getLatestCrl(issuerId, 'delta');
    if (!delta || delta.baseNumber !== full.number || now - delta.thisUpdate.getTime() >= this.policy.deltaValidityMs / 2) {
      await this.publish(issuerId, 'delta');
    }
  }

  private async build(state: IssuerState, kind: 'full' | 'delta'): Promise<CrlRecord> {
    const { issuer } = state;
    const started = this.clock();
    const thisUpdateMs = Math.floor(started / 1000) * 1000;
    let delta: { baseCrlNumber: string; changedAfterSeq: number } | undefined;
    if (kind === 'delta') {
      const base = await this.registry.getLatestCrl(issuer.id, 'full');
      if (!base) return this.build(state, 'full');
      delta = { baseCrlNumber: base.number.toString(), changedAfterSeq: base.feedSeq };
    }
    // Read before the rows: the CRL reflects at least every change up to this seq.
    const feedSeq = await this.registry.latestFeedSeq();
    const number = await this.registry.nextCrlNumber(issuer.id);
    const validity = kind === 'full' ? this.policy.fullValidityMs : this.policy.deltaValidityMs;
    const body = await this.builder.build({
      issuerId: issuer.id,
      issuerNameDer: issuer.subjectDer,
      authorityKeyId: issuer.keyId,
      signatureAlgorithm: issuer.signer.signatureAlgorithm,
      thisUpdateMs,
      nextUpdateMs: thisUpdateMs + validity,
      crlNumber: number.toString(),
      delta,
      // RFC 5280 §5.2.6: a full CRL names where its deltas are.
      freshestCrlUrls: kind === 'full' ? [this.deltaUrl(issuer.id)] : undefined,
    });
    const built = this.clock();
    const der = encodeCertificateList(body.tbs, issuer.signer.signatureAlgorithm, await issuer.signer.sign(body.tbs));
    const signed = this.clock();
    const record: CrlRecord = {
      issuerId: issuer.id, kind, number, baseNumber: delta ? BigInt(delta.baseCrlNumber) : undefined,
      thisUpdate: new Date(thisUpdateMs), nextUpdate: new Date(thisUpdateMs + validity), feedSeq, der,
    };
    await this.registry.putCrl(record);
    for (const hook of this.published) hook(record);
    const stored = this.clock();
    this.logger.info('CRL published', {
      issuerId: issuer.id, kind, number: number.toString(), entries: body.entries, bytes: der.length,
      buildMs: built - started, signMs: signed - built, storeMs: stored - signed,
    });
    return record;
  }

  /**
   * How soon after its thisUpdate a newer CRL of each kind can appear on schedule, in seconds: a
   * full one after fullRebuildMs when something changed (and always by half its validity), a delta
   * within coalesceMs of any change. The listener bounds Cache-Control max-age by it.
   */
  static replacementSeconds(policy: CrlPolicy): { fullSeconds: number; deltaSeconds: number } {
    return {
      fullSeconds: Math.floor(Math.min(policy.fullRebuildMs, policy.fullValidityMs / 2) / 1000),
      deltaSeconds: Math.floor(policy.coalesceMs / 1000),
    };
  }

  private deltaUrl(issuerId: string): string {
    return this.urls.crl(issuerId).replace(/\.crl$/, '-delta.crl');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    for (const s of this.states.values()) if (s.deltaTimer) clearTimeout(s.deltaTimer);
    await Promise.all([...this.states.values()].map((s) => s.queue));
    await this.builder.close();
  }
}
