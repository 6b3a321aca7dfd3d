/**
 * The plain-HTTP listener (DESIGN.md "Identities, roles and URLs"), on `node:http` (express costs
 * 4–6x on this data plane, DESIGN.md "Hot paths and libraries"):
 *
 *   POST /ocsp, /ocsp/            RFC 6960 Appendix A.1.1: body = DER OCSPRequest
 *   GET|HEAD /ocsp/{request}      RFC 6960 Appendix A.1, RFC 5019 §5 (get-request.ts)
 *   GET|HEAD /crl/{issuer}.crl    latest full CRL, /crl/{issuer}-delta.crl latest delta CRL
 *   GET|HEAD /ca/{issuer}.cer     the issuer's certificate (caIssuers)
 *   GET|HEAD /healthz             JSON: readiness, feed lag, cache size, counters
 *
 * OCSP-level problems are OCSP answers: HTTP 200, `application/ocsp-response`, an error
 * responseStatus (RFC 6960 §2.3). HTTP statuses are kept for what is not an OCSP request at all:
 *   - 415 for a POST whose Content-Type is present and not application/ocsp-request (the client
 *     said it sends something else; its body is not read). A POST without Content-Type is read as
 *     an OCSP request: the DER decoder is the real check.
 *   - 413 for a body over `maxBodyBytes` (announced or counted), 414 for a request target over
 *     `maxPathBytes`; both close the connection without reading further.
 *   - 404 for unknown paths, 405 for other methods.
 *
 * Caching (RFC 5019 §6.2): a GET answer without a nonce carries Last-Modified (thisUpdate),
 * Expires (nextUpdate), ETag, and Cache-Control max-age = the seconds left until nextUpdate
 * (optionally capped); If-None-Match with that ETag gets 304. A nonce answer, an error status and
 * every POST answer carry `Cache-Control: no-store`: a POST answer is never reused by HTTP caches
 * (RFC 9111 §4: only GET answers are keyed by URI), and a nonce answer is for one request only.
 *
 * Nothing is logged per request (see OcspMetrics); nothing a client sends can throw out of a handler.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KakuinError, type ErrorCode } from '../errors/index.js';
import { ERROR_ENTRIES, entryEtag, entryTail, HEADER_LENGTH, KIND_CACHEABLE } from './cached-response.js';
import { decodeGetRequest } from './get-request.js';
import { httpDate, isOcspRequestType, ocspCacheControl } from './http-headers.js';
import { describeError, type Logger } from './logger.js';
import type { OcspMetrics } from './metrics.js';
import type { OcspResponder } from './ocsp-responder.js';
import type { Publication, Publications } from './publications.js';

/** What the listener needs of the responder. */
export type OcspAnswerer = Pick<OcspResponder, 'answer' | 'health' | 'metrics' | 'ready'>;

export interface OcspHttpServerOptions {
  responder: OcspAnswerer;
  publications: Publications;
  logger: Logger;
  /** POST body limit. Default 64 KiB. */
  maxBodyBytes?: number;
  /** Request target limit (the GET form carries the request). Default 4 KiB. */
  maxPathBytes?: number;
  /** Upper bound of max-age on OCSP GET answers (default: none, i.e. until nextUpdate). */
  maxAgeCapSeconds?: number;
  /**
   * How soon after its thisUpdate a newer CRL of each kind can appear (CrlPublisher's schedule,
   * cli/revocation-plane.ts crlReplacement): max-age on a CRL never reaches past that, nor past
   * nextUpdate, so an HTTP cache never serves a CRL that has already been superseded on schedule.
   * Default: full 3600 s, delta 1 s (DEFAULT_CRL_POLICY).
   */
  crlReplacement?: { fullSeconds: number; deltaSeconds: number };
  /** /healthz says 503 when the feed was last read longer ago. Default 30 s. */
  healthMaxFeedAgeMs?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
}

const OCSP_RESPONSE = 'application/ocsp-response';
const EMPTY = Buffer.alloc(0);

interface Refusal {
  status: number;
  body: Buffer;
  close: boolean;
}

function refusal(code: ErrorCode, message: string, status?: number, close = false): Refusal {
  const e = new KakuinError(code, message, status === undefined ? undefined : { status });
  return { status: e.status, body: Buffer.from(JSON.stringify(e.toJSON())), close };
}

