/**
 * Distinguished names.
 *
 * RFC 5280 §4.1.2.4 (Appendix A.1):
 *   Name ::= CHOICE { -- only one possibility for now --
 *     rdnSequence  RDNSequence }
 *
 *   RDNSequence ::= SEQUENCE OF RelativeDistinguishedName
 *
 *   RelativeDistinguishedName ::=
 *     SET SIZE (1..MAX) OF AttributeTypeAndValue
 *
 *   AttributeTypeAndValue ::= SEQUENCE {
 *     type     AttributeType,
 *     value    AttributeValue }
 *
 *   X520countryName ::=     PrintableString (SIZE (2))
 *   X520SerialNumber ::=    PrintableString (SIZE (1..ub-serial-number))
 *   DomainComponent ::=     IA5String            (RFC 4519 §2.4)
 *
 * kakuin writes one attribute per RDN (a multi-valued RDN is a trap: it is what filling several
 * values into one SET produces, and most software does not expect it). RFC 5280 §4.1.2.4 asks for
 * UTF8String for DirectoryString attributes written after 2003; country and serialNumber are fixed
 * to PrintableString by X.520, domainComponent to IA5String by RFC 4519.
 */
import { KakuinError } from '../errors/index.js';
import {
  derOid, isIa5String, isPrintableString, lengthOfLength, TAG_IA5_STRING, TAG_PRINTABLE_STRING, TAG_SEQUENCE, TAG_SET, TAG_UTF8_STRING, writeHeader,
} from './der.js';
import { type DerNode, derChildren, derRaw, expectChildren, guardDer, isStringTag, malformed, readDer, readOid, readString } from './der-reader.js';
import { OID_AT_C, OID_AT_CN, OID_AT_DC, OID_AT_EMAIL, OID_AT_L, OID_AT_O, OID_AT_OU, OID_AT_SERIAL_NUMBER, OID_AT_ST } from './oids.js';

export type NameAttributeType = 'C' | 'ST' | 'L' | 'O' | 'OU' | 'CN' | 'serialNumber' | 'DC';

export interface NameAttribute {
  type: NameAttributeType;
  value: string;
}

interface AttributeSpec {
  oidDer: Buffer;
  stringTag: number;
}

const ATTRIBUTE_OIDS: Readonly<Record<NameAttributeType, string>> = {
  C: OID_AT_C, ST: OID_AT_ST, L: OID_AT_L, O: OID_AT_O, OU: OID_AT_OU, CN: OID_AT_CN, serialNumber: OID_AT_SERIAL_NUMBER, DC: OID_AT_DC,
};

const ATTRIBUTE_SPECS: Readonly<Record<string, AttributeSpec>> = Object.fromEntries(
  (Object.keys(ATTRIBUTE_OIDS) as NameAttributeType[]).map((t) => [t, {
    oidDer: derOid(ATTRIBUTE_OIDS[t]),
    stringTag: t === 'C' || t === 'serialNumber' ? TAG_PRINTABLE_STRING : t === 'DC' ? TAG_IA5_STRING : TAG_UTF8_STRING,
  }]),
);

const TYPES_BY_OID: Readonly<Record<string, NameAttributeType>> = Object.fromEntries(
  (Object.keys(ATTRIBUTE_OIDS) as NameAttributeType[]).map((t) => [ATTRIBUTE_OIDS[t], t]),
);

/** Short names for nameToString, beyond NameAttributeType. */
const DISPLAY_NAMES: Readonly<Record<string, string>> = { ...Object.fromEntries(Object.entries(TYPES_BY_OID)), [OID_AT_EMAIL]: 'emailAddress' };

function encodingInput(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ENCODING_INPUT', message);
}

/** Checks a value against its attribute's string type; returns its length in octets. */
function valueLength(a: NameAttribute, spec: AttributeSpec): number {
  const v = a.value;
  if (typeof v !== 'string' || v.length === 0) throw encodingInput(`name attribute ${a.type} must be a non-empty string`);
  if (spec.stringTag === TAG_PRINTABLE_STRING) {
    if (!isPrintableString(v)) throw encodingInput(`name attribute ${a.type} has a character outside PrintableString (A-Z a-z 0-9 space '()+,-./:=?)`);
    if (a.type === 'C' && v.length !== 2) throw encodingInput('country name must be two letters (X520countryName SIZE (2))');
    return v.length;
  }
  if (spec.stringTag === TAG_IA5_STRING) {
    if (!isIa5String(v)) throw encodingInput(`name attribute ${a.type} must be ASCII (IA5String)`);
    return v.length;
  }
  return Buffer.byteLength(v, 'utf8');
}

