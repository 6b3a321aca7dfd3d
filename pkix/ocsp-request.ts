/**
 * OCSP requests (RFC 6960 §4.1, RFC 5019 §2.1, RFC 8954): the responder's hot-path decoder (a
 * minimal DER walk), CertID, and an encoder for tests and kakuin's own OCSP client.
 *
 * RFC 6960 §4.1.1 (Appendix B.2, EXPLICIT TAGS):
 *   OCSPRequest ::= SEQUENCE {
 *       tbsRequest                  TBSRequest,
 *       optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
 *
 *   TBSRequest ::= SEQUENCE {
 *       version             [0]     EXPLICIT Version DEFAULT v1,
 *       requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
 *       requestList                 SEQUENCE OF Request,
 *       requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
 *
 *   Signature ::= SEQUENCE {
 *       signatureAlgorithm      AlgorithmIdentifier,
 *       signature               BIT STRING,
 *       certs               [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL}
 *
 *   Version ::= INTEGER { v1(0) }
 *
 *   Request ::= SEQUENCE {
 *       reqCert                     CertID,
 *       singleRequestExtensions     [0] EXPLICIT Extensions OPTIONAL }
 *
 *   CertID ::= SEQUENCE {
 *       hashAlgorithm       AlgorithmIdentifier,
 *       issuerNameHash      OCTET STRING, -- Hash of issuer's DN
 *       issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
 *       serialNumber        CertificateSerialNumber }
 *
 * RFC 8954 §2.1:
 *   id-pkix-ocsp-nonce OBJECT IDENTIFIER ::= { id-pkix-ocsp 2 }
 *   Nonce ::= OCTET STRING(SIZE(1..32))
 * The Nonce is the DER inside the extension's extnValue, so the value is an OCTET STRING wrapped in
 * the extnValue OCTET STRING.
 *
 * Unwrapped nonces: some old clients put the raw nonce octets straight into extnValue. kakuin
 * accepts both forms and remembers which one it saw (`nonceEncoding`): when extnValue holds exactly
 * one DER OCTET STRING, its contents are the nonce ('octet-string'); otherwise the whole extnValue is
 * ('raw'). The response echoes the nonce in the same form, so its extnValue is byte-for-byte the
 * request's — which is what clients compare (OpenSSL's OCSP_check_nonce compares the extnValues).
 * A raw nonce that happens to look like an OCTET STRING is read as wrapped and echoed identically.
 */
import { createHash } from 'node:crypto';
import { KakuinError } from '../errors/index.js';
import { derOid, encodeTlv, TAG_NULL, TAG_OCTET_STRING, TAG_SEQUENCE } from './der.js';
import {
  type DerNode, decodeOid, derChildren, derContent, derRaw, expectChildren, expectTag, guardDer, malformed, readDer,
  readOctetAlignedBitString, readOctetString, readSmallInteger, readUnsignedInteger,
} from './der-reader.js';
import { parseExtensionsNode, type ParsedExtension } from './extensions-read.js';
import { parseAlgorithmIdentifier } from './algorithm.js';
import { OID_SHA1, OID_SHA256, OID_SHA384, OID_SHA512 } from './oids.js';

/** RFC 8954 §2.1 / RFC 6960 §4.4.1. */
export const OID_PKIX_OCSP_NONCE = '1.3.6.1.5.5.7.48.1.2';

export type OcspHashAlgorithm = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** How the nonce sat in extnValue: RFC 8954's OCTET STRING, or raw octets from an old client (echo it the same way). */
export type OcspNonceEncoding = 'octet-string' | 'raw';

export interface OcspCertId {
  /** The CertID exactly as received, to echo back in the SingleResponse. */
  rawDer: Buffer;
  hashAlgorithm: OcspHashAlgorithm;
  hashAlgorithmOid: string;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Unsigned magnitude (the DER sign octet removed). */
  serial: Buffer;
  /** Uppercase hex, no separators, as `openssl x509 -serial` prints it and the registry keeps it. */
  serialHex: string;
}

export interface ParsedOcspRequest {
  rawDer: Buffer;
  certIds: OcspCertId[];
  /** The Nonce value (RFC 8954: the inner OCTET STRING's contents), 1–32 octets. */
  nonce?: Buffer;
  /** Present with `nonce`: pass it to encodeResponseData to echo the nonce in the client's own form. */
  nonceEncoding?: OcspNonceEncoding;
  /** True when optionalSignature is present (its signature is not checked: kakuin does not require signed requests). */
  signed: boolean;
}

