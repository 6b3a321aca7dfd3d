/**
 * The raw TCP front ends' options (DeviceGatewayOptions.tcp), checked once at start like the rest
 * of the gateway's (KAKUIN_E_CONFIG names the bad listener and field).
 */
import { KakuinError } from '../../errors/index.js';

export interface TcpListenerOptions {
  /** TLS port devices connect to (0 picks a free one). */
  port: number;
  /** The plain-TCP service behind it, `host:port` (`[v6]:port` for an IPv6 literal). */
  upstream: string;
}

export interface ResolvedTcpListener {
  port: number;
  upstream: { host: string; port: number };
}

function configError(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_CONFIG', `gateway: ${message}`);
}

export function resolveTcpListeners(value: unknown): ResolvedTcpListener[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw configError('tcp must be a list of {port, upstream}');
  const ports = new Set<number>();
  return Object.freeze(value.map((l: TcpListenerOptions, i): ResolvedTcpListener => {
    const f = `tcp[${i}]`;
    if (l === null || typeof l !== 'object') throw configError(`${f} must be an object`);
    if (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535) throw configError(`${f}.port must be a port number`);
    if (l.port !== 0 && ports.has(l.port)) throw configError(`${f}.port ${l.port} is listed twice`);
    ports.add(l.port);
    let url: URL;
    try {
      if (typeof l.upstream !== 'string' || /[/?#@\s]/.test(l.upstream)) throw new Error('shape');
      url = new URL(`tcp://${l.upstream}`);
    } catch {
      throw configError(`${f}.upstream must be host:port`);
    }
    const port = Number(url.port);
    if (url.hostname === '' || url.port === '' || port <= 0) throw configError(`${f}.upstream must be host:port`);
    return Object.freeze({ port: l.port, upstream: Object.freeze({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port }) });
  })) as ResolvedTcpListener[];
}
