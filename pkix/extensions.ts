/**
 * Certificate extensions kakuin writes. Each function returns one complete Extension.
 *
 * RFC 5280 §4.1 (Appendix A.1):
 *   Extension  ::=  SEQUENCE  {
 *        extnID      OBJECT IDENTIFIER,
 *        critical    BOOLEAN DEFAULT FALSE,
 *        extnValue   OCTET STRING
 *                    -- contains the DER encoding of an ASN.1 value
 *                    -- corresponding to the extension type identified
 *                    -- by extnID
 *        }
 *
 * X.690 §11.5: a DEFAULT value is never encoded in DER, so `critical` is omitted when false.
 * Results that depend only on small option sets are cached; cached Buffers are shared, so callers
 * must not modify what these functions return.
 */
import { KakuinError } from '../errors/index.js';
import { derBitString, derInteger, derNull, derOid, encodeTlv, lengthOfLength, TAG_OCTET_STRING, TAG_SEQUENCE, writeHeader } from './der.js';
import { encodeGeneralName, encodeGeneralNames, type GeneralName } from './general-name.js';
import {
  OID_AD_CA_ISSUERS, OID_AD_OCSP, OID_CE_AUTHORITY_KEY_IDENTIFIER, OID_CE_BASIC_CONSTRAINTS, OID_CE_CRL_DISTRIBUTION_POINTS,
  OID_CE_EXT_KEY_USAGE, OID_CE_KEY_USAGE, OID_CE_SUBJECT_ALT_NAME, OID_CE_SUBJECT_KEY_IDENTIFIER, OID_KP_CLIENT_AUTH,
  OID_KP_CODE_SIGNING, OID_KP_DOCUMENT_SIGNING, OID_KP_EMAIL_PROTECTION, OID_KP_OCSP_SIGNING, OID_KP_SERVER_AUTH, OID_KP_TIME_STAMPING,
  OID_PE_AUTHORITY_INFO_ACCESS, OID_PKIX_OCSP_NOCHECK,
} from './oids.js';

const BOOLEAN_TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** CRL and AIA URLs are per issuer, the same for every certificate it signs: built once. */
const issuerUrlCache = new Map<string, Buffer>();

function cached(cache: Map<string, Buffer>, key: string, build: () => Buffer): Buffer {
  let ext = cache.get(key);
  if (ext === undefined) {
    ext = build();
    if (cache.size < 256) cache.set(key, ext);
  }
  return ext;
}

function encodingInput(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ENCODING_INPUT', message);
}

/** An Extension around `value` (the DER that goes inside extnValue). */
export function encodeExtension(oid: string, critical: boolean, value: Buffer): Buffer {
  const oidDer = derOid(oid);
  const octetsLen = 1 + lengthOfLength(value.length) + value.length;
  const len = oidDer.length + (critical ? 3 : 0) + octetsLen;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(len) + len);
  let o = writeHeader(out, 0, TAG_SEQUENCE, len);
  o += oidDer.copy(out, o);
  if (critical) o += BOOLEAN_TRUE.copy(out, o);
  o = writeHeader(out, o, TAG_OCTET_STRING, value.length);
  value.copy(out, o);
  return out;
}

/**
 * RFC 5280 §4.2.1.9:
 *   BasicConstraints ::= SEQUENCE {
 *        cA                      BOOLEAN DEFAULT FALSE,
 *        pathLenConstraint       INTEGER (0..MAX) OPTIONAL }
 * Marked critical (the RFC requires it in CA certificates; kakuin marks it critical everywhere).
 */
export function basicConstraintsExt(o: { ca: boolean; pathLen?: number }): Buffer {
  if (o.pathLen !== undefined) {
    if (!o.ca) throw encodingInput('pathLenConstraint is only allowed when cA is true (RFC 5280 §4.2.1.9)');
    if (!Number.isSafeInteger(o.pathLen) || o.pathLen < 0) throw encodingInput('pathLenConstraint must be a non-negative integer');
  }
  const key = `${o.ca}/${o.pathLen ?? ''}`;
  let ext = basicConstraintsCache.get(key);
  if (ext === undefined) {
    const fields: Buffer[] = [];
    if (o.ca) fields.push(BOOLEAN_TRUE);
    if (o.pathLen !== undefined) fields.push(derInteger(o.pathLen));
    ext = encodeExtension(OID_CE_BASIC_CONSTRAINTS, true, encodeTlv(TAG_SEQUENCE, fields));
    if (basicConstraintsCache.size < 64) basicConstraintsCache.set(key, ext);
  }
  return ext;
}
const basicConstraintsCache = new Map<string, Buffer>();

