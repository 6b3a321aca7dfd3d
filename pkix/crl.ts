/**
 * X.509 v2 CRLs (RFC 5280 §5): the revoked-entries writer (the 1,000,000-entry hot path), the
 * to-be-signed body, and assembly with a signature. Reading is in `crl-read.ts`.
 *
 * RFC 5280 §5.1 (Appendix A.1):
 *   CertificateList  ::=  SEQUENCE  {
 *        tbsCertList          TBSCertList,
 *        signatureAlgorithm   AlgorithmIdentifier,
 *        signatureValue       BIT STRING  }
 *
 *   TBSCertList  ::=  SEQUENCE  {
 *        version                 Version OPTIONAL,
 *                                     -- if present, MUST be v2
 *        signature               AlgorithmIdentifier,
 *        issuer                  Name,
 *        thisUpdate              Time,
 *        nextUpdate              Time OPTIONAL,
 *        revokedCertificates     SEQUENCE OF SEQUENCE  {
 *             userCertificate         CertificateSerialNumber,
 *             revocationDate          Time,
 *             crlEntryExtensions      Extensions OPTIONAL
 *                                      -- if present, version MUST be v2
 *                                  }  OPTIONAL,
 *        crlExtensions           [0]  EXPLICIT Extensions OPTIONAL
 *                                      -- if present, version MUST be v2
 *                                  }
 *
 * RFC 5280 §5.2.3 / §5.2.4 (CRL extensions):
 *   CRLNumber ::= INTEGER (0..MAX)
 *   BaseCRLNumber ::= CRLNumber                 -- DeltaCRLIndicator, always critical
 *
 * RFC 5280 §5.2.5 (IMPLICIT TAGS):
 *   IssuingDistributionPoint ::= SEQUENCE {
 *        distributionPoint          [0] DistributionPointName OPTIONAL,
 *        onlyContainsUserCerts      [1] BOOLEAN DEFAULT FALSE,
 *        onlyContainsCACerts        [2] BOOLEAN DEFAULT FALSE,
 *        onlySomeReasons            [3] ReasonFlags OPTIONAL,
 *        indirectCRL                [4] BOOLEAN DEFAULT FALSE,
 *        onlyContainsAttributeCerts [5] BOOLEAN DEFAULT FALSE }
 *
 * RFC 5280 §5.2.6:
 *   FreshestCRL ::= CRLDistributionPoints
 *
 * RFC 5280 §5.3.1 / §5.3.2 (CRL entry extensions):
 *   CRLReason ::= ENUMERATED {
 *        unspecified             (0),
 *        keyCompromise           (1),
 *        cACompromise            (2),
 *        affiliationChanged      (3),
 *        superseded              (4),
 *        cessationOfOperation    (5),
 *        certificateHold         (6),
 *             -- value 7 is not used
 *        removeFromCRL           (8),
 *        privilegeWithdrawn      (9),
 *        aACompromise           (10) }
 *   InvalidityDate ::=  GeneralizedTime
 */
import { KakuinError } from '../errors/index.js';
import { encodeSignatureAlgorithm, type SignatureAlgorithmName } from './algorithm.js';
import { encodeCertificate } from './certificate.js';
import { derInteger, derTime, encodeTlv, lengthOfLength, TAG_GENERALIZED_TIME, TAG_SEQUENCE, TAG_UTC_TIME, writeHeader } from './der.js';
import { authorityKeyIdentifierExt, encodeExtension } from './extensions.js';
import { encodeGeneralName } from './general-name.js';

// ---- OIDs (RFC 5280 §5.2, §5.3) -------------------------------------------------------------------
export const OID_CE_CRL_NUMBER = '2.5.29.20';
export const OID_CE_CRL_REASON = '2.5.29.21';
export const OID_CE_INVALIDITY_DATE = '2.5.29.24';
export const OID_CE_DELTA_CRL_INDICATOR = '2.5.29.27';
export const OID_CE_ISSUING_DISTRIBUTION_POINT = '2.5.29.28';
export const OID_CE_CERTIFICATE_ISSUER = '2.5.29.29';
export const OID_CE_FRESHEST_CRL = '2.5.29.46';

export type CrlReason = 'unspecified' | 'keyCompromise' | 'cACompromise' | 'affiliationChanged' | 'superseded'
  | 'cessationOfOperation' | 'certificateHold' | 'removeFromCRL' | 'privilegeWithdrawn' | 'aACompromise';

