/**
 * OCSP responses (RFC 6960 §4.2, RFC 5019 §2.2): the responder's hot path (SingleResponse,
 * ResponseData and envelopes built by Buffer concatenation with precomputed lengths, one allocation
 * each) and a decoder for tests and kakuin's own OCSP client.
 *
 * RFC 6960 §4.2.1 (Appendix B.2, EXPLICIT TAGS unless marked):
 *   OCSPResponse ::= SEQUENCE {
 *      responseStatus         OCSPResponseStatus,
 *      responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
 *
 *   OCSPResponseStatus ::= ENUMERATED {
 *       successful            (0),  -- Response has valid confirmations
 *       malformedRequest      (1),  -- Illegal confirmation request
 *       internalError         (2),  -- Internal error in issuer
 *       tryLater              (3),  -- Try again later
 *                                   -- (4) is not used
 *       sigRequired           (5),  -- Must sign the request
 *       unauthorized          (6)   -- Request unauthorized
 *   }
 *
 *   ResponseBytes ::=       SEQUENCE {
 *       responseType   OBJECT IDENTIFIER,
 *       response       OCTET STRING }
 *
 *   BasicOCSPResponse       ::= SEQUENCE {
 *      tbsResponseData      ResponseData,
 *      signatureAlgorithm   AlgorithmIdentifier,
 *      signature            BIT STRING,
 *      certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 *
 *   ResponseData ::= SEQUENCE {
 *      version              [0] EXPLICIT Version DEFAULT v1,
 *      responderID              ResponderID,
 *      producedAt               GeneralizedTime,
 *      responses                SEQUENCE OF SingleResponse,
 *      responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
 *
 *   ResponderID ::= CHOICE {
 *      byName   [1] Name,
 *      byKey    [2] KeyHash }
 *
 *   KeyHash ::= OCTET STRING -- SHA-1 hash of responder's public key
 *                            -- (excluding the tag and length fields)
 *
 *   SingleResponse ::= SEQUENCE {
 *      certID                       CertID,
 *      certStatus                   CertStatus,
 *      thisUpdate                   GeneralizedTime,
 *      nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
 *      singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
 *
 *   CertStatus ::= CHOICE {
 *       good        [0]     IMPLICIT NULL,
 *       revoked     [1]     IMPLICIT RevokedInfo,
 *       unknown     [2]     IMPLICIT UnknownInfo }
 *
 *   RevokedInfo ::= SEQUENCE {
 *       revocationTime              GeneralizedTime,
 *       revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
 *
 *   UnknownInfo ::= NULL
 *
 * RFC 5019 §2.2.4: producedAt, thisUpdate and nextUpdate are GeneralizedTime in GMT with seconds
 * and no fractions (milliseconds are dropped).
 *
 * RFC 6960 §4.4.5: the CRL entry extensions of RFC 5280 §5.3 may be singleExtensions. kakuin writes
 * the one its CRL entries carry besides the reason, invalidityDate (§5.3.2, not critical):
 *   InvalidityDate ::=  GeneralizedTime
 */
import { KakuinError } from '../errors/index.js';
import { type AlgorithmIdentifier, encodeSignatureAlgorithm, parseAlgorithmIdentifier, type SignatureAlgorithmName } from './algorithm.js';
import { CRL_REASON_CODES, crlReasonFromCode, OID_CE_INVALIDITY_DATE, type CrlReason } from './crl.js';
import { derGeneralizedTime, derOid, lengthOfLength, TAG_GENERALIZED_TIME, TAG_SEQUENCE, writeHeader } from './der.js';
import {
  type DerNode, derChildren, derContent, derRaw, expectChildren, expectTag, guardDer, malformed, readDer, readOctetAlignedBitString,
  readOctetString, readOid, readSmallInteger, readTime,
} from './der-reader.js';
import { parseExtensionsNode, type ParsedExtension } from './extensions-read.js';
import { parseNameNode, type ParsedName } from './name.js';
import { encodeNonceExtension, type OcspCertId, type OcspNonceEncoding, parseCertIdNode, readNonce } from './ocsp-request.js';
import { verifySignature } from './signature.js';
import type { PublicKeyInfo } from './spki.js';

/** RFC 6960 §4.2.1: id-pkix-ocsp-basic. */
export const OID_PKIX_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';

