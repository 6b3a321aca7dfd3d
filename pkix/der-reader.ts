/**
 * A minimal, zero-copy DER walker (ITU-T X.690 §8, §10).
 *
 * Nodes point into the caller's buffer (no copies), so `derRaw(node)` gives back the exact original
 * octets: those are what get hashed and signature-checked, never a re-encoding (RFC 5280 §4.1.1.3,
 * RFC 2986 §4.2). Every malformation — truncation, a length running past its parent, an indefinite
 * length, a non-minimal length, trailing bytes, a wrong tag — throws KAKUIN_E_DER_MALFORMED; nothing
 * else escapes from here, whatever the input.
 */
import { KakuinError } from '../errors/index.js';
import {
  TAG_BIT_STRING, TAG_BMP_STRING, TAG_BOOLEAN, TAG_GENERALIZED_TIME, TAG_IA5_STRING, TAG_INTEGER, TAG_NULL,
  TAG_NUMERIC_STRING, TAG_OCTET_STRING, TAG_OID, TAG_PRINTABLE_STRING, TAG_T61_STRING, TAG_UNIVERSAL_STRING,
  TAG_UTC_TIME, TAG_UTF8_STRING, TAG_VISIBLE_STRING,
} from './der.js';

/** One TLV. `tag` is the full identifier octet (0x30 SEQUENCE, 0xa0 [0] constructed, 0x80 [0] primitive). */
export interface DerNode {
  tag: number;
  constructed: boolean;
  /** Offset of the identifier octet in `buf`. */
  start: number;
  /** Offset of the first contents octet. */
  contentStart: number;
  /** Offset one past the last contents octet. */
  end: number;
  buf: Buffer;
}

export function malformed(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_DER_MALFORMED', message);
}

/** Reads the TLV at `offset`, which must end at or before `limit`. */
export function readDerAt(buf: Buffer, offset: number, limit: number = buf.length): DerNode {
  if (!Buffer.isBuffer(buf)) throw malformed('DER input is not a byte buffer');
  if (offset + 2 > limit) throw malformed('truncated DER element');
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw malformed('high-tag-number identifiers are not supported');
  let pos = offset + 1;
  const first = buf[pos++];
  let len: number;
  if (first < 0x80) {
    len = first;
  } else if (first === 0x80) {
    throw malformed('indefinite length is not allowed in DER');
  } else {
    const n = first & 0x7f;
    if (n > 4) throw malformed('length field too long');
    if (pos + n > limit) throw malformed('truncated length field');
    if (buf[pos] === 0) throw malformed('length is not minimally encoded');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos++];
    if (len < 0x80) throw malformed('length is not minimally encoded');
  }
  if (pos + len > limit) throw malformed('DER element runs past the end of its container');
  return { tag, constructed: (tag & 0x20) !== 0, start: offset, contentStart: pos, end: pos + len, buf };
}

/**
 * Reads one TLV. Without `offset` the element must fill `buf` exactly (trailing bytes are an error);
 * with `offset` it reads the element found there and leaves what follows to the caller.
 */
export function readDer(buf: Buffer, offset?: number): DerNode {
  if (offset === undefined) {
    const node = readDerAt(buf, 0, Buffer.isBuffer(buf) ? buf.length : 0);
    if (node.end !== buf.length) throw malformed('trailing bytes after the DER element');
    return node;
  }
  return readDerAt(buf, offset);
}

