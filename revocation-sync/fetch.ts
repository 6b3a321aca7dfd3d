/**
 * Conditional GETs against kakuin's plain-HTTP listener (the only thing this host talks to: no
 * registry, no admin credentials). When the server gave an ETag or Last-Modified, the next request
 * sends If-None-Match / If-Modified-Since (RFC 9110 §13.1) and a 304 costs a few bytes; without them
 * the body is fetched and compared by CRL number.
 */
import http from 'node:http';
import { KakuinError } from '../errors/index.js';

export interface Validators {
  etag?: string;
  lastModified?: string;
}

export type FetchResult = { status: 'unchanged' } | { status: 'body'; body: Buffer; validators: Validators };

/** 256 MiB: a CRL of several million entries, far beyond what any relying party here parses. */
const MAX_BODY_BYTES = 256 * 1024 * 1024;

export function conditionalGet(url: string, validators: Validators, timeoutMs = 10_000): Promise<FetchResult> {
  return new Promise((resolve, reject) => {
    const fail = (message: string, cause?: unknown) => reject(new KakuinError('KAKUIN_E_SYNC_UPSTREAM', `${url}: ${message}`, cause === undefined ? undefined : { cause }));
    const headers: Record<string, string> = {};
    // Only with an ETag: Last-Modified has one-second granularity and two CRLs can be made within
    // one second, so If-Modified-Since alone could hide the newer one. With both, the server
    // evaluates If-None-Match and ignores If-Modified-Since (RFC 9110 §13.1.3).
    if (validators.etag) {
      headers['if-none-match'] = validators.etag;
      if (validators.lastModified) headers['if-modified-since'] = validators.lastModified;
    }
    const req = http.get(url, { headers, timeout: timeoutMs }, (res) => {
      if (res.statusCode === 304) {
        res.resume();
        resolve({ status: 'unchanged' });
        return;
      }
      if (res.statusCode !== 200) {
        res.resume();
        fail(`HTTP ${res.statusCode}`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy();
          fail(`answer larger than ${MAX_BODY_BYTES} bytes`);
        } else chunks.push(c);
      });
      res.on('end', () => {
        if (!res.complete) return fail('answer cut short');
        const etag = res.headers.etag;
        const lastModified = res.headers['last-modified'];
        resolve({ status: 'body', body: Buffer.concat(chunks), validators: { ...(etag && { etag }), ...(lastModified && { lastModified }) } });
      });
      res.on('error', (e) => fail('answer failed', e));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => fail(e.message, e));
  });
}