interface HashSpec {
  name: OcspHashAlgorithm;
  oid: string;
  /** OID contents octets, compared in place while decoding. */
  oidContent: Buffer;
  digestLength: number;
  /** AlgorithmIdentifier { oid, NULL }: what OpenSSL writes (OCSP_cert_id_new sets V_ASN1_NULL). */
  algorithmDer: Buffer;
}

const HASHES: readonly HashSpec[] = ([['sha1', OID_SHA1, 20], ['sha256', OID_SHA256, 32], ['sha384', OID_SHA384, 48], ['sha512', OID_SHA512, 64]] as const)
  .map(([name, oid, digestLength]) => {
    const oidDer = derOid(oid);
    return { name, oid, oidContent: oidDer.subarray(2), digestLength, algorithmDer: encodeTlv(TAG_SEQUENCE, [oidDer, Buffer.from([TAG_NULL, 0])]) };
  });

const HASH_BY_NAME: Readonly<Record<string, HashSpec>> = Object.fromEntries(HASHES.map((h) => [h.name, h]));

const NONCE_OID_DER = derOid(OID_PKIX_OCSP_NONCE);

function hashUnsupported(oid: string): KakuinError {
  return new KakuinError('KAKUIN_E_OCSP_HASH_UNSUPPORTED', `CertID hash algorithm ${oid} is not supported (SHA-1, SHA-256, SHA-384, SHA-512 are)`);
}

function encodingInput(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ENCODING_INPUT', message);
}

function contentEquals(node: DerNode, expected: Buffer): boolean {
  const len = node.end - node.contentStart;
  return len === expected.length && node.buf.compare(expected, 0, len, node.contentStart, node.end) === 0;
}

/**
 * A CertID found inside a request or a response. Malformations throw KAKUIN_E_DER_MALFORMED; an
 * unknown hash algorithm throws KAKUIN_E_OCSP_HASH_UNSUPPORTED, but only once the rest of the
 * CertID has been checked.
 * Hash-length rule: issuerNameHash and issuerKeyHash must be as long as the named hash's digest;
 * no issuer can match anything else, and nothing conforming writes it.
 */
export function parseCertIdNode(node: DerNode | undefined): OcspCertId {
  const parts = expectChildren(node, TAG_SEQUENCE, 'CertID');
  if (parts.length !== 4) throw malformed('CertID must have four components');
  const alg = expectChildren(parts[0], TAG_SEQUENCE, 'CertID.hashAlgorithm');
  if (alg.length < 1 || alg.length > 2) throw malformed('CertID.hashAlgorithm has the wrong number of components');
  const oidNode = expectTag(alg[0], 0x06, 'CertID.hashAlgorithm.algorithm');
  // Parameters absent (RFC 5754 §2) or NULL (what OpenSSL and most clients write): both occur.
  if (alg.length === 2 && (alg[1].tag !== TAG_NULL || alg[1].end !== alg[1].contentStart)) {
    throw malformed('CertID.hashAlgorithm parameters must be absent or NULL');
  }
  const issuerNameHash = readOctetString(parts[1], 'issuerNameHash');
  const issuerKeyHash = readOctetString(parts[2], 'issuerKeyHash');
  const serial = readUnsignedInteger(parts[3], 'CertID.serialNumber');
  let spec: HashSpec | undefined;
  for (let i = 0; i < HASHES.length; i++) if (contentEquals(oidNode, HASHES[i].oidContent)) spec = HASHES[i];
  if (spec === undefined) throw hashUnsupported(decodeOid(derContent(oidNode), 'CertID.hashAlgorithm.algorithm'));
  if (issuerNameHash.length !== spec.digestLength || issuerKeyHash.length !== spec.digestLength) {
    throw malformed(`CertID hashes must be ${spec.digestLength} octets for ${spec.name}`);
  }
  return {
    rawDer: derRaw(node!), hashAlgorithm: spec.name, hashAlgorithmOid: spec.oid, issuerNameHash, issuerKeyHash, serial,
    serialHex: serial.toString('hex').toUpperCase(),
  };
}

/** The nonce in an Extensions list, in either encoding (see the module comment). */
export function readNonce(extensions: ParsedExtension[]): { nonce: Buffer; nonceEncoding: OcspNonceEncoding } | undefined {
  for (const ext of extensions) {
    if (ext.oid !== OID_PKIX_OCSP_NONCE) continue;
    const v = ext.value;
    let inner: DerNode | undefined;
    if (v.length >= 2 && v[0] === TAG_OCTET_STRING) {
      try {
        inner = readDer(v);
      } catch {
        inner = undefined; // not one DER OCTET STRING: the raw form
      }
    }
    return inner !== undefined ? { nonce: derContent(inner), nonceEncoding: 'octet-string' } : { nonce: v, nonceEncoding: 'raw' };
  }
  return undefined;
}

