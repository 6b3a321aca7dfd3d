/**
 * GeneralName, as used by subjectAltName, CRL distribution points and authority information access.
 *
 * RFC 5280 §4.2.1.6 (Appendix A.2, IMPLICIT TAGS):
 *   GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName
 *
 *   GeneralName ::= CHOICE {
 *        otherName                       [0]     OtherName,
 *        rfc822Name                      [1]     IA5String,
 *        dNSName                         [2]     IA5String,
 *        x400Address                     [3]     ORAddress,
 *        directoryName                   [4]     Name,
 *        ediPartyName                    [5]     EDIPartyName,
 *        uniformResourceIdentifier       [6]     IA5String,
 *        iPAddress                       [7]     OCTET STRING,
 *        registeredID                    [8]     OBJECT IDENTIFIER }
 *
 *   OtherName ::= SEQUENCE {
 *        type-id    OBJECT IDENTIFIER,
 *        value      [0] EXPLICIT ANY DEFINED BY type-id }
 *
 * RFC 4108 §5 (used by IEEE 802.1AR DevID for the device's hardware identity):
 *   id-on-hardwareModuleName OBJECT IDENTIFIER ::= { id-on 4 }   -- 1.3.6.1.5.5.7.8.4
 *   HardwareModuleName ::= SEQUENCE {
 *       hwType OBJECT IDENTIFIER,
 *       hwSerialNum OCTET STRING }
 */
import { isIP } from 'node:net';
import { KakuinError } from '../errors/index.js';
import { derOid, encodeTlv, isIa5String, lengthOfLength, TAG_SEQUENCE, writeHeader } from './der.js';
import { type DerNode, derChildren, derContent, derRaw, expectChildren, malformed, readOctetString, readOid, readString } from './der-reader.js';
import { parseNameNode, type ParsedName } from './name.js';
import { OID_ON_HARDWARE_MODULE_NAME } from './oids.js';

export interface HardwareModuleName {
  /** OID naming the kind of hardware module. */
  hwType: string;
  hwSerial: Buffer;
}

export type GeneralName = { uri: string } | { dns: string } | { ip: string } | { hardwareModuleName: HardwareModuleName };

/** What a parsed GeneralName can be: the kinds kakuin writes, plus the ones others do. */
export type ParsedGeneralName =
  | GeneralName
  | { email: string }
  | { directoryName: ParsedName }
  | { registeredId: string }
  | { otherName: { typeId: string; value: Buffer /* DER of the [0] EXPLICIT contents */ } }
  | { unsupported: { tag: number; rawDer: Buffer } };

const HARDWARE_MODULE_NAME_OID_DER = derOid(OID_ON_HARDWARE_MODULE_NAME);

function encodingInput(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ENCODING_INPUT', message);
}

function checkIa5(kind: string, s: string): void {
  if (typeof s !== 'string' || s.length === 0 || !isIa5String(s)) throw encodingInput(`${kind} must be a non-empty ASCII string`);
}

/** A primitive [n] IA5String GeneralName in one allocation. */
function ia5Name(tag: number, kind: string, s: string): Buffer {
  checkIa5(kind, s);
  const out = Buffer.allocUnsafe(1 + lengthOfLength(s.length) + s.length);
  out.write(s, writeHeader(out, 0, tag, s.length), 'latin1');
  return out;
}

