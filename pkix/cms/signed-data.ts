/**
 * CMS SignedData with one signer and signed attributes (RFC 5652 §5), as SCEP uses it (RFC 8894
 * §3.1): every pkiMessage is a SignedData whose signed attributes carry the SCEP fields.
 *
 *   SignedData ::= SEQUENCE {
 *     version CMSVersion,
 *     digestAlgorithms DigestAlgorithmIdentifiers,
 *     encapContentInfo EncapsulatedContentInfo,
 *     certificates [0] IMPLICIT CertificateSet OPTIONAL,
 *     crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
 *     signerInfos SignerInfos }
 *   EncapsulatedContentInfo ::= SEQUENCE { eContentType ContentType, eContent [0] EXPLICIT OCTET STRING OPTIONAL }
 *   SignerInfo ::= SEQUENCE {
 *     version CMSVersion,
 *     sid SignerIdentifier,                 -- issuerAndSerialNumber (v1) | subjectKeyIdentifier [0] (v3)
 *     digestAlgorithm DigestAlgorithmIdentifier,
 *     signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
 *     signatureAlgorithm SignatureAlgorithmIdentifier,
 *     signature SignatureValue,
 *     unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
 *   IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber CertificateSerialNumber }
 *
 * Parsing is a DER walk (pkix/der-reader.ts): definite lengths only. The clients kakuin meets
 * (OpenSSL's PKCS7/CMS writers, Go's pkcs7, jscep) write DER for these small messages; a BER
 * stream with indefinite lengths is refused as malformed rather than half-read.
 */
import { createHash, verify, type KeyObject } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { parseAlgorithmIdentifier, type AlgorithmIdentifier } from '../algorithm.js';
import { parseCertificate, type ParsedCertificate } from '../certificate.js';
import {
  derExplicit, derImplicit, derInteger, derNull, derOctetString, derOid, derSequence, derSet, derUtcTime, TAG_SET,
} from '../der.js';
import {
  derChildren, derContent, derRaw, expectChildren, expectTag, guardDer, malformed, readDer, readIntegerBytes, readOid,
  readSmallInteger, readTime, type DerNode,
} from '../der-reader.js';
import {
  OID_ECDSA_WITH_SHA256, OID_ECDSA_WITH_SHA384, OID_ECDSA_WITH_SHA512, OID_EC_PUBLIC_KEY, OID_RSA_ENCRYPTION, OID_SHA1,
  OID_SHA256, OID_SHA256_WITH_RSA, OID_SHA384, OID_SHA384_WITH_RSA, OID_SHA512, OID_SHA512_WITH_RSA,
} from '../oids.js';
import { publicKeyObject } from '../signature.js';
import {
  OID_ATTR_CONTENT_TYPE, OID_ATTR_MESSAGE_DIGEST, OID_ATTR_SIGNING_TIME, OID_CMS_DATA, OID_CMS_SIGNED_DATA,
} from './oids.js';

export interface CmsAttribute {
  oid: string;
  /** The DER of each value. */
  values: Buffer[];
}

export type CmsDigest = 'sha256' | 'sha384' | 'sha512';

const DIGEST_OIDS: Readonly<Record<string, CmsDigest>> = { [OID_SHA256]: 'sha256', [OID_SHA384]: 'sha384', [OID_SHA512]: 'sha512' };
const DIGEST_OID_OF: Readonly<Record<CmsDigest, string>> = { sha256: OID_SHA256, sha384: OID_SHA384, sha512: OID_SHA512 };

export interface ParsedSignerInfo {
  /** IssuerAndSerialNumber (v1) or SubjectKeyIdentifier (v3). */
  sid: { issuerDer: Buffer; serial: Buffer } | { subjectKeyIdentifier: Buffer };
  digestAlgorithmOid: string;
  signatureAlgorithm: AlgorithmIdentifier;
  /** The signed attributes exactly as received, re-tagged as the SET OF that was signed (RFC 5652 §5.4). */
  signedAttributesDer: Buffer;
  attributes: CmsAttribute[];
  signature: Buffer;
}

export interface ParsedSignedData {
  rawDer: Buffer;
  eContentType: string;
  /** The encapsulated content's octets; undefined when absent (a detached signature). */
  eContent?: Buffer;
  /** DER certificates the message carries. */
  certificates: Buffer[];
  signers: ParsedSignerInfo[];
}