const NOT_FOUND = refusal('KAKUIN_E_ROUTE_NOT_FOUND', 'no such resource');
const NO_CRL = refusal('KAKUIN_E_ROUTE_NOT_FOUND', 'no CRL has been published for that issuer');
const NO_ISSUER = refusal('KAKUIN_E_ROUTE_NOT_FOUND', 'no such issuer');
const METHOD_NOT_ALLOWED = refusal('KAKUIN_E_BAD_REQUEST', 'method not allowed', 405);
const UNSUPPORTED_TYPE = refusal('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'POST /ocsp takes Content-Type: application/ocsp-request', undefined, true);
const TOO_LARGE = refusal('KAKUIN_E_BODY_TOO_LARGE', 'the OCSP request body is too large', undefined, true);
const URI_TOO_LONG = refusal('KAKUIN_E_BAD_REQUEST', 'the request target is too long', 414, true);
const UNAVAILABLE = refusal('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the registry cannot be read; retry');
const INTERNAL = refusal('KAKUIN_E_INTERNAL', 'internal error');

export class OcspHttpServer {
  readonly server: http.Server;
  readonly #o: OcspHttpServerOptions;
  readonly #metrics: OcspMetrics;
  readonly #maxBody: number;
  readonly #maxPath: number;
  readonly #maxAgeCap: number;
  readonly #crlReplacement: { fullSeconds: number; deltaSeconds: number };
  readonly #mounted = new Map<string, http.RequestListener>();

  constructor(options: OcspHttpServerOptions) {
    this.#o = options;
    this.#metrics = options.responder.metrics;
    this.#maxBody = options.maxBodyBytes ?? 64 * 1024;
    this.#maxPath = options.maxPathBytes ?? 4096;
    this.#maxAgeCap = options.maxAgeCapSeconds ?? Number.MAX_SAFE_INTEGER;
    this.#crlReplacement = options.crlReplacement ?? { fullSeconds: 3600, deltaSeconds: 1 };
    this.server = http.createServer({
      keepAlive: true,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5000,
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      noDelay: true,
    }, (req, res) => this.#onRequest(req, res));
    this.server.maxRequestsPerSocket = 0; // unlimited: keep-alive clients stay on their connection
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      this.#metrics.clientErrors++;
      if (!socket.writable || socket.destroyed) {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
  }

  /**
   * Serves `path` (its query string aside) with `handler`: another protocol the composition root
   * puts on this plain-HTTP port (SCEP with `scep.plainHttp`). This listener knows nothing of it.
   */
  mount(path: string, handler: http.RequestListener): void {
    this.#mounted.set(path, handler);
  }

  /** Listens; resolves with the bound address (port 0 picks a free port). */
  listen(port: number, host = '0.0.0.0'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening and closes every connection, idle or not. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    try {
      this.#route(req, res);
    } catch (e) {
      this.#fail(res, e);
    }
  }

  #route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '';
    const method = req.method;
    // A mounted protocol reads its own request targets (a SCEP GET carries a whole base64 message,
    // RFC 8894 §4.1; node:http's header limit still bounds it).
    const mounted = this.#mounted.size > 0 ? this.#mounted.get(pathOf(url)) : undefined;
    if (mounted) {
      mounted(req, res);
      return;
    }
    if (url.length > this.#maxPath) {
      this.#metrics.uriTooLong++;
      this.#refuse(req, res, URI_TOO_LONG);
      return;
    }
    if (url.startsWith('/ocsp')) {
      const c = url.charCodeAt(5);
      const bare = url.length === 5 || c === 63 /* ? */ || (c === 47 /* / */ && (url.length === 6 || url.charCodeAt(6) === 63));
      if (bare) {
        if (method === 'POST') this.#post(req, res);
        else if (method === 'GET' || method === 'HEAD') this.#sendOcsp(req, res, ERROR_ENTRIES.malformedRequest, false);
        else this.#refuse(req, res, METHOD_NOT_ALLOWED, 'GET, HEAD, POST');
        return;
      }
      if (c === 47) {
        if (method === 'GET' || method === 'HEAD') this.#get(req, res, url);
        else this.#refuse(req, res, METHOD_NOT_ALLOWED, 'GET, HEAD');
        return;
      }
    } else if (url.startsWith('/crl/') || url.startsWith('/ca/') || url === '/healthz' || url.startsWith('/healthz?')) {
      if (method !== 'GET' && method !== 'HEAD') {
        this.#refuse(req, res, METHOD_NOT_ALLOWED, 'GET, HEAD');
        return;
      }
      const path = pathOf(url);
      if (path === '/healthz') this.#health(res);
      else if (path.startsWith('/crl/')) this.#crl(req, res, path.slice(5));
      else this.#caCertificate(req, res, path.slice(4));
      return;
    }
    this.#metrics.notFound++;
    this.#refuse(req, res, NOT_FOUND);
  }

  // ---- OCSP ------------------------------------------------------------------------------------

  #get(req: http.IncomingMessage, res: http.ServerResponse, url: string): void {
    this.#metrics.ocspGet++;
    const der = decodeGetRequest(url, 6);
    if (der === undefined) {
      this.#metrics.malformedRequest++;
      this.#sendOcsp(req, res, ERROR_ENTRIES.malformedRequest, true);
      return;
    }
    this.#answer(req, res, der, true);
  }

  #post(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.#metrics.ocspPost++;
    const headers = req.headers;
    const type = headers['content-type'];
    if (type !== undefined && !isOcspRequestType(type)) {
      this.#metrics.unsupportedMediaType++;
      this.#refuse(req, res, UNSUPPORTED_TYPE);
      return;
    }
    const announced = headers['content-length'];
    if (announced !== undefined && !(Number(announced) <= this.#maxBody)) {
      this.#metrics.bodyTooLarge++;
      this.#refuse(req, res, TOO_LARGE);
      return;
    }
    const max = this.#maxBody;
    let first: Buffer | undefined;
    let parts: Buffer[] | undefined;
    let total = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      total += chunk.length;
      if (total > max) {
        over = true;
        this.#metrics.bodyTooLarge++;
        this.#refuse(req, res, TOO_LARGE);
        return;
      }
      if (first === undefined) first = chunk;
      else (parts ??= [first]).push(chunk);
    });
    req.on('end', () => {
      if (over) return;
      const body = parts !== undefined ? Buffer.concat(parts, total) : first ?? EMPTY;
      this.#answer(req, res, body, false);
    });
    req.on('error', () => undefined); // the client went away; nothing to answer
  }

  #answer(req: http.IncomingMessage, res: http.ServerResponse, der: Buffer, isGet: boolean): void {
    const answer = this.#o.responder.answer(der);
    if (Buffer.isBuffer(answer)) {
      this.#sendOcsp(req, res, answer, isGet);
    } else {
      answer.then((entry) => this.#sendOcsp(req, res, entry, isGet), (e: unknown) => this.#fail(res, e));
    }
  }

  #sendOcsp(req: http.IncomingMessage, res: http.ServerResponse, entry: Buffer, isGet: boolean): void {
    if (res.writableEnded || res.destroyed) return;
    const der = entry.subarray(HEADER_LENGTH);
    const tail = entryTail(entry);
    const length = String(tail === undefined ? der.length : der.length + tail.length);
    if (isGet && entry[0] === KIND_CACHEABLE) {
      const thisUpdate = entry.readUInt32BE(8);
      const nextUpdate = entry.readUInt32BE(12);
      const maxAge = Math.max(0, Math.min(nextUpdate - Math.ceil(Date.now() / 1000), this.#maxAgeCap));
      const etag = entryEtag(entry);
      const headers = [
        'Content-Type', OCSP_RESPONSE, 'Cache-Control', ocspCacheControl(maxAge), 'Last-Modified', httpDate(thisUpdate),
        'Expires', httpDate(nextUpdate), 'ETag', etag,
      ];
      if (req.headers['if-none-match'] === etag) {
        this.#metrics.notModified++;
        res.writeHead(304, headers);
        res.end();
        return;
      }
      headers.push('Content-Length', length);
      res.writeHead(200, headers);
      endWith(res, der, tail);
      return;
    }
    res.writeHead(200, ['Content-Type', OCSP_RESPONSE, 'Content-Length', length, 'Cache-Control', 'no-store']);
    endWith(res, der, tail);
  }

  // ---- CRLs, issuer certificates, health ---------------------------------------------------------

  #crl(req: http.IncomingMessage, res: http.ServerResponse, name: string): void {
    let kind: 'full' | 'delta';
    let issuerId: string;
    if (name.endsWith('-delta.crl')) {
      kind = 'delta';
      issuerId = name.slice(0, -'-delta.crl'.length);
    } else if (name.endsWith('.crl')) {
      kind = 'full';
      issuerId = name.slice(0, -'.crl'.length);
    } else {
      this.#metrics.notFound++;
      this.#send(res, NOT_FOUND);
      return;
    }
    this.#publication(req, res, this.#o.publications.crl(issuerId, kind), 'application/pkix-crl', NO_CRL);
  }

  #caCertificate(req: http.IncomingMessage, res: http.ServerResponse, name: string): void {
    if (!name.endsWith('.cer')) {
      this.#metrics.notFound++;
      this.#send(res, NOT_FOUND);
      return;
    }
    this.#publication(req, res, this.#o.publications.issuerCertificate(name.slice(0, -'.cer'.length)), 'application/pkix-cert', NO_ISSUER);
  }

  #publication(req: http.IncomingMessage, res: http.ServerResponse, p: Publication | undefined | Promise<Publication | undefined>, type: string, missing: Refusal): void {
    const send = (value: Publication | undefined): void => {
      if (res.writableEnded || res.destroyed) return;
      if (value === undefined) {
        this.#metrics.notFound++;
        this.#send(res, missing);
        return;
      }
      if (type === 'application/pkix-crl') this.#metrics.crl++;
      else this.#metrics.caCertificate++;
      const headers = ['Content-Type', type, 'ETag', value.etag, 'Last-Modified', value.lastModified];
      if (value.nextUpdateSeconds !== undefined) {
        const replacedAt = value.lastModifiedSeconds + (value.kind === 'delta' ? this.#crlReplacement.deltaSeconds : this.#crlReplacement.fullSeconds);
        const maxAge = Math.max(0, Math.min(value.nextUpdateSeconds, replacedAt) - Math.ceil(Date.now() / 1000));
        headers.push('Cache-Control', `max-age=${maxAge}, public, no-transform, must-revalidate`, 'Expires', value.expires!);
      } else {
        headers.push('Cache-Control', 'max-age=3600, public');
      }
      if (notModified(req, value)) {
        this.#metrics.notModified++;
        res.writeHead(304, headers);
        res.end();
        return;
      }
      headers.push('Content-Length', String(value.der.length));
      res.writeHead(200, headers);
      res.end(value.der);
    };
    if (p === undefined || !(p instanceof Promise)) {
      send(p);
      return;
    }
    p.then(send, (e: unknown) => {
      this.#o.logger.warn('a publication could not be read', { cause: describeError(e) });
      if (!res.writableEnded && !res.destroyed) this.#send(res, UNAVAILABLE);
    });
  }

  #health(res: http.ServerResponse): void {
    this.#metrics.health++;
    this.#o.responder.health().then((h) => {
      if (res.writableEnded || res.destroyed) return;
      const feed = h.feed as { lastReadAgeMs: number | null };
      const healthy = h.ready === true && feed.lastReadAgeMs !== null && feed.lastReadAgeMs <= (this.#o.healthMaxFeedAgeMs ?? 30_000);
      const body = Buffer.from(JSON.stringify({ status: healthy ? 'ok' : 'degraded', ...h }));
      res.writeHead(healthy ? 200 : 503, ['Content-Type', 'application/json', 'Content-Length', String(body.length), 'Cache-Control', 'no-store']);
      res.end(body);
    }, (e: unknown) => this.#fail(res, e));
  }

  // ---- refusals ------------------------------------------------------------------------------------

  #refuse(req: http.IncomingMessage, res: http.ServerResponse, r: Refusal, allow?: string): void {
    if (r.close) {
      // Do not read what is left of the body: the connection ends with this answer.
      req.pause();
    }
    this.#send(res, r, allow);
  }

  #send(res: http.ServerResponse, r: Refusal, allow?: string): void {
    if (res.writableEnded || res.destroyed) return;
    const headers = ['Content-Type', 'application/json', 'Content-Length', String(r.body.length), 'Cache-Control', 'no-store'];
    if (allow !== undefined) headers.push('Allow', allow);
    if (r.close) headers.push('Connection', 'close');
    res.writeHead(r.status, headers);
    res.end(r.body);
  }

  #fail(res: http.ServerResponse, e: unknown): void {
    this.#o.logger.error('OCSP listener request failed', { cause: describeError(e), stack: e instanceof Error ? e.stack : undefined });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.#send(res, INTERNAL);
  }
}