export type OcspCertStatus =
  | { status: 'good' }
  /** invalidityDate: when the key is known or suspected to have been compromised (RFC 5280 §5.3.2), as the CRL entry says. */
  | { status: 'revoked'; revokedAt: Date; reason?: CrlReason; invalidityDate?: Date }
  | { status: 'unknown' };

export type OcspErrorStatus = 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';

const STATUS_BY_CODE: readonly ('successful' | OcspErrorStatus | undefined)[] = [
  'successful', 'malformedRequest', 'internalError', 'tryLater', undefined, 'sigRequired', 'unauthorized',
];

function encodingInput(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ENCODING_INPUT', message);
}

// ---- building -----------------------------------------------------------------------------------------

/** [0] IMPLICIT NULL and [2] IMPLICIT NULL. */
const STATUS_GOOD = Buffer.from([0x80, 0x00]);
const STATUS_UNKNOWN = Buffer.from([0x82, 0x00]);
/** revocationReason [0] EXPLICIT CRLReason (ENUMERATED), one per code. */
const REVOCATION_REASON: Readonly<Record<string, Buffer>> = Object.fromEntries(
  Object.entries(CRL_REASON_CODES).map(([name, code]) => [name, Buffer.from([0xa0, 0x03, 0x0a, 0x01, code])]),
);

/**
 * singleExtensions [1] EXPLICIT Extensions { Extension { invalidityDate, OCTET STRING { GeneralizedTime } } }
 * without the 17-octet GeneralizedTime: 30 octets in all, every length in the short form.
 */
const INVALIDITY_EXTENSIONS_PREFIX = Buffer.from([0xa1, 0x1c, 0x30, 0x1a, 0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11]);

/**
 * A GeneralizedTime TLV; a response batch shares its producedAt/thisUpdate second, so the last
 * encoding is kept (callers copy from it, never modify it).
 */
const GT_LEN = 17;
let lastTimeSecond = NaN;
let lastTimeDer: Buffer = Buffer.alloc(0);
function generalizedTime(d: Date, what: string): Buffer {
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(ms)) throw encodingInput(`${what} must be a valid Date`);
  const second = Math.floor(ms / 1000);
  if (second !== lastTimeSecond) {
    lastTimeDer = derGeneralizedTime(d);
    lastTimeSecond = second;
  }
  return lastTimeDer;
}

/**
 * One SingleResponse, in one allocation. `certId` is the CertID DER as the request carried it
 * (OcspCertId.rawDer), so the client finds its own bytes back. For 'revoked', reason 'unspecified'
 * is left out as in CRLs (RFC 5280 §5.3.1), so the OCSP answer and the CRL entry say the same thing;
 * an invalidityDate goes into singleExtensions for the same reason (RFC 6960 §4.4.5).
 */