/** CRLReason values (RFC 5280 §5.3.1); 7 is not used. Shared with OCSP's revocationReason (RFC 6960 §4.2.1). */
export const CRL_REASON_CODES: Readonly<Record<CrlReason, number>> = Object.freeze({
  unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4, cessationOfOperation: 5,
  certificateHold: 6, removeFromCRL: 8, privilegeWithdrawn: 9, aACompromise: 10,
});

const REASONS_BY_CODE: readonly (CrlReason | undefined)[] = (() => {
  const out: (CrlReason | undefined)[] = new Array(11).fill(undefined);
  for (const [name, code] of Object.entries(CRL_REASON_CODES)) out[code] = name as CrlReason;
  return out;
})();

export function crlReasonFromCode(code: number): CrlReason | undefined {
  return Number.isInteger(code) && code >= 0 && code < REASONS_BY_CODE.length ? REASONS_BY_CODE[code] : undefined;
}

function encodingInput(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ENCODING_INPUT', message);
}

// ---- fast time writing ------------------------------------------------------------------------------
// derTime() allocates a Date-derived Buffer per call; the entries writer formats a million times
// straight into its buffer from milliseconds, with civil-date arithmetic (proleptic Gregorian,
// H. Hinnant's civil_from_days), so no Date object is made per entry.

/** 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: what a four-digit GeneralizedTime can hold. */
const MIN_TIME_MS = -62167219200000;
const MAX_TIME_MS = 253402300799999;
/** 1950-01-01 and 2050-01-01: RFC 5280 §5.1.2.4 UTCTime window. */
const UTC_FROM_MS = -631152000000;
const UTC_UNTIL_MS = 2524608000000;

function timeMs(t: Date | number, what: string): number {
  const ms = typeof t === 'number' ? t : t instanceof Date ? t.getTime() : NaN;
  if (!(ms >= MIN_TIME_MS && ms <= MAX_TIME_MS)) throw encodingInput(`${what} is not a valid date in years 0000-9999`);
  return ms;
}

function put2(out: Buffer, o: number, n: number): void {
  out[o] = 0x30 + ((n / 10) | 0);
  out[o + 1] = 0x30 + (n % 10);
}

/**
 * Writes a complete UTCTime or GeneralizedTime TLV for `ms` (already range-checked) at `o`; returns
 * the next offset. RFC 5280 §5.1.2.4/§5.1.2.6: UTCTime through 2049, GeneralizedTime from 2050 (and
 * before 1950); `generalized` forces GeneralizedTime (invalidityDate, §5.3.2). Seconds, no fractions, Z.
 */
function writeTimeAt(out: Buffer, o: number, ms: number, generalized: boolean): number {
  const secs = Math.floor(ms / 1000);
  const days = Math.floor(secs / 86400);
  let sod = secs - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (!generalized && ms >= UTC_FROM_MS && ms < UTC_UNTIL_MS) {
    out[o++] = TAG_UTC_TIME;
    out[o++] = 13;
    put2(out, o, year % 100);
    o += 2;
  } else {
    out[o++] = TAG_GENERALIZED_TIME;
    out[o++] = 15;
    put2(out, o, (year / 100) | 0);
    put2(out, o + 2, year % 100);
    o += 4;
  }
  put2(out, o, month);
  put2(out, o + 2, day);
  const hour = (sod / 3600) | 0;
  sod -= hour * 3600;
  const minute = (sod / 60) | 0;
  put2(out, o + 4, hour);
  put2(out, o + 6, minute);
  put2(out, o + 8, sod - minute * 60);
  out[o + 10] = 0x5a; // 'Z'
  return o + 11;
}

// ---- revoked entries ----------------------------------------------------------------------------------

/** Extension { reasonCode, OCTET STRING { ENUMERATED n } }, 12 octets, one per reason. Not critical. */
const REASON_EXT: readonly (Buffer | undefined)[] = REASONS_BY_CODE.map((name) => (
  name === undefined ? undefined : encodeExtension(OID_CE_CRL_REASON, false, Buffer.from([0x0a, 0x01, CRL_REASON_CODES[name]]))
));

/** Extension { invalidityDate, OCTET STRING { GeneralizedTime } } without its 15 time digits + 'Z'. */
const INVALIDITY_EXT_PREFIX = Buffer.from([0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11]);
const INVALIDITY_EXT_LEN = INVALIDITY_EXT_PREFIX.length + 17;

