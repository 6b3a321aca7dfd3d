/**
 * The pre-signed responses: one per certificate, SHA-1 CertID (RFC 5019 §2.1.1: "clients MUST use
 * SHA1 as the hashing algorithm for the CertID.issuerNameHash and the CertID.issuerKeyHash
 * values"), kept in memory per issuer and serial, and in the registry so a restart serves at once.
 *
 * - start: loads the stored responses, then reconciles with the registry's certificate statuses
 *   (a certificate with no response, a response stating an old status, one past half its validity
 *   or signed by an older responder certificate gets re-signed), then follows the feed from the
 *   sequence number read before the reconciliation (entries in between are applied twice: harmless).
 * - the feed: every certificate entry re-signs that certificate's response with the entry's status,
 *   stores it and swaps it into memory; `waitForSeq` lets the revocation API wait for that.
 * - refresh: a timer re-signs every response at its refresh point, between a quarter and half of
 *   its validity by serial (cached-response.ts refreshDue: spread, not all in one sweep; RFC 6960
 *   §4.2.2.1: a response past nextUpdate must not be relied on) and every response of a rolled-over responder.
 * All re-signing goes through one SigningQueue in small batches (DESIGN.md "The event loop").
 * The responses live in one ResponseArena (response-arena.ts): no object per response, and the
 * responder certificate each of them carries is kept once per identity, not once per response.
 */
import type { OcspCertStatus } from '../pkix/index.js';
import type { FeedEntry, StoredOcspResponse } from '../registry/port.js';
import { certsTailFor, entryEpoch, entryStates, entryStatus, internCertsTail, KIND_CACHEABLE, pastHalfLife, refreshDue } from './cached-response.js';
import { statusFromFeedEntry, statusFromParts } from './cert-status.js';
import type { FeedFactory, FeedSubscription } from './feed.js';
import type { IssuerIndex } from './issuer-index.js';
import { describeError, type Logger } from './logger.js';
import type { OcspRegistryView } from './registry-view.js';
import { ResponseArena, type ResponseArenaOptions } from './response-arena.js';
import type { ResponseSigner } from './response-signer.js';
import type { PreparedIdentity } from './signing-identity.js';
import { SigningQueue } from './signing-queue.js';
import { usableStoredResponse } from './stored-response.js';

export interface PresignedResponsesOptions {
  registry: OcspRegistryView;
  signer: ResponseSigner;
  /** The identities in force (they change on rollover). */
  identities: () => IssuerIndex;
  feed: FeedFactory;
  logger: Logger;
  /** Responses signed (and stored) per batch. Default 128 (about 7 ms of P-256 signing). */
  batchSize?: number;
  /** How often to look for responses due for refresh. Default validity / 32 (the due points are spread over a quarter of it), at most 10 minutes. */
  refreshIntervalMs?: number;
  /** Store what is signed with putOcspResponses (default true; false for a read-only registry). */
  persist?: boolean;
  /** Called for each response replaced in memory (live-signed copies of it must go). */
  onReplaced?: (issuerId: string, serialHex: string) => void;
  /** Called when the cache reflects the feed up to `seq`. */
  onFeedApplied?: (seq: number) => void;
  /** Arena tuning (tests use small chunks). */
  arena?: ResponseArenaOptions;
}

interface PendingItem {
  serialHex: string;
  status: OcspCertStatus;
}

interface Waiter {
  seq: number;
  resolve: (reached: boolean) => void;
  timer: NodeJS.Timeout;
}

const yieldToIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class PresignedResponses {
  readonly #o: PresignedResponsesOptions;
  readonly #batchSize: number;
  readonly #refreshIntervalMs: number;
  readonly #arena: ResponseArena;
  readonly #tailIds = new WeakMap<PreparedIdentity, number>();
  readonly #queue = new SigningQueue();
  #waiters: Waiter[] = [];
  #feed: FeedSubscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  #appliedSeq = 0;
  #generation = 0;
  #signedTotal = 0;
  #persistFailures = 0;
  #lastRefreshAt: number | undefined;
  #sweeping = false;
  #sweepAgain = false;
  #started = false;
  #loaded = false;
  #stopped = false;

  constructor(options: PresignedResponsesOptions) {
    this.#o = options;
    this.#batchSize = options.batchSize ?? 128;
    if (!Number.isInteger(this.#batchSize) || this.#batchSize < 1 || this.#batchSize > 10_000) throw new RangeError('batchSize must be 1 to 10000');
    this.#refreshIntervalMs = options.refreshIntervalMs ?? Math.min(options.signer.validityMs / 32, 600_000);
    if (!(this.#refreshIntervalMs >= 10)) throw new RangeError('refreshIntervalMs must be at least 10');
    this.#arena = new ResponseArena(options.arena);
  }

  /** The hot path: the response for one certificate of one issuer, or undefined. */
  get(issuerId: string, serialHex: string): Buffer | undefined {
    return this.#arena.get(issuerId, serialHex);
  }

  get size(): number {
    return this.#arena.size;
  }

  /** Entries, chunks and bytes of the arena (health, benchmarks). */
  arenaStats(): ReturnType<ResponseArena['stats']> {
    return this.#arena.stats();
  }

  /** The feed sequence number the cache reflects. */
  get appliedSeq(): number {
    return this.#appliedSeq;
  }

  /** Increases with every batch swapped in (live signing uses it to avoid caching what a batch replaced). */
  get generation(): number {
    return this.#generation;
  }

  stats(): Record<string, number | string | null> {
    const feedAt = this.#feed?.lastSuccessAt;
    const arena = this.#arena.stats();
    return {
      responses: this.size,
      arenaBytes: arena.allocatedBytes,
      arenaDeadBytes: arena.deadBytes,
      appliedSeq: this.#appliedSeq,
      feedLastSuccessAt: feedAt === undefined ? null : new Date(feedAt).toISOString(),
      signedTotal: this.#signedTotal,
      pendingBatches: this.#queue.pending,
      persistFailures: this.#persistFailures,
      lastRefreshAt: this.#lastRefreshAt === undefined ? null : new Date(this.#lastRefreshAt).toISOString(),
    };
  }

  /** Milliseconds since the feed was last read, or undefined before the first read. */
  feedAgeMs(now: number): number | undefined {
    const at = this.#feed?.lastSuccessAt;
    return at === undefined ? undefined : now - new Date(at).getTime();
  }

  /** Load, reconcile, then follow the feed and refresh. Resolves when the cache is complete. */
  async start(): Promise<void> {
    if (this.#started) throw new Error('PresignedResponses already started');
    this.#started = true;
    const seq0 = await this.#o.registry.latestFeedSeq();
    // The status walks run beside the load when the registry view can (worker-walks.ts, a remote
    // store): rows read before the arena is loaded are kept until it is. A synchronous adapter
    // finishes the load inside this call, so its statuses are compared as they come.
    const identities = this.#o.identities().list();
    const loading = this.#load();
    loading.catch(() => undefined); // awaited below
    await yieldToIo();
    const walks = identities.map((identity) => this.#statusesOf(identity));
    for (const w of walks) w.catch(() => undefined); // awaited below; not unhandled if the load fails first
    await loading;
    for (let k = 0; k < identities.length; k++) {
      if (this.#stopped) return;
      await this.#reconcileFrom(identities[k], await walks[k]);
    }
    if (this.#stopped) return;
    this.#advance(seq0);
    this.#feed = this.#o.feed(seq0, { onEntries: (entries) => this.#onEntries(entries), onError: (e) => this.#feedError(e) });
    this.#feed.start();
    this.#timer = setInterval(() => void this.refresh(), this.#refreshIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#feed?.stop();
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.#waiters = [];
    await this.#queue.whenIdle();
    this.#arena.close();
  }

  /**
   * Resolves true once the cache reflects every feed entry up to `seq` (so this process answers
   * accordingly), false after `timeoutMs` or when stopped.
   */
  waitForSeq(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.#appliedSeq >= seq) return Promise.resolve(true);
    if (this.#stopped) return Promise.resolve(false);
    this.#feed?.poke();
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq, resolve,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve(false);
        }, Math.max(0, timeoutMs)),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Resolves once no batch is queued or running (tests, shutdown). */
  whenIdle(): Promise<void> {
    return this.#queue.whenIdle();
  }

  /**
   * After a change of identities: responses of removed issuers go, added issuers are reconciled,
   * and every response signed by an older responder certificate is re-signed.
   */
  async identitiesChanged(added: readonly PreparedIdentity[], removedIssuerIds: readonly string[]): Promise<void> {
    for (const id of removedIssuerIds) this.#arena.deleteIssuer(id);
    if (!this.#started || this.#stopped) return;
    for (const identity of added) await this.#reconcile(identity);
    await this.refresh();
  }

  /**
   * Re-signs every response past half its validity or signed by an older responder, in batches.
   * Returns how many were re-signed. A call while a sweep runs makes that sweep go round again.
   */
  async refresh(): Promise<number> {
    if (this.#sweeping) {
      this.#sweepAgain = true;
      return 0;
    }
    this.#sweeping = true;
    let count = 0;
    try {
      do {
        this.#sweepAgain = false;
        for (const identity of this.#o.identities().list()) {
          const layout = this.#arena.layout;
          let batch: string[] = [];
          const nowSeconds = this.#nowSeconds();
          const stale = (serialHex: string, entry: Buffer): void => {
            if (entryEpoch(entry) !== identity.epoch || refreshDue(entry, serialHex, nowSeconds)) batch.push(serialHex);
          };
          // Slot by slot, 8192 slots at a time between yields; a table rebuilt meanwhile (new
          // certificates) renumbers the slots, so the sweep goes round again.
          for (let slot = 0; slot >= 0;) {
            if (this.#stopped) return count;
            if (this.#arena.layout !== layout) {
              this.#sweepAgain = true;
              break;
            }
            slot = this.#arena.scan(identity.issuerId, slot, 8192, stale);
            while (batch.length >= this.#batchSize || (slot < 0 && batch.length > 0)) {
              const serials = batch.slice(0, this.#batchSize);
              batch = batch.slice(this.#batchSize);
              count += await this.#queue.run(() => this.#resignFromCache(identity.issuerId, serials), 'background');
            }
            if (slot >= 0) await yieldToIo();
          }
        }
      } while (this.#sweepAgain && !this.#stopped);
      this.#lastRefreshAt = this.#o.signer.now();
    } catch (e) {
      this.#o.logger.error('OCSP response refresh failed; it is retried at the next interval', { cause: describeError(e) });
    } finally {
      this.#sweeping = false;
    }
    return count;
  }

  #nowSeconds(): number {
    return Math.floor(this.#o.signer.now() / 1000);
  }

  /** The certs tail every response of this identity ends with (its responder certificate), interned once. */
  #tailId(identity: PreparedIdentity): number {
    let id = this.#tailIds.get(identity);
    if (id === undefined) {
      id = internCertsTail(certsTailFor(identity.responderCertificateDer));
      this.#tailIds.set(identity, id);
    }
    return id;
  }

  /** Stored responses still usable as they are: by a current responder, SHA-1 CertID, not expired. */
  async #load(): Promise<void> {
    const index = this.#o.identities();
    const nowMs = this.#o.signer.now();
    let skipped = 0;
    await this.#o.registry.forEachOcspResponse(undefined, (r: StoredOcspResponse) => {
      const identity = index.get(r.issuerId);
      if (identity === undefined) return;
      const usable = usableStoredResponse(r, identity, nowMs);
      if (usable === undefined) {
        skipped++;
        return;
      }
      this.#arena.set(r.issuerId, usable.serialHex, usable.response, identity.epoch, KIND_CACHEABLE, this.#tailId(identity), true);
    });
    this.#loaded = true;
    if (skipped > 0) this.#o.logger.info('stored OCSP responses not reusable (expired or by an older responder) will be re-signed', { count: skipped });
  }

  /** Re-sign, in the background, every certificate of the issuer whose response is missing or states an old status. */
  async #reconcile(identity: PreparedIdentity): Promise<void> {
    await this.#reconcileFrom(identity, await this.#statusesOf(identity));
  }

  /**
   * The certificate statuses of the issuer that may need a new response: once the arena is loaded,
   * only those it does not state; before (the load still running beside this walk), all of them.
   */
  async #statusesOf(identity: PreparedIdentity): Promise<{ serials: string[]; statuses: OcspCertStatus[] }> {
    const serials: string[] = [];
    const statuses: OcspCertStatus[] = [];
    const nowSeconds = this.#nowSeconds();
    await this.#o.registry.forEachCertificateStatus(identity.issuerId, (serialHex, status, revokedAtMs, reason, invalidityDateMs) => {
      let st: OcspCertStatus;
      try {
        st = statusFromParts(serialHex, status, revokedAtMs, reason, invalidityDateMs);
      } catch (e) {
        this.#o.logger.error('certificate status cannot be stated', { serialHex, cause: describeError(e) });
        return;
      }
      if (this.#loaded && this.#states(identity, serialHex, st, nowSeconds)) return;
      serials.push(serialHex);
      statuses.push(st);
    });
    return { serials, statuses };
  }

  /** True when the arena holds a fresh response of the identity in force that states `st`. */
  #states(identity: PreparedIdentity, serialHex: string, st: OcspCertStatus, nowSeconds: number): boolean {
    const entry = this.#arena.get(identity.issuerId, serialHex);
    return entry !== undefined && entryEpoch(entry) === identity.epoch && entryStates(entry, st) && !pastHalfLife(entry, nowSeconds);
  }

  async #reconcileFrom(identity: PreparedIdentity, all: { serials: string[]; statuses: OcspCertStatus[] }): Promise<void> {
    const nowSeconds = this.#nowSeconds();
    const serials: string[] = [];
    const statuses: OcspCertStatus[] = [];
    for (let i = 0; i < all.serials.length; i++) {
      if (this.#states(identity, all.serials[i], all.statuses[i], nowSeconds)) continue;
      serials.push(all.serials[i]);
      statuses.push(all.statuses[i]);
    }
    for (let i = 0; i < serials.length && !this.#stopped; i += this.#batchSize) {
      const items: PendingItem[] = [];
      for (let j = i; j < Math.min(serials.length, i + this.#batchSize); j++) items.push({ serialHex: serials[j], status: statuses[j] });
      await this.#queue.run(() => this.#signAndSwap(identity.issuerId, items), 'background');
    }
  }

  async #onEntries(entries: FeedEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const index = this.#o.identities();
    const groups = new Map<string, Map<string, OcspCertStatus>>();
    for (const entry of entries) {
      let status: OcspCertStatus | undefined;
      try {
        status = statusFromFeedEntry(entry);
      } catch (e) {
        this.#o.logger.error('feed entry cannot be stated', { seq: entry.seq, cause: describeError(e) });
        continue;
      }
      if (status === undefined || index.get(entry.issuerId!) === undefined) continue;
      let g = groups.get(entry.issuerId!);
      if (g === undefined) {
        g = new Map();
        groups.set(entry.issuerId!, g);
      }
      g.set(entry.serialHex!.toUpperCase(), status); // a later entry for the same certificate wins
    }
    for (const [issuerId, g] of groups) {
      const items: PendingItem[] = [];
      for (const [serialHex, status] of g) items.push({ serialHex, status });
      for (let i = 0; i < items.length; i += this.#batchSize) {
        const batch = items.slice(i, i + this.#batchSize);
        await this.#queue.run(() => this.#signAndSwap(issuerId, batch), 'urgent');
      }
    }
    this.#advance(entries[entries.length - 1].seq);
  }

  #advance(seq: number): void {
    if (seq <= this.#appliedSeq) return;
    this.#appliedSeq = seq;
    if (this.#waiters.length > 0) {
      const still: Waiter[] = [];
      for (const w of this.#waiters) {
        if (w.seq <= seq) {
          clearTimeout(w.timer);
          w.resolve(true);
        } else {
          still.push(w);
        }
      }
      this.#waiters = still;
    }
    this.#o.onFeedApplied?.(seq);
  }

  #feedError(e: unknown): void {
    this.#o.logger.error('reading the revocation feed failed; retrying', { cause: describeError(e) });
  }

  /** Runs inside the queue: re-signs with the status each response states now. */
  async #resignFromCache(issuerId: string, serials: string[]): Promise<number> {
    const identity = this.#o.identities().get(issuerId);
    if (identity === undefined) return 0;
    const nowSeconds = this.#nowSeconds();
    const items: PendingItem[] = [];
    for (const serialHex of serials) {
      const entry = this.#arena.get(issuerId, serialHex);
      if (entry === undefined) continue;
      if (entryEpoch(entry) === identity.epoch && !refreshDue(entry, serialHex, nowSeconds)) continue; // the feed re-signed it meanwhile
      items.push({ serialHex, status: entryStatus(entry) });
    }
    if (items.length > 0) await this.#signAndSwap(issuerId, items);
    return items.length;
  }

  /** Runs inside the queue: signs with the identity in force now, swaps into memory, then stores. */
  async #signAndSwap(issuerId: string, items: PendingItem[]): Promise<void> {
    const identity = this.#o.identities().get(issuerId);
    if (identity === undefined || items.length === 0) return;
    const signed = await this.#o.signer.signEach(identity, items);
    if (this.#o.identities().get(issuerId) === undefined) return; // the issuer went while this batch was signed
    const tailId = this.#tailId(identity);
    for (let i = 0; i < items.length; i++) {
      this.#arena.set(issuerId, items[i].serialHex, signed[i], identity.epoch, KIND_CACHEABLE, tailId);
      this.#o.onReplaced?.(issuerId, items[i].serialHex);
    }
    this.#generation++;
    this.#signedTotal += items.length;
    if (this.#o.persist === false) return;
    try {
      await this.#o.registry.putOcspResponses(signed.map((s, i) => ({
        issuerId, serialHex: items[i].serialHex, der: s.der, thisUpdate: new Date(s.thisUpdateMs), nextUpdate: new Date(s.nextUpdateMs),
      })));
    } catch (e) {
      // Memory already answers correctly; the next start reconciles what the store missed.
      this.#persistFailures++;
      this.#o.logger.warn('storing pre-signed OCSP responses failed', { issuerId, count: items.length, cause: describeError(e) });
    }
  }
}