/** OCTET STRING content, primitive or (BER's) constructed of primitive segments. */
function octets(node: DerNode, what: string): Buffer {
  if (node.tag === 0x04) return derContent(node);
  if (node.tag === 0x24) return Buffer.concat(derChildren(node).map((c) => octets(c, what)));
  throw malformed(`${what} must be an OCTET STRING`);
}

function parseAttributes(nodes: DerNode[]): CmsAttribute[] {
  return nodes.map((a) => {
    const parts = expectChildren(a, 0x30, 'Attribute');
    if (parts.length !== 2) throw malformed('Attribute must have two components');
    const values = expectChildren(parts[1], 0x31, 'Attribute.attrValues');
    if (values.length === 0) throw malformed('Attribute.attrValues is empty');
    return { oid: readOid(parts[0], 'Attribute.attrType'), values: values.map(derRaw) };
  });
}

function parseSignerInfo(node: DerNode): ParsedSignerInfo {
  const f = expectChildren(node, 0x30, 'SignerInfo');
  let i = 0;
  const version = readSmallInteger(f[i++], 'SignerInfo.version');
  const sidNode = f[i++];
  let sid: ParsedSignerInfo['sid'];
  if (version === 1) {
    const ias = expectChildren(sidNode, 0x30, 'IssuerAndSerialNumber');
    if (ias.length !== 2) throw malformed('IssuerAndSerialNumber must have two components');
    expectTag(ias[0], 0x30, 'IssuerAndSerialNumber.issuer');
    sid = { issuerDer: derRaw(ias[0]), serial: unsignedSerial(readIntegerBytes(ias[1], 'IssuerAndSerialNumber.serialNumber')) };
  } else if (version === 3) {
    sid = { subjectKeyIdentifier: derContent(expectTag(sidNode, 0x80, 'SignerIdentifier.subjectKeyIdentifier')) };
  } else {
    throw malformed(`SignerInfo.version ${version} is not 1 or 3`);
  }
  const digestAlgorithmOid = parseAlgorithmIdentifier(f[i++], 'SignerInfo.digestAlgorithm').oid;
  // RFC 5652 §5.4: the DER of the signed attributes with an EXPLICIT SET OF tag is what is signed.
  if (f[i]?.tag !== 0xa0) throw malformed('SignerInfo has no signed attributes (RFC 8894 §3.2.1 requires them)');
  const attrsNode = f[i++];
  const signedAttributesDer = Buffer.from(derRaw(attrsNode));
  signedAttributesDer[0] = TAG_SET;
  const attributes = parseAttributes(derChildren(attrsNode));
  const signatureAlgorithm = parseAlgorithmIdentifier(f[i++], 'SignerInfo.signatureAlgorithm');
  const signature = derContent(expectTag(f[i++], 0x04, 'SignerInfo.signature'));
  if (f[i]?.tag === 0xa1) i++;
  if (i !== f.length) throw malformed('SignerInfo has unexpected trailing components');
  return { sid, digestAlgorithmOid, signatureAlgorithm, signedAttributesDer, attributes, signature };
}

function unsignedSerial(b: Buffer): Buffer {
  return b.length > 1 && b[0] === 0 ? b.subarray(1) : b;
}

/** Parses a ContentInfo holding SignedData. KAKUIN_E_DER_MALFORMED on any malformation. */
export function parseSignedData(der: Buffer): ParsedSignedData {
  return guardDer('CMS SignedData', () => {
    const root = readDer(der);
    const ci = expectChildren(root, 0x30, 'ContentInfo');
    if (ci.length !== 2) throw malformed('ContentInfo must have two components');
    if (readOid(ci[0], 'ContentInfo.contentType') !== OID_CMS_SIGNED_DATA) throw malformed('the ContentInfo is not SignedData');
    const wrapped = derChildren(expectTag(ci[1], 0xa0, 'ContentInfo.content'));
    if (wrapped.length !== 1) throw malformed('ContentInfo.content must hold one value');
    const f = expectChildren(wrapped[0], 0x30, 'SignedData');
    let i = 0;
    readSmallInteger(f[i++], 'SignedData.version');
    expectTag(f[i++], 0x31, 'SignedData.digestAlgorithms');
    const eci = expectChildren(f[i++], 0x30, 'EncapsulatedContentInfo');
    const eContentType = readOid(eci[0], 'eContentType');
    let eContent: Buffer | undefined;
    if (eci[1] !== undefined) {
      const inner = derChildren(expectTag(eci[1], 0xa0, 'eContent'));
      if (inner.length !== 1) throw malformed('eContent must hold one OCTET STRING');
      eContent = octets(inner[0], 'eContent');
    }
    const certificates: Buffer[] = [];
    if (f[i]?.tag === 0xa0) {
      for (const c of derChildren(f[i++])) if (c.tag === 0x30) certificates.push(derRaw(c));
    }
    if (f[i]?.tag === 0xa1) i++;
    const signers = expectChildren(f[i++], 0x31, 'SignedData.signerInfos').map(parseSignerInfo);
    if (i !== f.length) throw malformed('SignedData has unexpected trailing components');
    return { rawDer: derRaw(root), eContentType, ...(eContent !== undefined && { eContent }), certificates, signers };
  });
}