/** RFC 5280 §4.2.1.6: four octets for IPv4, sixteen for IPv6, in network byte order. */
export function ipToBytes(ip: string): Buffer {
  const v = isIP(ip);
  if (v === 4) return Buffer.from(ip.split('.').map(Number));
  if (v !== 6 || ip.includes('%')) throw encodingInput(`not an IP address: ${ip}`);
  let text = ip;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = groups(halves[0]);
  const rest = halves.length > 1 ? groups(halves[1]) : [];
  const fill = halves.length > 1 ? 8 - head.length - rest.length : 0;
  const all = [...head, ...new Array<number>(Math.max(fill, 0)).fill(0), ...rest];
  if (all.length !== 8) throw encodingInput(`not an IP address: ${ip}`);
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** Text form of iPAddress octets (RFC 5952 compression for IPv6); other lengths (name constraints) as hex. */
export function ipFromBytes(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) return b.toString('hex');
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** One GeneralName TLV. */
export function encodeGeneralName(n: GeneralName): Buffer {
  if ('uri' in n) return ia5Name(0x86, 'URI', n.uri);
  if ('dns' in n) return ia5Name(0x82, 'DNS name', n.dns);
  if ('ip' in n) return encodeTlv(0x87, ipToBytes(n.ip));
  if ('hardwareModuleName' in n) {
    const { hwType, hwSerial } = n.hardwareModuleName;
    if (!Buffer.isBuffer(hwSerial) || hwSerial.length === 0) throw encodingInput('hardwareModuleName hwSerial must be a non-empty Buffer');
    // otherName [0] IMPLICIT OtherName: the SEQUENCE tag becomes [0] constructed; its value is [0] EXPLICIT.
    const typeDer = derOid(hwType);
    const serialLen = 1 + lengthOfLength(hwSerial.length) + hwSerial.length;
    const hmnLen = typeDer.length + serialLen;
    const explicitLen = 1 + lengthOfLength(hmnLen) + hmnLen;
    const otherLen = HARDWARE_MODULE_NAME_OID_DER.length + 1 + lengthOfLength(explicitLen) + explicitLen;
    const out = Buffer.allocUnsafe(1 + lengthOfLength(otherLen) + otherLen);
    let o = writeHeader(out, 0, 0xa0, otherLen);
    o += HARDWARE_MODULE_NAME_OID_DER.copy(out, o);
    o = writeHeader(out, o, 0xa0, explicitLen);
    o = writeHeader(out, o, TAG_SEQUENCE, hmnLen);
    o += typeDer.copy(out, o);
    o = writeHeader(out, o, 0x04, hwSerial.length);
    hwSerial.copy(out, o);
    return out;
  }
  throw encodingInput('unknown GeneralName kind');
}

/** GeneralNames: SEQUENCE SIZE (1..MAX) OF GeneralName. */
export function encodeGeneralNames(names: GeneralName[]): Buffer {
  if (!Array.isArray(names) || names.length === 0) throw encodingInput('GeneralNames needs at least one name');
  return encodeTlv(TAG_SEQUENCE, names.map(encodeGeneralName));
}

function ia5Value(node: DerNode, what: string): string {
  return readString({ ...node, tag: 0x16 }, what);
}

export function parseGeneralName(node: DerNode): ParsedGeneralName {
  switch (node.tag) {
    case 0xa0: {
      const parts = derChildren(node);
      if (parts.length !== 2) throw malformed('otherName must have two components');
      const typeId = readOid(parts[0], 'otherName type-id');
      const wrapped = expectChildren(parts[1], 0xa0, 'otherName value');
      if (wrapped.length !== 1) throw malformed('otherName value must be one explicit value');
      if (typeId === OID_ON_HARDWARE_MODULE_NAME) {
        const hmn = expectChildren(wrapped[0], TAG_SEQUENCE, 'HardwareModuleName');
        if (hmn.length !== 2) throw malformed('HardwareModuleName must have two components');
        return { hardwareModuleName: { hwType: readOid(hmn[0], 'hwType'), hwSerial: readOctetString(hmn[1], 'hwSerialNum') } };
      }
      return { otherName: { typeId, value: derRaw(wrapped[0]) } };
    }
    case 0x81:
      return { email: ia5Value(node, 'rfc822Name') };
    case 0x82:
      return { dns: ia5Value(node, 'dNSName') };
    case 0x86:
      return { uri: ia5Value(node, 'uniformResourceIdentifier') };
    case 0x87:
      return { ip: ipFromBytes(derContent(node)) };
    case 0xa4: {
      const inner = derChildren(node);
      if (inner.length !== 1) throw malformed('directoryName must hold one Name');
      return { directoryName: parseNameNode(inner[0], 'directoryName') };
    }
    case 0x88:
      return { registeredId: readOid({ ...node, tag: 0x06 }, 'registeredID') };
    default:
      if (node.constructed) derChildren(node);
      return { unsupported: { tag: node.tag, rawDer: derRaw(node) } };
  }
}

export function parseGeneralNames(node: DerNode | undefined, what = 'GeneralNames'): ParsedGeneralName[] {
  const names = expectChildren(node, TAG_SEQUENCE, what);
  if (names.length === 0) throw malformed(`${what} is empty`);
  return names.map(parseGeneralName);
}
