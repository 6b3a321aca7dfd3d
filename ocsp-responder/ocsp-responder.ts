/**
 * The OCSP responder: decodes a request, answers it from the pre-signed responses when it can
 * and signs live (bounded, rate-limited) when it must. Every answer is a cached-response entry
 * (cached-response.ts): the HTTP layer writes its DER and derives caching headers from its header.
 *
 * Which path (RFC 5019 §2.1.1 for the pre-signed shape):
 *   - one CertID, no nonce, SHA-1 with NULL parameters → the pre-signed response;
 *   - one CertID, no nonce, another shape → a live-signed copy kept per (issuer, serial, CertID);
 *   - a nonce (RFC 8954: must be echoed, so never pre-signed), several CertIDs, or nothing cached
 *     → signed live, when the limiter admits it, else `tryLater`.
 * Error statuses (RFC 6960 §2.3): undecodable → malformedRequest; no CertID of a served issuer
 * (including a hash kakuin does not know) → unauthorized; the registry busy → tryLater; a bug →
 * internalError (logged). Several CertIDs are answered by the responder of the first served one;
 * the CertIDs of other issuers in the same request are stated `unknown` (RFC 6960 §2.2).
 */
import { hasCode, isKakuinError, KakuinError } from '../errors/index.js';
import { type OcspCertStatus, parseOcspRequest, type ParsedOcspRequest } from '../pkix/index.js';
import {
  ERROR_ENTRIES, entryStatus, KIND_CACHEABLE, KIND_NO_STORE, nextUpdateSeconds, packResponses,
} from './cached-response.js';
import { STATUS_UNKNOWN, statusFromRecord } from './cert-status.js';
import { type FeedFactory, feedFollowerFactory } from './feed.js';
import { hasPresignedShape, IssuerIndex } from './issuer-index.js';
import { LiveResponseCache } from './live-cache.js';
import { LiveLimiter, type LiveLimits } from './live-limiter.js';
import { describeError, type Logger } from './logger.js';
import { OcspMetrics } from './metrics.js';
import { PresignedResponses } from './presigned-responses.js';
import type { OcspRegistryView } from './registry-view.js';
import { ResponseSigner, type SingleResponseInput } from './response-signer.js';
import { type OcspSigningIdentity, prepareIdentity, type PreparedIdentity, sameResponder } from './signing-identity.js';

export interface OcspResponderOptions {
  registry: OcspRegistryView;
  /** One per issuer answered for; replace them at run time with setIdentities. */
  identities: readonly OcspSigningIdentity[];
  /** How to follow the revocation feed. Default: the registry's FeedFollower, polling every 100 ms. */
  feed?: FeedFactory;
  logger: Logger;
  /** nextUpdate − thisUpdate of every response. Default 24 h. */
  validityMs?: number;
  /** Pre-signed responses re-signed per batch. Default 128. */
  batchSize?: number;
  /** Default validity / 8, at most 10 minutes. */
  refreshIntervalMs?: number;
  /** Store pre-signed responses in the registry (default true; false when the registry is opened read-only). */
  persistResponses?: boolean;
  live?: LiveLimits & {
    /** Certificates whose live-signed non-SHA-1 answers are kept. Default 10,000. */
    cacheSize?: number;
    /** More CertIDs in one request is malformedRequest. Default 32. */
    maxCertIdsPerRequest?: number;
  };
  metrics?: OcspMetrics;
  /** Clock (ms since 1970). */
  now?: () => number;
}

export class OcspResponder {
  readonly metrics: OcspMetrics;
  readonly presigned: PresignedResponses;
  readonly #registry: OcspRegistryView;
  readonly #logger: Logger;
  readonly #signer: ResponseSigner;
  readonly #limiter: LiveLimiter;
  readonly #liveCache: LiveResponseCache;
  readonly #maxCertIds: number;
  readonly #now: () => number;
  readonly #lastLogAt = new Map<string, number>();
  #index: IssuerIndex;
  #startedAt: number | undefined;

  /** Throws KAKUIN_E_CONFIG when an identity does not hang together (see prepareIdentity). */
  constructor(options: OcspResponderOptions) {
    this.#registry = options.registry;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.metrics = options.metrics ?? new OcspMetrics();
    this.#signer = new ResponseSigner({ validityMs: options.validityMs, now: this.#now });
    this.#limiter = new LiveLimiter(options.live);
    this.#liveCache = new LiveResponseCache(options.live?.cacheSize ?? 10_000);
    this.#maxCertIds = options.live?.maxCertIdsPerRequest ?? 32;
    this.#index = new IssuerIndex(prepareAll(options.identities, undefined));
    this.presigned = new PresignedResponses({
      registry: options.registry,
      signer: this.#signer,
      identities: () => this.#index,
      feed: options.feed ?? feedFollowerFactory(options.registry),
      logger: options.logger,
      batchSize: options.batchSize,
      refreshIntervalMs: options.refreshIntervalMs,
      persist: options.persistResponses,
      onReplaced: (issuerId, serialHex) => this.#liveCache.invalidate(issuerId, serialHex),
    });
  }

