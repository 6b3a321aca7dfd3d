/**
 * Running kakuin for tests: in-process (`startService` on port 0) for API tests, or as a child
 * process (`node dist/cli/main.js serve`) where a test needs `kill -9` or the real command.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../cli/config.js';
import { createLogger } from '../../cli/logger.js';
import { startService, type RunningService } from '../../cli/serve.js';
import { parseOcspResponse } from '../../pkix/index.js';
import { makeTempDir, cliMain } from './index.js';

export interface TestService {
  service: RunningService;
  url: string;
  adminToken: string;
  dataDir: string;
  rootPem: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

export function testEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KAKUIN_DATA_DIR: dataDir,
    KAKUIN_API_PORT: '0',
    KAKUIN_LEGACY_PORT: '0',
    KAKUIN_KEY_PASSPHRASE: 'test-passphrase-not-secret',
    // A low scrypt cost, chosen here explicitly; the default (14) costs ~0.1 s per key file.
    KAKUIN_KEY_KDF_COST: '10',
    KAKUIN_ADMIN_TOKEN: `kktest_${randomBytes(24).toString('base64url')}`,
    KAKUIN_LOG_LEVEL: 'error',
    // The gateway in process (its default is one worker process per core): tests of workers set 2.
    KAKUIN_GATEWAY_WORKERS: '1',
    ...extra,
  };
}

/** Start kakuin in this process on a fresh data directory (or `dataDir`), API on a free port. */
export async function startTestService(options: { dataDir?: string; env?: Record<string, string>; clock?: () => number } = {}): Promise<TestService> {
  const temp = options.dataDir ? undefined : makeTempDir();
  const dataDir = options.dataDir ?? temp!.dir;
  const env = { ...testEnv(dataDir), ...options.env };
  const config = loadConfig(env);
  const service = await startService(config, createLogger('error'), env, { ...(options.clock !== undefined && { clock: options.clock }) });
  return {
    service,
    url: service.apiUrl,
    adminToken: env.KAKUIN_ADMIN_TOKEN,
    dataDir,
    env,
    rootPem: readFileSync(path.join(dataDir, 'ca', 'root.pem'), 'utf8'),
    stop: async () => {
      await service.close();
      temp?.cleanup();
    },
  };
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json: any;
}

/** One HTTPS request that trusts only the given root; never throws on an HTTP error status. */
export function request(base: string, rootPem: string, method: string, pathname: string, options: {
  token?: string; body?: Buffer | string | object; contentType?: string; accept?: string; headers?: Record<string, string>;
} = {}): Promise<HttpResponse> {
  const url = new URL(pathname, base);
  let payload: Buffer | undefined;
  let contentType = options.contentType;
  if (options.body !== undefined) {
    if (Buffer.isBuffer(options.body) || typeof options.body === 'string') {
      payload = Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body);
    } else {
      payload = Buffer.from(JSON.stringify(options.body));
      contentType ??= 'application/json';
    }
  }
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (contentType) headers['content-type'] = contentType;
  if (options.accept) headers.accept = options.accept;
  if (payload) headers['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca: rootPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface ChildService {
  proc: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** `node dist/cli/main.js serve` as a child; resolves once it printed its API URL. */
export async function spawnService(env: Record<string, string>): Promise<ChildService> {
  const proc = spawn(process.execPath, [cliMain, 'serve'], {
    env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kakuin serve did not start in time:\n${out}\n${err}`)), 30_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /management API\s+(https:\/\/\S+?)\/api\/v1/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kakuin serve exited with ${code}:\n${out}\n${err}`));
    });
  });
  return { proc, url, stdout: () => out, stderr: () => err, exited };
}

/** POST one DER OCSP request to `<url>/ocsp`; the status of its single response (or the error status). */
export function ocspStatus(url: string, der: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/ocsp`, {
      method: 'POST', agent: false, headers: { 'content-type': 'application/ocsp-request', 'content-length': der.length },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const resp = parseOcspResponse(Buffer.concat(chunks));
          resolve(resp.status === 'successful' ? resp.responses[0].certStatus.status : resp.status);
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
    req.end(der);
  });
}
