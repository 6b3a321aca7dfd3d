/**
 * One answer as the responder keeps it in memory: a single Buffer with a small fixed header
 * before the OCSPResponse DER, so serving it needs no lookup beyond the map, and re-signing,
 * refreshing and rollover need no per-response object (DESIGN.md "Hot paths").
 *
 * Layout (big-endian):
 *    0      kind: KIND_CACHEABLE (signed, no nonce), KIND_NO_STORE (signed with a nonce), KIND_ERROR
 *    1      identity epoch (mod 256) of the responder that signed it: a rollover makes it stale
 *    2      status of the (first) SingleResponse: 0 good, 1 revoked, 2 unknown
 *    3      CRLReason code (RFC 5280 §5.3.1) or 0xff when absent
 *    4..7   revocationTime, seconds since 1970 (0 unless revoked)
 *    8..11  thisUpdate (= producedAt), seconds since 1970
 *   12..15  nextUpdate, seconds since 1970
 *   16..35  SHA-1 of the whole OCSPResponse DER: the ETag (RFC 5019 §6.2), computed when signed
 *   36..37  certs tail id: 0 when the stored DER is the whole response; otherwise the response's
 *           last bytes, BasicOCSPResponse `certs` ([0] EXPLICIT SEQUENCE OF Certificate, the same
 *           for every response of one responder certificate), are left out and kept once
 *           (internCertsTail); the wire bytes are the stored DER followed by that tail
 *   38      flags: bit 0 = the ETag is not computed yet (a response loaded at start: its SHA-1 is
 *           taken at its first GET instead, so a start over a million stored responses does not
 *           hash them all; entryEtag fills it in place)
 *   39      bit 0: the SingleResponse carries an invalidityDate (RFC 6960 §4.4.5), in 40..43
 *   40..43  invalidityDate, seconds since 1970 (0 unless bit 0 of 39)
 *   44..    the stored OCSPResponse DER (all of it, or all but the certs tail)
 *
 * Leaving the tail out halves what a million pre-signed responses take (a P-256 responder
 * certificate is ~450 bytes of a ~750-byte response); it is a split, not a re-encoding, so the
 * bytes served are exactly the bytes signed. The pre-signed cache keeps entries in one arena
 * (response-arena.ts); live answers are packed into one allocation per batch (`packResponses`).
 */
import * as nodeCrypto from 'node:crypto';
import {
  CRL_REASON_CODES, crlReasonFromCode, derExplicit, derSequence, type OcspCertStatus, type OcspErrorStatus, ocspErrorResponse,
} from '../pkix/index.js';

export const KIND_CACHEABLE = 0;
export const KIND_NO_STORE = 1;
export const KIND_ERROR = 2;
export const HEADER_LENGTH = 44;
const NO_REASON = 0xff;
const ETAG_PENDING = 1;
const HAS_INVALIDITY = 1;

export interface SignedResponse {
  der: Buffer;
  status: OcspCertStatus;
  thisUpdateMs: number;
  nextUpdateMs: number;
}

const oneShotHash = (nodeCrypto as { hash?: (alg: string, data: Buffer, enc: 'buffer') => Buffer }).hash;

function sha1(data: Buffer): Buffer {
  return oneShotHash !== undefined ? oneShotHash('sha1', data, 'buffer') : nodeCrypto.createHash('sha1').update(data).digest();
}

/** The certs tails in use, by id (index 0: none). Few: one per responder certificate this process signed with. */
const tails: Buffer[] = [Buffer.alloc(0)];
const tailIds = new Map<string, number>();

/** The id of a certs tail (the same bytes get the same id); kept for the life of the process. */
export function internCertsTail(tail: Buffer): number {
  const key = tail.toString('base64');
  let id = tailIds.get(key);
  if (id === undefined) {
    id = tails.length;
    if (id > 0xffff) throw new RangeError('too many distinct OCSP responder certificates');
    tails.push(Buffer.from(tail));
    tailIds.set(key, id);
  }
  return id;
}

/** RFC 6960 §4.2.1 BasicOCSPResponse `certs [0] EXPLICIT SEQUENCE OF Certificate` holding the one responder certificate. */
export function certsTailFor(responderCertificateDer: Buffer): Buffer {
  return derExplicit(0, derSequence(responderCertificateDer));
}