/**
 * Largest entry: SEQUENCE header 2 + serial INTEGER 2+21 + GeneralizedTime 17 + Extensions header 2
 * + reason 12 + invalidity 26 = 82 octets, so every length here fits the one-octet short form.
 */
const MAX_ENTRY_LEN = 82;

function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Appends encoded revokedCertificates entries into one growing Buffer (amortised doubling); no
 * per-entry objects are kept, so a 1,000,000-entry CRL costs one buffer of about 40–70 MB.
 */
export class RevokedEntriesWriter {
  private buf: Buffer;
  private len = 0;
  private entries = 0;
  private finished = false;

  constructor(initialCapacityBytes = 64 * 1024) {
    if (!Number.isSafeInteger(initialCapacityBytes) || initialCapacityBytes < 0) throw encodingInput('initial capacity must be a non-negative integer');
    this.buf = Buffer.allocUnsafe(Math.max(initialCapacityBytes, MAX_ENTRY_LEN));
  }

  /** Entries added so far. */
  get count(): number {
    return this.entries;
  }

  /** Octets written so far (the length finish() will return). */
  get byteLength(): number {
    return this.len;
  }

  /**
   * One entry. `serial` is the unsigned big-endian magnitude, as a Buffer or as hex digits (any case,
   * no separators; the registry's serialHex), so callers reading hex rows need no Buffer per entry.
   * RFC 5280 §5.3.1: reason 'unspecified' "SHOULD be absent instead of using the unspecified (0)
   * reasonCode value", so it writes no extension. RFC 5280 §5.3.2: invalidityDate is always
   * GeneralizedTime. 'removeFromCRL' belongs only in delta CRLs (§5.3.1); that is the caller's to keep.
   */
  add(serial: Buffer | string, revocationDate: Date | number, reason?: CrlReason, invalidityDate?: Date | number): void {
    if (this.finished) throw encodingInput('RevokedEntriesWriter.add after finish()');
    const revokedMs = timeMs(revocationDate, 'revocationDate');
    const invalidMs = invalidityDate === undefined ? -1 : timeMs(invalidityDate, 'invalidityDate');
    let reasonExt: Buffer | undefined;
    if (reason !== undefined && reason !== 'unspecified') {
      const code = (CRL_REASON_CODES as Record<string, number | undefined>)[reason];
      reasonExt = code === undefined ? undefined : REASON_EXT[code];
      if (reasonExt === undefined) throw encodingInput(`unknown CRL reason ${String(reason)}`);
    }
    if (this.len + MAX_ENTRY_LEN > this.buf.length) this.grow();
    const out = this.buf;
    const start = this.len;
    // Entry SEQUENCE header at start, length patched below (short form: at most 80).
    let o = start + 2;
    o = typeof serial === 'string' ? writeSerialHex(out, o, serial) : writeSerial(out, o, serial);
    o = writeTimeAt(out, o, revokedMs, false);
    if (reasonExt !== undefined || invalidityDate !== undefined) {
      const extLen = (reasonExt === undefined ? 0 : reasonExt.length) + (invalidityDate === undefined ? 0 : INVALIDITY_EXT_LEN);
      out[o++] = TAG_SEQUENCE;
      out[o++] = extLen;
      if (reasonExt !== undefined) o += reasonExt.copy(out, o);
      if (invalidityDate !== undefined) {
        o += INVALIDITY_EXT_PREFIX.copy(out, o);
        o = writeTimeAt(out, o, invalidMs, true);
      }
    }
    out[start] = TAG_SEQUENCE;
    out[start + 1] = o - start - 2;
    this.len = o;
    this.entries++;
  }

  /**
   * The concatenated entries: the contents of the revokedCertificates SEQUENCE. A view into the
   * writer's buffer (no copy); the writer takes no more entries afterwards.
   */
  finish(): Buffer {
    this.finished = true;
    return this.buf.subarray(0, this.len);
  }

  /**
   * The entries so far, as finish() returns them, but the writer keeps taking entries: an
   * incremental CRL builder keeps one writer per CRL and appends each change to it. The view is
   * valid until the next add() (which may move the buffer).
   */
  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  private grow(): void {
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + MAX_ENTRY_LEN));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