/**
 * A Name with one RDN (one SET) per attribute, in the order given. Runs once per certificate
 * issued, so lengths are computed first and everything is written into one allocation.
 */
export function encodeName(attrs: NameAttribute[]): Buffer {
  const n = attrs.length;
  const specs: AttributeSpec[] = new Array(n);
  const valueLens: number[] = new Array(n);
  const atvLens: number[] = new Array(n);
  const setLens: number[] = new Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const a = attrs[i];
    const spec = Object.hasOwn(ATTRIBUTE_SPECS, a.type) ? ATTRIBUTE_SPECS[a.type] : undefined;
    if (spec === undefined) throw encodingInput(`unknown name attribute type ${String(a.type)}`);
    const vl = valueLength(a, spec);
    const atvLen = spec.oidDer.length + 1 + lengthOfLength(vl) + vl;
    const setLen = 1 + lengthOfLength(atvLen) + atvLen;
    specs[i] = spec;
    valueLens[i] = vl;
    atvLens[i] = atvLen;
    setLens[i] = setLen;
    total += 1 + lengthOfLength(setLen) + setLen;
  }
  const out = Buffer.allocUnsafe(1 + lengthOfLength(total) + total);
  let o = writeHeader(out, 0, TAG_SEQUENCE, total);
  for (let i = 0; i < n; i++) {
    const spec = specs[i];
    o = writeHeader(out, o, TAG_SET, setLens[i]);
    o = writeHeader(out, o, TAG_SEQUENCE, atvLens[i]);
    o += spec.oidDer.copy(out, o);
    o = writeHeader(out, o, spec.stringTag, valueLens[i]);
    o += out.write(attrs[i].value, o, spec.stringTag === TAG_UTF8_STRING ? 'utf8' : 'latin1');
  }
  return out;
}

export interface ParsedNameAttribute {
  oid: string;
  /** Set when the OID is one of NameAttributeType. */
  type?: NameAttributeType;
  /** The decoded string; for a non-string value, '#' followed by the hex of its DER (RFC 4514 §2.4). */
  value: string;
  /** Universal tag of the value (0x0c UTF8String, 0x13 PrintableString, ...). */
  stringTag: number;
  /** Index of the RDN holding it (attributes of a multi-valued RDN share one). */
  rdnIndex: number;
}

export interface ParsedName {
  /** The Name exactly as received: compare and hash these bytes, never a re-encoding. */
  rawDer: Buffer;
  attributes: ParsedNameAttribute[];
}

export function parseNameNode(node: DerNode | undefined, what = 'Name'): ParsedName {
  const rdns = expectChildren(node, TAG_SEQUENCE, what);
  const attributes: ParsedNameAttribute[] = [];
  for (let r = 0; r < rdns.length; r++) {
    const atvs = expectChildren(rdns[r], TAG_SET, `${what} RDN`);
    if (atvs.length === 0) throw malformed(`${what} has an empty RDN`);
    for (const atv of atvs) {
      const parts = expectChildren(atv, TAG_SEQUENCE, `${what} AttributeTypeAndValue`);
      if (parts.length !== 2) throw malformed(`${what} AttributeTypeAndValue must have two components`);
      const oid = readOid(parts[0], `${what} attribute type`);
      const valueNode = parts[1];
      const value = isStringTag(valueNode.tag)
        ? readString(valueNode, `${what} attribute value`)
        : `#${derRaw(valueNode).toString('hex')}`;
      if (valueNode.constructed) derChildren(valueNode); // a nested structure must at least be well-formed
      const attr: ParsedNameAttribute = { oid, value, stringTag: valueNode.tag, rdnIndex: r };
      const type = TYPES_BY_OID[oid];
      if (type !== undefined) attr.type = type;
      attributes.push(attr);
    }
  }
  return { rawDer: derRaw(node!), attributes };
}

export function parseName(der: Buffer): ParsedName {
  return guardDer('Name', () => parseNameNode(readDer(der)));
}

function escapeValue(v: string): string {
  let s = v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  if (s.startsWith(' ') || s.startsWith('#')) s = `\\${s}`;
  if (s.endsWith(' ') && s.length > 1) s = `${s.slice(0, -1)}\\ `;
  return s;
}

/** "CN=x, O=y" in encoding order, for logs and user interfaces (not a canonical form; never compare it). */
export function nameToString(n: ParsedName): string {
  let out = '';
  let lastRdn = -1;
  for (const a of n.attributes) {
    if (out.length > 0) out += a.rdnIndex === lastRdn ? ' + ' : ', ';
    out += `${DISPLAY_NAMES[a.oid] ?? a.oid}=${escapeValue(a.value)}`;
    lastRdn = a.rdnIndex;
  }
  return out;
}
