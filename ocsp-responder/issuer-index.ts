/**
 * Which identity answers a CertID: matched on (hash algorithm, issuerNameHash, issuerKeyHash)
 * over every identity and each of SHA-1, SHA-256, SHA-384 and SHA-512 (RFC 6960 §4.1.1). A CertID
 * that matches none gets `unauthorized` (RFC 6960 §2.3: the responder is not authoritative for it).
 *
 * A handful of issuers is expected, so a linear scan comparing digests in place beats a keyed map
 * (no key string to build per request).
 */
import { encodeCertId, type OcspCertId } from '../pkix/index.js';
import type { CertIdHashes, PreparedIdentity } from './signing-identity.js';

interface IndexEntry extends CertIdHashes {
  identity: PreparedIdentity;
}

/**
 * The AlgorithmIdentifier of the pre-signed CertIDs: SHA-1 with NULL parameters, as
 * `encodeCertId` (and OpenSSL) write it. Offset 2 of a CertID whose length fits one octet.
 */
const SHA1_ALGORITHM_DER: Buffer = (() => {
  const sample = encodeCertId('sha1', Buffer.from([0x30, 0x00]), Buffer.from([0x04]), Buffer.from([0x01]));
  return sample.subarray(2, 2 + 2 + sample[3]);
})();

export class IssuerIndex {
  readonly #entries: IndexEntry[] = [];
  readonly #byId = new Map<string, PreparedIdentity>();

  constructor(identities: readonly PreparedIdentity[]) {
    for (const identity of identities) {
      this.#byId.set(identity.issuerId, identity);
      for (const h of identity.hashes) this.#entries.push({ ...h, identity });
    }
  }

  /** The identity that answers for `certId`, or undefined (→ unauthorized). */
  find(certId: OcspCertId): PreparedIdentity | undefined {
    const entries = this.#entries;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.hashAlgorithm === certId.hashAlgorithm && e.issuerKeyHash.equals(certId.issuerKeyHash) && e.issuerNameHash.equals(certId.issuerNameHash)) {
        return e.identity;
      }
    }
    return undefined;
  }

  get(issuerId: string): PreparedIdentity | undefined {
    return this.#byId.get(issuerId);
  }

  list(): PreparedIdentity[] {
    return [...this.#byId.values()];
  }

  get size(): number {
    return this.#byId.size;
  }
}

/**
 * True when the CertID has exactly the shape of the pre-signed ones (SHA-1, NULL parameters; RFC
 * 5019 §2.1.1), so the stored response echoes the client's own CertID bytes. Another shape (absent
 * parameters, another hash) is answered with a response built on the client's bytes.
 */
export function hasPresignedShape(certId: OcspCertId): boolean {
  const raw = certId.rawDer;
  return certId.hashAlgorithm === 'sha1' && raw[1] < 0x80 && raw.length > 2 + SHA1_ALGORITHM_DER.length
    && raw.compare(SHA1_ALGORITHM_DER, 0, SHA1_ALGORITHM_DER.length, 2, 2 + SHA1_ALGORITHM_DER.length) === 0;
}
