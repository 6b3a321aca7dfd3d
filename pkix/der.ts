/**
 * DER encoder primitives (ITU-T X.690 §8 and §10, Distinguished Encoding Rules).
 *
 * Everything here returns a Buffer holding one complete, definite-length TLV. Lengths are computed
 * before allocation, so building a structure is one allocation per level and one copy per byte.
 * This is the issuance hot path: keep it free of generic object models and of per-call lookups.
 *
 * Tags are passed as the full identifier octet (class | constructed | number), e.g. 0x30 for
 * SEQUENCE, 0xa3 for [3] EXPLICIT. Tag numbers above 30 (high-tag-number form) are not needed by
 * any structure kakuin writes and are refused.
 */
import { KakuinError } from '../errors/index.js';

export const TAG_BOOLEAN = 0x01;
export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_NULL = 0x05;
export const TAG_OID = 0x06;
export const TAG_ENUMERATED = 0x0a;
export const TAG_UTF8_STRING = 0x0c;
export const TAG_NUMERIC_STRING = 0x12;
export const TAG_PRINTABLE_STRING = 0x13;
export const TAG_T61_STRING = 0x14;
export const TAG_IA5_STRING = 0x16;
export const TAG_UTC_TIME = 0x17;
export const TAG_GENERALIZED_TIME = 0x18;
export const TAG_VISIBLE_STRING = 0x1a;
export const TAG_UNIVERSAL_STRING = 0x1c;
export const TAG_BMP_STRING = 0x1e;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;

/** Number of octets the length field takes for a content of `len` octets (X.690 §10.1: minimal). */
export function lengthOfLength(len: number): number {
  if (len < 0x80) return 1;
  if (len < 0x100) return 2;
  if (len < 0x10000) return 3;
  if (len < 0x1000000) return 4;
  return 5;
}

/** Writes identifier + length at `offset`; returns the offset where the contents start. */
export function writeHeader(out: Buffer, offset: number, tag: number, len: number): number {
  out[offset++] = tag;
  if (len < 0x80) {
    out[offset++] = len;
  } else if (len < 0x100) {
    out[offset++] = 0x81;
    out[offset++] = len;
  } else if (len < 0x10000) {
    out[offset++] = 0x82;
    out[offset++] = len >>> 8;
    out[offset++] = len & 0xff;
  } else if (len < 0x1000000) {
    out[offset++] = 0x83;
    out[offset++] = len >>> 16;
    out[offset++] = (len >>> 8) & 0xff;
    out[offset++] = len & 0xff;
  } else {
    out[offset++] = 0x84;
    out[offset++] = len >>> 24;
    out[offset++] = (len >>> 16) & 0xff;
    out[offset++] = (len >>> 8) & 0xff;
    out[offset++] = len & 0xff;
  }
  return offset;
}

/** Identifier + length octets alone, for callers that concatenate contents themselves. */
export function derHeader(tag: number, len: number): Buffer {
  const out = Buffer.allocUnsafe(1 + lengthOfLength(len));
  writeHeader(out, 0, tag, len);
  return out;
}

function checkTag(tag: number): void {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff || (tag & 0x1f) === 0x1f) {
    throw new KakuinError('KAKUIN_E_ENCODING_INPUT', `tag ${tag} is not a single-octet identifier`);
  }
}

/** One TLV: `tag` is the full identifier octet; `content` one Buffer or pieces to concatenate. */
export function encodeTlv(tag: number, content: Buffer | Buffer[]): Buffer {
  checkTag(tag);
  if (Buffer.isBuffer(content)) {
    const len = content.length;
    const out = Buffer.allocUnsafe(1 + lengthOfLength(len) + len);
    content.copy(out, writeHeader(out, 0, tag, len));
    return out;
  }
  let len = 0;
  for (let i = 0; i < content.length; i++) len += content[i].length;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(len) + len);
  let offset = writeHeader(out, 0, tag, len);
  for (let i = 0; i < content.length; i++) offset += content[i].copy(out, offset);
  return out;
}

/** SEQUENCE: components in the order given. */
export function derSequence(...parts: Buffer[]): Buffer {
  return encodeTlv(TAG_SEQUENCE, parts);
}

/**
 * SET / SET OF. X.690 §11.6: in DER the component encodings appear in ascending order, compared as
 * octet strings; so the parts are sorted here (a copy of the array; the parts are not modified).
 */
export function derSet(...parts: Buffer[]): Buffer {
  if (parts.length > 1) parts = parts.slice().sort(Buffer.compare);
  return encodeTlv(TAG_SET, parts);
}

const oidCache = new Map<string, Buffer>();