/** The certificate among `certificates` that the signer identifier names, parsed; undefined when none does. */
export function signerCertificate(signer: ParsedSignerInfo, certificates: Buffer[]): ParsedCertificate | undefined {
  for (const der of certificates) {
    let cert: ParsedCertificate;
    try {
      cert = parseCertificate(der);
    } catch {
      continue;
    }
    if ('issuerDer' in signer.sid) {
      if (cert.issuer.rawDer.equals(signer.sid.issuerDer) && unsignedSerial(cert.serial).equals(signer.sid.serial)) return cert;
    } else if (cert.subjectKeyIdentifier?.equals(signer.sid.subjectKeyIdentifier)) {
      return cert;
    }
  }
  return undefined;
}

/** The value DER of a signed attribute that must occur once with one value; undefined when absent. */
export function singleAttribute(signer: ParsedSignerInfo, oid: string): Buffer | undefined {
  const found = signer.attributes.filter((a) => a.oid === oid);
  if (found.length === 0) return undefined;
  if (found.length > 1 || found[0].values.length !== 1) throw malformed(`signed attribute ${oid} must occur once with one value`);
  return found[0].values[0];
}

/**
 * Checks one signer (RFC 5652 §5.6): the content-type attribute names `eContentType`, the
 * message-digest attribute is the digest of the content, and the signature over the signed
 * attributes verifies under the certificate's key. Throws KAKUIN_E_ALGORITHM_UNSUPPORTED for
 * SHA-1/MD5 or unknown algorithms; returns false for a signature or digest that does not match.
 */
export function verifySigner(signer: ParsedSignerInfo, eContentType: string, content: Buffer, certificate: ParsedCertificate): boolean {
  const digest = DIGEST_OIDS[signer.digestAlgorithmOid];
  if (digest === undefined) {
    throw new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', signer.digestAlgorithmOid === OID_SHA1
      ? 'SHA-1 message digests are refused' : `digest algorithm ${signer.digestAlgorithmOid} is not supported`);
  }
  const type = singleAttribute(signer, OID_ATTR_CONTENT_TYPE);
  const md = singleAttribute(signer, OID_ATTR_MESSAGE_DIGEST);
  if (type === undefined || md === undefined) throw malformed('the signed attributes need content-type and message-digest (RFC 5652 §5.3)');
  if (guardDer('content-type attribute', () => readOid(readDer(type))) !== eContentType) return false;
  const expected = createHash(digest).update(content).digest();
  if (!guardDer('message-digest attribute', () => derContent(expectTag(readDer(md), 0x04, 'messageDigest'))).equals(expected)) return false;
  const sigDigest = signatureDigest(signer.signatureAlgorithm.oid, digest, certificate.spki.keyType);
  const key: KeyObject = publicKeyObject(certificate.spki);
  try {
    return verify(sigDigest, signer.signedAttributesDer, key, signer.signature);
  } catch {
    return false;
  }
}

/**
 * The hash of a SignerInfo signature. OpenSSL's PKCS7 and CMS writers put the bare key algorithm
 * (rsaEncryption, id-ecPublicKey) in signatureAlgorithm and let digestAlgorithm name the hash
 * (RFC 5754 §3.2 allows rsaEncryption); the combined identifiers are read too.
 */
