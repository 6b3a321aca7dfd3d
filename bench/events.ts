/**
 * Events out (issue 19): webhook events/s sustained from a backlog of audit events in a real SQLite
 * registry to a receiver in a child process on 127.0.0.1 that checks every signature, over HTTPS
 * (keep-alive) and over plain http to loopback. One delivery in flight per destination (order is
 * kept), the cursor saved once a second. Also RFC 5424 messages/s over TLS to a collector.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventDispatcher, eventFilter, SyslogDestination, WebhookDestination, type EventDestination } from '../operations/events/index.js';
import { openSqliteRegistry, type SqliteRegistry } from '../registry/sqlite/index.js';

const SECRET = 'bench-webhook-secret-0123456789';

/** A receiver process: https (or http) webhooks checked with HMAC, or a TLS syslog collector; prints its port, then counts. */
const RECEIVER = String.raw`
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
// node -e: process.argv is [node, ...arguments]
const [kind, cert, key, secret] = process.argv.slice(1);
let count = 0, bad = 0, conns = 0;
const report = () => process.stdout.write('count ' + count + ' ' + bad + ' ' + conns + '\n');
setInterval(report, 50);
if (kind === 'syslog') {
  const server = tls.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const sp = buf.indexOf(32);
        if (sp < 0) break;
        const n = Number(buf.subarray(0, sp).toString());
        if (buf.length < sp + 1 + n) break;
        if (!/^<\d{1,3}>1 /.test(buf.subarray(sp + 1, sp + 10).toString())) bad++; else count++;
        buf = buf.subarray(sp + 1 + n);
      }
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write('port ' + server.address().port + '\n'));
} else {
  const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const h = String(req.headers['x-kakuin-signature'] ?? '');
      const t = /t=(\d+)/.exec(h)?.[1];
      const v = /v1=([0-9a-f]{64})/.exec(h)?.[1];
      const mac = createHmac('sha256', secret).update(t + '.').update(body).digest();
      if (v && timingSafeEqual(Buffer.from(v, 'hex'), mac)) { count++; res.writeHead(204).end(); } else { bad++; res.writeHead(401).end(); }
    });
  };
  const server = kind === 'https' ? https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 60_000;
  server.on('connection', () => { conns++; });
  server.listen(0, '127.0.0.1', () => process.stdout.write('port ' + server.address().port + '\n'));
}
`;

async function startReceiver(kind: 'https' | 'http' | 'syslog', certFile: string, keyFile: string) {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', RECEIVER, kind, certFile, keyFile, SECRET], { stdio: ['ignore', 'pipe', 'inherit'] });
  let count = 0;
  let bad = 0;
  let connections = 0;
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const l of lines) {
        const p = /^port (\d+)$/.exec(l);
        if (p) resolve(Number(p[1]));
        const m = /^count (\d+) (\d+) (\d+)$/.exec(l);
        if (m) { count = Number(m[1]); bad = Number(m[2]); connections = Number(m[3]); }
      }
    });
    proc.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
  });
  return { port, count: () => count, bad: () => bad, connections: () => connections, stop: () => { proc.kill(); } };
}

async function drain(registry: SqliteRegistry, destination: EventDestination, receiver: { count(): number; bad(): number }, n: number): Promise<number> {
  // The destination starts before the backlog: every one of the n events is sent.
  await registry.eventCursors.saveEventCursor(destination.name, 0);
  let failure: unknown;
  const d = new EventDispatcher({
    audit: registry, cursors: registry.eventCursors, destination, filter: eventFilter(['*']), pollMs: 10,
    onDeliveryError: (e) => { failure ??= e; },
  });
  const t0 = process.hrtime.bigint();
  d.start();
  const until = Date.now() + 120_000;
  while (d.delivered < n && failure === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await d.stop();
  const wait = Date.now() + 2000;
  while (receiver.count() < n && Date.now() < wait) await new Promise((r) => setTimeout(r, 20));
  if (d.delivered < n || receiver.bad() > 0) throw new Error(`events bench: ${d.delivered}/${n} delivered, ${receiver.bad()} bad signatures`, { cause: failure });
  return Math.round(n / s);
}

export async function benchEvents(scale: number, log: (line: string) => void): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-events-'));
  const n = Math.max(500, Math.round(10_000 * scale));
  try {
    const keyFile = path.join(dir, 'r.key');
    const certFile = path.join(dir, 'r.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile,
      '-days', '1', '-subj', '/CN=bench receiver', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const ca = [readFileSync(certFile, 'utf8')];
    const registry = await openSqliteRegistry({ path: path.join(dir, 'registry.db') });
    try {
      for (let i = 0; i < n; i++) {
        await registry.appendAuditEvent({ type: i % 2 ? 'device.revoked' : 'device.refused', actor: 'system', deviceId: `bench-device-${i}`, details: { reason: 'certificate revoked', address: '198.51.100.7', frontEnd: 'mqtt' } });
      }
      const figures: Record<string, number> = {};
      for (const kind of ['https', 'http'] as const) {
        const r = await startReceiver(kind, certFile, keyFile);
        try {
          const url = `${kind}://127.0.0.1:${r.port}/hook`;
          figures[`events_webhook_${kind}_per_s`] = await drain(registry, new WebhookDestination({ url, secret: Buffer.from(SECRET), ca }), r, n);
          figures[`events_webhook_${kind}_connections`] = r.connections();
        } finally {
          r.stop();
        }
        log(`  webhook over ${kind === 'https' ? 'HTTPS (keep-alive)' : 'plain http to 127.0.0.1'}  ${figures[`events_webhook_${kind}_per_s`].toLocaleString('en')} events/s  (${n} events over ${figures[`events_webhook_${kind}_connections`]} connection(s), 1 in flight, receiver checks each signature)`);
      }
      const s = await startReceiver('syslog', certFile, keyFile);
      try {
        figures.events_syslog_tls_per_s = await drain(registry, new SyslogDestination({ url: `tls://127.0.0.1:${s.port}`, ca }), s, n);
      } finally {
        s.stop();
      }
      log(`  syslog RFC 5424 over TLS (octet counting)  ${figures.events_syslog_tls_per_s.toLocaleString('en')} messages/s  (${n} events)`);
      return figures;
    } finally {
      await registry.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
