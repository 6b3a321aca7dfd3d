/**
 * Which stored pre-signed responses a starting responder can serve as they are: a successful
 * response by the current responder (ResponderID byKey, RFC 6960 §4.2.1), one SingleResponse with
 * the pre-signed SHA-1 CertID shape (RFC 5019 §2.1.1) of the stored serial, no nonce, and not past
 * nextUpdate. Anything else is left to the reconciliation, which signs it again.
 */
import { parseOcspResponse } from '../pkix/index.js';
import type { StoredOcspResponse } from '../registry/port.js';
import type { SignedResponse } from './cached-response.js';
import { hasPresignedShape } from './issuer-index.js';
import type { PreparedIdentity } from './signing-identity.js';

/** A stored response reusable as it is, with what the cache keeps of it; undefined otherwise. */
export function usableStoredResponse(r: StoredOcspResponse, identity: PreparedIdentity, nowMs: number): { serialHex: string; response: SignedResponse } | undefined {
  try {
    const parsed = parseOcspResponse(r.der);
    if (parsed.status !== 'successful' || parsed.responses.length !== 1 || parsed.nonce !== undefined) return undefined;
    if (parsed.responderKeyHash === undefined || !parsed.responderKeyHash.equals(identity.responderKeyHash)) return undefined;
    const single = parsed.responses[0];
    const sha1 = identity.hashes[0];
    if (!hasPresignedShape(single.certId) || !single.certId.issuerKeyHash.equals(sha1.issuerKeyHash) || !single.certId.issuerNameHash.equals(sha1.issuerNameHash)) return undefined;
    const serialHex = String(r.serialHex).toUpperCase();
    if (single.certId.serialHex !== serialHex || single.nextUpdate === undefined) return undefined;
    const thisUpdateMs = single.thisUpdate.getTime();
    const nextUpdateMs = single.nextUpdate.getTime();
    if (nextUpdateMs <= nowMs) return undefined;
    return { serialHex, response: { der: r.der, status: single.certStatus, thisUpdateMs, nextUpdateMs } };
  } catch {
    return undefined;
  }
}
