/** Helpers of the listener tests: an in-process responder + listener, a small HTTP client, async openssl/curl. */
import { execFile } from 'node:child_process';
import http from 'node:http';
import {
  createOcspHttpServer, OcspResponder, type OcspHttpServer, type OcspHttpServerOptions, type OcspResponderOptions, Publications,
} from '../../ocsp-responder/index.js';
import { pollingFeed, RecordingLogger, type RegistryFixture, type Responder } from './fixtures.js';

export interface RunningListener {
  responder: OcspResponder;
  listener: OcspHttpServer;
  port: number;
  base: string;
  logger: RecordingLogger;
  stop(): Promise<void>;
}

export async function startListener(fx: RegistryFixture, responders: Responder[], options: {
  responder?: Partial<OcspResponderOptions>; listener?: Partial<OcspHttpServerOptions>;
} = {}): Promise<RunningListener> {
  const logger = new RecordingLogger();
  const responder = new OcspResponder({
    registry: fx.registry, identities: responders.map((r) => r.identity), feed: pollingFeed(fx.registry), logger, ...options.responder,
  });
  await responder.start();
  const publications = new Publications({ registry: fx.registry, logger });
  const listener = createOcspHttpServer({ responder, publications, logger, ...options.listener });
  const address = await listener.listen(0, '127.0.0.1');
  return {
    responder, listener, port: address.port, base: `http://127.0.0.1:${address.port}`, logger,
    stop: async () => {
      await listener.close();
      await responder.stop();
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on its own connection; never rejects on an HTTP status, rejects on a socket error. */
export function fetchRaw(port: number, method: string, path: string, options: { body?: Buffer; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) {
      headers['content-length'] = String(options.body.length);
    }
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export function postOcsp(port: number, der: Buffer, contentType = 'application/ocsp-request'): Promise<Reply> {
  return fetchRaw(port, 'POST', '/ocsp', { body: der, headers: { 'content-type': contentType } });
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the listener under test lives in this process). */
export function run(command: string, args: string[]): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && typeof (error as { code?: unknown }).code !== 'number') {
        reject(error);
        return;
      }
      resolve({ code: error ? Number((error as { code?: number }).code) : 0, stdout, stderr });
    });
  });
}