export function encodeSingleResponse(o: { certId: Buffer; certStatus: OcspCertStatus; thisUpdate: Date; nextUpdate?: Date }): Buffer {
  const certId = o.certId;
  if (!Buffer.isBuffer(certId) || certId.length < 2 || certId[0] !== TAG_SEQUENCE) throw encodingInput('certId must be CertID DER');
  const st = o.certStatus;
  let statusLen: number;
  let reason: Buffer | undefined;
  let invalidity: Buffer | undefined;
  if (st.status === 'good' || st.status === 'unknown') {
    statusLen = 2;
  } else if (st.status === 'revoked') {
    if (st.reason !== undefined && st.reason !== 'unspecified') {
      reason = Object.hasOwn(REVOCATION_REASON, st.reason) ? REVOCATION_REASON[st.reason] : undefined;
      if (reason === undefined) throw encodingInput(`unknown revocation reason ${String(st.reason)}`);
    }
    statusLen = 2 + GT_LEN + (reason === undefined ? 0 : reason.length);
    if (st.invalidityDate !== undefined) {
      if (!(st.invalidityDate instanceof Date) || Number.isNaN(st.invalidityDate.getTime())) throw encodingInput('invalidityDate must be a valid Date');
      // Not the shared same-second encoding: an invalidity date is rarely this batch's second.
      invalidity = derGeneralizedTime(st.invalidityDate);
    }
  } else {
    throw encodingInput('certStatus must be good, revoked or unknown');
  }
  const next = o.nextUpdate;
  if (next !== undefined && !(next instanceof Date && o.thisUpdate instanceof Date && next.getTime() >= o.thisUpdate.getTime())) {
    throw encodingInput('nextUpdate must be a Date not before thisUpdate');
  }
  const len = certId.length + statusLen + GT_LEN + (next === undefined ? 0 : 2 + GT_LEN)
    + (invalidity === undefined ? 0 : INVALIDITY_EXTENSIONS_PREFIX.length + GT_LEN);
  const out = Buffer.allocUnsafe(1 + lengthOfLength(len) + len);
  let p = writeHeader(out, 0, TAG_SEQUENCE, len);
  p += certId.copy(out, p);
  if (st.status === 'revoked') {
    out[p++] = 0xa1; // RevokedInfo, [1] IMPLICIT SEQUENCE: at most 22 octets
    out[p++] = statusLen - 2;
    p += generalizedTime(st.revokedAt, 'revokedAt').copy(out, p);
    if (reason !== undefined) p += reason.copy(out, p);
  } else {
    p += (st.status === 'good' ? STATUS_GOOD : STATUS_UNKNOWN).copy(out, p);
  }
  p += generalizedTime(o.thisUpdate, 'thisUpdate').copy(out, p);
  if (next !== undefined) {
    out[p++] = 0xa0;
    out[p++] = GT_LEN;
    p += generalizedTime(next, 'nextUpdate').copy(out, p);
  }
  if (invalidity !== undefined) {
    p += INVALIDITY_EXTENSIONS_PREFIX.copy(out, p);
    invalidity.copy(out, p);
  }
  return out;
}

/**
 * ResponseData with ResponderID byKey (RFC 5019 §2.2.3 recommends it: smaller, and it names the
 * delegated signer whatever its name). `nonce` echoes the request's (RFC 6960 §4.4.1) in
 * `nonceEncoding`, which is ParsedOcspRequest.nonceEncoding ('octet-string', RFC 8954, by default).
 */
export function encodeResponseData(o: { responderKeyHash: Buffer; producedAt: Date; responses: Buffer[]; nonce?: Buffer; nonceEncoding?: OcspNonceEncoding }): Buffer {
  const keyHash = o.responderKeyHash;
  if (!Buffer.isBuffer(keyHash) || keyHash.length !== 20) throw encodingInput('responderKeyHash must be the 20-octet SHA-1 KeyHash');
  const responses = o.responses;
  if (!Array.isArray(responses) || responses.length === 0) throw encodingInput('a ResponseData needs at least one SingleResponse');
  let responsesLen = 0;
  for (let i = 0; i < responses.length; i++) responsesLen += responses[i].length;
  const producedAt = generalizedTime(o.producedAt, 'producedAt');
  let extensions: Buffer | undefined;
  let extensionsLen = 0;
  let extSeqLen = 0;
  if (o.nonce !== undefined) {
    extensions = encodeNonceExtension(o.nonce, o.nonceEncoding);
    extSeqLen = 1 + lengthOfLength(extensions.length) + extensions.length; // Extensions SEQUENCE
    extensionsLen = 1 + lengthOfLength(extSeqLen) + extSeqLen; // [1] EXPLICIT
  }
  const responsesTlvLen = 1 + lengthOfLength(responsesLen) + responsesLen;
  const len = 24 /* a2 16 04 14 + 20 */ + producedAt.length + responsesTlvLen + extensionsLen;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(len) + len);
  let p = writeHeader(out, 0, TAG_SEQUENCE, len);
  // responderID byKey [2] EXPLICIT KeyHash (the module's default EXPLICIT TAGS).
  out[p++] = 0xa2;
  out[p++] = 22;
  out[p++] = 0x04;
  out[p++] = 20;
  p += keyHash.copy(out, p);
  p += producedAt.copy(out, p);
  p = writeHeader(out, p, TAG_SEQUENCE, responsesLen);
  for (let i = 0; i < responses.length; i++) p += responses[i].copy(out, p);
  if (extensions !== undefined) {
    p = writeHeader(out, p, 0xa1, extSeqLen);
    p = writeHeader(out, p, TAG_SEQUENCE, extensions.length);
    extensions.copy(out, p);
  }
  return out;
}

