/**
 * One webhook destination: each event is one HTTPS POST of its JSON, signed (signature.ts). Only a
 * 2xx answer counts as delivered; anything else is KAKUIN_E_EVENT_DELIVERY and the dispatcher
 * retries. Plain http is refused except to the loopback host (a receiver on the same machine), so a
 * signed-but-readable event never crosses a network in clear.
 */
import http from 'node:http';
import https from 'node:https';
import { KakuinError } from '../../errors/index.js';
import type { KakuinEvent } from './event.js';
import { signatureHeader } from './signature.js';

export interface WebhookOptions {
  url: string;
  secret: Buffer;
  /** PEM CA certificates the receiver's certificate must chain to (default: Node's public roots). */
  ca?: string[];
  timeoutMs?: number;
  now?: () => number;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** KAKUIN_E_CONFIG unless the URL is https, or http to the loopback host. */
export function checkWebhookUrl(url: string, what = 'a webhook URL'): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new KakuinError('KAKUIN_E_CONFIG', `${what} must be an absolute URL`);
  }
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && LOOPBACK.has(u.hostname)) return u;
  throw new KakuinError('KAKUIN_E_CONFIG', `${what} must be https:// (plain http:// only to 127.0.0.1 or localhost)`);
}

export class WebhookDestination {
  readonly name: string;
  private readonly url: URL;
  private readonly agent: http.Agent;

  constructor(private readonly o: WebhookOptions) {
    this.url = checkWebhookUrl(o.url);
    this.name = `webhook:${this.url.href}`;
    this.agent = this.url.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, maxSockets: 1, ...(o.ca !== undefined && { ca: o.ca }) })
      : new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  deliver(event: KakuinEvent): Promise<void> {
    const body = JSON.stringify(event);
    const t = Math.floor((this.o.now ?? Date.now)() / 1000);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'user-agent': 'kakuin-events',
      'x-kakuin-event-id': event.id,
      'x-kakuin-event-type': event.type,
      'x-kakuin-signature': signatureHeader(this.o.secret, body, t),
    };
    const send = this.url.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = send(this.url, { method: 'POST', headers, agent: this.agent, timeout: this.o.timeoutMs ?? 10_000 }, (res) => {
        res.resume(); // the answer's body means nothing to us; drain it so the socket is reused
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new KakuinError('KAKUIN_E_EVENT_DELIVERY', `${this.url.origin} answered ${status} to event ${event.id}`));
        });
        res.on('error', (e) => reject(new KakuinError('KAKUIN_E_EVENT_DELIVERY', `${this.url.origin}: ${e.message}`)));
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e) => reject(new KakuinError('KAKUIN_E_EVENT_DELIVERY', `${this.url.origin}: ${e.message}`)));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
