/**
 * The HTTP side of the factory client: one station's requests to a remote kakuin's management API
 * (TLS trusting only kakuin's root; a bearer API key or a station certificate), retries with
 * exponential backoff for what is worth retrying (the connection failed or dropped, 5xx, 429), and
 * the NDJSON reply of a batch read line by line as it streams in.
 */
import https from 'node:https';
import { ERROR_CATALOGUE, KakuinError, type ErrorCode } from '../errors/index.js';

export interface BatchClientOptions {
  /** Base URL of the remote kakuin management API. */
  url: string;
  apiKey?: string;
  clientCertificate?: { certPem: string; keyPem: string };
  caPem: string;
  retries?: number;
  retryBaseMs?: number;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  signal?: AbortSignal;
}

export interface BatchResultLine {
  line?: number;
  serialNumber?: string;
  serialHex?: string;
  /** The CA that issued `certificate` (its chain: GET /api/v1/ca/chain?issuer=<id>); older servers leave it out. */
  issuerId?: string;
  certificate?: string;
  pkcs12?: string;
  pem?: string;
  supersedes?: string[];
  error?: { code: string; message: string };
}

/** Worth retrying: the connection failed or dropped, or the server answered 5xx/429. */
export class TransientError extends Error {}

const REQUEST_IDLE_MS = 120_000;

export class BatchClient {
  constructor(private readonly options: BatchClientOptions) {}

  private request(method: string, pathname: string, headers: Record<string, string>): https.RequestOptions & { url: URL } {
    return {
      url: new URL(pathname, this.options.url), method, ca: this.options.caPem, agent: false, signal: this.options.signal,
      ...(this.options.clientCertificate && { cert: this.options.clientCertificate.certPem, key: this.options.clientCertificate.keyPem }),
      headers: { ...(this.options.apiKey !== undefined && { authorization: `Bearer ${this.options.apiKey}` }), ...headers },
    };
  }

  /** Runs `attempt` until it succeeds; `madeProgress` resets the count of failures in a row. */
  async withRetries<T>(attempt: (madeProgress: () => void) => Promise<T>): Promise<T | { unreachable: string }> {
    const retries = this.options.retries ?? 5;
    const base = this.options.retryBaseMs ?? 500;
    let failures = 0;
    for (;;) {
      let progressed = false;
      try {
        return await attempt(() => { progressed = true; });
      } catch (e) {
        if (this.options.signal?.aborted) throw e;
        // A server whose certificate does not verify is not kakuin (or --cacert is wrong): retrying cannot help.
        if (isTlsVerificationError(e)) return { unreachable: `TLS: the server's certificate does not verify against --cacert (${(e as Error).message})` };
        if (!(e instanceof TransientError) && !isNetworkError(e)) throw e;
        failures = progressed ? 1 : failures + 1;
        if (failures > retries) return { unreachable: `${(e as Error).message} (gave up after ${retries} retries)` };
        const delayMs = Math.min(base * 2 ** (failures - 1), 30_000);
        this.options.onRetry?.({ attempt: failures, delayMs, reason: (e as Error).message });
        await sleep(delayMs, this.options.signal);
      }
    }
  }

  /** GETs `pathname`; `onHeaders` sees the response headers of a 200. */
  async get(pathname: string, onHeaders?: (headers: import('node:http').IncomingHttpHeaders) => void): Promise<string> {
    const { url, ...o } = this.request('GET', pathname, {});
    return new Promise((resolve, reject) => {
      const req = https.request(url, o, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 200) {
            onHeaders?.(res.headers);
            resolve(text);
          }
          else reject(answerError(res.statusCode ?? 0, text));
        });
        res.on('error', reject);
      });
      req.setTimeout(REQUEST_IDLE_MS, () => req.destroy(new TransientError('the server did not answer in time')));
      req.on('error', reject);
      req.end();
    });
  }

  /** POSTs the lines; `onResult` gets each result line as it arrives. Resolves when the reply ends. */
  postBatch(lines: string[], onResult: (r: BatchResultLine) => void): Promise<void> {
    const body = `${lines.join('\n')}\n`;
    const { url, ...o } = this.request('POST', '/api/v1/enroll/batch', { 'content-type': 'application/x-ndjson', 'content-length': String(Buffer.byteLength(body)) });
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (e?: Error) => {
        if (settled) return;
        settled = true;
        if (e) {
          reject(e);
          req.destroy();
        } else {
          resolve();
        }
      };
      const req = https.request(url, o, (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => settle(answerError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
          res.on('error', (e) => settle(new TransientError(`the reply was cut off: ${e.message}`)));
          return;
        }
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (c: string) => {
          buf += c;
          let nl: number;
          while (!settled && (nl = buf.indexOf('\n')) >= 0) {
            const l = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (l.trim().length === 0) continue;
            let r: BatchResultLine;
            try {
              r = JSON.parse(l) as BatchResultLine;
            } catch {
              settle(new TransientError('the server sent a line that is not JSON'));
              return;
            }
            try {
              onResult(r);
            } catch (e) {
              settle(e as Error); // a local failure (disk full, ...): not worth retrying
              return;
            }
          }
        });
        // The server went away mid-reply: 'error' (aborted), or 'close' before the reply was complete.
        res.on('error', (e) => settle(new TransientError(`the reply was cut off: ${e.message}`)));
        res.on('end', () => settle());
        res.on('close', () => settle(res.complete ? undefined : new TransientError('the reply was cut off')));
      });
      req.setTimeout(REQUEST_IDLE_MS, () => req.destroy(new TransientError('the server did not answer in time')));
      req.on('error', (e) => settle(e));
      req.end(body);
    });
  }
}

function isTlsVerificationError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^(ERR_TLS_CERT_ALTNAME_INVALID|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_[A-Z_]+)$/.test(code);
}

export function isNetworkError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|ECONNABORTED|UND_ERR_SOCKET|ERR_STREAM_PREMATURE_CLOSE)$/.test(code);
}

/** The server's answer to a whole request: 5xx and 429 are worth retrying, the rest is final. */
export function answerError(status: number, text: string): Error {
  let code: string | undefined;
  let message = text.slice(0, 500);
  try {
    const j = JSON.parse(text) as { code?: string; message?: string };
    code = j.code;
    message = j.message ?? message;
  } catch { /* not JSON */ }
  if (status >= 500 || status === 429) return new TransientError(`kakuin answered ${status}${code ? ` ${code}` : ''}: ${message}`);
  const known = code !== undefined && code in ERROR_CATALOGUE ? code as ErrorCode : 'KAKUIN_E_BAD_REQUEST';
  return new KakuinError(known, `kakuin answered ${status}: ${message}`, { status });
}

/** A pause that an abort ends early. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