/**
 * Writes one entry (header + stored DER) at `at`; returns its length. With `tailId`, the DER's
 * trailing certs bytes are left out when the DER ends with them (else the DER is kept whole).
 * `out` must have room for HEADER_LENGTH + the whole DER.
 */
export function writeEntry(out: Buffer, at: number, kind: number, epoch: number, r: SignedResponse, tailId = 0, deferEtag = false): number {
  out[at] = kind;
  out[at + 1] = epoch & 0xff;
  const st = r.status;
  if (st.status === 'revoked') {
    out[at + 2] = 1;
    out[at + 3] = st.reason === undefined ? NO_REASON : CRL_REASON_CODES[st.reason];
    out.writeUInt32BE(Math.floor(st.revokedAt.getTime() / 1000), at + 4);
  } else {
    out[at + 2] = st.status === 'good' ? 0 : 2;
    out[at + 3] = NO_REASON;
    out.writeUInt32BE(0, at + 4);
  }
  out.writeUInt32BE(Math.floor(r.thisUpdateMs / 1000), at + 8);
  out.writeUInt32BE(Math.floor(r.nextUpdateMs / 1000), at + 12);
  if (deferEtag) out.fill(0, at + 16, at + 36);
  else sha1(r.der).copy(out, at + 16);
  const der = r.der;
  let stored = der.length;
  if (tailId !== 0) {
    const tail = tails[tailId];
    if (tail === undefined) throw new RangeError(`no certs tail ${tailId}`);
    if (der.length > tail.length && der.compare(tail, 0, tail.length, der.length - tail.length) === 0) stored = der.length - tail.length;
    else tailId = 0;
  }
  out.writeUInt16BE(tailId, at + 36);
  out[at + 38] = deferEtag ? ETAG_PENDING : 0;
  const invalidity = st.status === 'revoked' ? st.invalidityDate : undefined;
  out[at + 39] = invalidity === undefined ? 0 : HAS_INVALIDITY;
  out.writeUInt32BE(invalidity === undefined ? 0 : Math.floor(invalidity.getTime() / 1000), at + 40);
  der.copy(out, at + HEADER_LENGTH, 0, stored);
  return HEADER_LENGTH + stored;
}

/**
 * Packs signed responses into one allocation; returns one view per response, in order.
 * `longLived` responses get their own slab: a slab of the shared pool would keep unrelated
 * short-lived garbage alive for hours. A one-off live answer uses the pool.
 */
export function packResponses(responses: SignedResponse[], epoch: number, kind = KIND_CACHEABLE, longLived = true): Buffer[] {
  let total = 0;
  for (let i = 0; i < responses.length; i++) total += HEADER_LENGTH + responses[i].der.length;
  const slab = longLived ? Buffer.allocUnsafeSlow(total) : Buffer.allocUnsafe(total);
  const out: Buffer[] = new Array(responses.length);
  let at = 0;
  for (let i = 0; i < responses.length; i++) {
    const size = writeEntry(slab, at, kind, epoch, responses[i]);
    out[i] = slab.subarray(at, at + size);
    at += size;
  }
  return out;
}

/** An unsigned error answer (RFC 6960 §4.2.1), built once per status. */
function errorEntry(status: OcspErrorStatus): Buffer {
  const der = ocspErrorResponse(status);
  const out = Buffer.alloc(HEADER_LENGTH + der.length);
  out[0] = KIND_ERROR;
  out[3] = NO_REASON;
  der.copy(out, HEADER_LENGTH);
  return out;
}

export const ERROR_ENTRIES: Readonly<Record<OcspErrorStatus, Buffer>> = Object.freeze({
  malformedRequest: errorEntry('malformedRequest'),
  internalError: errorEntry('internalError'),
  tryLater: errorEntry('tryLater'),
  sigRequired: errorEntry('sigRequired'),
  unauthorized: errorEntry('unauthorized'),
});

export function entryKind(entry: Buffer): number {
  return entry[0];
}

export function entryEpoch(entry: Buffer): number {
  return entry[1];
}

export function thisUpdateSeconds(entry: Buffer): number {
  return entry.readUInt32BE(8);
}

export function nextUpdateSeconds(entry: Buffer): number {
  return entry.readUInt32BE(12);
}

/** The stored part of the OCSPResponse DER (a view): all of it unless entryTail says otherwise. */
export function entryBody(entry: Buffer): Buffer {
  return entry.subarray(HEADER_LENGTH);
}