/** BasicOCSPResponse: `certs` (Certificate DERs, e.g. the delegated responder's) go in [0] when any. */
export function encodeBasicOcspResponse(tbsResponseData: Buffer, alg: SignatureAlgorithmName, signature: Buffer, certs: Buffer[]): Buffer {
  const algDer = encodeSignatureAlgorithm(alg);
  const sigLen = signature.length + 1;
  let certsLen = 0;
  for (let i = 0; i < certs.length; i++) certsLen += certs[i].length;
  const certsSeqLen = 1 + lengthOfLength(certsLen) + certsLen;
  const certsTlvLen = certs.length === 0 ? 0 : 1 + lengthOfLength(certsSeqLen) + certsSeqLen;
  const len = tbsResponseData.length + algDer.length + 1 + lengthOfLength(sigLen) + sigLen + certsTlvLen;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(len) + len);
  let p = writeHeader(out, 0, TAG_SEQUENCE, len);
  p += tbsResponseData.copy(out, p);
  p += algDer.copy(out, p);
  p = writeHeader(out, p, 0x03, sigLen);
  out[p++] = 0; // no unused bits
  p += signature.copy(out, p);
  if (certs.length > 0) {
    p = writeHeader(out, p, 0xa0, certsSeqLen);
    p = writeHeader(out, p, TAG_SEQUENCE, certsLen);
    for (let i = 0; i < certs.length; i++) p += certs[i].copy(out, p);
  }
  return out;
}

const SUCCESSFUL = Buffer.from([0x0a, 0x01, 0x00]);
const BASIC_OID_DER = derOid(OID_PKIX_OCSP_BASIC);

/** OCSPResponse { successful, responseBytes [0] { id-pkix-ocsp-basic, OCTET STRING { basic } } }. */
export function encodeOcspResponse(basicOcspResponseDer: Buffer): Buffer {
  const n = basicOcspResponseDer.length;
  const octetsLen = 1 + lengthOfLength(n) + n;
  const bytesLen = BASIC_OID_DER.length + octetsLen;
  const explicitLen = 1 + lengthOfLength(bytesLen) + bytesLen;
  const len = SUCCESSFUL.length + 1 + lengthOfLength(explicitLen) + explicitLen;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(len) + len);
  let p = writeHeader(out, 0, TAG_SEQUENCE, len);
  p += SUCCESSFUL.copy(out, p);
  p = writeHeader(out, p, 0xa0, explicitLen);
  p = writeHeader(out, p, TAG_SEQUENCE, bytesLen);
  p += BASIC_OID_DER.copy(out, p);
  p = writeHeader(out, p, 0x04, n);
  basicOcspResponseDer.copy(out, p);
  return out;
}

const ERROR_RESPONSES: Readonly<Record<OcspErrorStatus, Buffer>> = {
  malformedRequest: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]),
  internalError: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x02]),
  tryLater: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x03]),
  sigRequired: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x05]),
  unauthorized: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x06]),
};

/**
 * An unsigned error response (RFC 6960 §4.2.1: "If the value of responseStatus is one of the error
 * conditions, the responseBytes field is not set"). A shared constant: do not modify it.
 */
export function ocspErrorResponse(status: OcspErrorStatus): Buffer {
  const der = ERROR_RESPONSES[status];
  if (der === undefined || !Object.hasOwn(ERROR_RESPONSES, status)) throw encodingInput(`unknown OCSP error status ${String(status)}`);
  return der;
}

// ---- parsing -----------------------------------------------------------------------------------------

export interface ParsedSingleResponse {
  certId: OcspCertId;
  certStatus: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate?: Date;
  /** The SingleResponse as received. */
  rawDer: Buffer;
}

export interface ParsedOcspResponse {
  rawDer: Buffer;
  status: 'successful' | OcspErrorStatus;
  producedAt?: Date;
  /** ResponderID byKey. */
  responderKeyHash?: Buffer;
  /** ResponderID byName. */
  responderName?: ParsedName;
  responses: ParsedSingleResponse[];
  nonce?: Buffer;
  nonceEncoding?: OcspNonceEncoding;
  /** The ResponseData exactly as received: the signed bytes. */
  tbsResponseDataDer?: Buffer;
  signatureAlgorithmOid?: string;
  signatureAlgorithm?: AlgorithmIdentifier;
  signature?: Buffer;
  /** Certificate DERs of BasicOCSPResponse.certs, as received. */
  certs: Buffer[];
  responseExtensions: ParsedExtension[];
}