function checkNonceLength(nonce: Buffer): void {
  if (nonce.length < 1 || nonce.length > 32) {
    throw new KakuinError('KAKUIN_E_OCSP_NONCE_INVALID', `the OCSP nonce is ${nonce.length} octets; RFC 8954 §2.1 allows 1 to 32`);
  }
}

/** Signature ::= SEQUENCE { signatureAlgorithm, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL } */
function checkRequestSignature(node: DerNode): void {
  const wrapped = derChildren(node);
  if (wrapped.length !== 1) throw malformed('optionalSignature must hold one Signature');
  const parts = expectChildren(wrapped[0], TAG_SEQUENCE, 'Signature');
  if (parts.length < 2 || parts.length > 3) throw malformed('Signature has the wrong number of components');
  parseAlgorithmIdentifier(parts[0], 'Signature.signatureAlgorithm');
  readOctetAlignedBitString(parts[1], 'Signature.signature');
  if (parts.length === 3) {
    const certs = expectChildren(parts[2], 0xa0, 'Signature.certs');
    if (certs.length !== 1) throw malformed('Signature.certs must hold one SEQUENCE');
    for (const c of expectChildren(certs[0], TAG_SEQUENCE, 'Signature.certs')) expectTag(c, TAG_SEQUENCE, 'certificate');
  }
}

/**
 * Decodes an OCSP request. KAKUIN_E_DER_MALFORMED for any malformation (and nothing but KakuinErrors
 * escape, whatever the input); once the whole request is well formed, KAKUIN_E_OCSP_HASH_UNSUPPORTED
 * when a CertID names an unknown hash and KAKUIN_E_OCSP_NONCE_INVALID when the nonce is not 1–32
 * octets (RFC 8954 §2.1). A critical request extension other than the nonce is refused as malformed
 * (RFC 6960 §4.4: unrecognised extensions are ignored "unless they have the critical flag set").
 */
export function parseOcspRequest(der: Buffer): ParsedOcspRequest {
  return guardDer('OCSP request', () => {
    const root = readDer(der);
    const top = expectChildren(root, TAG_SEQUENCE, 'OCSPRequest');
    if (top.length < 1 || top.length > 2) throw malformed('OCSPRequest has the wrong number of components');
    const signed = top.length === 2;
    if (signed) checkRequestSignature(expectTag(top[1], 0xa0, 'optionalSignature'));
    const f = expectChildren(top[0], TAG_SEQUENCE, 'TBSRequest');
    let i = 0;
    if (f[i]?.tag === 0xa0) {
      const v = derChildren(f[i++]);
      if (v.length !== 1 || readSmallInteger(v[0], 'version') !== 0) throw malformed('OCSP request version must be v1');
    }
    if (f[i]?.tag === 0xa1) {
      if (derChildren(f[i++]).length !== 1) throw malformed('requestorName must hold one GeneralName');
    }
    const requests = expectChildren(f[i++], TAG_SEQUENCE, 'requestList');
    if (requests.length === 0) throw malformed('requestList is empty');
    const certIds: OcspCertId[] = [];
    let deferred: KakuinError | undefined;
    for (const req of requests) {
      const parts = expectChildren(req, TAG_SEQUENCE, 'Request');
      if (parts.length < 1 || parts.length > 2) throw malformed('Request has the wrong number of components');
      if (parts.length === 2) {
        const wrapped = expectChildren(parts[1], 0xa0, 'singleRequestExtensions');
        if (wrapped.length !== 1) throw malformed('singleRequestExtensions must hold one Extensions');
        refuseCritical(parseExtensionsNode(wrapped[0], 'singleRequestExtensions'));
      }
      try {
        certIds.push(parseCertIdNode(parts[0]));
      } catch (e) {
        if (!(e instanceof KakuinError) || e.code !== 'KAKUIN_E_OCSP_HASH_UNSUPPORTED') throw e;
        deferred ??= e;
      }
    }
    let extensions: ParsedExtension[] = [];
    if (f[i]?.tag === 0xa2) {
      const wrapped = derChildren(f[i++]);
      if (wrapped.length !== 1) throw malformed('requestExtensions must hold one Extensions');
      extensions = parseExtensionsNode(wrapped[0], 'requestExtensions');
      refuseCritical(extensions);
    }
    if (i !== f.length) throw malformed('TBSRequest has unexpected components');
    if (deferred !== undefined) throw deferred;
    const out: ParsedOcspRequest = { rawDer: derRaw(root), certIds, signed };
    const nonce = readNonce(extensions);
    if (nonce !== undefined) {
      checkNonceLength(nonce.nonce);
      out.nonce = nonce.nonce;
      out.nonceEncoding = nonce.nonceEncoding;
    }
    return out;
  });
}

