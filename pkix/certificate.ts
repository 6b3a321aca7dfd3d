/**
 * X.509 v3 certificates: the to-be-signed body (the issuance hot path), assembly with a signature,
 * and parsing.
 *
 * RFC 5280 §4.1 (Appendix A.1):
 *   Certificate  ::=  SEQUENCE  {
 *        tbsCertificate       TBSCertificate,
 *        signatureAlgorithm   AlgorithmIdentifier,
 *        signatureValue       BIT STRING  }
 *
 *   TBSCertificate  ::=  SEQUENCE  {
 *        version         [0]  EXPLICIT Version DEFAULT v1,
 *        serialNumber         CertificateSerialNumber,
 *        signature            AlgorithmIdentifier,
 *        issuer               Name,
 *        validity             Validity,
 *        subject              Name,
 *        subjectPublicKeyInfo SubjectPublicKeyInfo,
 *        issuerUniqueID  [1]  IMPLICIT UniqueIdentifier OPTIONAL,
 *                             -- If present, version MUST be v2 or v3
 *        subjectUniqueID [2]  IMPLICIT UniqueIdentifier OPTIONAL,
 *                             -- If present, version MUST be v2 or v3
 *        extensions      [3]  EXPLICIT Extensions OPTIONAL
 *                             -- If present, version MUST be v3
 *        }
 *
 *   Version  ::=  INTEGER  {  v1(0), v2(1), v3(2)  }
 *   CertificateSerialNumber  ::=  INTEGER
 *   Validity ::= SEQUENCE {
 *        notBefore      Time,
 *        notAfter       Time }
 *   Time ::= CHOICE {
 *        utcTime        UTCTime,
 *        generalTime    GeneralizedTime }
 */
import { KakuinError } from '../errors/index.js';
import { type AlgorithmIdentifier, encodeSignatureAlgorithm, parseAlgorithmIdentifier, type SignatureAlgorithmName } from './algorithm.js';
import { derGeneralizedTime, derHeader, derInteger, derTime, encodeTlv, lengthOfLength, TAG_SEQUENCE, writeHeader } from './der.js';
import {
  type DerNode, derChildren, derRaw, expectChildren, guardDer, malformed, readDer, readIntegerBytes, readOctetAlignedBitString,
  readSmallInteger, readTime,
} from './der-reader.js';
import {
  parseAuthorityKeyIdentifier, parseBasicConstraints, parseExtensionsNode, parseSubjectKeyIdentifier, type ParsedExtension,
} from './extensions-read.js';
import { parseNameNode, type ParsedName } from './name.js';
import { OID_CE_AUTHORITY_KEY_IDENTIFIER, OID_CE_BASIC_CONSTRAINTS, OID_CE_SUBJECT_KEY_IDENTIFIER } from './oids.js';
import { verifySignature } from './signature.js';
import { parseSpkiNode, type PublicKeyInfo } from './spki.js';

export interface TbsCertificateInput {
  /** Unsigned big-endian magnitude; positive and at most 20 octets once encoded (RFC 5280 §4.1.2.2). */
  serial: Buffer;
  signatureAlgorithm: SignatureAlgorithmName;
  /** Name DER: the issuer's subject exactly as its certificate carries it. */
  issuer: Buffer;
  notBefore: Date;
  /** 'no-well-defined-expiration' writes RFC 5280 §4.1.2.5's GeneralizedTime 99991231235959Z. */
  notAfter: Date | 'no-well-defined-expiration';
  /** Name DER. */
  subject: Buffer;
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer;
  /** Complete Extension DERs, in the order they should appear. */
  extensions: Buffer[];
}

/** [0] EXPLICIT INTEGER 2: always v3. */
const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

/**
 * RFC 5280 §4.1.2.5: "To indicate that a certificate has no well-defined expiration date, the
 * notAfter SHOULD be assigned the GeneralizedTime value of 99991231235959Z."
 */
export const NO_WELL_DEFINED_EXPIRATION_DATE = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));

/** GeneralizedTime 99991231235959Z, shared (do not modify). parseCertificate returns NO_WELL_DEFINED_EXPIRATION_DATE for it. */
const NO_WELL_DEFINED_EXPIRATION_DER = derGeneralizedTime(NO_WELL_DEFINED_EXPIRATION_DATE);

function encodingInput(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ENCODING_INPUT', message);
}

function checkDer(b: Buffer, what: string): void {
  if (!Buffer.isBuffer(b) || b.length < 2 || b[0] !== TAG_SEQUENCE) throw encodingInput(`${what} must be DER (a SEQUENCE)`);
}

