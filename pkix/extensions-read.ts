/**
 * Reading extensions: the Extensions list of a certificate or a PKCS#10 extensionRequest, and the
 * values of the extensions kakuin acts on. The ASN.1 of each value is quoted in `extensions.ts`.
 *
 * RFC 5280 §4.1 (Appendix A.1):
 *   Extensions  ::=  SEQUENCE SIZE (1..MAX) OF Extension
 *
 *   Extension  ::=  SEQUENCE  {
 *        extnID      OBJECT IDENTIFIER,
 *        critical    BOOLEAN DEFAULT FALSE,
 *        extnValue   OCTET STRING  }
 */
import { type DerNode, derChildren, derContent, derRaw, expectChildren, expectTag, malformed, readBitString, readBoolean, readDer, readOctetString, readOid, readSmallInteger } from './der-reader.js';
import { KEY_USAGE_BITS, type KeyUsageName } from './extensions.js';
import { parseGeneralName, parseGeneralNames, type ParsedGeneralName } from './general-name.js';
import { OID_AD_CA_ISSUERS, OID_AD_OCSP } from './oids.js';

export interface ParsedExtension {
  oid: string;
  critical: boolean;
  /** The extnValue contents: the DER of the extension's own value (a view into the input). */
  value: Buffer;
  /** The whole Extension as received. */
  rawDer: Buffer;
}

/**
 * Parses an Extensions SEQUENCE. RFC 5280 §4.2: "A certificate MUST NOT include more than one
 * instance of a particular extension", so a repeated extnID is malformed.
 */
export function parseExtensionsNode(node: DerNode | undefined, what = 'Extensions'): ParsedExtension[] {
  const list = expectChildren(node, 0x30, what);
  const out: ParsedExtension[] = [];
  const seen = new Set<string>();
  for (const ext of list) {
    const parts = expectChildren(ext, 0x30, 'Extension');
    if (parts.length < 2 || parts.length > 3) throw malformed('Extension must have two or three components');
    const oid = readOid(parts[0], 'extnID');
    let critical = false;
    if (parts.length === 3) {
      // X.690 §11.5 wants a FALSE here omitted; an explicit FALSE is read (as OpenSSL does), not refused.
      critical = readBoolean(parts[1], 'Extension.critical');
    }
    const value = readOctetString(parts[parts.length - 1], 'extnValue');
    if (seen.has(oid)) throw malformed(`extension ${oid} appears more than once`);
    seen.add(oid);
    out.push({ oid, critical, value, rawDer: derRaw(ext) });
  }
  return out;
}

/** BasicConstraints (RFC 5280 §4.2.1.9). */
export function parseBasicConstraints(value: Buffer): { ca: boolean; pathLen?: number } {
  const fields = expectChildren(readDer(value), 0x30, 'BasicConstraints');
  let i = 0;
  let ca = false;
  if (fields[i]?.tag === 0x01) {
    ca = readBoolean(fields[i++], 'BasicConstraints.cA');
  }
  const out: { ca: boolean; pathLen?: number } = { ca };
  if (i < fields.length) {
    const pathLen = readSmallInteger(fields[i++], 'pathLenConstraint');
    if (pathLen < 0) throw malformed('pathLenConstraint is negative');
    out.pathLen = pathLen;
  }
  if (i !== fields.length) throw malformed('BasicConstraints has extra components');
  return out;
}

/** SubjectKeyIdentifier (RFC 5280 §4.2.1.2): the key identifier octets. */
export function parseSubjectKeyIdentifier(value: Buffer): Buffer {
  return readOctetString(readDer(value), 'SubjectKeyIdentifier');
}