  get validityMs(): number {
    return this.#signer.validityMs;
  }

  /** Loads and reconciles the pre-signed responses, then follows the feed. */
  async start(): Promise<void> {
    await this.presigned.start();
    this.#startedAt = this.#now();
  }

  async stop(): Promise<void> {
    await this.presigned.stop();
  }

  get ready(): boolean {
    return this.#startedAt !== undefined;
  }

  /** See PresignedResponses.waitForSeq: true once this process answers per feed entry `seq`. */
  waitForSeq(seq: number, timeoutMs: number): Promise<boolean> {
    return this.presigned.waitForSeq(seq, timeoutMs);
  }

  identities(): PreparedIdentity[] {
    return this.#index.list();
  }

  /**
   * Replaces the identities (responder certificate rollover, issuers added or removed). Checked
   * first: on KAKUIN_E_CONFIG nothing changes. Resolves once every response signed by a replaced
   * responder certificate has been re-signed (new answers use the new one at once).
   */
  async setIdentities(identities: readonly OcspSigningIdentity[]): Promise<void> {
    const old = this.#index;
    const prepared = prepareAll(identities, old);
    const added = prepared.filter((p) => old.get(p.issuerId) === undefined);
    const removed = old.list().filter((o) => !prepared.some((p) => p.issuerId === o.issuerId)).map((o) => o.issuerId);
    this.#index = new IssuerIndex(prepared);
    this.#liveCache.clear();
    await this.presigned.identitiesChanged(added, removed);
  }

  /**
   * The answer to one DER OCSPRequest: a cached-response entry, synchronously when pre-signed or
   * refused, else a promise. Never throws and never rejects.
   */
  answer(der: Buffer): Buffer | Promise<Buffer> {
    let request: ParsedOcspRequest;
    try {
      request = parseOcspRequest(der);
    } catch (e) {
      return this.#refused(e);
    }
    const certIds = request.certIds;
    if (certIds.length > this.#maxCertIds) {
      this.metrics.malformedRequest++;
      return ERROR_ENTRIES.malformedRequest;
    }
    if (certIds.length === 1 && request.nonce === undefined) {
      const certId = certIds[0];
      const identity = this.#index.find(certId);
      if (identity === undefined) {
        this.metrics.unauthorized++;
        return ERROR_ENTRIES.unauthorized;
      }
      const nowSeconds = Math.floor(this.#now() / 1000);
      if (hasPresignedShape(certId)) {
        const entry = this.presigned.get(identity.issuerId, certId.serialHex);
        if (entry !== undefined && nextUpdateSeconds(entry) > nowSeconds) {
          this.metrics.presigned++;
          return entry;
        }
      } else {
        const entry = this.#liveCache.get(identity.issuerId, certId.serialHex, certId.rawDer, nowSeconds);
        if (entry !== undefined) {
          this.metrics.liveCached++;
          return entry;
        }
      }
    }
    return this.#answerLive(request);
  }

  async health(): Promise<Record<string, unknown>> {
    const now = this.#now();
    let latestSeq: number | null = null;
    try {
      latestSeq = await this.#registry.latestFeedSeq();
    } catch {
      latestSeq = null;
    }
    const appliedSeq = this.presigned.appliedSeq;
    return {
      ready: this.ready,
      feed: {
        appliedSeq, latestSeq, lagEntries: latestSeq === null ? null : Math.max(0, latestSeq - appliedSeq),
        lastReadAgeMs: this.presigned.feedAgeMs(now) ?? null,
      },
      cache: { ...this.presigned.stats(), liveCachedCertificates: this.#liveCache.size },
      live: { inFlight: this.#limiter.inFlight, maxConcurrent: this.#limiter.maxConcurrent, ratePerSecond: this.#limiter.ratePerSecond },
      issuers: this.#index.list().map((i) => ({
        issuerId: i.issuerId, responderSerial: i.responderSerialHex, responderNotAfter: new Date(i.responderNotAfterMs).toISOString(),
      })),
      counters: this.metrics.toJSON(),
    };
  }