/**
 * RFC 5280 §4.2.1.3:
 *   KeyUsage ::= BIT STRING {
 *        digitalSignature        (0),
 *        nonRepudiation          (1), -- recent editions of X.509 have
 *                                     -- renamed this bit to contentCommitment
 *        keyEncipherment         (2),
 *        dataEncipherment        (3),
 *        keyAgreement            (4),
 *        keyCertSign             (5),
 *        cRLSign                 (6),
 *        encipherOnly            (7),
 *        decipherOnly            (8) }
 * X.690 §11.2.2: a named-bit BIT STRING is encoded with trailing zero bits removed.
 */
export type KeyUsageName = 'digitalSignature' | 'nonRepudiation' | 'keyEncipherment' | 'dataEncipherment' | 'keyAgreement'
  | 'keyCertSign' | 'cRLSign' | 'encipherOnly' | 'decipherOnly';

export const KEY_USAGE_BITS: readonly KeyUsageName[] = [
  'digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign',
  'encipherOnly', 'decipherOnly',
];

const keyUsageCache = new Map<string, Buffer>();

/** Marked critical (RFC 5280 §4.2.1.3: "conforming CAs SHOULD mark this extension as critical"). */
export function keyUsageExt(usages: KeyUsageName[]): Buffer {
  const key = JSON.stringify(usages);
  let ext = keyUsageCache.get(key);
  if (ext !== undefined) return ext;
  if (usages.length === 0) throw encodingInput('keyUsage needs at least one bit (RFC 5280 §4.2.1.3)');
  let mask = 0;
  for (const u of usages) {
    const bit = KEY_USAGE_BITS.indexOf(u);
    if (bit < 0) throw encodingInput(`unknown key usage ${String(u)}`);
    mask |= 1 << bit;
  }
  const highest = 31 - Math.clz32(mask);
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (let bit = 0; bit <= highest; bit++) if (mask & (1 << bit)) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  ext = encodeExtension(OID_CE_KEY_USAGE, true, derBitString(bytes, 7 - (highest & 7)));
  if (keyUsageCache.size < 256) keyUsageCache.set(key, ext);
  return ext;
}

/**
 * RFC 5280 §4.2.1.12:
 *   ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId
 *   KeyPurposeId ::= OBJECT IDENTIFIER
 */
export type KeyPurposeName = 'serverAuth' | 'clientAuth' | 'codeSigning' | 'emailProtection' | 'timeStamping' | 'OCSPSigning' | 'documentSigning';

export const KEY_PURPOSE_OIDS: Readonly<Record<KeyPurposeName, string>> = {
  serverAuth: OID_KP_SERVER_AUTH, clientAuth: OID_KP_CLIENT_AUTH, codeSigning: OID_KP_CODE_SIGNING,
  emailProtection: OID_KP_EMAIL_PROTECTION, timeStamping: OID_KP_TIME_STAMPING, OCSPSigning: OID_KP_OCSP_SIGNING,
  documentSigning: OID_KP_DOCUMENT_SIGNING,
};

const extKeyUsageCache = new Map<string, Buffer>();

/** Not critical. Purposes are names above or dotted OIDs. */
export function extKeyUsageExt(purposes: (KeyPurposeName | string)[]): Buffer {
  const key = JSON.stringify(purposes);
  let ext = extKeyUsageCache.get(key);
  if (ext !== undefined) return ext;
  if (purposes.length === 0) throw encodingInput('extKeyUsage needs at least one purpose');
  const oids = purposes.map((p) => derOid(Object.hasOwn(KEY_PURPOSE_OIDS, p) ? KEY_PURPOSE_OIDS[p as KeyPurposeName] : p));
  ext = encodeExtension(OID_CE_EXT_KEY_USAGE, false, encodeTlv(TAG_SEQUENCE, oids));
  if (extKeyUsageCache.size < 256) extKeyUsageCache.set(key, ext);
  return ext;
}

function checkKeyId(keyId: Buffer): void {
  if (!Buffer.isBuffer(keyId) || keyId.length === 0) throw encodingInput('key identifier must be a non-empty Buffer');
}

/**
 * RFC 5280 §4.2.1.2:
 *   SubjectKeyIdentifier ::= KeyIdentifier
 *   KeyIdentifier ::= OCTET STRING
 */
export function subjectKeyIdentifierExt(keyId: Buffer): Buffer {
  checkKeyId(keyId);
  return encodeExtension(OID_CE_SUBJECT_KEY_IDENTIFIER, false, encodeTlv(TAG_OCTET_STRING, keyId));
}

