/**
 * The syslog destination: each event as one RFC 5424 message over TCP (RFC 6587) or TLS (RFC 5425),
 * framed by octet counting (`MSG-LEN SP SYSLOG-MSG`, RFC 6587 §3.4.1 / RFC 5425 §4.3): a JSON body
 * may hold any byte, so the non-transparent (LF) framing could split it.
 *
 * A write that the socket took counts as delivered: neither RFC gives the collector a way to
 * acknowledge, so what sat in the kernel's buffers when the collector died may be lost there
 * (kakuin's own restart loses nothing: the cursor moves only after the write completed).
 */
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { KakuinError } from '../../errors/index.js';
import type { KakuinEvent } from './event.js';

export interface SyslogOptions {
  /** `tcp://host:port` or `tls://host:port`. */
  url: string;
  /** TLS: PEM CA certificates the collector's certificate must chain to (default: Node's public roots). */
  ca?: string[];
  /** HOSTNAME of the messages (RFC 5424 §6.2.4); default this machine's name. */
  hostname?: string;
  timeoutMs?: number;
}

/**
 * RFC 5424 §7.2.2: an SD-ID with an `@` is private to the enterprise number after it. 32473 is the
 * number RFC 5612 reserves for documentation and examples; kakuin has none of its own.
 */
export const SD_ID = 'kakuin@32473';
/** RFC 5424 §6.2.1: facility 4, security/authorization messages. */
const FACILITY = 4;
/** Warning (4) when a device was shut out or tried again while shut out; notice (5) otherwise. */
const WARNING_TYPES = new Set(['device.revoked', 'device.suspended', 'device.retired', 'certificate.revoked', 'device.refused', 'enrollment.refused', 'legacy.locked', 'legacy.throttled', 'station.issued-revoked']);

/** RFC 5424 §6.3.3: `"`, `\` and `]` are escaped in a PARAM-VALUE. */
function paramValue(v: string): string {
  return v.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** PRINTUSASCII (%d33-126) only, at most `max` characters; NILVALUE when nothing is left. */
function printable(v: string, max: number): string {
  const s = v.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return s === '' ? '-' : s;
}

/** One event as an RFC 5424 SYSLOG-MSG (without framing). */
export function formatSyslogMessage(event: KakuinEvent, hostname: string, procId = String(process.pid)): string {
  const severity = WARNING_TYPES.has(event.type) ? 4 : 5;
  const sd = `[${SD_ID} id="${paramValue(event.id)}" type="${paramValue(event.type)}"`
    + (event.device !== null ? ` device="${paramValue(event.device)}"` : '')
    + ` actor="${paramValue(event.actor)}"]`;
  // RFC 5424 §6.4: a MSG in UTF-8 starts with the BOM.
  return `<${FACILITY * 8 + severity}>1 ${event.time} ${printable(hostname, 255)} kakuin ${printable(procId, 128)} ${printable(event.type, 32)} ${sd} \uFEFF${JSON.stringify(event)}`;
}

/** RFC 6587 §3.4.1: MSG-LEN is the octet count of the SYSLOG-MSG. */
export function octetCounted(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

export function checkSyslogUrl(url: string, what = 'events.syslog.url'): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new KakuinError('KAKUIN_E_CONFIG', `${what} must be tcp://host:port or tls://host:port`);
  }
  if ((u.protocol !== 'tcp:' && u.protocol !== 'tls:') || u.hostname === '' || u.port === '') {
    throw new KakuinError('KAKUIN_E_CONFIG', `${what} must be tcp://host:port or tls://host:port`);
  }
  return u;
}

export class SyslogDestination {
  readonly name: string;
  private readonly url: URL;
  private socket: net.Socket | undefined;
  private connecting: Promise<net.Socket> | undefined;
  private readonly hostname: string;

  constructor(private readonly o: SyslogOptions) {
    this.url = checkSyslogUrl(o.url);
    this.name = `syslog:${this.url.protocol}//${this.url.host}`;
    this.hostname = o.hostname ?? os.hostname();
  }

  private connect(): Promise<net.Socket> {
    if (this.socket !== undefined && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<net.Socket>((resolve, reject) => {
      const host = this.url.hostname.replace(/^\[|\]$/g, '');
      const port = Number(this.url.port);
      const s = this.url.protocol === 'tls:'
        ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...(this.o.ca !== undefined && { ca: this.o.ca }) })
        : net.connect({ host, port });
      const ready = this.url.protocol === 'tls:' ? 'secureConnect' : 'connect';
      const timer = setTimeout(() => s.destroy(new Error('connect timed out')), this.o.timeoutMs ?? 10_000);
      s.once(ready, () => {
        clearTimeout(timer);
        s.setNoDelay(true);
        this.socket = s;
        resolve(s);
      });
      // `on`, not `once`: an error after the connection is up (the collector reset it) must not be
      // an uncaught exception; the next write fails and the dispatcher retries on a new connection.
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(new KakuinError('KAKUIN_E_EVENT_DELIVERY', `${this.name}: ${e.message}`));
      });
      s.once('close', () => { if (this.socket === s) this.socket = undefined; });
      // The collector says nothing back (RFC 5425 §4.3); anything it sends is ignored.
      s.on('data', () => undefined);
    }).finally(() => { this.connecting = undefined; });
    return this.connecting;
  }

  async deliver(event: KakuinEvent): Promise<void> {
    const s = await this.connect();
    const frame = octetCounted(formatSyslogMessage(event, this.hostname));
    await new Promise<void>((resolve, reject) => {
      s.write(frame, (e) => {
        if (e) {
          s.destroy();
          reject(new KakuinError('KAKUIN_E_EVENT_DELIVERY', `${this.name}: ${e.message}`));
        } else resolve();
      });
    });
  }

  close(): void {
    this.socket?.end();
    this.socket = undefined;
  }
}
