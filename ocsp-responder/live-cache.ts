/**
 * Live-signed responses worth keeping: those without a nonce for a known certificate whose CertID
 * is not the pre-signed SHA-1 shape (SHA-256, SHA-384, SHA-512, or SHA-1 without NULL parameters).
 * Keyed by (issuer, serial), then by the client's CertID bytes (each client gets its own bytes
 * back), least recently used evicted past `maxCertificates`; a certificate's copies are dropped
 * whenever its pre-signed response is replaced (status change, refresh, rollover).
 */
import { pastHalfLife } from './cached-response.js';

export class LiveResponseCache {
  readonly maxCertificates: number;
  readonly #byCertificate = new Map<string, Map<string, Buffer>>();

  constructor(maxCertificates = 10_000) {
    if (!Number.isInteger(maxCertificates) || maxCertificates < 0) throw new RangeError('maxCertificates must be a non-negative integer');
    this.maxCertificates = maxCertificates;
  }

  static key(issuerId: string, serialHex: string): string {
    return `${issuerId}\u0000${serialHex}`;
  }

  /** A copy still within the first half of its validity, refreshed as most recently used. */
  get(issuerId: string, serialHex: string, certIdDer: Buffer, nowSeconds: number): Buffer | undefined {
    if (this.#byCertificate.size === 0) return undefined;
    const key = LiveResponseCache.key(issuerId, serialHex);
    const variants = this.#byCertificate.get(key);
    if (variants === undefined) return undefined;
    const entry = variants.get(certIdDer.toString('latin1'));
    if (entry === undefined) return undefined;
    if (pastHalfLife(entry, nowSeconds)) {
      variants.delete(certIdDer.toString('latin1'));
      return undefined;
    }
    this.#byCertificate.delete(key);
    this.#byCertificate.set(key, variants);
    return entry;
  }

  set(issuerId: string, serialHex: string, certIdDer: Buffer, entry: Buffer): void {
    if (this.maxCertificates === 0) return;
    const key = LiveResponseCache.key(issuerId, serialHex);
    let variants = this.#byCertificate.get(key);
    if (variants === undefined) {
      variants = new Map();
    } else {
      this.#byCertificate.delete(key);
    }
    if (variants.size >= 8) variants.clear(); // a few CertID shapes per certificate exist; more is someone playing
    variants.set(certIdDer.toString('latin1'), entry);
    this.#byCertificate.set(key, variants);
    while (this.#byCertificate.size > this.maxCertificates) {
      const oldest = this.#byCertificate.keys().next().value as string;
      this.#byCertificate.delete(oldest);
    }
  }

  invalidate(issuerId: string, serialHex: string): void {
    if (this.#byCertificate.size !== 0) this.#byCertificate.delete(LiveResponseCache.key(issuerId, serialHex));
  }

  clear(): void {
    this.#byCertificate.clear();
  }

  get size(): number {
    return this.#byCertificate.size;
  }
}
