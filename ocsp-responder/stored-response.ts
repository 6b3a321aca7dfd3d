/**
 * Which stored pre-signed responses a starting responder can serve as they are: a successful
 * response by the current responder (ResponderID byKey, RFC 6960 §4.2.1), one SingleResponse with
 * the pre-signed SHA-1 CertID shape (RFC 5019 §2.1.1) of the stored serial, no nonce, and not past
 * nextUpdate. Anything else is left to the reconciliation, which signs it again.
 *
 * A start reads every stored response (a million of them at fleet scale, issue 8), so the usual
 * case — a response this responder signed, stating good or unknown — is recognised by a short walk
 * with pkix's DER reader that compares the parts with what the responder itself writes (its
 * ResponderID, the CertID prefix of its issuer, the row's thisUpdate/nextUpdate as GeneralizedTime)
 * instead of decoding everything; whatever does not match byte for byte goes through the full
 * parseOcspResponse, so both paths accept the same responses.
 */
import {
  derGeneralizedTime, derOid, encodeCertId, OID_PKIX_OCSP_BASIC, parseOcspResponse, readDerAt, TAG_SEQUENCE, type OcspCertStatus,
} from '../pkix/index.js';
import type { StoredOcspResponse } from '../registry/port.js';
import type { SignedResponse } from './cached-response.js';
import { hasPresignedShape } from './issuer-index.js';
import type { PreparedIdentity } from './signing-identity.js';

