/**
 * Building the to-be-signed body of a CRL from the registry, streaming: rows go straight from the
 * registry's iterator into one growing buffer (pkix's RevokedEntriesWriter), so a CRL with a
 * million entries needs no object per entry. Runs in a worker thread (crl-worker.ts) or inline.
 */
import { encodeTbsCertList, RevokedEntriesWriter, type SignatureAlgorithmName } from '../../pkix/index.js';
import type { Registry } from '../../registry/port.js';
import type { FullCrlEntries } from './full-crl-entries.js';

/** Everything a worker needs to build one CRL body; structured-clone friendly. */
export interface CrlBodyRequest {
  issuerId: string;
  issuerNameDer: Uint8Array;
  authorityKeyId: Uint8Array;
  signatureAlgorithm: SignatureAlgorithmName;
  thisUpdateMs: number;
  nextUpdateMs: number;
  /** bigint as a decimal string (structured clone keeps bigint, but strings log better). */
  crlNumber: string;
  /** Delta CRLs: the base full CRL's number and the feed seq it reflects. */
  delta?: { baseCrlNumber: string; changedAfterSeq: number };
  freshestCrlUrls?: string[];
  /** RFC 5280 §5.2.5: the distribution point of the certificates this CRL covers (its delta: the base's). */
  issuingDistributionPointUrl?: string;
  /** Full CRLs: the feed seq read before the build (the kept entries are brought up to it). */
  feedSeq?: number;
  /** Full CRLs: walk every revoked row rather than append to the kept entries (the periodic rebuild). */
  walk?: boolean;
}

export interface CrlBody {
  tbs: Buffer;
  entries: number;
  /** Entries encoded by this build (all of them unless appended to kept ones). */
  encoded?: number;
}

/**
 * One CRL body. With `kept` (the worker's in-memory entries), a full CRL is the kept entries plus
 * the changes since the previous build; without it, or for a delta, a walk of the registry.
 */
export async function buildCrlBody(registry: Pick<Registry, 'forEachCrlEntry' | 'latestFeedSeq'>, req: CrlBodyRequest, kept?: FullCrlEntries): Promise<CrlBody> {
  if (!req.delta && kept && req.feedSeq !== undefined) {
    const full = await kept.entries(registry, req.issuerId, req.feedSeq, req.thisUpdateMs, req.walk);
    return { tbs: encodeTbs(req, full.entries), entries: full.count, encoded: full.encoded };
  }
  const writer = new RevokedEntriesWriter();
  await registry.forEachCrlEntry(req.issuerId, { changedAfterSeq: req.delta?.changedAfterSeq }, (serialHex, status, revokedAtMs, reason, invalidityDateMs) => {
    if (status === 'good') {
      // Released from hold since the base CRL: RFC 5280 §5.3.1, removeFromCRL appears only in deltas.
      writer.add(serialHex, req.thisUpdateMs, 'removeFromCRL');
    } else {
      writer.add(serialHex, revokedAtMs ?? req.thisUpdateMs, status === 'held' ? 'certificateHold' : reason, invalidityDateMs);
    }
  });
  return { tbs: encodeTbs(req, writer.finish()), entries: writer.count, encoded: writer.count };
}

function encodeTbs(req: CrlBodyRequest, revokedEntries: Buffer): Buffer {
  return encodeTbsCertList({
    signatureAlgorithm: req.signatureAlgorithm,
    issuer: Buffer.from(req.issuerNameDer),
    thisUpdate: new Date(req.thisUpdateMs),
    nextUpdate: new Date(req.nextUpdateMs),
    revokedEntries,
    crlNumber: BigInt(req.crlNumber),
    authorityKeyId: Buffer.from(req.authorityKeyId),
    deltaBaseCrlNumber: req.delta ? BigInt(req.delta.baseCrlNumber) : undefined,
    freshestCrlUrls: req.freshestCrlUrls,
    issuingDistributionPointUrl: req.issuingDistributionPointUrl,
  });
}
