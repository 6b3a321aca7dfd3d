/**
 * `ocsp` status source: ask an RFC 6960 responder (kakuin's own, or a third party such as
 * `openssl ocsp`) per device certificate.
 *
 * Answers are cached per certificate and reused for at most `cacheMaxAgeMs` and never past their
 * nextUpdate (RFC 5019 §6.2 caching follows nextUpdate); concurrent lookups of one certificate
 * share one request. An answer keeps the status known for `statusGraceMs` (and never past
 * nextUpdate) when the responder stops answering; after that the gateway fails closed.
 * Connected certificates are re-asked every `recheckIntervalMs`, so a revocation closes them.
 */
import { BoundedMap } from './record-cache.js';
import type { DeviceIdentity } from './device-identity.js';
import { OcspClient, type OcspAnswer } from './ocsp-client.js';
import type { DeviceIssuerConfig, GatewayLogger } from './options.js';
import {
  describeError, GOOD, throttledWarn, type CertificateStatusSource, type CertificateVerdict, type GatewayReadiness, type StatusEvents,
} from './status-source.js';

export interface OcspStatusOptions {
  url: URL;
  caPem?: string[];
  cacheMaxAgeMs: number;
  recheckIntervalMs: number;
  timeoutMs: number;
  maxConcurrent: number;
  statusGraceMs: number;
  issuers: readonly DeviceIssuerConfig[];
  events: StatusEvents;
  logger: GatewayLogger;
  now: () => number;
}

interface CachedAnswer extends OcspAnswer {
  fetchedAt: number;
  reusableUntil: number;
  knownUntil: number;
}

function verdictOf(a: CachedAnswer): CertificateVerdict {
  switch (a.status) {
    case 'good': return GOOD;
    case 'unknown': return { ok: false, reason: 'the OCSP responder does not know the certificate' };
    default: return { ok: false, reason: `certificate ${a.status} (OCSP)` };
  }
}

export class OcspStatusView implements CertificateStatusSource {
  readonly kind = 'ocsp' as const;
  private readonly client: OcspClient;
  private readonly cache = new BoundedMap<string, CachedAnswer>(100_000);
  private readonly inFlight = new Map<string, Promise<CachedAnswer>>();
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private lastSuccessAt: number | undefined;
  private lastFailureAt: number | undefined;
  private lastFailure: string | undefined;
  private readonly warnFailure: (fields: Record<string, unknown>) => void;

  constructor(private readonly o: OcspStatusOptions) {
    this.client = new OcspClient({
      url: o.url, ...(o.caPem !== undefined && { caPem: o.caPem }), timeoutMs: o.timeoutMs, issuers: o.issuers, now: o.now,
      maxAgeWithoutNextUpdateMs: o.statusGraceMs,
    });
    this.warnFailure = throttledWarn(o.logger, 'gateway got no usable OCSP answer');
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  async poke(): Promise<void> {}

  check(id: DeviceIdentity): CertificateVerdict | Promise<CertificateVerdict> {
    const now = this.o.now();
    const hit = this.cache.get(id.certKey);
    if (hit !== undefined && now < hit.reusableUntil) return verdictOf(hit);
    return this.fetch(id).then(verdictOf, (e: unknown) => {
      const cached = this.cache.get(id.certKey);
      if (cached !== undefined && this.o.now() < cached.knownUntil) return verdictOf(cached);
      return { ok: false, reason: `no usable OCSP answer: ${describeError(e)}`, stale: true };
    });
  }

  isFresh(id: DeviceIdentity): boolean {
    const hit = this.cache.get(id.certKey);
    return hit !== undefined && this.o.now() < hit.knownUntil;
  }

  recheck(connected: Iterable<DeviceIdentity>): void {
    const due = this.o.now() - this.o.recheckIntervalMs / 2;
    const seen = new Set<string>();
    for (const id of connected) {
      if (seen.has(id.certKey) || this.inFlight.has(id.certKey)) continue;
      seen.add(id.certKey);
      const hit = this.cache.get(id.certKey);
      if (hit !== undefined && hit.fetchedAt > due) continue;
      this.fetch(id).catch(() => { /* counted and logged in fetch; the cached answer's grace decides */ });
    }
  }

  readiness(): GatewayReadiness {
    const now = this.o.now();
    const ocspLagMs = this.lastSuccessAt === undefined ? undefined : now - this.lastSuccessAt;
    const failing = this.lastFailureAt !== undefined && (this.lastSuccessAt === undefined || this.lastFailureAt > this.lastSuccessAt);
    const ready = !failing || (ocspLagMs !== undefined && ocspLagMs < this.o.statusGraceMs);
    return {
      ready, statusSource: 'ocsp', statusGraceMs: this.o.statusGraceMs,
      ...(ocspLagMs !== undefined && { ocspLagMs }),
      ...(!ready && { reason: `OCSP responder failing: ${this.lastFailure ?? 'unknown'}` }),
    };
  }

  /** One request per certificate at a time; at most `maxConcurrent` requests in flight. */
  private fetch(id: DeviceIdentity): Promise<CachedAnswer> {
    const pending = this.inFlight.get(id.certKey);
    if (pending !== undefined) return pending;
    const p = this.limited(() => this.client.query(id)).then((answer) => {
      const fetchedAt = this.o.now();
      const until = (ms: number) => Math.min(fetchedAt + ms, answer.nextUpdate ?? Number.POSITIVE_INFINITY);
      const entry: CachedAnswer = { ...answer, fetchedAt, reusableUntil: until(this.o.cacheMaxAgeMs), knownUntil: until(this.o.statusGraceMs) };
      const before = this.cache.get(id.certKey);
      this.cache.set(id.certKey, entry);
      this.lastSuccessAt = fetchedAt;
      // A certificate that was good may have connections open: close them. (A first answer concerns
      // only the connection being checked, which the caller refuses itself.)
      if (entry.status !== 'good' && before?.status === 'good') this.o.events.certificateBad(id.certKey, `certificate ${entry.status} (OCSP)`);
      return entry;
    }, (e: unknown) => {
      this.lastFailureAt = this.o.now();
      this.lastFailure = describeError(e);
      this.warnFailure({ certKey: id.certKey, error: this.lastFailure, url: this.o.url.href });
      throw e;
    }).finally(() => this.inFlight.delete(id.certKey));
    this.inFlight.set(id.certKey, p);
    return p;
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    while (this.active >= this.o.maxConcurrent) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
