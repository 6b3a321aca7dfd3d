/**
 * Real TLS peers for the gateway tests: `openssl s_client`, `curl`, a Node keep-alive client,
 * and a local upstream HTTP server that records what the gateway forwards.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { GATEWAY_HOST } from './pki.js';

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (no shell) with `input` on stdin; kills it after `timeoutMs`. */
export function run(cmd: string, args: string[], input = '', timeoutMs = 10_000): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('latin1'); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('latin1'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => { /* the peer may exit first */ });
    child.stdin.end(input);
  });
}

export const GET_HEALTHZ = `GET /healthz HTTP/1.1\r\nHost: ${GATEWAY_HOST}\r\nConnection: close\r\n\r\n`;

export interface SClientOptions {
  certPath: string;
  keyPath: string;
  caPath: string;
  version?: '1.2' | '1.3';
  sessOut?: string;
  sessIn?: string;
  request?: string;
}

/** `openssl s_client` with a client certificate, sending one HTTP request and waiting for the server to close. */
export function sClient(port: number, o: SClientOptions): Promise<ProcessResult> {
  const args = [
    's_client', '-connect', `127.0.0.1:${port}`, '-servername', GATEWAY_HOST, '-cert', o.certPath, '-key', o.keyPath,
    '-CAfile', o.caPath, '-verify_return_error', '-ign_eof',
  ];
  if (o.version) args.push(o.version === '1.2' ? '-tls1_2' : '-tls1_3');
  if (o.sessOut) args.push('-sess_out', o.sessOut);
  if (o.sessIn) args.push('-sess_in', o.sessIn);
  return run('openssl', args, o.request ?? GET_HEALTHZ);
}

export function httpStatusOf(output: string): number | undefined {
  // s_client may interleave its session-ticket dump with the response: do not anchor.
  const m = /HTTP\/1\.1 (\d{3}) /.exec(output);
  return m ? Number(m[1]) : undefined;
}

export interface CurlOptions {
  certPath?: string;
  keyPath?: string;
  caPath?: string;
  scheme?: 'https' | 'http';
  path?: string;
  method?: string;
  headers?: string[];
  body?: string;
}

/** `curl` against the gateway; stdout ends with `\nHTTP_STATUS=<code>` (000 when there was no response). */
export async function curl(port: number, o: CurlOptions): Promise<ProcessResult & { status: number }> {
  const scheme = o.scheme ?? 'https';
  const args = ['-sS', '--max-time', '8', '--resolve', `${GATEWAY_HOST}:${port}:127.0.0.1`, '-w', '\nHTTP_STATUS=%{http_code}'];
  if (o.certPath) args.push('--cert', o.certPath);
  if (o.keyPath) args.push('--key', o.keyPath);
  if (o.caPath) args.push('--cacert', o.caPath);
  if (o.method) args.push('-X', o.method);
  for (const h of o.headers ?? []) args.push('-H', h);
  if (o.body !== undefined) args.push('--data-binary', o.body);
  args.push(`${scheme}://${GATEWAY_HOST}:${port}${o.path ?? '/healthz'}`);
  const r = await run('curl', args);
  const m = /HTTP_STATUS=(\d{3})$/.exec(r.stdout);
  return { ...r, status: m ? Number(m[1]) : 0 };
}

export interface DeviceResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  socket: TLSSocket;
  reused: boolean;
}

/** A Node HTTPS client holding one keep-alive connection to the gateway, as a device would. */
export class KeepAliveDevice {
  readonly agent: https.Agent;

  constructor(private readonly port: number, certPath: string, keyPath: string, caPath: string) {
    this.agent = new https.Agent({
      keepAlive: true, maxSockets: 1, cert: readFileSync(certPath), key: readFileSync(keyPath), ca: readFileSync(caPath),
      servername: GATEWAY_HOST,
    });
  }

  request(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<DeviceResponse> {
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: this.port, method, path, agent: this.agent, servername: GATEWAY_HOST,
        headers: { host: GATEWAY_HOST, ...(body !== undefined && { 'content-length': Buffer.byteLength(body) }), ...headers },
      }, (res) => {
        const socket = res.socket as TLSSocket;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, socket, reused: req.reusedSocket }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  destroy(): void {
    this.agent.destroy();
  }
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local upstream that records requests and answers with `status` (changeable). */
export async function startUpstream(): Promise<{ url: string; requests: RecordedRequest[]; status: number; close(): Promise<void> }> {
  const state = { status: 200 };
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.writeHead(state.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ stored: state.status < 300 }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/ingest`,
    requests,
    get status() { return state.status; },
    set status(s: number) { state.status = s; },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Waits for `socket` to close, failing after `ceilingMs`; resolves with the ms it took from `since`. */
export function closedWithin(socket: TLSSocket, since: number, ceilingMs: number): Promise<number> {
  if (socket.destroyed) return Promise.resolve(performance.now() - since);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection still open after ${ceilingMs} ms`)), ceilingMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - since);
    });
  });
}
