/**
 * Reading X.509 CRLs (RFC 5280 §5); the ASN.1 is quoted in `crl.ts`.
 *
 * parseCrl checks every entry once without keeping an object per entry (a CRL may list a million),
 * and keeps the revokedCertificates contents so that forEachCrlEntry can walk them again on demand.
 *
 * RFC 5280 §5.2 / §5.3: "If a CRL contains a critical extension that the application cannot
 * process, then the application MUST NOT use that CRL to determine the status of certificates",
 * and the same for critical entry extensions. parseCrl refuses such a CRL with
 * KAKUIN_E_CRL_UNSUPPORTED rather than hand back a list a caller might trust; this covers indirect
 * CRLs, whose entries carry the critical certificateIssuer extension.
 */
import { KakuinError } from '../errors/index.js';
import { type AlgorithmIdentifier, parseAlgorithmIdentifier } from './algorithm.js';
import { TAG_GENERALIZED_TIME, TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE, TAG_UTC_TIME } from './der.js';
import {
  type DerNode, derChildren, derContent, derRaw, expectChildren, guardDer, malformed, readBoolean, readDer, readDerAt,
  readIntegerBytes, readOctetAlignedBitString, readSmallInteger, readTime, readUnsignedInteger,
} from './der-reader.js';
import { parseAuthorityKeyIdentifier, parseCrlDistributionPoints, parseExtensionsNode, type ParsedExtension } from './extensions-read.js';
import { parseGeneralName } from './general-name.js';
import { parseNameNode, type ParsedName } from './name.js';
import { OID_CE_AUTHORITY_KEY_IDENTIFIER } from './oids.js';
import { verifySignature } from './signature.js';
import type { PublicKeyInfo } from './spki.js';
import {
  crlReasonFromCode, type CrlReason, OID_CE_CRL_NUMBER, OID_CE_DELTA_CRL_INDICATOR, OID_CE_FRESHEST_CRL,
  OID_CE_ISSUING_DISTRIBUTION_POINT,
} from './crl.js';

export interface ParsedIssuingDistributionPoint {
  /** URIs of the distributionPoint fullName (empty when absent or a relative name). */
  urls: string[];
  onlyContainsUserCerts: boolean;
  onlyContainsCACerts: boolean;
  /** True when onlySomeReasons is present: the CRL covers only some revocation reasons. */
  onlySomeReasons: boolean;
  indirectCrl: boolean;
  onlyContainsAttributeCerts: boolean;
}

export interface ParsedCrl {
  /** The CRL exactly as received. */
  rawDer: Buffer;
  /** The TBSCertList exactly as received: the signed bytes. */
  tbsDer: Buffer;
  /** 1 or 2. */
  version: number;
  issuer: ParsedName;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
  /** The BaseCRLNumber of a delta CRL's DeltaCRLIndicator. */
  deltaCrlIndicator?: bigint;
  /** The keyIdentifier of the AuthorityKeyIdentifier extension. */
  authorityKeyIdentifier?: Buffer;
  /** URIs of the FreshestCRL extension (where the delta CRL is). */
  freshestCrlUrls?: string[];
  issuingDistributionPoint?: ParsedIssuingDistributionPoint;
  signatureAlgorithmOid: string;
  signatureAlgorithm: AlgorithmIdentifier;
  signatureValue: Buffer;
  entryCount: number;
  /** The revokedCertificates contents as received (empty when the field is absent): what forEachCrlEntry walks. */
  revokedEntriesDer: Buffer;
  extensions: ParsedExtension[];
}

export interface CrlEntry {
  /**
   * The INTEGER without its DER sign octet (the unsigned magnitude), as ParsedCertificate.serial
   * gives it; a negative serial (not allowed by RFC 5280) stays in two's complement, as there.
   */
  serial: Buffer;
  revocationDate: Date;
  /** Absent when the entry has no reasonCode (RFC 5280 §5.3.1: read as unspecified) or an unknown value. */
  reason?: CrlReason;
  invalidityDate?: Date;
}

function unsupported(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_CRL_UNSUPPORTED', message);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digits2(b: Buffer, o: number): number {
  const hi = b[o] - 0x30;
  const lo = b[o + 1] - 0x30;
  if (hi < 0 || hi > 9 || lo < 0 || lo > 9) return -1;
  return hi * 10 + lo;
}

/**
 * Milliseconds of a UTCTime/GeneralizedTime in the RFC 5280 profile (as readTime, without a regular
 * expression or a string per call: this runs once or twice per entry).
 */
