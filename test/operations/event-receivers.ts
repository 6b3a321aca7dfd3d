/**
 * Real receivers for events out, on 127.0.0.1: an HTTPS webhook receiver that checks every
 * signature (operations/events verifySignature) and drops duplicates by X-Kakuin-Event-Id, and a
 * TLS syslog collector that splits octet-counted frames (RFC 6587 §3.4.1) and parses each message
 * with a strict regular expression of the RFC 5424 §6 ABNF. Their TLS certificate is made by the
 * openssl command.
 */
import https from 'node:https';
import tls from 'node:tls';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../../operations/events/index.js';
import { opensslOk } from '../support/index.js';

export interface TlsFiles { certFile: string; keyFile: string; cert: string; key: string }

/** A self-signed P-256 certificate for 127.0.0.1 and localhost (it is its own CA for the sender). */
export function receiverTls(dir: string): TlsFiles {
  const keyFile = path.join(dir, 'receiver.key');
  const certFile = path.join(dir, 'receiver.pem');
  opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '2', '-subj', '/CN=events receiver', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

export interface WebhookReceiver {
  url: string;
  /** Each event once, in the order first received (deduplicated by event id). */
  events: any[];
  /** Every request that carried a valid signature, duplicates included. */
  deliveries: number;
  duplicates: number;
  /** Requests refused because the signature did not verify, or the id header disagreed with the body. */
  badSignatures: number;
  /** Answer 503 to the next `n` requests (a receiver that is down). */
  failNext(n: number): void;
  /** Wait this long before answering each request. */
  delayMs: number;
  /** Requests wait for this before they are looked at (deliveries held back). */
  gate?: Promise<void>;
  /** Called with each new event before it is answered; a promise returned delays the answer. */
  onEvent?: (event: any) => Promise<void> | undefined;
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(secret: string, files: TlsFiles): Promise<WebhookReceiver> {
  const seen = new Set<string>();
  let fail = 0;
  const r: WebhookReceiver = {
    url: '', events: [], deliveries: 0, duplicates: 0, badSignatures: 0, delayMs: 0,
    failNext: (n) => { fail = n; },
    waitFor: async (predicate, timeoutMs = 20_000) => {
      const until = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > until) throw new Error(`timed out: ${r.events.length} events, ${r.deliveries} deliveries, ${r.badSignatures} bad signatures`);
        await new Promise((res) => setTimeout(res, 20));
      }
    },
    close: () => new Promise((res) => { server.closeAllConnections(); server.close(() => res()); }),
  };
  const server = https.createServer({ cert: files.cert, key: files.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      await r.gate;
      const body = Buffer.concat(chunks);
      const answer = (status: number) => setTimeout(() => res.writeHead(status).end(), r.delayMs);
      if (fail > 0) {
        fail--;
        answer(503);
        return;
      }
      const header = req.headers['x-kakuin-signature'];
      const event = JSON.parse(body.toString('utf8'));
      if (!verifySignature(secret, body, typeof header === 'string' ? header : undefined) || event.id !== req.headers['x-kakuin-event-id']) {
        r.badSignatures++;
        answer(401);
        return;
      }
      r.deliveries++;
      if (seen.has(event.id)) r.duplicates++;
      else {
        seen.add(event.id);
        r.events.push(event);
        const wait = r.onEvent?.(event);
        if (wait !== undefined) {
          await wait;
          if (res.destroyed) return;
        }
      }
      answer(204);
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  r.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/kakuin-events`;
  return r;
}

/**
 * RFC 5424 §6: SYSLOG-MSG = HEADER SP STRUCTURED-DATA [SP MSG], HEADER = PRI VERSION SP TIMESTAMP SP
 * HOSTNAME SP APP-NAME SP PROCID SP MSGID; PRINTUSASCII = %d33-126; SD-NAME excludes `=`, SP, `]`, `"`;
 * a PARAM-VALUE escapes `"`, `\` and `]`; TIMESTAMP is RFC 3339 with at most 6 fractional digits.
 */
const SD_NAME = '[\\x21\\x23-\\x3c\\x3e-\\x5c\\x5e-\\x7e]{1,32}';
const SD_ELEMENT = `\\[${SD_NAME}(?: ${SD_NAME}="(?:[^"\\\\\\]]|\\\\["\\\\\\]])*")*\\]`;
const RFC5424 = new RegExp(
  '^<(?<pri>[0-9]{1,3})>(?<version>[1-9][0-9]{0,2}) '
  + '(?<timestamp>-|[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])) '
  + '(?<hostname>-|[\\x21-\\x7e]{1,255}) (?<appName>-|[\\x21-\\x7e]{1,48}) (?<procId>-|[\\x21-\\x7e]{1,128}) (?<msgId>-|[\\x21-\\x7e]{1,32}) '
  + `(?<sd>-|(?:${SD_ELEMENT})+)(?: (?<msg>[\\s\\S]*))?$`,
);

export interface ParsedSyslog {
  pri: number; version: number; timestamp: string; hostname: string; appName: string; procId: string; msgId: string;
  sd: Record<string, Record<string, string>>;
  msg?: string;
}

/** Null unless `line` is a valid RFC 5424 message. */
export function parseRfc5424(line: string): ParsedSyslog | null {
  const m = RFC5424.exec(line);
  if (!m?.groups) return null;
  const g = m.groups;
  const pri = Number(g.pri);
  if (pri > 191) return null; // PRIVAL = 1*3DIGIT, range 0 .. 191
  const sd: ParsedSyslog['sd'] = {};
  if (g.sd !== '-') {
    for (const el of g.sd.matchAll(new RegExp(`\\[(${SD_NAME})((?: ${SD_NAME}="(?:[^"\\\\\\]]|\\\\["\\\\\\]])*")*)\\]`, 'g'))) {
      const params: Record<string, string> = {};
      for (const p of el[2].matchAll(new RegExp(` (${SD_NAME})="((?:[^"\\\\\\]]|\\\\["\\\\\\]])*)"`, 'g'))) params[p[1]] = p[2].replace(/\\(["\\\]])/g, '$1');
      sd[el[1]] = params;
    }
  }
  return {
    pri, version: Number(g.version), timestamp: g.timestamp, hostname: g.hostname, appName: g.appName, procId: g.procId, msgId: g.msgId, sd,
    ...(g.msg !== undefined && { msg: g.msg }),
  };
}

export interface SyslogCollector {
  url: string;
  messages: ParsedSyslog[];
  /** Frames whose message did not parse as RFC 5424, or whose framing was wrong. */
  malformed: string[];
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A TLS collector (RFC 5425) reading octet-counted frames: `MSG-LEN SP SYSLOG-MSG`. */
export async function startSyslogCollector(files: TlsFiles, port = 0): Promise<SyslogCollector> {
  const c: SyslogCollector = {
    url: '', messages: [], malformed: [],
    waitFor: async (predicate, timeoutMs = 20_000) => {
      const until = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > until) throw new Error(`timed out: ${c.messages.length} messages, ${c.malformed.length} malformed`);
        await new Promise((res) => setTimeout(res, 20));
      }
    },
    close: () => new Promise((res) => { for (const s of sockets) s.destroy(); server.close(() => res()); }),
  };
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: files.cert, key: files.key }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp === -1) break;
        const len = buf.subarray(0, sp).toString('ascii');
        // RFC 6587: MSG-LEN = NONZERO-DIGIT *DIGIT
        if (!/^[1-9][0-9]{0,8}$/.test(len)) {
          c.malformed.push(`bad MSG-LEN ${JSON.stringify(len)}`);
          socket.destroy();
          return;
        }
        const n = Number(len);
        if (buf.length < sp + 1 + n) break;
        const text = buf.subarray(sp + 1, sp + 1 + n).toString('utf8');
        buf = buf.subarray(sp + 1 + n);
        const parsed = parseRfc5424(text);
        if (parsed === null) c.malformed.push(text);
        else c.messages.push(parsed);
      }
    });
  });
  await new Promise<void>((res) => server.listen(port, '127.0.0.1', () => res()));
  c.url = `tls://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return c;
}