/**
 * RFC 5280 §4.2.1.1 (IMPLICIT TAGS):
 *   AuthorityKeyIdentifier ::= SEQUENCE {
 *       keyIdentifier             [0] KeyIdentifier           OPTIONAL,
 *       authorityCertIssuer       [1] GeneralNames            OPTIONAL,
 *       authorityCertSerialNumber [2] CertificateSerialNumber OPTIONAL  }
 * Only keyIdentifier is written.
 */
export function authorityKeyIdentifierExt(keyId: Buffer): Buffer {
  checkKeyId(keyId);
  return encodeExtension(OID_CE_AUTHORITY_KEY_IDENTIFIER, false, encodeTlv(TAG_SEQUENCE, encodeTlv(0x80, keyId)));
}

/**
 * RFC 5280 §4.2.1.6:
 *   SubjectAltName ::= GeneralNames
 * "If the subject field contains an empty sequence, ... the subjectAltName extension ... MUST be
 * critical": pass `critical = true` then.
 */
export function subjectAltNameExt(names: GeneralName[], critical = false): Buffer {
  return encodeExtension(OID_CE_SUBJECT_ALT_NAME, critical, encodeGeneralNames(names));
}

/**
 * RFC 5280 §4.2.1.13 (IMPLICIT TAGS):
 *   CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
 *   DistributionPoint ::= SEQUENCE {
 *        distributionPoint       [0]     DistributionPointName OPTIONAL,
 *        reasons                 [1]     ReasonFlags OPTIONAL,
 *        cRLIssuer               [2]     GeneralNames OPTIONAL }
 *   DistributionPointName ::= CHOICE {
 *        fullName                [0]     GeneralNames,
 *        nameRelativeToCRLIssuer [1]     RelativeDistinguishedName }
 * One DistributionPoint whose fullName lists every URL: "If the DistributionPointName contains
 * multiple values, each name describes a different mechanism to obtain the same CRL."
 * DistributionPointName is a CHOICE, so its [0] tag is explicit; fullName's [0] replaces the
 * GeneralNames SEQUENCE tag.
 */
export function crlDistributionPointsExt(urls: string[]): Buffer {
  if (!Array.isArray(urls) || urls.length === 0) throw encodingInput('cRLDistributionPoints needs at least one URL');
  return cached(issuerUrlCache, JSON.stringify(['crldp', urls]), () => {
    const fullName = encodeTlv(0xa0, urls.map((uri) => encodeGeneralName({ uri })));
    const dp = encodeTlv(TAG_SEQUENCE, encodeTlv(0xa0, fullName));
    return encodeExtension(OID_CE_CRL_DISTRIBUTION_POINTS, false, encodeTlv(TAG_SEQUENCE, dp));
  });
}

/**
 * RFC 5280 §4.2.2.1:
 *   AuthorityInfoAccessSyntax  ::=
 *           SEQUENCE SIZE (1..MAX) OF AccessDescription
 *   AccessDescription  ::=  SEQUENCE {
 *           accessMethod          OBJECT IDENTIFIER,
 *           accessLocation        GeneralName  }
 * OCSP responders first, then CA issuers. Not critical ("Conforming CAs MUST mark this extension
 * as non-critical").
 */
export function authorityInfoAccessExt(o: { ocsp?: string[]; caIssuers?: string[] }): Buffer {
  const ocsp = o.ocsp ?? [];
  const caIssuers = o.caIssuers ?? [];
  if (ocsp.length + caIssuers.length === 0) throw encodingInput('authorityInfoAccess needs at least one URL');
  return cached(issuerUrlCache, JSON.stringify(['aia', ocsp, caIssuers]), () => {
    const descriptions: Buffer[] = [];
    for (const uri of ocsp) descriptions.push(encodeTlv(TAG_SEQUENCE, [derOid(OID_AD_OCSP), encodeGeneralName({ uri })]));
    for (const uri of caIssuers) descriptions.push(encodeTlv(TAG_SEQUENCE, [derOid(OID_AD_CA_ISSUERS), encodeGeneralName({ uri })]));
    return encodeExtension(OID_PE_AUTHORITY_INFO_ACCESS, false, encodeTlv(TAG_SEQUENCE, descriptions));
  });
}

const OCSP_NOCHECK = encodeExtension(OID_PKIX_OCSP_NOCHECK, false, derNull());

/**
 * RFC 6960 §4.2.2.2.1: id-pkix-ocsp-nocheck, "The value of the extension SHALL be NULL", for a
 * delegated OCSP signer's certificate. A shared constant.
 */
export function ocspNoCheckExt(): Buffer {
  return OCSP_NOCHECK;
}