function signatureDigest(oid: string, digest: CmsDigest, keyType: string): CmsDigest {
  const combined: Record<string, [string, CmsDigest]> = {
    [OID_SHA256_WITH_RSA]: ['rsa', 'sha256'], [OID_SHA384_WITH_RSA]: ['rsa', 'sha384'], [OID_SHA512_WITH_RSA]: ['rsa', 'sha512'],
    [OID_ECDSA_WITH_SHA256]: ['ec', 'sha256'], [OID_ECDSA_WITH_SHA384]: ['ec', 'sha384'], [OID_ECDSA_WITH_SHA512]: ['ec', 'sha512'],
  };
  if (oid === OID_RSA_ENCRYPTION && keyType === 'rsa') return digest;
  if (oid === OID_EC_PUBLIC_KEY && keyType === 'ec') return digest;
  const c = combined[oid];
  if (c === undefined || c[0] !== keyType) throw new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', `signature algorithm ${oid} is not supported for a ${keyType} key`);
  return c[1];
}

export interface SignedDataInput {
  eContentType?: string;
  /** The content; an empty buffer is still encapsulated (an empty OCTET STRING), never detached. */
  content: Buffer;
  /** The signer's certificate (DER): its issuer and serial are the sid, and it is carried in `certificates`. */
  signerCertificate: Buffer;
  /** More certificates to carry (a chain). */
  certificates?: Buffer[];
  /** Signed attributes besides content-type, signing-time and message-digest, which are added here. */
  attributes: CmsAttribute[];
  signingTime?: Date;
  digest?: CmsDigest;
  /** rsaEncryption or ecdsa-with-SHA*, by the signer's key type. */
  keyType: 'rsa' | 'ec';
  /** Signs the DER SET OF signed attributes (hashing with `digest`). */
  sign: (data: Buffer) => Promise<Buffer>;
}

/** DER of a ContentInfo holding SignedData with one signer (version 1: issuerAndSerialNumber). */
export async function encodeSignedData(input: SignedDataInput): Promise<Buffer> {
  const digest = input.digest ?? 'sha256';
  const eContentType = input.eContentType ?? OID_CMS_DATA;
  const digestAlg = derSequence(derOid(DIGEST_OID_OF[digest]));
  const cert = parseCertificate(input.signerCertificate);
  const attributes: CmsAttribute[] = [
    { oid: OID_ATTR_CONTENT_TYPE, values: [derOid(eContentType)] },
    ...(input.signingTime ? [{ oid: OID_ATTR_SIGNING_TIME, values: [derUtcTime(input.signingTime)] }] : []),
    { oid: OID_ATTR_MESSAGE_DIGEST, values: [derOctetString(createHash(digest).update(input.content).digest())] },
    ...input.attributes,
  ];
  const signedAttrs = derSet(...attributes.map((a) => derSequence(derOid(a.oid), derSet(...a.values))));
  const signature = await input.sign(signedAttrs);
  const sigAlg = input.keyType === 'rsa'
    ? derSequence(derOid(OID_RSA_ENCRYPTION), derNull())
    : derSequence(derOid({ sha256: OID_ECDSA_WITH_SHA256, sha384: OID_ECDSA_WITH_SHA384, sha512: OID_ECDSA_WITH_SHA512 }[digest]));
  const signerInfo = derSequence(
    derInteger(1),
    derSequence(cert.issuer.rawDer, derInteger(cert.serial)),
    digestAlg,
    derImplicit(0, signedAttrs.subarray(signedAttrs.length - attrsContentLength(signedAttrs)), true),
    sigAlg,
    derOctetString(signature),
  );
  const certificates = [input.signerCertificate, ...(input.certificates ?? [])];
  const signedData = derSequence(
    derInteger(1),
    derSet(digestAlg),
    derSequence(derOid(eContentType), derExplicit(0, derOctetString(input.content))),
    derImplicit(0, Buffer.concat(certificates.slice().sort(Buffer.compare)), true),
    derSet(signerInfo),
  );
  return derSequence(derOid(OID_CMS_SIGNED_DATA), derExplicit(0, signedData));
}

/** Length of the contents octets of a DER TLV (its header skipped). */
function attrsContentLength(tlv: Buffer): number {
  const node = readDer(tlv);
  return node.end - node.contentStart;
}

/** A signed attribute's time (signing-time), when present and readable. */
export function signingTimeOf(signer: ParsedSignerInfo): Date | undefined {
  const v = singleAttribute(signer, OID_ATTR_SIGNING_TIME);
  return v === undefined ? undefined : guardDer('signing-time attribute', () => readTime(readDer(v)));
}