/** INTEGER from an unsigned magnitude (X.690 §8.3.2); RFC 5280 §4.1.2.2: positive, at most 20 octets. */
function writeSerial(out: Buffer, o: number, serial: Buffer): number {
  if (!Buffer.isBuffer(serial)) throw encodingInput('serial must be a Buffer or hex digits');
  let i = 0;
  const n = serial.length;
  while (i < n && serial[i] === 0) i++;
  if (i === n) throw encodingInput('serial number must be positive (RFC 5280 §4.1.2.2)');
  const pad = serial[i] & 0x80 ? 1 : 0;
  const len = n - i + pad;
  if (len > 20) throw encodingInput('serial number must be at most 20 octets once DER-encoded (RFC 5280 §4.1.2.2)');
  out[o++] = 0x02;
  out[o++] = len;
  if (pad) out[o++] = 0;
  return o + serial.copy(out, o, i);
}

function writeSerialHex(out: Buffer, o: number, hex: string): number {
  const n = hex.length;
  let i = 0;
  while (i < n && hex.charCodeAt(i) === 0x30) i++; // leading '0' digits
  const digits = n - i;
  if (digits === 0) throw encodingInput('serial number must be positive (RFC 5280 §4.1.2.2)');
  const bytes = (digits + 1) >> 1;
  // The first octet holds one digit when the count is odd.
  const firstHi = digits & 1 ? 0 : hexNibble(hex.charCodeAt(i));
  const pad = firstHi >= 8 ? 1 : 0;
  const len = bytes + pad;
  if (len > 20) throw encodingInput('serial number must be at most 20 octets once DER-encoded (RFC 5280 §4.1.2.2)');
  out[o++] = 0x02;
  out[o++] = len;
  if (pad) out[o++] = 0;
  let k = i;
  if (digits & 1) {
    const lo = hexNibble(hex.charCodeAt(k++));
    if (lo < 0) throw encodingInput('serial must be hex digits');
    out[o++] = lo;
  }
  while (k < n) {
    const hi = hexNibble(hex.charCodeAt(k));
    const lo = hexNibble(hex.charCodeAt(k + 1));
    if (hi < 0 || lo < 0) throw encodingInput('serial must be hex digits');
    out[o++] = (hi << 4) | lo;
    k += 2;
  }
  return o;
}

// ---- TBSCertList ----------------------------------------------------------------------------------------

export interface TbsCertListInput {
  signatureAlgorithm: SignatureAlgorithmName;
  /** Name DER: the issuer's subject exactly as its certificate carries it. */
  issuer: Buffer;
  thisUpdate: Date;
  /** RFC 5280 §5.1.2.5: "Conforming CRL issuers MUST include the nextUpdate time in all CRLs." */
  nextUpdate: Date;
  /** From RevokedEntriesWriter.finish(); empty → revokedCertificates omitted, as RFC 5280 §5.1.2.6 requires. */
  revokedEntries: Buffer;
  /** RFC 5280 §5.2.3: monotonically increasing, at most 20 octets; delta and full CRLs share one sequence. */
  crlNumber: bigint;
  /** The issuer's subject key identifier (RFC 5280 §5.2.1: key identifier method, in every CRL). */
  authorityKeyId: Buffer;
  /** Present → delta CRL: critical DeltaCRLIndicator (RFC 5280 §5.2.4) naming the base CRL's number. */
  deltaBaseCrlNumber?: bigint;
  /** FreshestCRL (§5.2.6) on full CRLs, pointing to the delta. "MUST NOT appear in delta CRLs." */
  freshestCrlUrls?: string[];
  /**
   * Optional IDP (§5.2.5), only the distributionPoint fullName URI. §5.2.4: a delta CRL for a full
   * CRL with an IDP must carry the same IDP; that is the caller's to keep.
   */
  issuingDistributionPointUrl?: string;
}

/** TBSCertList.version: a plain INTEGER 1 (v2), not [0]-tagged as TBSCertificate.version is. */
const VERSION_V2 = Buffer.from([0x02, 0x01, 0x01]);

function crlNumberDer(n: bigint, what: string): Buffer {
  if (typeof n !== 'bigint' || n < 0n) throw encodingInput(`${what} must be a non-negative bigint (RFC 5280 §5.2.3)`);
  const der = derInteger(n);
  if (der[1] > 20) throw encodingInput(`${what} must be at most 20 octets (RFC 5280 §5.2.3)`);
  return der;
}