/** Contents octets of an OBJECT IDENTIFIER (X.690 §8.19), or undefined when `oid` is not dotted decimal. */
function oidContents(oid: string): Buffer | undefined {
  if (!/^[0-2](\.(0|[1-9][0-9]*))+$/.test(oid)) return undefined;
  const arcs = oid.split('.').map((a) => BigInt(a));
  if (arcs[0] < 2n && arcs[1] > 39n) return undefined;
  const bytes: number[] = [];
  const pushArc = (arc: bigint): void => {
    const septets: number[] = [Number(arc & 0x7fn)];
    arc >>= 7n;
    while (arc > 0n) {
      septets.push(Number(arc & 0x7fn) | 0x80);
      arc >>= 7n;
    }
    for (let i = septets.length - 1; i >= 0; i--) bytes.push(septets[i]);
  };
  pushArc(arcs[0] * 40n + arcs[1]);
  for (let i = 2; i < arcs.length; i++) pushArc(arcs[i]);
  return Buffer.from(bytes);
}

/** OBJECT IDENTIFIER from dotted decimal (`2.5.4.3`); encodings are cached, so do not modify the result. */
export function derOid(oid: string): Buffer {
  let out = oidCache.get(oid);
  if (out === undefined) {
    const contents = oidContents(oid);
    if (contents === undefined) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', `not an object identifier: ${oid}`);
    out = encodeTlv(TAG_OID, contents);
    if (oidCache.size < 4096) oidCache.set(oid, out);
  }
  return out;
}

/** Two's-complement contents of a bigint, minimal (X.690 §8.3.2). */
function bigintContents(v: bigint): Buffer {
  if (v === 0n) return Buffer.from([0]);
  const bytes: number[] = [];
  if (v > 0n) {
    while (v > 0n) {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
    }
    if (bytes[bytes.length - 1] & 0x80) bytes.push(0);
  } else {
    while (v < -1n || bytes.length === 0 || (bytes[bytes.length - 1] & 0x80) === 0) {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
    }
  }
  return Buffer.from(bytes.reverse());
}

/**
 * INTEGER. A Buffer is an unsigned big-endian magnitude (a serial number, an RSA modulus): leading
 * zero octets are dropped and one 0x00 is put back when the high bit is set, so the value stays
 * positive (X.690 §8.3.2). Numbers must be safe integers; numbers and bigints may be negative.
 */
export function derInteger(value: Buffer | number | bigint): Buffer {
  if (Buffer.isBuffer(value)) {
    let i = 0;
    while (i < value.length - 1 && value[i] === 0) i++;
    if (value.length === 0) return Buffer.from([TAG_INTEGER, 1, 0]);
    const pad = value[i] & 0x80 ? 1 : 0;
    const len = value.length - i + pad;
    const out = Buffer.allocUnsafe(1 + lengthOfLength(len) + len);
    let offset = writeHeader(out, 0, TAG_INTEGER, len);
    if (pad) out[offset++] = 0;
    value.copy(out, offset, i);
    return out;
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', `not a safe integer: ${value}`);
    if (value >= 0 && value < 0x80) return Buffer.from([TAG_INTEGER, 1, value]);
    value = BigInt(value);
  }
  if (typeof value !== 'bigint') throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'INTEGER needs a Buffer, number or bigint');
  return encodeTlv(TAG_INTEGER, bigintContents(value));
}

export function derOctetString(b: Buffer): Buffer {
  return encodeTlv(TAG_OCTET_STRING, b);
}

/** BIT STRING: `unusedBits` (0–7) is the count of padding bits in the last octet (X.690 §8.6.2). */
export function derBitString(b: Buffer, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (b.length === 0 && unusedBits !== 0)) {
    throw new KakuinError('KAKUIN_E_ENCODING_INPUT', `invalid unused-bits count ${unusedBits}`);
  }
  const len = b.length + 1;
  const out = Buffer.allocUnsafe(1 + lengthOfLength(len) + len);
  let offset = writeHeader(out, 0, TAG_BIT_STRING, len);
  out[offset++] = unusedBits;
  b.copy(out, offset);
  return out;
}

const DER_TRUE = Buffer.from([TAG_BOOLEAN, 1, 0xff]);
const DER_FALSE = Buffer.from([TAG_BOOLEAN, 1, 0x00]);
const DER_NULL = Buffer.from([TAG_NULL, 0]);

/** BOOLEAN; X.690 §11.1: TRUE is 0xFF in DER. */
export function derBoolean(v: boolean): Buffer {
  return Buffer.from(v ? DER_TRUE : DER_FALSE);
}

