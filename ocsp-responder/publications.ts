/**
 * The other signed objects of the plain-HTTP listener (DESIGN.md "Identities, roles and URLs"):
 * each issuer's latest full and delta CRL (`/crl/{issuer}.crl`, `/crl/{issuer}-delta.crl`, RFC 5280
 * §5, written by the CA side) and its certificate (`/ca/{issuer}.cer`, the caIssuers target, RFC
 * 5280 §4.2.2.1). Kept in memory with their caching headers and read again from the registry once
 * older than a short TTL (stale-while-revalidate: a request never waits on a refresh once something
 * is cached), so a new CRL shows within `crlTtlMs` and a flood of requests costs no registry reads.
 */
import { createHash } from 'node:crypto';
import { hasCode } from '../errors/index.js';
import type { CrlRecord } from '../registry/port.js';
import { describeError, type Logger } from './logger.js';
import type { OcspRegistryView } from './registry-view.js';
import { httpDate } from './http-headers.js';

export interface Publication {
  der: Buffer;
  /** Quoted hex SHA-1 of the DER. */
  etag: string;
  lastModified: string;
  /** Last-Modified in seconds since 1970 (CRLs: thisUpdate), for If-Modified-Since. */
  lastModifiedSeconds: number;
  /** CRLs: which kind, so the listener bounds max-age by when the next one of that kind can appear. */
  kind?: 'full' | 'delta';
  /** CRLs: nextUpdate as an HTTP date; undefined for certificates. */
  expires?: string;
  /** CRLs: nextUpdate, seconds since 1970. */
  nextUpdateSeconds?: number;
  /** CRLs: the CRL number (RFC 5280 §5.2.3). */
  crlNumber?: bigint;
}

export interface PublicationsOptions {
  registry: Pick<OcspRegistryView, 'getLatestCrl' | 'getIssuer'>;
  logger: Logger;
  /** How long a CRL read is reused before the registry is asked again. Default 1000 ms. */
  crlTtlMs?: number;
  /** Same for issuer certificates. Default 60 s. */
  certificateTtlMs?: number;
  /** Entries kept (misses included), oldest dropped first. Default 256. */
  maxEntries?: number;
  now?: () => number;
}

interface Slot {
  value: Publication | null;
  fetchedAt: number;
  refreshing?: Promise<Publication | undefined>;
}

/** Issuer ids as kakuin makes them; anything else is a 404 without a registry read. */
const ISSUER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class Publications {
  readonly #o: PublicationsOptions;
  readonly #slots = new Map<string, Slot>();
  readonly #now: () => number;

  constructor(options: PublicationsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  static validIssuerId(id: string): boolean {
    return ISSUER_ID.test(id);
  }

  /** The latest CRL of that kind, or undefined when there is none. Rejects only when nothing is cached and the registry fails. */
  crl(issuerId: string, kind: 'full' | 'delta'): Publication | undefined | Promise<Publication | undefined> {
    if (!ISSUER_ID.test(issuerId)) return undefined;
    return this.#get(`crl:${kind}:${issuerId}`, this.#o.crlTtlMs ?? 1000, async () => {
      const crl = await this.#o.registry.getLatestCrl(issuerId, kind);
      return crl === undefined ? null : crlPublication(crl);
    });
  }

  /**
   * A CRL this process has just stored (CrlPublisher's `published` hook): served from now on, so a
   * forced CRL is what the URL answers the moment the API call returns, not one TTL later. An older
   * number never replaces a newer one (two publishers racing on one registry).
   */
  crlPublished(crl: CrlRecord): void {
    const key = `crl:${crl.kind}:${crl.issuerId}`;
    const slot = this.#slots.get(key);
    const value = crlPublication(crl);
    if (slot !== undefined) {
      if (slot.value !== null && slot.value.crlNumber !== undefined && slot.value.crlNumber > crl.number) return;
      slot.value = value;
      slot.fetchedAt = this.#now();
      return;
    }
    if (this.#slots.size >= (this.#o.maxEntries ?? 256)) this.#slots.delete(this.#slots.keys().next().value as string);
    this.#slots.set(key, { value, fetchedAt: this.#now() });
  }

  /** The issuer's certificate, or undefined when there is no such issuer. */
  issuerCertificate(issuerId: string): Publication | undefined | Promise<Publication | undefined> {
    if (!ISSUER_ID.test(issuerId)) return undefined;
    return this.#get(`cer:${issuerId}`, this.#o.certificateTtlMs ?? 60_000, async () => {
      try {
        const issuer = await this.#o.registry.getIssuer(issuerId);
        const lastModifiedSeconds = Math.floor(issuer.createdAt.getTime() / 1000);
        return { der: issuer.certificateDer, etag: etagOf(issuer.certificateDer), lastModified: httpDate(lastModifiedSeconds), lastModifiedSeconds };
      } catch (e) {
        if (hasCode(e, 'KAKUIN_E_ISSUER_NOT_FOUND')) return null;
        throw e;
      }
    });
  }

  #get(key: string, ttlMs: number, fetch: () => Promise<Publication | null>): Publication | undefined | Promise<Publication | undefined> {
    const slot = this.#slots.get(key);
    if (slot !== undefined) {
      if (this.#now() - slot.fetchedAt < ttlMs) return slot.value ?? undefined;
      if (slot.value !== null) {
        if (slot.refreshing === undefined) void this.#refresh(key, slot, fetch).catch(() => undefined);
        return slot.value;
      }
      return slot.refreshing ?? this.#refresh(key, slot, fetch);
    }
    const fresh: Slot = { value: null, fetchedAt: -Infinity };
    if (this.#slots.size >= (this.#o.maxEntries ?? 256)) this.#slots.delete(this.#slots.keys().next().value as string);
    this.#slots.set(key, fresh);
    return this.#refresh(key, fresh, fetch);
  }

  #refresh(key: string, slot: Slot, fetch: () => Promise<Publication | null>): Promise<Publication | undefined> {
    slot.refreshing = fetch().then(
      (value) => {
        slot.value = value;
        slot.fetchedAt = this.#now();
        slot.refreshing = undefined;
        return value ?? undefined;
      },
      (e: unknown) => {
        slot.refreshing = undefined;
        this.#o.logger.warn('reading a CRL or issuer certificate from the registry failed', { key, cause: describeError(e) });
        if (slot.value !== null) return slot.value; // keep serving the last good one
        this.#slots.delete(key);
        throw e;
      },
    );
    return slot.refreshing;
  }
}

function crlPublication(crl: CrlRecord): Publication {
  const nextUpdateSeconds = Math.floor(crl.nextUpdate.getTime() / 1000);
  const lastModifiedSeconds = Math.floor(crl.thisUpdate.getTime() / 1000);
  return {
    der: crl.der, etag: etagOf(crl.der), lastModified: httpDate(lastModifiedSeconds), lastModifiedSeconds, kind: crl.kind,
    expires: httpDate(nextUpdateSeconds), nextUpdateSeconds, crlNumber: crl.number,
  };
}

/**
 * A strong validator (RFC 9110 §8.8.3): the SHA-1 of the DER. One CRL number is signed once, so its
 * ETag never changes, and pollers (If-None-Match) see a new one exactly when a new CRL exists.
 */
function etagOf(der: Buffer): string {
  return `"${createHash('sha1').update(der).digest('hex')}"`;
}