function timeMsAt(node: DerNode, what: string): number {
  const b = node.buf;
  let o = node.contentStart;
  const len = node.end - o;
  let year: number;
  if (node.tag === TAG_UTC_TIME && len === 13) {
    const yy = digits2(b, o);
    if (yy < 0) throw malformed(`${what} is not a valid UTCTime`);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    o += 2;
  } else if (node.tag === TAG_GENERALIZED_TIME && len === 15) {
    const cc = digits2(b, o);
    const yy = digits2(b, o + 2);
    if (cc < 0 || yy < 0) throw malformed(`${what} is not a valid GeneralizedTime`);
    year = cc * 100 + yy;
    o += 4;
  } else {
    // Other lengths (fractions, offsets, no seconds) are outside the profile; readTime words the error.
    return readTime(node, what).getTime();
  }
  const mo = digits2(b, o);
  const d = digits2(b, o + 2);
  const h = digits2(b, o + 4);
  const mi = digits2(b, o + 6);
  const s = digits2(b, o + 8);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (b[o + 10] !== 0x5a || mo < 1 || mo > 12 || d < 1 || d > DAYS_IN_MONTH[mo - 1] + (mo === 2 && leap ? 1 : 0)
    || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) {
    throw malformed(`${what} is not a valid date`);
  }
  // Date.UTC maps years 0–99 to 1900–1999; set the year separately for them.
  if (year < 100) {
    const t = new Date(Date.UTC(2000, mo - 1, d, h, mi, s));
    t.setUTCFullYear(year);
    return t.getTime();
  }
  return Date.UTC(year, mo - 1, d, h, mi, s);
}

/** Serial as ParsedCertificate gives it: unsigned magnitude, or two's complement when negative. */
function entrySerial(c: Buffer): Buffer {
  return c.length > 1 && c[0] === 0 ? c.subarray(1) : c;
}

/** extnID contents 55 1d 15 (reasonCode) and 55 1d 18 (invalidityDate), compared in place. */
function isCeOid(b: Buffer, node: DerNode, last: number): boolean {
  return node.tag === 0x06 && node.end - node.contentStart === 3 && b[node.contentStart] === 0x55
    && b[node.contentStart + 1] === 0x1d && b[node.contentStart + 2] === last;
}

/**
 * Checks (and with `fn`, decodes) every entry of a revokedCertificates contents; returns the count.
 * The entry object is only made when `fn` is given.
 */
function walkEntries(buf: Buffer, start: number, end: number, fn?: (e: CrlEntry) => void): number {
  let count = 0;
  let pos = start;
  while (pos < end) {
    const entry = readDerAt(buf, pos, end);
    if (entry.tag !== TAG_SEQUENCE) throw malformed('revokedCertificates entry is not a SEQUENCE');
    pos = entry.end;
    const serialNode = readDerAt(buf, entry.contentStart, entry.end);
    const serialBytes = readIntegerBytes(serialNode, 'userCertificate');
    if (serialNode.end === entry.end) throw malformed('revocationDate is missing');
    const dateNode = readDerAt(buf, serialNode.end, entry.end);
    const revokedMs = timeMsAt(dateNode, 'revocationDate');
    let reasonCode = -1;
    let invalidMs = NaN;
    if (dateNode.end < entry.end) {
      const extsNode = readDerAt(buf, dateNode.end, entry.end);
      if (extsNode.tag !== TAG_SEQUENCE || extsNode.end !== entry.end) throw malformed('crlEntryExtensions is malformed');
      let seenReason = false;
      let seenInvalidity = false;
      let p = extsNode.contentStart;
      if (p === extsNode.end) throw malformed('crlEntryExtensions is empty (SIZE (1..MAX))');
      while (p < extsNode.end) {
        const ext = readDerAt(buf, p, extsNode.end);
        p = ext.end;
        if (ext.tag !== TAG_SEQUENCE) throw malformed('CRL entry Extension is not a SEQUENCE');
        const oidNode = readDerAt(buf, ext.contentStart, ext.end);
        if (oidNode.tag !== 0x06) throw malformed('CRL entry extnID is not an OBJECT IDENTIFIER');
        let next = readDerAt(buf, oidNode.end, ext.end);
        let critical = false;
        if (next.tag === 0x01) {
          critical = readBoolean(next, 'Extension.critical');
          next = readDerAt(buf, next.end, ext.end);
        }
        if (next.tag !== TAG_OCTET_STRING || next.end !== ext.end) throw malformed('CRL entry extnValue is malformed');
        if (isCeOid(buf, oidNode, 0x15)) {
          if (seenReason) throw malformed('reasonCode appears more than once');
          seenReason = true;
          const v = readDerAt(buf, next.contentStart, next.end);
          if (v.tag !== 0x0a || v.end !== next.end || v.end - v.contentStart !== 1 || (buf[v.contentStart] & 0x80)) {
            throw malformed('reasonCode is not a one-octet ENUMERATED');
          }
          reasonCode = buf[v.contentStart];
        } else if (isCeOid(buf, oidNode, 0x18)) {
          if (seenInvalidity) throw malformed('invalidityDate appears more than once');
          seenInvalidity = true;
          const v = readDerAt(buf, next.contentStart, next.end);
          if (v.tag !== TAG_GENERALIZED_TIME || v.end !== next.end) throw malformed('invalidityDate is not a GeneralizedTime');
          invalidMs = timeMsAt(v, 'invalidityDate');
        } else if (critical) {
          throw unsupported('a CRL entry carries a critical extension kakuin cannot process (RFC 5280 §5.3)');
        }
      }
    }
    count++;
    if (fn !== undefined) {
      const e: CrlEntry = { serial: entrySerial(serialBytes), revocationDate: new Date(revokedMs) };
      const reason = reasonCode < 0 ? undefined : crlReasonFromCode(reasonCode);
      if (reason !== undefined) e.reason = reason;
      if (!Number.isNaN(invalidMs)) e.invalidityDate = new Date(invalidMs);
      fn(e);
    }
  }
  return count;
}