/** The certs bytes that follow entryBody on the wire, or undefined when the body is the whole DER. */
export function entryTail(entry: Buffer): Buffer | undefined {
  const id = entry.readUInt16BE(36);
  return id === 0 ? undefined : tails[id];
}

/** The whole OCSPResponse DER, as signed (a copy when the certs tail was left out; cold paths only). */
export function entryDer(entry: Buffer): Buffer {
  const tail = entryTail(entry);
  const body = entry.subarray(HEADER_LENGTH);
  return tail === undefined ? body : Buffer.concat([body, tail]);
}

/** The ETag value, quoted (RFC 9110 §8.8.3): the hex SHA-1 of the response, as RFC 5019 §6.2's example. */
export function entryEtag(entry: Buffer): string {
  if ((entry[38] & ETAG_PENDING) !== 0) {
    const tail = entryTail(entry);
    const hash = nodeCrypto.createHash('sha1').update(entry.subarray(HEADER_LENGTH));
    if (tail !== undefined) hash.update(tail);
    hash.digest().copy(entry, 16);
    entry[38] &= ~ETAG_PENDING;
  }
  return `"${entry.toString('hex', 16, 36)}"`;
}

/** The status the entry states. */
export function entryStatus(entry: Buffer): OcspCertStatus {
  switch (entry[2]) {
    case 0: return { status: 'good' };
    case 1: {
      const revokedAt = new Date(entry.readUInt32BE(4) * 1000);
      const reason = entry[3] === NO_REASON ? undefined : crlReasonFromCode(entry[3]);
      return {
        status: 'revoked', revokedAt, ...(reason !== undefined && { reason }),
        ...((entry[39] & HAS_INVALIDITY) !== 0 && { invalidityDate: new Date(entry.readUInt32BE(40) * 1000) }),
      };
    }
    default: return { status: 'unknown' };
  }
}

/** True when the entry states `status` (to the second, as GeneralizedTime carries it). */
export function entryStates(entry: Buffer, status: OcspCertStatus): boolean {
  if (status.status === 'good') return entry[2] === 0;
  if (status.status === 'unknown') return entry[2] === 2;
  const reason = status.reason === undefined ? NO_REASON : CRL_REASON_CODES[status.reason];
  const invalidity = status.invalidityDate === undefined ? undefined : Math.floor(status.invalidityDate.getTime() / 1000);
  return entry[2] === 1 && entry[3] === reason && entry.readUInt32BE(4) === Math.floor(status.revokedAt.getTime() / 1000)
    && ((entry[39] & HAS_INVALIDITY) !== 0) === (invalidity !== undefined) && (invalidity === undefined || entry.readUInt32BE(40) === invalidity);
}

/**
 * True once the entry is due for its background refresh: at a point between a quarter and a half
 * of its validity fixed by its serial number. Responses signed together (a start, a responder
 * rollover) would otherwise all fall due in the same sweep every validity/2, a burst of signing;
 * spread by serial, each keeps its own phase, so the re-signing load is even over the validity.
 * Never later than half-life, so a served response stays far from nextUpdate (RFC 6960 §4.2.2.1).
 */
export function refreshDue(entry: Buffer, serialHex: string, nowSeconds: number): boolean {
  const thisUpdate = entry.readUInt32BE(8);
  const nextUpdate = entry.readUInt32BE(12);
  return nowSeconds >= thisUpdate + (nextUpdate - thisUpdate) * refreshPoint(serialHex);
}

/** The fraction of the validity at which a response of this serial is refreshed: 0.25 to 0.5. */
export function refreshPoint(serialHex: string): number {
  // Serials are random (ca/serial.ts), so their low 16 bits are spread evenly.
  const low = Number.parseInt(serialHex.slice(-4), 16);
  return 0.25 + 0.25 * ((Number.isFinite(low) ? low : 0) / 0x10000);
}

/** True once half the entry's validity has passed (re-signed then, so a served response is never close to expiry). */
export function pastHalfLife(entry: Buffer, nowSeconds: number): boolean {
  const thisUpdate = entry.readUInt32BE(8);
  const nextUpdate = entry.readUInt32BE(12);
  return nowSeconds >= thisUpdate + (nextUpdate - thisUpdate) / 2;
}