  #refused(e: unknown): Buffer {
    if (hasCode(e, 'KAKUIN_E_OCSP_HASH_UNSUPPORTED')) {
      // No issuer can be matched under a hash kakuin does not compute: not authoritative (RFC 6960 §2.3).
      this.metrics.unauthorized++;
      return ERROR_ENTRIES.unauthorized;
    }
    if (isKakuinError(e)) {
      this.metrics.malformedRequest++;
      return ERROR_ENTRIES.malformedRequest;
    }
    return this.#internal(e);
  }

  #internal(e: unknown): Buffer {
    this.metrics.internalError++;
    this.#logThrottled('internal', 'OCSP request failed', { cause: describeError(e), stack: e instanceof Error ? e.stack : undefined });
    return ERROR_ENTRIES.internalError;
  }

  #answerLive(request: ParsedOcspRequest): Buffer | Promise<Buffer> {
    let identity: PreparedIdentity | undefined;
    for (let i = 0; i < request.certIds.length && identity === undefined; i++) identity = this.#index.find(request.certIds[i]);
    if (identity === undefined) {
      this.metrics.unauthorized++;
      return ERROR_ENTRIES.unauthorized;
    }
    if (!this.#limiter.tryAcquire()) {
      this.metrics.tryLater++;
      return ERROR_ENTRIES.tryLater;
    }
    return this.#signLive(identity, request).then(
      (entry) => {
        this.#limiter.release();
        this.metrics.liveSigned++;
        return entry;
      },
      (e: unknown) => {
        this.#limiter.release();
        if (hasCode(e, 'KAKUIN_E_REGISTRY_UNAVAILABLE')) {
          this.metrics.tryLater++;
          this.#logThrottled('registry', 'registry unavailable for live OCSP signing; answering tryLater', { cause: describeError(e) });
          return ERROR_ENTRIES.tryLater;
        }
        return this.#internal(e);
      },
    );
  }

  async #signLive(identity: PreparedIdentity, request: ParsedOcspRequest): Promise<Buffer> {
    const generation = this.presigned.generation;
    const index = this.#index;
    const inputs: SingleResponseInput[] = [];
    for (const certId of request.certIds) {
      const status = index.find(certId) === identity ? await this.#statusOf(identity, certId.serialHex) : STATUS_UNKNOWN;
      inputs.push({ certIdDer: certId.rawDer, status });
    }
    const nonce = request.nonce === undefined ? undefined : { nonce: request.nonce, nonceEncoding: request.nonceEncoding };
    const signed = await this.#signer.sign(identity, inputs, nonce);
    const kind = nonce === undefined ? KIND_CACHEABLE : KIND_NO_STORE;
    const certId = request.certIds[0];
    const keep = kind === KIND_CACHEABLE && request.certIds.length === 1 && inputs[0].status.status !== 'unknown' && !hasPresignedShape(certId);
    const [entry] = packResponses([signed], identity.epoch, kind, keep);
    // Kept only when no batch replaced anything while this was signed: the status it read may be stale otherwise.
    if (keep && this.presigned.generation === generation && this.#index.get(identity.issuerId) === identity) {
      this.#liveCache.set(identity.issuerId, certId.serialHex, certId.rawDer, entry);
    }
    return entry;
  }

  /** The pre-signed response's status (what the feed says), else the registry's record. */
  async #statusOf(identity: PreparedIdentity, serialHex: string): Promise<OcspCertStatus> {
    const entry = this.presigned.get(identity.issuerId, serialHex);
    if (entry !== undefined) return entryStatus(entry);
    try {
      return statusFromRecord(await this.#registry.getCertificate(serialHex), identity.issuerId);
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_CERTIFICATE_NOT_FOUND') || hasCode(e, 'KAKUIN_E_VALIDATION')) return STATUS_UNKNOWN;
      throw e;
    }
  }

  /** At most one line per second per kind: a flood must not turn into a log flood. */
  #logThrottled(kind: string, message: string, fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - (this.#lastLogAt.get(kind) ?? 0) < 1000) return;
    this.#lastLogAt.set(kind, now);
    this.#logger.error(message, fields);
  }
}

function prepareAll(identities: readonly OcspSigningIdentity[], previous: IssuerIndex | undefined): PreparedIdentity[] {
  if (!Array.isArray(identities)) throw new KakuinError('KAKUIN_E_CONFIG', 'OCSP signing identities must be an array');
  const seen = new Set<string>();
  return identities.map((identity) => {
    const fresh = prepareIdentity(identity, 0);
    if (seen.has(fresh.issuerId)) throw new KakuinError('KAKUIN_E_CONFIG', `two OCSP signing identities for issuer ${JSON.stringify(fresh.issuerId)}`);
    seen.add(fresh.issuerId);
    const old = previous?.get(fresh.issuerId);
    if (old === undefined) return fresh;
    const epoch = sameResponder(old, fresh) ? old.epoch : (old.epoch + 1) & 0xff;
    return Object.freeze({ ...fresh, epoch });
  });
}