/** A stored response reusable as it is, with what the cache keeps of it; undefined otherwise. */
export function usableStoredResponse(r: StoredOcspResponse, identity: PreparedIdentity, nowMs: number): { serialHex: string; response: SignedResponse } | undefined {
  const quick = quickUsable(r, identity, nowMs);
  if (quick !== undefined) return quick === false ? undefined : quick;
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

interface Expected {
  /** ResponderID byKey as the responder writes it: [2] { OCTET STRING keyHash }. */
  responderId: Buffer;
  /** CertID content up to the serial: hashAlgorithm (SHA-1, NULL), issuerNameHash, issuerKeyHash. */
  certIdPrefix: Buffer;
}

const expectedByIdentity = new WeakMap<PreparedIdentity, Expected>();
const BASIC_OID = derOid(OID_PKIX_OCSP_BASIC);
const GOOD: OcspCertStatus = Object.freeze({ status: 'good' }) as OcspCertStatus;
const UNKNOWN: OcspCertStatus = Object.freeze({ status: 'unknown' }) as OcspCertStatus;
let timeMs = NaN;
let timeDer: Buffer = Buffer.alloc(0);
let time2Ms = NaN;
let time2Der: Buffer = Buffer.alloc(0);

function expectedOf(identity: PreparedIdentity): Expected {
  let e = expectedByIdentity.get(identity);
  if (e === undefined) {
    const certId = encodeCertId('sha1', identity.issuerNameDer, identity.issuerSubjectPublicKey, Buffer.from([1]));
    const seq = readDerAt(certId, 0);
    const serial = lastChild(certId, seq.contentStart, seq.end);
    e = {
      responderId: Buffer.concat([Buffer.from([0xa2, 0x16, 0x04, 0x14]), identity.responderKeyHash]),
      certIdPrefix: certId.subarray(seq.contentStart, serial),
    };
    expectedByIdentity.set(identity, e);
  }
  return e;
}

function lastChild(buf: Buffer, from: number, end: number): number {
  let at = from;
  let last = from;
  while (at < end) {
    last = at;
    at = readDerAt(buf, at, end).end;
  }
  return last;
}

/** GeneralizedTime DER of a whole-second time; the last two are remembered (stored rows come in runs). */
function generalizedTimeOf(ms: number): Buffer {
  if (ms === timeMs) return timeDer;
  if (ms === time2Ms) return time2Der;
  time2Ms = timeMs;
  time2Der = timeDer;
  timeMs = ms;
  timeDer = derGeneralizedTime(new Date(ms));
  return timeDer;
}

function sameBytes(buf: Buffer, start: number, end: number, expected: Buffer): boolean {
  return end - start === expected.length && buf.compare(expected, 0, expected.length, start, end) === 0;
}

/**
 * The short walk: the response if it is exactly the shape this responder signs (good or unknown),
 * false if it is ours but expired, undefined when the full parse has to decide.
 */
function quickUsable(r: StoredOcspResponse, identity: PreparedIdentity, nowMs: number): { serialHex: string; response: SignedResponse } | false | undefined {
  try {
    const der = r.der;
    if (!Buffer.isBuffer(der) || !(r.thisUpdate instanceof Date) || !(r.nextUpdate instanceof Date) || typeof r.serialHex !== 'string') return undefined;
    const thisUpdateMs = r.thisUpdate.getTime();
    const nextUpdateMs = r.nextUpdate.getTime();
    if (thisUpdateMs % 1000 !== 0 || nextUpdateMs % 1000 !== 0) return undefined;
    const e = expectedOf(identity);
    // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED (successful), responseBytes [0] EXPLICIT ResponseBytes }
    const root = readDerAt(der, 0);
    if (root.tag !== TAG_SEQUENCE || root.end !== der.length) return undefined;
    const status = readDerAt(der, root.contentStart, root.end);
    if (status.tag !== 0x0a || status.end - status.contentStart !== 1 || der[status.contentStart] !== 0) return undefined;
    const explicit = readDerAt(der, status.end, root.end);
    if (explicit.tag !== 0xa0 || explicit.end !== root.end) return undefined;
    // ResponseBytes ::= SEQUENCE { responseType id-pkix-ocsp-basic, response OCTET STRING }
    const bytes = readDerAt(der, explicit.contentStart, explicit.end);
    if (bytes.tag !== TAG_SEQUENCE || bytes.end !== explicit.end) return undefined;
    const type = readDerAt(der, bytes.contentStart, bytes.end);
    if (!sameBytes(der, type.start, type.end, BASIC_OID)) return undefined;
    const octets = readDerAt(der, type.end, bytes.end);
    if (octets.tag !== 0x04 || octets.end !== bytes.end) return undefined;
    const basic = readDerAt(der, octets.contentStart, octets.end);
    if (basic.tag !== TAG_SEQUENCE || basic.end !== octets.end) return undefined;
    // ResponseData ::= SEQUENCE { responderID [2] byKey, producedAt, responses SEQUENCE OF one SingleResponse } (no version, no extensions)
    const tbs = readDerAt(der, basic.contentStart, basic.end);
    if (tbs.tag !== TAG_SEQUENCE) return undefined;
    const rid = readDerAt(der, tbs.contentStart, tbs.end);
    if (!sameBytes(der, rid.start, rid.end, e.responderId)) return undefined;
    const producedAt = readDerAt(der, rid.end, tbs.end);
    if (producedAt.tag !== 0x18) return undefined;
    const responses = readDerAt(der, producedAt.end, tbs.end);
    if (responses.tag !== TAG_SEQUENCE || responses.end !== tbs.end) return undefined;
    const single = readDerAt(der, responses.contentStart, responses.end);
    if (single.tag !== TAG_SEQUENCE || single.end !== responses.end) return undefined;
    // SingleResponse ::= SEQUENCE { certID, certStatus good | unknown, thisUpdate, [0] nextUpdate } (no extensions)
    const certId = readDerAt(der, single.contentStart, single.end);
    if (certId.tag !== TAG_SEQUENCE) return undefined;
    const serialAt = certId.contentStart + e.certIdPrefix.length;
    if (serialAt >= certId.end || der.compare(e.certIdPrefix, 0, e.certIdPrefix.length, certId.contentStart, serialAt) !== 0) return undefined;
    const serial = readDerAt(der, serialAt, certId.end);
    if (serial.tag !== 0x02 || serial.end !== certId.end) return undefined;
    let s = serial.contentStart;
    if (der[s] === 0 && s + 1 < serial.end) s++;
    const serialHex = r.serialHex.toUpperCase();
    if (der.toString('hex', s, serial.end).toUpperCase() !== serialHex) return undefined;
    const certStatus = readDerAt(der, certId.end, single.end);
    if ((certStatus.tag !== 0x80 && certStatus.tag !== 0x82) || certStatus.end !== certStatus.contentStart) return undefined;
    const thisUpdate = readDerAt(der, certStatus.end, single.end);
    if (!sameBytes(der, thisUpdate.start, thisUpdate.end, generalizedTimeOf(thisUpdateMs))) return undefined;
    const nextWrap = readDerAt(der, thisUpdate.end, single.end);
    if (nextWrap.tag !== 0xa0 || nextWrap.end !== single.end) return undefined;
    if (!sameBytes(der, nextWrap.contentStart, nextWrap.end, generalizedTimeOf(nextUpdateMs))) return undefined;
    if (nextUpdateMs <= nowMs) return false;
    return { serialHex, response: { der, status: certStatus.tag === 0x80 ? GOOD : UNKNOWN, thisUpdateMs, nextUpdateMs } };
  } catch {
    return undefined;
  }
}