/** The children of a constructed node, which must exactly fill it. */
export function derChildren(node: DerNode): DerNode[] {
  if (!node.constructed) throw malformed(`element with tag 0x${node.tag.toString(16)} is not constructed`);
  const out: DerNode[] = [];
  let pos = node.contentStart;
  while (pos < node.end) {
    const child = readDerAt(node.buf, pos, node.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** Contents octets (a view, not a copy). */
export function derContent(node: DerNode): Buffer {
  return node.buf.subarray(node.contentStart, node.end);
}

/** The whole TLV exactly as it was received (a view, not a copy). */
export function derRaw(node: DerNode): Buffer {
  return node.buf.subarray(node.start, node.end);
}

export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node === undefined) throw malformed(`${what} is missing`);
  if (node.tag !== tag) throw malformed(`${what}: expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  return node;
}

/** Children of a node that must carry `tag` (for SEQUENCE 0x30, SET 0x31, [n] 0xa0|n). */
export function expectChildren(node: DerNode | undefined, tag: number, what: string): DerNode[] {
  return derChildren(expectTag(node, tag, what));
}

/** INTEGER contents octets after X.690 §8.3.2 checks (non-empty, minimal). Two's complement. */
export function readIntegerBytes(node: DerNode | undefined, what = 'INTEGER'): Buffer {
  const n = expectTag(node, TAG_INTEGER, what);
  const c = derContent(n);
  if (c.length === 0) throw malformed(`${what} is empty`);
  if (c.length > 1 && ((c[0] === 0 && (c[1] & 0x80) === 0) || (c[0] === 0xff && (c[1] & 0x80) !== 0))) {
    throw malformed(`${what} is not minimally encoded`);
  }
  return c;
}

/** A non-negative INTEGER as unsigned magnitude (the sign octet 0x00 removed); negative values are refused. */
export function readUnsignedInteger(node: DerNode | undefined, what = 'INTEGER'): Buffer {
  const c = readIntegerBytes(node, what);
  if (c[0] & 0x80) throw malformed(`${what} is negative`);
  return c.length > 1 && c[0] === 0 ? c.subarray(1) : c;
}

/** A small INTEGER as a number (refuses values beyond ±2^48). */
export function readSmallInteger(node: DerNode | undefined, what = 'INTEGER'): number {
  const c = readIntegerBytes(node, what);
  if (c.length > 6) throw malformed(`${what} is too large`);
  return c.readIntBE(0, c.length);
}

const oidTextCache = new Map<string, string>();

/** Dotted decimal from OID contents octets (X.690 §8.19). Results for short OIDs are cached. */
export function decodeOid(c: Buffer, what = 'OBJECT IDENTIFIER'): string {
  if (c.length > 0 && c.length <= 32) {
    const key = c.toString('latin1');
    let text = oidTextCache.get(key);
    if (text === undefined) {
      text = decodeOidUncached(c, what);
      if (oidTextCache.size < 4096) oidTextCache.set(key, text);
    }
    return text;
  }
  return decodeOidUncached(c, what);
}

function decodeOidUncached(c: Buffer, what: string): string {
  if (c.length === 0) throw malformed(`${what} is empty`);
  if (c[c.length - 1] & 0x80) throw malformed(`${what} is truncated`);
  const arcs: string[] = [];
  let i = 0;
  while (i < c.length) {
    if (c[i] === 0x80) throw malformed(`${what} has a non-minimal subidentifier`);
    let v = 0;
    let big: bigint | undefined;
    for (;;) {
      const b = c[i++];
      if (big !== undefined) big = (big << 7n) | BigInt(b & 0x7f);
      else if (v > 0x3ffffffffff) big = (BigInt(v) << 7n) | BigInt(b & 0x7f);
      else v = v * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
    if (arcs.length === 0) {
      const first = big ?? BigInt(v);
      if (first < 40n) arcs.push('0', first.toString());
      else if (first < 80n) arcs.push('1', (first - 40n).toString());
      else arcs.push('2', (first - 80n).toString());
    } else {
      arcs.push(big !== undefined ? big.toString() : String(v));
    }
  }
  return arcs.join('.');
}

export function readOid(node: DerNode | undefined, what = 'OBJECT IDENTIFIER'): string {
  return decodeOid(derContent(expectTag(node, TAG_OID, what)), what);
}

export interface BitStringValue {
  unusedBits: number;
  /** The bits, without the leading unused-bits octet (a view). */
  bytes: Buffer;
}

export function readBitString(node: DerNode | undefined, what = 'BIT STRING'): BitStringValue {
  const c = derContent(expectTag(node, TAG_BIT_STRING, what));
  if (c.length === 0) throw malformed(`${what} has no unused-bits octet`);
  const unusedBits = c[0];
  if (unusedBits > 7 || (c.length === 1 && unusedBits !== 0)) throw malformed(`${what} has an invalid unused-bits count`);
  return { unusedBits, bytes: c.subarray(1) };
}

/** BIT STRING holding whole octets (keys, signatures). */
export function readOctetAlignedBitString(node: DerNode | undefined, what = 'BIT STRING'): Buffer {
  const v = readBitString(node, what);
  if (v.unusedBits !== 0) throw malformed(`${what} is not octet-aligned`);
  return v.bytes;
}

export function readOctetString(node: DerNode | undefined, what = 'OCTET STRING'): Buffer {
  return derContent(expectTag(node, TAG_OCTET_STRING, what));
}

/** BOOLEAN; X.690 §11.1: DER allows only 0x00 and 0xFF. */
export function readBoolean(node: DerNode | undefined, what = 'BOOLEAN'): boolean {
  const c = derContent(expectTag(node, TAG_BOOLEAN, what));
  if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) throw malformed(`${what} is not a DER BOOLEAN`);
  return c[0] === 0xff;
}

export function readNull(node: DerNode | undefined, what = 'NULL'): void {
  const n = expectTag(node, TAG_NULL, what);
  if (n.end !== n.contentStart) throw malformed(`${what} is not empty`);
}

const TIME_UTC_RE = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const TIME_GEN_RE = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/**
 * UTCTime or GeneralizedTime in the RFC 5280 §4.1.2.5 profile: seconds present, Zulu, no fractions.
 * UTCTime YY >= 50 is 19YY, YY < 50 is 20YY.
 */
export function readTime(node: DerNode | undefined, what = 'Time'): Date {
  if (node === undefined) throw malformed(`${what} is missing`);
  const s = derContent(node).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (node.tag === TAG_UTC_TIME) {
    m = TIME_UTC_RE.exec(s);
    if (m === null) throw malformed(`${what} is not a valid UTCTime`);
    year = Number(m[1]);
    year += year >= 50 ? 1900 : 2000;
  } else if (node.tag === TAG_GENERALIZED_TIME) {
    m = TIME_GEN_RE.exec(s);
    if (m === null) throw malformed(`${what} is not a valid GeneralizedTime`);
    year = Number(m[1]);
  } else {
    throw malformed(`${what}: expected UTCTime or GeneralizedTime`);
  }
  const [mo, d, h, mi, se] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  const t = Date.UTC(year, mo - 1, d, h, mi, se);
  const date = new Date(t);
  // Date.UTC rolls 2023-02-30 over into March and 100 into 1900s; refuse anything that does not round-trip.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    throw malformed(`${what} is not a valid date`);
  }
  return date;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf16beDecoder = new TextDecoder('utf-16be', { fatal: true });

/** True for the universal tags of ASN.1 character string types kakuin decodes. */
export function isStringTag(tag: number): boolean {
  return tag === TAG_UTF8_STRING || tag === TAG_PRINTABLE_STRING || tag === TAG_IA5_STRING || tag === TAG_T61_STRING
    || tag === TAG_BMP_STRING || tag === TAG_UNIVERSAL_STRING || tag === TAG_NUMERIC_STRING || tag === TAG_VISIBLE_STRING;
}

/** Decodes a character string of any of the types in `isStringTag`; invalid UTF-8/UTF-16 is malformed. */
export function readString(node: DerNode | undefined, what = 'string'): string {
  if (node === undefined) throw malformed(`${what} is missing`);
  const c = derContent(node);
  try {
    switch (node.tag) {
      case TAG_UTF8_STRING:
        return utf8Decoder.decode(c);
      case TAG_BMP_STRING:
        if (c.length % 2 !== 0) throw malformed(`${what}: BMPString of odd length`);
        return utf16beDecoder.decode(c);
      case TAG_UNIVERSAL_STRING: {
        if (c.length % 4 !== 0) throw malformed(`${what}: UniversalString length not a multiple of 4`);
        let s = '';
        for (let i = 0; i < c.length; i += 4) {
          const cp = c.readUInt32BE(i);
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw malformed(`${what}: invalid UniversalString character`);
          s += String.fromCodePoint(cp);
        }
        return s;
      }
      case TAG_PRINTABLE_STRING:
      case TAG_IA5_STRING:
      case TAG_NUMERIC_STRING:
      case TAG_VISIBLE_STRING:
        for (let i = 0; i < c.length; i++) if (c[i] > 0x7f) throw malformed(`${what}: non-ASCII octet in a 7-bit string`);
        return c.toString('latin1');
      case TAG_T61_STRING:
        // Teletex is treated as Latin-1, as OpenSSL does.
        return c.toString('latin1');
      default:
        throw malformed(`${what}: tag 0x${node.tag.toString(16)} is not a character string`);
    }
  } catch (e) {
    if (e instanceof KakuinError) throw e;
    throw malformed(`${what} holds invalid characters`);
  }
}

/** Runs a parser and turns any non-KakuinError escape (a bug, never expected) into KAKUIN_E_DER_MALFORMED. */
export function guardDer<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof KakuinError) throw e;
    throw new KakuinError('KAKUIN_E_DER_MALFORMED', `${what} could not be decoded`, { cause: e });
  }
}
