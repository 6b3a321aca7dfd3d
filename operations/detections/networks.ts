/**
 * Allowed source networks of a template (the `networks` rule): a CIDR list, IPv4 and IPv6, matched
 * with node:net's BlockList (its own address parser, no regex). An IPv4-mapped IPv6 address
 * (`::ffff:198.51.100.7`, what a dual-stack listener reports for an IPv4 peer) counts as IPv4.
 */
import net from 'node:net';
import { KakuinError } from '../../errors/index.js';

export class NetworkList {
  private readonly list = new net.BlockList();

  constructor(readonly cidrs: readonly string[]) {
    for (const c of cidrs) {
      const parsed = parseCidr(c);
      this.list.addSubnet(parsed.network, parsed.prefix, parsed.family);
    }
  }

  /** Whether `address` is in one of the networks; an unparsable or unknown address is not. */
  includes(address: string | undefined): boolean {
    if (address === undefined) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const a = mapped ? mapped[1] : address.split('%')[0];
    const family = net.isIPv4(a) ? 'ipv4' : net.isIPv6(a) ? 'ipv6' : undefined;
    return family !== undefined && this.list.check(a, family);
  }
}

/** `10.64.0.0/10`, `2001:db8:a::/48`; KAKUIN_E_VALIDATION for anything else. */
export function parseCidr(cidr: string): { network: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(cidr);
  const family = m === null ? undefined : net.isIPv4(m[1]) ? 'ipv4' : net.isIPv6(m[1]) ? 'ipv6' : undefined;
  const prefix = m === null ? NaN : Number(m[2]);
  if (m === null || family === undefined || prefix > (family === 'ipv4' ? 32 : 128)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `${JSON.stringify(cidr)} is not a CIDR network (198.51.100.0/24, 2001:db8::/32)`, { field: 'networks.allowed' });
  }
  return { network: m[1], prefix, family };
}
