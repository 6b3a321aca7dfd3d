/**
 * Source-address truncation (activity.addressPrefix): a device's address is personal data (a
 * child's watch, a car); keeping only the network prefix still answers "which network" without
 * naming the household. Uses node:net's own parser (BlockList/SocketAddress) rather than a regex.
 */
import net from 'node:net';

function truncateV4(a: string, bits: number): string {
  const n = a.split('.').reduce((acc, o) => (acc * 256) + Number(o), 0);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const m = (n & mask) >>> 0;
  return `${[m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join('.')}/${bits}`;
}

function expandV6(a: string): number[] {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const words = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return words.map((w) => parseInt(w, 16));
}

function truncateV6(a: string, bits: number): string {
  const words = expandV6(a).map((w, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 0 ? 0 : w & ((0xffff << (16 - keep)) & 0xffff);
  });
  return `${words.map((w) => w.toString(16)).join(':')}/${bits}`;
}

/** `198.51.100.7` → `198.51.100.0/24` (v4: 24); an IPv4-mapped IPv6 address counts as IPv4. */
export function truncateAddress(address: string, prefix: { v4: number; v6: number }): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const a = mapped ? mapped[1] : address.split('%')[0];
  if (net.isIPv4(a)) return truncateV4(a, prefix.v4);
  if (net.isIPv6(a)) return truncateV6(a, prefix.v6);
  return address;
}