function readGeneralizedTime(node: DerNode | undefined, what: string): Date {
  return readTime(expectTag(node, TAG_GENERALIZED_TIME, what), what);
}

function parseCertStatus(node: DerNode | undefined): OcspCertStatus {
  if (node === undefined) throw malformed('certStatus is missing');
  if (node.tag === 0x80 || node.tag === 0x82) {
    if (node.end !== node.contentStart) throw malformed('certStatus NULL is not empty');
    return { status: node.tag === 0x80 ? 'good' : 'unknown' };
  }
  if (node.tag !== 0xa1) throw malformed('certStatus is not good, revoked or unknown');
  const info = derChildren(node);
  if (info.length < 1 || info.length > 2) throw malformed('RevokedInfo has the wrong number of components');
  const out: OcspCertStatus = { status: 'revoked', revokedAt: readGeneralizedTime(info[0], 'revocationTime') };
  if (info.length === 2) {
    const wrapped = expectChildren(info[1], 0xa0, 'revocationReason');
    if (wrapped.length !== 1) throw malformed('revocationReason must hold one CRLReason');
    const c = derContent(expectTag(wrapped[0], 0x0a, 'CRLReason'));
    if (c.length !== 1) throw malformed('CRLReason is not a one-octet ENUMERATED');
    const reason = crlReasonFromCode(c[0]);
    if (reason === undefined) throw malformed(`CRLReason ${c[0]} is not defined`);
    out.reason = reason;
  }
  return out;
}

function parseSingleResponse(node: DerNode): ParsedSingleResponse {
  const f = expectChildren(node, TAG_SEQUENCE, 'SingleResponse');
  let i = 0;
  const certId = parseCertIdNode(f[i++]);
  const certStatus = parseCertStatus(f[i++]);
  const out: ParsedSingleResponse = { certId, certStatus, thisUpdate: readGeneralizedTime(f[i++], 'thisUpdate'), rawDer: derRaw(node) };
  if (f[i]?.tag === 0xa0) {
    const wrapped = derChildren(f[i++]);
    if (wrapped.length !== 1) throw malformed('nextUpdate must hold one GeneralizedTime');
    out.nextUpdate = readGeneralizedTime(wrapped[0], 'nextUpdate');
  }
  if (f[i]?.tag === 0xa1) {
    const wrapped = derChildren(f[i++]);
    if (wrapped.length !== 1) throw malformed('singleExtensions must hold one Extensions');
    const invalidity = parseExtensionsNode(wrapped[0], 'singleExtensions').find((e) => e.oid === OID_CE_INVALIDITY_DATE);
    if (invalidity !== undefined && out.certStatus.status === 'revoked') {
      out.certStatus.invalidityDate = readGeneralizedTime(readDer(invalidity.value), 'invalidityDate');
    }
  }
  if (i !== f.length) throw malformed('SingleResponse has unexpected components');
  return out;
}