export function derNull(): Buffer {
  return Buffer.from(DER_NULL);
}

export function derUtf8String(s: string): Buffer {
  return encodeTlv(TAG_UTF8_STRING, Buffer.from(s, 'utf8'));
}

/** X.680 §41.4: PrintableString is A–Z a–z 0–9 space ' ( ) + , - . / : = ? (no '@', '_', '*', '&'). */
const PRINTABLE_RE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

export function isPrintableString(s: string): boolean {
  return PRINTABLE_RE.test(s);
}

export function derPrintableString(s: string): Buffer {
  if (!PRINTABLE_RE.test(s)) {
    throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'value contains a character outside PrintableString (A-Z a-z 0-9 space \'()+,-./:=?)');
  }
  return encodeTlv(TAG_PRINTABLE_STRING, Buffer.from(s, 'latin1'));
}

// eslint-disable-next-line no-control-regex
const IA5_RE = /^[\x00-\x7f]*$/;

export function isIa5String(s: string): boolean {
  return IA5_RE.test(s);
}

/** IA5String: 7-bit ASCII only. */
export function derIA5String(s: string): Buffer {
  if (!IA5_RE.test(s)) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'value contains a character outside IA5String (ASCII)');
  return encodeTlv(TAG_IA5_STRING, Buffer.from(s, 'latin1'));
}

function checkDate(d: Date): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(t)) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'not a valid date');
  return t;
}

/** Writes `n` as exactly `width` decimal digits. */
function putDigits(out: Buffer, offset: number, n: number, width: number): number {
  for (let i = offset + width - 1; i >= offset; i--) {
    out[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return offset + width;
}

/** Time octets as YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ; RFC 5280 §4.1.2.5.1/2: seconds, no fractions, Zulu. */
function timeOctets(d: Date, tag: number, yearDigits: 2 | 4): Buffer {
  const len = yearDigits + 11;
  const out = Buffer.allocUnsafe(2 + len);
  out[0] = tag;
  out[1] = len;
  let o = putDigits(out, 2, yearDigits === 2 ? d.getUTCFullYear() % 100 : d.getUTCFullYear(), yearDigits);
  o = putDigits(out, o, d.getUTCMonth() + 1, 2);
  o = putDigits(out, o, d.getUTCDate(), 2);
  o = putDigits(out, o, d.getUTCHours(), 2);
  o = putDigits(out, o, d.getUTCMinutes(), 2);
  o = putDigits(out, o, d.getUTCSeconds(), 2);
  out[o] = 0x5a; // 'Z'
  return out;
}

/** UTCTime, only for 1950–2049 (RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, YY < 50 is 20YY). */
export function derUtcTime(d: Date): Buffer {
  checkDate(d);
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 2049) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', `UTCTime cannot hold the year ${y}`);
  return timeOctets(d, TAG_UTC_TIME, 2);
}

/** GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 §4.1.2.5.2: no fractional seconds). Milliseconds are dropped. */
export function derGeneralizedTime(d: Date): Buffer {
  checkDate(d);
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', `GeneralizedTime cannot hold the year ${y}`);
  return timeOctets(d, TAG_GENERALIZED_TIME, 4);
}

/**
 * RFC 5280 §4.1.2.5: "CAs conforming to this profile MUST always encode certificate validity dates
 * through the year 2049 as UTCTime; certificate validity dates in 2050 or later MUST be encoded as
 * GeneralizedTime." The same rule holds for CRL thisUpdate/nextUpdate (§5.1.2.4).
 */
export function derTime(d: Date): Buffer {
  checkDate(d);
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? timeOctets(d, TAG_UTC_TIME, 2) : derGeneralizedTime(d);
}

/** [n] EXPLICIT: a context-specific constructed TLV wrapping the complete inner encoding. */
export function derExplicit(tagNumber: number, content: Buffer): Buffer {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) {
    throw new KakuinError('KAKUIN_E_ENCODING_INPUT', `context tag number ${tagNumber} out of range`);
  }
  return encodeTlv(0xa0 | tagNumber, content);
}

/**
 * [n] IMPLICIT: the inner value's tag is replaced; `content` is the inner value's contents octets.
 * `constructed` must match the inner type (true for SEQUENCE/SET, false for strings and INTEGER).
 */
export function derImplicit(tagNumber: number, content: Buffer, constructed: boolean): Buffer {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) {
    throw new KakuinError('KAKUIN_E_ENCODING_INPUT', `context tag number ${tagNumber} out of range`);
  }
  return encodeTlv((constructed ? 0xa0 : 0x80) | tagNumber, content);
}
