/**
 * Where accepted telemetry goes: forwarded to the upstream URL with the verified identity attached,
 * or, without an upstream, recorded by a sink (`jsonLinesTelemetrySink` appends JSON lines).
 *
 * Identity headers are the gateway's word, so whatever `x-kakuin-*` the device sent is dropped
 * first; hop-by-hop headers (RFC 9110 §7.6.1: Connection and the fields it names, Keep-Alive,
 * Transfer-Encoding, TE, Trailer, Upgrade, Proxy-*) are not forwarded either.
 */
import { once } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { DeviceIdentity } from './device-identity.js';
import type { TelemetryRecord, TelemetrySink } from './options.js';

export const IDENTITY_HEADERS = {
  deviceId: 'x-kakuin-device-id',
  serial: 'x-kakuin-certificate-serial',
  issuer: 'x-kakuin-issuer',
} as const;

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate',
  'proxy-connection', 'host', 'content-length', 'expect',
]);

const MAX_UPSTREAM_RESPONSE_BYTES = 64 * 1024;

/** The headers to send upstream: the client's end-to-end headers minus any x-kakuin-*, plus the verified identity. */
/** Who the gateway vouches for: a certificate (mTLS) or, on the legacy path, only the device. */
export type UpstreamIdentity = Pick<DeviceIdentity, 'deviceId'> & Partial<Pick<DeviceIdentity, 'serialHex' | 'issuerId'>>;

export function upstreamHeaders(client: IncomingHttpHeaders, id: UpstreamIdentity, contentLength: number, drop: readonly string[] = []): OutgoingHttpHeaders {
  const named = new Set(String(client.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(client)) {
    if (value === undefined || name.startsWith('x-kakuin-') || HOP_BY_HOP.has(name) || named.has(name) || drop.includes(name)) continue;
    out[name] = value;
  }
  out['content-length'] = contentLength;
  out[IDENTITY_HEADERS.deviceId] = id.deviceId;
  if (id.serialHex !== undefined) out[IDENTITY_HEADERS.serial] = id.serialHex;
  if (id.issuerId !== undefined) out[IDENTITY_HEADERS.issuer] = id.issuerId;
  return out;
}

export interface UpstreamResponse {
  status: number;
  contentType?: string;
  body: Buffer;
}

export class TelemetryUpstream {
  private readonly agent: http.Agent;

  constructor(private readonly url: URL, caPem: string[] | undefined, private readonly timeoutMs: number) {
    this.agent = url.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, maxSockets: 64, ...(caPem !== undefined && { ca: caPem }) })
      : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  /** Resolves with the upstream's answer; rejects when there is none (connection, timeout, oversize). */
  forward(body: Buffer, headers: OutgoingHttpHeaders): Promise<UpstreamResponse> {
    const lib = this.url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(this.url, { method: 'POST', agent: this.agent, headers, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_UPSTREAM_RESPONSE_BYTES) req.destroy(new Error('upstream response too large'));
          else chunks.push(c);
        });
        res.on('end', () => resolve({
          status: res.statusCode ?? 502, ...(res.headers['content-type'] !== undefined && { contentType: res.headers['content-type'] }),
          body: Buffer.concat(chunks),
        }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`upstream did not answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * A sink appending one JSON object per line to `<dir>/telemetry.jsonl`:
 * `{"receivedAt", "deviceId", "serialHex", "issuerId", "bytes", "data"}`. Append-only; rotate it
 * outside kakuin (it is reopened only at start).
 */
export function jsonLinesTelemetrySink(dir: string, fileName = 'telemetry.jsonl'): TelemetrySink & { readonly path: string; close(): Promise<void> } {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, fileName);
  let stream: WriteStream | undefined;
  const open = (): WriteStream => (stream ??= createWriteStream(file, { flags: 'a' }));
  return {
    path: file,
    record(r: TelemetryRecord): Promise<void> {
      const line = `${JSON.stringify({
        receivedAt: r.receivedAt.toISOString(), deviceId: r.deviceId, serialHex: r.serialHex, issuerId: r.issuerId,
        ...(r.auth !== undefined && { auth: r.auth }), bytes: r.bytes, data: r.data,
      })}\n`;
      return new Promise((resolve, reject) => open().write(line, (e) => (e ? reject(e) : resolve())));
    },
    async close(): Promise<void> {
      if (stream === undefined) return;
      const s = stream;
      stream = undefined;
      s.end();
      await once(s, 'close');
    },
  };
}