function parseBasic(der: Buffer, out: ParsedOcspResponse): void {
  const parts = expectChildren(readDer(der), TAG_SEQUENCE, 'BasicOCSPResponse');
  if (parts.length < 3 || parts.length > 4) throw malformed('BasicOCSPResponse has the wrong number of components');
  out.signatureAlgorithm = parseAlgorithmIdentifier(parts[1], 'BasicOCSPResponse.signatureAlgorithm');
  out.signatureAlgorithmOid = out.signatureAlgorithm.oid;
  out.signature = readOctetAlignedBitString(parts[2], 'BasicOCSPResponse.signature');
  if (parts.length === 4) {
    const wrapped = expectChildren(parts[3], 0xa0, 'BasicOCSPResponse.certs');
    if (wrapped.length !== 1) throw malformed('certs must hold one SEQUENCE');
    for (const c of expectChildren(wrapped[0], TAG_SEQUENCE, 'certs')) out.certs.push(derRaw(expectTag(c, TAG_SEQUENCE, 'certificate')));
  }
  const tbs = parts[0];
  out.tbsResponseDataDer = derRaw(tbs);
  const f = expectChildren(tbs, TAG_SEQUENCE, 'ResponseData');
  let i = 0;
  if (f[i]?.tag === 0xa0) {
    const v = derChildren(f[i++]);
    if (v.length !== 1 || readSmallInteger(v[0], 'version') !== 0) throw malformed('ResponseData version must be v1');
  }
  const rid = f[i++];
  if (rid?.tag === 0xa1) {
    const [name, extra] = derChildren(rid);
    if (extra !== undefined) throw malformed('ResponderID byName must hold one Name');
    out.responderName = parseNameNode(name, 'ResponderID');
  } else if (rid?.tag === 0xa2) {
    const [hash, extra] = derChildren(rid);
    if (extra !== undefined) throw malformed('ResponderID byKey must hold one KeyHash');
    out.responderKeyHash = readOctetString(hash, 'KeyHash');
  } else {
    throw malformed('ResponderID is missing or not byName/byKey');
  }
  out.producedAt = readGeneralizedTime(f[i++], 'producedAt');
  for (const r of expectChildren(f[i++], TAG_SEQUENCE, 'responses')) out.responses.push(parseSingleResponse(r));
  if (f[i]?.tag === 0xa1) {
    const wrapped = derChildren(f[i++]);
    if (wrapped.length !== 1) throw malformed('responseExtensions must hold one Extensions');
    out.responseExtensions = parseExtensionsNode(wrapped[0], 'responseExtensions');
    const nonce = readNonce(out.responseExtensions);
    if (nonce !== undefined) {
      out.nonce = nonce.nonce;
      out.nonceEncoding = nonce.nonceEncoding;
    }
  }
  if (i !== f.length) throw malformed('ResponseData has unexpected components');
}

/**
 * Decodes an OCSP response: KAKUIN_E_DER_MALFORMED on any malformation, KAKUIN_E_OCSP_HASH_UNSUPPORTED
 * for a CertID with an unknown hash. Only id-pkix-ocsp-basic responses are read (RFC 6960 §4.2.1:
 * "OCSP responders SHALL be capable of producing responses of the id-pkix-ocsp-basic response type").
 * The signature is not checked here: verifyOcspResponseSignature does that.
 */
export function parseOcspResponse(der: Buffer): ParsedOcspResponse {
  return guardDer('OCSP response', () => {
    const root = readDer(der);
    const parts = expectChildren(root, TAG_SEQUENCE, 'OCSPResponse');
    if (parts.length < 1 || parts.length > 2) throw malformed('OCSPResponse has the wrong number of components');
    const code = derContent(expectTag(parts[0], 0x0a, 'responseStatus'));
    const status = code.length === 1 ? STATUS_BY_CODE[code[0]] : undefined;
    if (status === undefined) throw malformed('responseStatus is not a defined OCSPResponseStatus');
    const out: ParsedOcspResponse = { rawDer: derRaw(root), status, responses: [], certs: [], responseExtensions: [] };
    if (status !== 'successful') {
      if (parts.length !== 1) throw malformed('an error response must not carry responseBytes');
      return out;
    }
    const wrapped = expectChildren(parts[1], 0xa0, 'responseBytes');
    if (wrapped.length !== 1) throw malformed('responseBytes must hold one ResponseBytes');
    const rb = expectChildren(wrapped[0], TAG_SEQUENCE, 'ResponseBytes');
    if (rb.length !== 2) throw malformed('ResponseBytes must have two components');
    const type = readOid(rb[0], 'responseType');
    if (type !== OID_PKIX_OCSP_BASIC) throw malformed(`OCSP response type ${type} is not id-pkix-ocsp-basic`);
    parseBasic(readOctetString(rb[1], 'ResponseBytes.response'), out);
    return out;
  });
}

/**
 * True when a successful response's signature verifies under `signerSpki` over its original
 * ResponseData bytes. Whether that signer may answer for the CertIDs (the CA itself, or a
 * delegated responder it issued with id-kp-OCSPSigning, RFC 6960 §4.2.2.2) is the caller's check.
 */
export function verifyOcspResponseSignature(resp: ParsedOcspResponse, signerSpki: PublicKeyInfo): boolean {
  // An error response (unsigned by RFC 6960 §4.2.1) has no valid signature.
  if (resp.tbsResponseDataDer === undefined || resp.signatureAlgorithm === undefined || resp.signature === undefined) return false;
  return verifySignature(resp.tbsResponseDataDer, resp.signatureAlgorithm, resp.signature, signerSpki);
}