function refuseCritical(extensions: ParsedExtension[]): void {
  for (const ext of extensions) {
    if (ext.critical && ext.oid !== OID_PKIX_OCSP_NONCE) throw malformed(`critical OCSP request extension ${ext.oid} is not understood`);
  }
}

/**
 * A CertID (RFC 6960 §4.1.1): "issuerNameHash is the hash of the issuer's distinguished name (DN).
 * The hash shall be calculated over the DER encoding of the issuer's name field in the certificate
 * being checked. issuerKeyHash is the hash of the issuer's public key. The hash shall be calculated
 * over the value (excluding tag and length) of the subject public key field in the issuer's
 * certificate." hashAlgorithm carries NULL parameters, as OpenSSL writes it.
 */
export function encodeCertId(hash: OcspHashAlgorithm, issuerNameDer: Buffer, issuerSubjectPublicKey: Buffer, serial: Buffer): Buffer {
  const spec = HASH_BY_NAME[hash];
  if (spec === undefined) throw encodingInput(`unknown CertID hash ${String(hash)}`);
  if (!Buffer.isBuffer(issuerNameDer) || issuerNameDer[0] !== TAG_SEQUENCE) throw encodingInput('issuerNameDer must be Name DER');
  if (!Buffer.isBuffer(issuerSubjectPublicKey) || issuerSubjectPublicKey.length === 0) throw encodingInput('issuerSubjectPublicKey must be the SPKI BIT STRING value');
  if (!Buffer.isBuffer(serial) || serial.length === 0) throw encodingInput('serial must be a non-empty Buffer');
  const nameHash = createHash(spec.name).update(issuerNameDer).digest();
  const keyHash = createHash(spec.name).update(issuerSubjectPublicKey).digest();
  let s = 0;
  while (s < serial.length - 1 && serial[s] === 0) s++;
  const magnitude = serial.subarray(s);
  const serialDer = encodeTlv(0x02, (magnitude[0] & 0x80) ? [Buffer.from([0]), magnitude] : magnitude);
  return encodeTlv(TAG_SEQUENCE, [spec.algorithmDer, encodeTlv(TAG_OCTET_STRING, nameHash), encodeTlv(TAG_OCTET_STRING, keyHash), serialDer]);
}

/**
 * The nonce Extension (not critical) with the nonce in `encoding` (see the module comment).
 * Shared by the request encoder and the response's echo.
 */
export function encodeNonceExtension(nonce: Buffer, encoding: OcspNonceEncoding = 'octet-string'): Buffer {
  if (!Buffer.isBuffer(nonce)) throw encodingInput('nonce must be a Buffer');
  if (nonce.length < 1 || nonce.length > 32) throw encodingInput('nonce must be 1 to 32 octets (RFC 8954 §2.1)');
  const value = encoding === 'raw' ? nonce : encodeTlv(TAG_OCTET_STRING, nonce);
  return encodeTlv(TAG_SEQUENCE, [NONCE_OID_DER, encodeTlv(TAG_OCTET_STRING, value)]);
}

/** An unsigned OCSPRequest (v1, no requestorName) for `certIds` (CertID DERs), with an optional nonce. */
export function encodeOcspRequest(certIds: Buffer[], nonce?: Buffer): Buffer {
  if (!Array.isArray(certIds) || certIds.length === 0) throw encodingInput('an OCSP request needs at least one CertID');
  const requests = certIds.map((c) => {
    if (!Buffer.isBuffer(c) || c[0] !== TAG_SEQUENCE) throw encodingInput('each CertID must be DER (a SEQUENCE)');
    return encodeTlv(TAG_SEQUENCE, c);
  });
  const tbs: Buffer[] = [encodeTlv(TAG_SEQUENCE, requests)];
  if (nonce !== undefined) tbs.push(encodeTlv(0xa2, encodeTlv(TAG_SEQUENCE, encodeNonceExtension(nonce))));
  return encodeTlv(TAG_SEQUENCE, encodeTlv(TAG_SEQUENCE, tbs));
}