/** AuthorityKeyIdentifier (RFC 5280 §4.2.1.1). */
export function parseAuthorityKeyIdentifier(value: Buffer): { keyIdentifier?: Buffer; authorityCertIssuer?: ParsedGeneralName[]; authorityCertSerialNumber?: Buffer } {
  const out: { keyIdentifier?: Buffer; authorityCertIssuer?: ParsedGeneralName[]; authorityCertSerialNumber?: Buffer } = {};
  let last = -1;
  for (const f of expectChildren(readDer(value), 0x30, 'AuthorityKeyIdentifier')) {
    const n = f.tag & 0x1f;
    if ((f.tag & 0xc0) !== 0x80 || n > 2 || n <= last) throw malformed('AuthorityKeyIdentifier has an unexpected field');
    last = n;
    if (n === 0) {
      if (f.constructed) throw malformed('AuthorityKeyIdentifier.keyIdentifier must be primitive');
      out.keyIdentifier = derContent(f);
    } else if (n === 1) {
      out.authorityCertIssuer = parseGeneralNames({ ...f, tag: 0x30 }, 'authorityCertIssuer');
    } else {
      if (f.constructed || f.end === f.contentStart) throw malformed('authorityCertSerialNumber is malformed');
      out.authorityCertSerialNumber = derContent(f);
    }
  }
  return out;
}

/** KeyUsage (RFC 5280 §4.2.1.3): the names of the bits set. */
export function parseKeyUsage(value: Buffer): KeyUsageName[] {
  const { unusedBits, bytes } = readBitString(readDer(value), 'KeyUsage');
  const out: KeyUsageName[] = [];
  const total = bytes.length * 8 - unusedBits;
  for (let bit = 0; bit < Math.min(total, KEY_USAGE_BITS.length); bit++) {
    if (bytes[bit >> 3] & (0x80 >> (bit & 7))) out.push(KEY_USAGE_BITS[bit]);
  }
  return out;
}

/** ExtKeyUsageSyntax (RFC 5280 §4.2.1.12): the purpose OIDs in order. */
export function parseExtKeyUsage(value: Buffer): string[] {
  const list = expectChildren(readDer(value), 0x30, 'ExtKeyUsageSyntax');
  if (list.length === 0) throw malformed('ExtKeyUsageSyntax is empty');
  return list.map((n) => readOid(n, 'KeyPurposeId'));
}

/** SubjectAltName (RFC 5280 §4.2.1.6). */
export function parseSubjectAltName(value: Buffer): ParsedGeneralName[] {
  return parseGeneralNames(readDer(value), 'SubjectAltName');
}

/** CRLDistributionPoints (RFC 5280 §4.2.1.13): the URIs of every fullName. */
export function parseCrlDistributionPoints(value: Buffer): string[] {
  const urls: string[] = [];
  const points = expectChildren(readDer(value), 0x30, 'CRLDistributionPoints');
  if (points.length === 0) throw malformed('CRLDistributionPoints is empty');
  for (const dp of points) {
    for (const field of expectChildren(dp, 0x30, 'DistributionPoint')) {
      if (field.tag !== 0xa0) continue;
      const [choice, extra] = derChildren(field);
      if (choice === undefined || extra !== undefined) throw malformed('DistributionPointName must hold one value');
      if (choice.tag !== 0xa0) continue; // nameRelativeToCRLIssuer
      for (const gn of derChildren(choice)) {
        const name = parseGeneralName(gn);
        if ('uri' in name) urls.push(name.uri);
      }
    }
  }
  return urls;
}

/** AuthorityInfoAccessSyntax (RFC 5280 §4.2.2.1): OCSP and CA issuers URIs. */
export function parseAuthorityInfoAccess(value: Buffer): { ocsp: string[]; caIssuers: string[] } {
  const out = { ocsp: [] as string[], caIssuers: [] as string[] };
  const list = expectChildren(readDer(value), 0x30, 'AuthorityInfoAccessSyntax');
  if (list.length === 0) throw malformed('AuthorityInfoAccessSyntax is empty');
  for (const ad of list) {
    const parts = expectChildren(ad, 0x30, 'AccessDescription');
    if (parts.length !== 2) throw malformed('AccessDescription must have two components');
    const method = readOid(parts[0], 'accessMethod');
    const location = parseGeneralName(parts[1]);
    if (!('uri' in location)) continue;
    if (method === OID_AD_OCSP) out.ocsp.push(location.uri);
    else if (method === OID_AD_CA_ISSUERS) out.caIssuers.push(location.uri);
  }
  return out;
}

/** Checks an OCSP no-check value is NULL (RFC 6960 §4.2.2.2.1). */
export function isOcspNoCheckValue(value: Buffer): boolean {
  return value.length === 2 && expectTag(readDer(value), 0x05, 'ocsp-nocheck').end === 2;
}
