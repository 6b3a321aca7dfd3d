/**
 * CRL publication per issuing CA: full CRLs and delta CRLs (RFC 5280 §5.2.4), one CRL-number
 * sequence shared by both, signed with the CA's own key (cRLSign) and stored in the registry, from
 * where every responder process serves them.
 *
 * - A status change schedules a delta within `coalesceMs` (many revocations in a burst: one CRL),
 *   and a full CRL within `fullCoalesceMs`: relying parties that read CRL files (nginx, HAProxy,
 *   Mosquitto, FreeRADIUS) ignore deltas. That full CRL is incremental: the worker keeps the encoded
 *   entries (full-crl-entries.ts), appends the changes and the body is re-signed.
 * - With no change, a full CRL is rebuilt (walking the registry) every `fullRebuildMs`, and always
 *   before half its validity has passed; a new delta follows each full.
 * - A delta is rebuilt before half its validity has passed even when nothing changed.
 * - Every CRL of an issuing CA carries an issuingDistributionPoint equal to the CRL distribution
 *   point written into the certificates it covers, and a delta its base's (RFC 5280 §5.2.4–5.2.5):
 *   OpenSSL takes a CRL without one as covering every certificate of its issuer. (A self-signed
 *   root's CRL has none: see build().)
 */
import type { FeedEntry, Registry, CrlRecord } from '../../registry/port.js';
import { encodeCertificateList } from '../../pkix/index.js';
import type { LoadedIssuer } from '../issuer.js';
import type { PublicUrls } from '../urls.js';
import type { CrlBodyBuilder } from './crl-builder.js';

export interface CrlPolicy {
  coalesceMs: number;
  fullCoalesceMs: number;
  fullValidityMs: number;
  fullRebuildMs: number;
  deltaValidityMs: number;
}