/** CRLNumber / BaseCRLNumber: INTEGER (0..MAX), at most 20 octets (RFC 5280 §5.2.3). */
function readCrlNumber(value: Buffer, what: string): bigint {
  const magnitude = readUnsignedInteger(readDer(value), what);
  if (magnitude.length > 20) throw malformed(`${what} is longer than 20 octets`);
  return BigInt(`0x${magnitude.toString('hex')}`);
}

/** IssuingDistributionPoint (RFC 5280 §5.2.5, IMPLICIT TAGS). */
function parseIssuingDistributionPoint(value: Buffer): ParsedIssuingDistributionPoint {
  const out: ParsedIssuingDistributionPoint = {
    urls: [], onlyContainsUserCerts: false, onlyContainsCACerts: false, onlySomeReasons: false, indirectCrl: false, onlyContainsAttributeCerts: false,
  };
  let last = -1;
  for (const f of expectChildren(readDer(value), TAG_SEQUENCE, 'IssuingDistributionPoint')) {
    const n = f.tag & 0x1f;
    if ((f.tag & 0xc0) !== 0x80 || n > 5 || n <= last) throw malformed('IssuingDistributionPoint has an unexpected field');
    last = n;
    if (n === 0) {
      const [choice, extra] = derChildren(f);
      if (choice === undefined || extra !== undefined) throw malformed('DistributionPointName must hold one value');
      if (choice.tag === 0xa0) {
        for (const gn of derChildren(choice)) {
          const name = parseGeneralName(gn);
          if ('uri' in name) out.urls.push(name.uri);
        }
      } else if (choice.tag !== 0xa1) {
        throw malformed('DistributionPointName has an unexpected choice');
      } else {
        derChildren(choice);
      }
    } else if (n === 3) {
      if (f.constructed || f.end === f.contentStart) throw malformed('onlySomeReasons is malformed');
      out.onlySomeReasons = true;
    } else {
      const flag = readBoolean({ ...f, tag: 0x01 }, 'IssuingDistributionPoint flag');
      if (n === 1) out.onlyContainsUserCerts = flag;
      else if (n === 2) out.onlyContainsCACerts = flag;
      else if (n === 4) out.indirectCrl = flag;
      else out.onlyContainsAttributeCerts = flag;
    }
  }
  return out;
}

const UNDERSTOOD_CRITICAL = new Set([OID_CE_AUTHORITY_KEY_IDENTIFIER, OID_CE_CRL_NUMBER, OID_CE_DELTA_CRL_INDICATOR, OID_CE_ISSUING_DISTRIBUTION_POINT]);

/**
 * Parses a DER CRL. KAKUIN_E_DER_MALFORMED on any malformation (every entry is checked);
 * KAKUIN_E_CRL_UNSUPPORTED for a critical CRL or entry extension kakuin cannot process. The
 * signature is not checked here: verifyCrlSignature does that.
 */