/** The DER TBSCertificate, v3. Cheap checks only: this runs once per certificate issued. */
export function encodeTbsCertificate(input: TbsCertificateInput): Buffer {
  const serial = derInteger(input.serial);
  // serial[1] is the content length (short form: at most 21 octets here).
  if (serial[1] > 20 || serial[1] === 0) throw encodingInput('serial number must be 1 to 20 octets once DER-encoded (RFC 5280 §4.1.2.2)');
  if (serial[1] === 1 && serial[2] === 0) throw encodingInput('serial number must be positive (RFC 5280 §4.1.2.2)');
  checkDer(input.issuer, 'issuer');
  checkDer(input.subject, 'subject');
  checkDer(input.spki, 'spki');
  const notBefore = derTime(input.notBefore);
  let notAfter: Buffer;
  if (input.notAfter === 'no-well-defined-expiration') {
    notAfter = NO_WELL_DEFINED_EXPIRATION_DER;
  } else {
    notAfter = derTime(input.notAfter);
    if (input.notAfter.getTime() < input.notBefore.getTime()) throw encodingInput('notAfter is before notBefore');
  }
  const validityLen = notBefore.length + notAfter.length;
  const parts: Buffer[] = [
    VERSION_V3, serial, encodeSignatureAlgorithm(input.signatureAlgorithm), input.issuer,
    derHeader(TAG_SEQUENCE, validityLen), notBefore, notAfter, input.subject, input.spki,
  ];
  const exts = input.extensions;
  if (exts.length > 0) {
    let extLen = 0;
    for (let i = 0; i < exts.length; i++) extLen += exts[i].length;
    const seqLen = 1 + lengthOfLength(extLen) + extLen;
    // [3] EXPLICIT and the SEQUENCE OF headers in one small buffer.
    const headers = Buffer.allocUnsafe(1 + lengthOfLength(seqLen) + 1 + lengthOfLength(extLen));
    writeHeader(headers, writeHeader(headers, 0, 0xa3, seqLen), TAG_SEQUENCE, extLen);
    parts.push(headers);
    for (let i = 0; i < exts.length; i++) parts.push(exts[i]);
  }
  return encodeTlv(TAG_SEQUENCE, parts);
}

/** Certificate DER from a TBSCertificate and its signature (ECDSA signatures in their DER form). */
export function encodeCertificate(tbs: Buffer, alg: SignatureAlgorithmName, signature: Buffer): Buffer {
  const algDer = encodeSignatureAlgorithm(alg);
  const sigLen = signature.length + 1;
  const sigHeaderLen = 1 + lengthOfLength(sigLen);
  const contentLen = tbs.length + algDer.length + sigHeaderLen + sigLen;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(contentLen) + contentLen);
  let o = writeHeader(out, 0, TAG_SEQUENCE, contentLen);
  o += tbs.copy(out, o);
  o += algDer.copy(out, o);
  o = writeHeader(out, o, 0x03, sigLen);
  out[o++] = 0; // no unused bits
  signature.copy(out, o);
  return out;
}

export interface ParsedCertificate {
  /** The certificate exactly as received. */
  rawDer: Buffer;
  /** The TBSCertificate exactly as received: the signed bytes. */
  tbsDer: Buffer;
  /** 1, 2 or 3. */
  version: number;
  /** The INTEGER without its DER sign octet: the unsigned magnitude of a (conforming, positive) serial. */
  serial: Buffer;
  /** Uppercase hex, no separators, as `openssl x509 -serial` prints it. */
  serialHex: string;
  signatureAlgorithmOid: string;
  signatureAlgorithm: AlgorithmIdentifier;
  issuer: ParsedName;
  subject: ParsedName;
  notBefore: Date;
  notAfter: Date;
  spki: PublicKeyInfo;
  extensions: ParsedExtension[];
  subjectKeyIdentifier?: Buffer;
  /** The keyIdentifier field of the AuthorityKeyIdentifier extension. */
  authorityKeyIdentifier?: Buffer;
  basicConstraints?: { ca: boolean; pathLen?: number };
  /** The signature BIT STRING value. */
  signatureValue: Buffer;
}

function serialFields(c: Buffer): { serial: Buffer; serialHex: string } {
  if ((c[0] & 0x80) === 0) {
    const serial = c.length > 1 && c[0] === 0 ? c.subarray(1) : c;
    return { serial, serialHex: serial.toString('hex').toUpperCase() };
  }
  // A negative serial (not allowed by RFC 5280 but seen in the wild): OpenSSL prints "-" and the magnitude.
  const magnitude = -BigInt.asIntN(c.length * 8, BigInt(`0x${c.toString('hex')}`));
  let hex = magnitude.toString(16).toUpperCase();
  if (hex.length % 2) hex = `0${hex}`;
  return { serial: c, serialHex: `-${hex}` };
}

