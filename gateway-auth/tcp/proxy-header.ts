/**
 * The PROXY protocol v2 header (haproxy.org PROXY protocol spec, §2.2) that precedes a TCP front
 * end's bytes upstream: the device's address and the gateway's, then TLVs (§2.2.7) saying what the
 * gateway verified. Written here: `proxy-protocol-js`, the npm builder we looked at, has no TLVs
 * (its `data` is payload after the header, outside the length field), and the format is a fixed
 * 16-byte prefix, two addresses and type-length-value triples. The tests read it back with two
 * libraries (proxy-protocol-js's parser, @balena/proxy-protocol-parser) and with HAProxy.
 *
 *   PP2_TYPE_AUTHORITY 0x02   the SNI host name the device asked for (when Node reports one: not on
 *                             a resumed TLS 1.2 session)
 *   PP2_TYPE_SSL 0x20         client: PP2_CLIENT_SSL | PP2_CLIENT_CERT_SESS, and PP2_CLIENT_CERT_CONN
 *                             on a full handshake (a resumed session presented no certificate on
 *                             this connection); verify: 0 (the chain and the status were checked);
 *                             sub-TLVs PP2_SUBTYPE_SSL_VERSION 0x21 ("TLSv1.3") and
 *                             PP2_SUBTYPE_SSL_CIPHER 0x23 (the OpenSSL/IANA name)
 *   0xE0                      kakuin device id (UTF-8)
 *   0xE1                      certificate serial, uppercase hex (as the registry keys it)
 *   0xE2                      issuer id (registry issuer id)
 * 0xE0–0xEF are the range the spec leaves to applications (PP2_TYPE_MIN_CUSTOM..MAX_CUSTOM).
 */
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { DeviceIdentity } from '../device-identity.js';

export const PP2_TYPE_AUTHORITY = 0x02;
export const PP2_TYPE_SSL = 0x20;
export const PP2_SUBTYPE_SSL_VERSION = 0x21;
export const PP2_SUBTYPE_SSL_CIPHER = 0x23;
export const PP2_CLIENT_SSL = 0x01;
export const PP2_CLIENT_CERT_CONN = 0x02;
export const PP2_CLIENT_CERT_SESS = 0x04;
export const PP2_TYPE_KAKUIN_DEVICE_ID = 0xe0;
export const PP2_TYPE_KAKUIN_SERIAL = 0xe1;
export const PP2_TYPE_KAKUIN_ISSUER = 0xe2;

function tlv(type: number, value: Buffer): Buffer {
  if (value.length > 0xffff) throw new RangeError(`PROXY v2 TLV 0x${type.toString(16)} is longer than 65535 bytes`);
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

/** 16 bytes of an IPv6 address as the kernel reported it (`::` and a dotted IPv4 tail allowed). */
function ipv6Bytes(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const [a, b, c, d] = v4[1].split('.').map(Number);
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

/** An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, dual-stack listeners) as plain IPv4. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m === null ? address : m[1];
}

/** The TLV vector for one admitted device connection. */
export function kakuinTlvs(socket: TLSSocket, id: DeviceIdentity): Buffer {
  const resumed = socket.isSessionReused();
  const client = PP2_CLIENT_SSL | PP2_CLIENT_CERT_SESS | (resumed ? 0 : PP2_CLIENT_CERT_CONN);
  const ssl = Buffer.alloc(5);
  ssl[0] = client;
  ssl.writeUInt32BE(0, 1);
  const cipher = socket.getCipher();
  const parts: Buffer[] = [];
  const sni = (socket as TLSSocket & { servername?: string | false }).servername;
  if (typeof sni === 'string' && sni !== '') parts.push(tlv(PP2_TYPE_AUTHORITY, Buffer.from(sni, 'utf8')));
  parts.push(
    tlv(PP2_TYPE_SSL, Buffer.concat([
      ssl,
      tlv(PP2_SUBTYPE_SSL_VERSION, Buffer.from(socket.getProtocol() ?? '', 'latin1')),
      tlv(PP2_SUBTYPE_SSL_CIPHER, Buffer.from(cipher.standardName ?? cipher.name, 'latin1')),
    ])),
    tlv(PP2_TYPE_KAKUIN_DEVICE_ID, Buffer.from(id.deviceId, 'utf8')),
    tlv(PP2_TYPE_KAKUIN_SERIAL, Buffer.from(id.serialHex.toUpperCase(), 'latin1')),
    tlv(PP2_TYPE_KAKUIN_ISSUER, Buffer.from(id.issuerId, 'utf8')),
  );
  return Buffer.concat(parts);
}

/** §2.2: the 12-byte signature, then version 2 with the PROXY command (0x21). */
const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const VERSION_2_PROXY = 0x21;
/** §2.2: address family << 4 | transport; STREAM (TCP) over AF_INET or AF_INET6. */
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;

/** The whole header: PROXY command over TCP, the connection's two addresses, then the TLVs. */
export function proxyV2Header(socket: TLSSocket, id: DeviceIdentity): Buffer {
  const src = unmapped(socket.remoteAddress ?? '');
  const dst = unmapped(socket.localAddress ?? '');
  const v4 = net.isIPv4(src) && net.isIPv4(dst);
  // §2.2: both addresses of one family; an IPv4 end on an IPv6 socket is written IPv4-mapped.
  const bytes = (a: string) => (v4 ? ipv4Bytes(a) : ipv6Bytes(net.isIPv4(a) ? `::ffff:${a}` : a));
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(socket.remotePort ?? 0, 0);
  ports.writeUInt16BE(socket.localPort ?? 0, 2);
  const body = Buffer.concat([Buffer.from(bytes(src)), Buffer.from(bytes(dst)), ports, kakuinTlvs(socket, id)]);
  if (body.length > 0xffff) throw new RangeError('PROXY v2 header longer than 65535 bytes');
  const fixed = Buffer.alloc(16);
  SIGNATURE.copy(fixed, 0);
  fixed[12] = VERSION_2_PROXY;
  fixed[13] = v4 ? TCP_OVER_IPV4 : TCP_OVER_IPV6;
  fixed.writeUInt16BE(body.length, 14);
  return Buffer.concat([fixed, body]);
}