/**
 * Sends the stored DER and, when it was left out of the entry, the responder's certs tail: corked,
 * so both go out in one writev with the headers (end() uncorks fully), the bytes exactly as signed.
 */
function endWith(res: http.ServerResponse, body: Buffer, tail: Buffer | undefined): void {
  if (tail === undefined) {
    res.end(body);
    return;
  }
  res.cork();
  res.write(body);
  res.end(tail);
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** The listener for `responder` and `publications` (not yet listening: call listen()). */
export function createOcspHttpServer(options: OcspHttpServerOptions): OcspHttpServer {
  return new OcspHttpServer(options);
}

/**
 * RFC 9110 §13.1.2/§13.1.3/§13.2.2: If-None-Match (weak comparison, a list, or `*`) decides when
 * present; else If-Modified-Since, not modified when the publication is no newer than the date.
 */
function notModified(req: http.IncomingMessage, value: Publication): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    if (inm.trim() === '*') return true;
    const want = value.etag.replace(/^W\//, '');
    return inm.split(',').some((tag) => tag.trim().replace(/^W\//, '') === want);
  }
  const ims = req.headers['if-modified-since'];
  if (ims === undefined) return false;
  const since = Date.parse(ims);
  return Number.isFinite(since) && value.lastModifiedSeconds * 1000 <= since;
}