export const DEFAULT_CRL_POLICY: CrlPolicy = {
  coalesceMs: 1000,
  fullCoalesceMs: 5000,
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
  fullTimer?: NodeJS.Timeout;
  /** How long the last change-driven full CRL took, so the next one starts that much earlier. */
  lastFullMs: number;
  /**
   * The last full CRL this publisher stored, without its DER: reading the record back from the
   * registry would copy the whole CRL (~50 MB at 1M entries) on the event loop for three fields.
   */
  lastFull?: Pick<CrlRecord, 'number' | 'feedSeq' | 'thisUpdate'>;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

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
    for (const issuer of issuers) this.states.set(issuer.id, { issuer, queue: Promise.resolve(), changedSinceFull: false, lastFullMs: 0 });
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

  /** Feed entries from the revocation feed: certificate changes schedule a delta and a full CRL of their issuer. */
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
      if (!state.fullTimer && !this.stopped) {
        const issuerId = e.issuerId;
        state.fullTimer = setTimeout(() => {
          state.fullTimer = undefined;
          this.publish(issuerId, 'full', { incremental: true })
            .catch((err) => this.logger.error('full CRL failed', { issuerId, error: String(err) }));
        }, Math.max(0, this.policy.fullCoalesceMs - state.lastFullMs));
      }
    }
  }

  publishes(issuerId: string): boolean {
    return this.states.has(issuerId);
  }

  /**
   * Build, sign and store one CRL now (serialised per issuer). A full CRL is followed by a new delta.
   * `incremental`: a full CRL from the kept entries plus the changes (a change-driven build);
   * otherwise it walks the registry (start, periodic rebuild, an operator's request).
   */
  publish(issuerId: string, kind: 'full' | 'delta', options: { incremental?: boolean } = {}): Promise<CrlRecord> {
    const state = this.states.get(issuerId);
    if (!state) return Promise.reject(new Error(`no CRL issuer ${issuerId}`));
    const run = state.queue.then(async () => {
      const started = this.clock();
      // Cleared before the build: a change arriving during it is not in it and keeps the flag.
      if (kind === 'full') state.changedSinceFull = false;
      const record = await this.build(state, kind, options.incremental === true);
      if (kind === 'full') {
        if (options.incremental) state.lastFullMs = this.clock() - started;
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
    const full = state.lastFull ?? await this.registry.getLatestCrl(issuerId, 'full');
    const fullAge = full ? now - full.thisUpdate.getTime() : Infinity;
    if (!full || fullAge >= this.policy.fullValidityMs / 2 || fullAge >= this.policy.fullRebuildMs) {
      await this.publish(issuerId, 'full');
      return;
    }
    // A change whose timer was lost (a failed build): caught up here, at the ticker's pace.
    if (state.changedSinceFull && !state.fullTimer && fullAge >= this.policy.fullCoalesceMs) {
      await this.publish(issuerId, 'full', { incremental: true });
      return;
    }
    const delta = await this.registry.getLatestCrl(issuerId, 'delta');
    if (!delta || delta.baseNumber !== full.number || now - delta.thisUpdate.getTime() >= this.policy.deltaValidityMs / 2) {
      await this.publish(issuerId, 'delta');
    }
  }

  private async build(state: IssuerState, kind: 'full' | 'delta', incremental = false): Promise<CrlRecord> {
    const { issuer } = state;
    const started = this.clock();
    const thisUpdateMs = Math.floor(started / 1000) * 1000;
    let delta: { baseCrlNumber: string; changedAfterSeq: number } | undefined;
    if (kind === 'delta') {
      const base = state.lastFull ?? await this.registry.getLatestCrl(issuer.id, 'full');
      if (!base) return this.build(state, 'full');
      // RFC 5280 §5.2.4: a delta carries its base's IDP; the base is at this issuer's URL.
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
      // RFC 5280 §5.2.5: the CRL distribution point of every certificate this issuer signs
      // (ca/issuance.ts, hierarchy.ts, tls-server.ts, station-certificates.ts write urls.crl(issuer)).
      // Not on a self-signed root's CRL: OpenSSL's -crl_check_all (nginx, HAProxy) checks the root
      // itself against it, and the root carries no distribution point, so an IDP naming one fails
      // that check ("different CRL scope"); the root has one CRL only, so it cannot be confused.
      issuingDistributionPointUrl: issuer.certificate.issuer.rawDer.equals(issuer.subjectDer) ? undefined : this.urls.crl(issuer.id),
      feedSeq,
      walk: kind === 'full' && !incremental,
    });
    const built = this.clock();
    // Each step on the event loop takes tens to a couple of hundred ms at 1M entries (hashing ~50 MB,
    // copying it, SQLite storing it): yield between them so requests are served in between.
    await yieldToEventLoop();
    const signature = await issuer.signer.sign(body.tbs);
    await yieldToEventLoop();
    const der = encodeCertificateList(body.tbs, issuer.signer.signatureAlgorithm, signature);
    await yieldToEventLoop();
    const signed = this.clock();
    const record: CrlRecord = {
      issuerId: issuer.id, kind, number, baseNumber: delta ? BigInt(delta.baseCrlNumber) : undefined,
      thisUpdate: new Date(thisUpdateMs), nextUpdate: new Date(thisUpdateMs + validity), feedSeq, der,
    };
    await this.registry.putCrl(record);
    if (kind === 'full') state.lastFull = { number, feedSeq, thisUpdate: record.thisUpdate };
    for (const hook of this.published) hook(record);
    const stored = this.clock();
    this.logger.info('CRL published', {
      issuerId: issuer.id, kind, number: number.toString(), entries: body.entries, encoded: body.encoded, bytes: der.length,
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
    for (const s of this.states.values()) {
      if (s.deltaTimer) clearTimeout(s.deltaTimer);
      if (s.fullTimer) clearTimeout(s.fullTimer);
    }
    await Promise.all([...this.states.values()].map((s) => s.queue));
    await this.builder.close();
  }
}