function parseTbs(node: DerNode, outerAlg: AlgorithmIdentifier): Omit<ParsedCertificate, 'rawDer' | 'signatureValue'> {
  const f = expectChildren(node, TAG_SEQUENCE, 'TBSCertificate');
  let i = 0;
  let version = 1;
  if (f[i]?.tag === 0xa0) {
    const v = derChildren(f[i++]);
    if (v.length !== 1) throw malformed('version must hold one INTEGER');
    const n = readSmallInteger(v[0], 'version');
    if (n < 0 || n > 2) throw malformed(`unknown certificate version ${n}`);
    version = n + 1;
  }
  const { serial, serialHex } = serialFields(readIntegerBytes(f[i++], 'serialNumber'));
  const inner = parseAlgorithmIdentifier(f[i++], 'TBSCertificate.signature');
  // RFC 5280 §4.1.1.2: the field "MUST contain the same algorithm identifier as the signature field".
  if (!inner.rawDer.equals(outerAlg.rawDer)) throw malformed('TBSCertificate.signature differs from Certificate.signatureAlgorithm');
  const issuer = parseNameNode(f[i++], 'issuer');
  const validity = expectChildren(f[i++], TAG_SEQUENCE, 'Validity');
  if (validity.length !== 2) throw malformed('Validity must have two components');
  const notBefore = readTime(validity[0], 'notBefore');
  const notAfter = readTime(validity[1], 'notAfter');
  const subject = parseNameNode(f[i++], 'subject');
  const spkiNode = f[i++];
  if (spkiNode === undefined) throw malformed('subjectPublicKeyInfo is missing');
  const spki = parseSpkiNode(spkiNode);
  for (const tag of [0x81, 0xa1]) if (f[i]?.tag === tag) i++; // issuerUniqueID [1]
  for (const tag of [0x82, 0xa2]) if (f[i]?.tag === tag) i++; // subjectUniqueID [2]
  if (i < f.length && version < 2) throw malformed('unique identifiers need version v2 or v3');
  let extensions: ParsedExtension[] = [];
  if (f[i]?.tag === 0xa3) {
    if (version !== 3) throw malformed('extensions need version v3');
    const wrapped = derChildren(f[i++]);
    if (wrapped.length !== 1) throw malformed('[3] must hold one Extensions SEQUENCE');
    extensions = parseExtensionsNode(wrapped[0]);
  }
  if (i !== f.length) throw malformed('TBSCertificate has unexpected trailing components');
  const out: Omit<ParsedCertificate, 'rawDer' | 'signatureValue'> = {
    tbsDer: derRaw(node), version, serial, serialHex, signatureAlgorithmOid: outerAlg.oid, signatureAlgorithm: outerAlg,
    issuer, subject, notBefore, notAfter, spki, extensions,
  };
  for (const ext of extensions) {
    if (ext.oid === OID_CE_SUBJECT_KEY_IDENTIFIER) out.subjectKeyIdentifier = parseSubjectKeyIdentifier(ext.value);
    else if (ext.oid === OID_CE_AUTHORITY_KEY_IDENTIFIER) {
      const aki = parseAuthorityKeyIdentifier(ext.value);
      if (aki.keyIdentifier !== undefined) out.authorityKeyIdentifier = aki.keyIdentifier;
    } else if (ext.oid === OID_CE_BASIC_CONSTRAINTS) out.basicConstraints = parseBasicConstraints(ext.value);
  }
  return out;
}

/** Parses a DER certificate; KAKUIN_E_DER_MALFORMED on any malformation. */
export function parseCertificate(der: Buffer): ParsedCertificate {
  return guardDer('certificate', () => {
    const root = readDer(der);
    const parts = expectChildren(root, TAG_SEQUENCE, 'Certificate');
    if (parts.length !== 3) throw malformed('Certificate must have three components');
    const alg = parseAlgorithmIdentifier(parts[1], 'Certificate.signatureAlgorithm');
    const signatureValue = readOctetAlignedBitString(parts[2], 'signatureValue');
    const tbs = parseTbs(parts[0], alg);
    return { rawDer: derRaw(root), ...tbs, signatureValue };
  });
}

/**
 * True when `cert` carries a valid signature by the key `issuerSpki` over its original TBS bytes.
 * Throws KAKUIN_E_ALGORITHM_UNSUPPORTED for refused algorithms (SHA-1, MD5, unknown).
 */
export function verifyCertificateSignature(cert: ParsedCertificate, issuerSpki: PublicKeyInfo): boolean {
  return verifySignature(cert.tbsDer, cert.signatureAlgorithm, cert.signatureValue, issuerSpki);
}