export function parseCrl(der: Buffer): ParsedCrl {
  return guardDer('CRL', () => {
    const root = readDer(der);
    const parts = expectChildren(root, TAG_SEQUENCE, 'CertificateList');
    if (parts.length !== 3) throw malformed('CertificateList must have three components');
    const signatureAlgorithm = parseAlgorithmIdentifier(parts[1], 'CertificateList.signatureAlgorithm');
    const signatureValue = readOctetAlignedBitString(parts[2], 'signatureValue');
    const tbs = parts[0];
    const f = expectChildren(tbs, TAG_SEQUENCE, 'TBSCertList');
    let i = 0;
    let version = 1;
    if (f[i]?.tag === TAG_INTEGER) {
      // RFC 5280 §5.1.2.1: "if present, MUST be v2".
      if (readSmallInteger(f[i++], 'version') !== 1) throw malformed('CRL version, when present, must be v2');
      version = 2;
    }
    const inner = parseAlgorithmIdentifier(f[i++], 'TBSCertList.signature');
    // RFC 5280 §5.1.1.2: it "MUST contain the same algorithm identifier as the signature field in the sequence tbsCertList".
    if (!inner.rawDer.equals(signatureAlgorithm.rawDer)) throw malformed('TBSCertList.signature differs from CertificateList.signatureAlgorithm');
    const issuer = parseNameNode(f[i++], 'issuer');
    const thisUpdate = new Date(timeMsAt(expectTime(f[i++], 'thisUpdate'), 'thisUpdate'));
    let nextUpdate: Date | undefined;
    if (f[i] !== undefined && (f[i].tag === TAG_UTC_TIME || f[i].tag === TAG_GENERALIZED_TIME)) {
      nextUpdate = new Date(timeMsAt(f[i++], 'nextUpdate'));
    }
    let revokedEntriesDer = tbs.buf.subarray(0, 0);
    let entryCount = 0;
    if (f[i]?.tag === TAG_SEQUENCE) {
      const list = f[i++];
      revokedEntriesDer = derContent(list);
      entryCount = walkEntries(list.buf, list.contentStart, list.end);
      if (entryCount === 0) throw malformed('revokedCertificates is present but empty (RFC 5280 §5.1.2.6)');
    }
    let extensions: ParsedExtension[] = [];
    if (f[i]?.tag === 0xa0) {
      if (version !== 2) throw malformed('crlExtensions need version v2');
      const wrapped = derChildren(f[i++]);
      if (wrapped.length !== 1) throw malformed('[0] must hold one Extensions SEQUENCE');
      extensions = parseExtensionsNode(wrapped[0], 'crlExtensions');
    }
    if (i !== f.length) throw malformed('TBSCertList has unexpected trailing components');
    const out: ParsedCrl = {
      rawDer: derRaw(root), tbsDer: derRaw(tbs), version, issuer, thisUpdate, signatureAlgorithmOid: signatureAlgorithm.oid,
      signatureAlgorithm, signatureValue, entryCount, revokedEntriesDer, extensions,
    };
    if (nextUpdate !== undefined) out.nextUpdate = nextUpdate;
    for (const ext of extensions) {
      if (ext.critical && !UNDERSTOOD_CRITICAL.has(ext.oid)) {
        throw unsupported(`the CRL carries critical extension ${ext.oid}, which kakuin cannot process (RFC 5280 §5.2)`);
      }
      if (ext.oid === OID_CE_CRL_NUMBER) out.crlNumber = readCrlNumber(ext.value, 'CRLNumber');
      else if (ext.oid === OID_CE_DELTA_CRL_INDICATOR) out.deltaCrlIndicator = readCrlNumber(ext.value, 'BaseCRLNumber');
      else if (ext.oid === OID_CE_AUTHORITY_KEY_IDENTIFIER) {
        const aki = parseAuthorityKeyIdentifier(ext.value);
        if (aki.keyIdentifier !== undefined) out.authorityKeyIdentifier = aki.keyIdentifier;
      } else if (ext.oid === OID_CE_FRESHEST_CRL) out.freshestCrlUrls = parseCrlDistributionPoints(ext.value);
      else if (ext.oid === OID_CE_ISSUING_DISTRIBUTION_POINT) out.issuingDistributionPoint = parseIssuingDistributionPoint(ext.value);
    }
    return out;
  });
}

function expectTime(node: DerNode | undefined, what: string): DerNode {
  if (node === undefined || (node.tag !== TAG_UTC_TIME && node.tag !== TAG_GENERALIZED_TIME)) throw malformed(`${what} is missing or not a Time`);
  return node;
}

/** Calls `fn` once per revoked entry, in CRL order. The serial Buffers are views into the CRL. */
export function forEachCrlEntry(crl: ParsedCrl, fn: (e: CrlEntry) => void): void {
  const b = crl.revokedEntriesDer;
  // Not under guardDer: an exception thrown by `fn` is the caller's and must reach it unchanged.
  if (b.length > 0) walkEntries(b, 0, b.length, fn);
}

/**
 * True when the CRL carries a valid signature by `issuerSpki` over its original TBSCertList bytes.
 * KAKUIN_E_ALGORITHM_UNSUPPORTED for refused algorithms (SHA-1, MD5, unknown).
 */
export function verifyCrlSignature(crl: ParsedCrl, issuerSpki: PublicKeyInfo): boolean {
  return verifySignature(crl.tbsDer, crl.signatureAlgorithm, crl.signatureValue, issuerSpki);
}