/** DistributionPointName [0] { fullName [0] { uniformResourceIdentifier [6] ... } } (IMPLICIT TAGS, CHOICE explicit). */
function distributionPointName(urls: string[], what: string): Buffer {
  if (!Array.isArray(urls) || urls.length === 0) throw encodingInput(`${what} needs at least one URL`);
  return encodeTlv(0xa0, encodeTlv(0xa0, urls.map((uri) => encodeGeneralName({ uri }))));
}

/** The DER TBSCertList, always v2. */
export function encodeTbsCertList(input: TbsCertListInput): Buffer {
  const issuer = input.issuer;
  if (!Buffer.isBuffer(issuer) || issuer.length < 2 || issuer[0] !== TAG_SEQUENCE) throw encodingInput('issuer must be Name DER (a SEQUENCE)');
  const entries = input.revokedEntries;
  if (!Buffer.isBuffer(entries)) throw encodingInput('revokedEntries must be a Buffer from RevokedEntriesWriter.finish()');
  if (!(input.thisUpdate instanceof Date) || !(input.nextUpdate instanceof Date)) throw encodingInput('thisUpdate and nextUpdate must be Dates');
  if (!(input.nextUpdate.getTime() > input.thisUpdate.getTime())) throw encodingInput('nextUpdate must be after thisUpdate');
  const extensions: Buffer[] = [authorityKeyIdentifierExt(input.authorityKeyId)];
  // RFC 5280 §5.2.3: "this extension MUST be non-critical".
  extensions.push(encodeExtension(OID_CE_CRL_NUMBER, false, crlNumberDer(input.crlNumber, 'crlNumber')));
  if (input.deltaBaseCrlNumber !== undefined) {
    const base = crlNumberDer(input.deltaBaseCrlNumber, 'deltaBaseCrlNumber');
    // RFC 5280 §5.2.4: the delta's own cRLNumber follows the base it builds on; "MUST be critical".
    if (input.deltaBaseCrlNumber >= input.crlNumber) throw encodingInput('a delta CRL number must be greater than its base CRL number');
    if (input.freshestCrlUrls !== undefined) throw encodingInput('FreshestCRL must not appear in a delta CRL (RFC 5280 §5.2.6)');
    extensions.push(encodeExtension(OID_CE_DELTA_CRL_INDICATOR, true, base));
  }
  if (input.issuingDistributionPointUrl !== undefined) {
    // RFC 5280 §5.2.5: "this extension is critical"; the BOOLEANs keep their DEFAULT FALSE (omitted).
    const idp = encodeTlv(TAG_SEQUENCE, distributionPointName([input.issuingDistributionPointUrl], 'issuingDistributionPoint'));
    extensions.push(encodeExtension(OID_CE_ISSUING_DISTRIBUTION_POINT, true, idp));
  }
  if (input.freshestCrlUrls !== undefined) {
    // RFC 5280 §5.2.6: "The extension MUST be marked as non-critical"; one DistributionPoint, every URL in it.
    const dp = encodeTlv(TAG_SEQUENCE, distributionPointName(input.freshestCrlUrls, 'FreshestCRL'));
    extensions.push(encodeExtension(OID_CE_FRESHEST_CRL, false, encodeTlv(TAG_SEQUENCE, dp)));
  }
  const crlExtensions = encodeTlv(0xa0, encodeTlv(TAG_SEQUENCE, extensions));
  const parts: Buffer[] = [
    VERSION_V2, encodeSignatureAlgorithm(input.signatureAlgorithm), issuer, derTime(input.thisUpdate), derTime(input.nextUpdate),
  ];
  // RFC 5280 §5.1.2.6: "When there are no revoked certificates, the revoked certificates list MUST be absent."
  if (entries.length > 0) {
    const header = Buffer.allocUnsafe(1 + lengthOfLength(entries.length));
    writeHeader(header, 0, TAG_SEQUENCE, entries.length);
    parts.push(header, entries);
  }
  parts.push(crlExtensions);
  return encodeTlv(TAG_SEQUENCE, parts);
}

/**
 * CertificateList DER from a TBSCertList and its signature (ECDSA signatures in their DER form).
 * The envelope is X.509's SIGNED{} shape, the same as a Certificate's, so it is built the same way.
 */
export function encodeCertificateList(tbs: Buffer, alg: SignatureAlgorithmName, signature: Buffer): Buffer {
  return encodeCertificate(tbs, alg, signature);
}
