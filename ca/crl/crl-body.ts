/**
 * Building the to-be-signed body of a CRL from the registry, streaming: rows go straight from the
 * registry's iterator into one growing buffer (pkix's RevokedEntriesWriter), so a CRL with a
 * million entries needs no object per entry. Runs in a worker thread (crl-worker.ts) or inline.
 */
import { encodeTbsCertList, RevokedEntriesWriter, type SignatureAlgorithmName } from '../../pkix/index.js';
import type { Registry } from '../../registry/port.js';

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
}

export interface CrlBody {
  tbs: Buffer;
  entries: number;
}

export async function buildCrlBody(registry: Pick<Registry, 'forEachCrlEntry'>, req: CrlBodyRequest): Promise<CrlBody> {
  const writer = new RevokedEntriesWriter();
  await registry.forEachCrlEntry(req.issuerId, { changedAfterSeq: req.delta?.changedAfterSeq }, (serialHex, status, revokedAtMs, reason, invalidityDateMs) => {
    if (status === 'good') {
      // Released from hold since the base CRL: RFC 5280 §5.3.1, removeFromCRL appears only in deltas.
      writer.add(serialHex, req.thisUpdateMs, 'removeFromCRL');
    } else {
      writer.add(serialHex, revokedAtMs ?? req.thisUpdateMs, status === 'held' ? 'certificateHold' : reason, invalidityDateMs);
    }
  });
  const tbs = encodeTbsCertList({
    signatureAlgorithm: req.signatureAlgorithm,
    issuer: Buffer.from(req.issuerNameDer),
    thisUpdate: new Date(req.thisUpdateMs),
    nextUpdate: new Date(req.nextUpdateMs),
    revokedEntries: writer.finish(),
    crlNumber: BigInt(req.crlNumber),
    authorityKeyId: Buffer.from(req.authorityKeyId),
    deltaBaseCrlNumber: req.delta ? BigInt(req.delta.baseCrlNumber) : undefined,
    freshestCrlUrls: req.freshestCrlUrls,
  });
  return { tbs, entries: writer.count };
}
