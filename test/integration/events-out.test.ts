/**
 * Events out from the real `kakuin serve` process, killed with SIGKILL in the middle of a delivery
 * and started again on the same data directory: a webhook receiver that checks every signature sees
 * each event (deduplicated by event id) exactly once in the end, in audit order; a TLS syslog
 * collector parses every message as RFC 5424; and the README's SIM kill-switch receiver, run as
 * written in the README, suspends each revoked device's SIM at a stub carrier exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, makeTempDir, repoPath } from '../support/index.js';
import { request, spawnService, type ChildService } from '../support/service.js';
import { makeP256Csrs } from '../../bench/fixtures.js';
import { isEventType } from '../../operations/events/index.js';
import { toPem } from '../../pkix/index.js';
import { receiverTls, startSyslogCollector, startWebhookReceiver, type SyslogCollector, type WebhookReceiver } from '../operations/event-receivers.js';

/** The README's receiver example: the first ```js block of the "## Events" section, as written. */
export function readmeSimReceiver(): string {
  const readme = readFileSync(repoPath('README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Events\n'));
  const m = /\n```js\n([\s\S]*?)\n```\n/.exec(section.slice(0, section.indexOf('\n## ', 5)));
  if (!m) throw new Error('README "## Events" has no ```js block');
  return m[1];
}

interface Carrier { url: string; token: string; suspended: string[]; close(): Promise<void> }

/** A stub carrier SIM API: POST /v1/sims/{iccid}/suspend with its bearer token. */
async function startCarrier(): Promise<Carrier> {
  const c: Carrier = { url: '', token: randomBytes(16).toString('hex'), suspended: [], close: () => new Promise((r) => server.close(() => r())) };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      const m = /^\/v1\/sims\/(\d{19,20})\/suspend$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !m) return void res.writeHead(404).end();
      if (req.headers.authorization !== `Bearer ${c.token}`) return void res.writeHead(401).end();
      if (!/device revoked/.test(JSON.parse(body).reason)) return void res.writeHead(400).end();
      c.suspended.push(m[1]);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"suspended"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  c.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return c;
}

describe('events out from kakuin serve across kill -9 (webhooks, syslog over TLS, the README SIM receiver)', function () {
  this.timeout(180_000);
  let tmp: ReturnType<typeof makeTempDir>;
  let child: ChildService | undefined;
  let simReceiver: ChildProcess | undefined;
  let receiver: WebhookReceiver | undefined;
  let collector: SyslogCollector | undefined;
  let carrier: Carrier | undefined;

  before(() => { tmp = makeTempDir('kakuin-events-out-'); });
  after(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    simReceiver?.kill('SIGKILL');
    await receiver?.close();
    await collector?.close();
    await carrier?.close();
    tmp.cleanup();
  });

  it('each event reaches the webhook once (deduplicated), syslog parses as RFC 5424, and each revoked SIM is suspended once', async function () {
    const files = receiverTls(tmp.dir);
    const secret = randomBytes(24).toString('hex');
    const simSecret = randomBytes(24).toString('hex');
    writeFileSync(path.join(tmp.dir, 'soc-secret'), `${secret}\n`);
    writeFileSync(path.join(tmp.dir, 'sim-secret'), `${simSecret}\n`);
    receiver = await startWebhookReceiver(secret, files);
    collector = await startSyslogCollector(files);
    carrier = await startCarrier();

    // The README's receiver, as written there, in its own process.
    const simPort = await freePort();
    const simsFile = path.join(tmp.dir, 'sims.json');
    writeFileSync(path.join(tmp.dir, 'sim-kill-switch.mjs'), readmeSimReceiver());

    const dataDir = path.join(tmp.dir, 'data');
    mkdirSync(dataDir);
    const configFile = path.join(tmp.dir, 'kakuin.json');
    writeFileSync(configFile, JSON.stringify({
      events: {
        webhooks: [
          { url: receiver.url, secretFile: path.join(tmp.dir, 'soc-secret'), caFile: files.certFile },
          { url: `http://127.0.0.1:${simPort}/`, secretFile: path.join(tmp.dir, 'sim-secret'), events: ['device.revoked'] },
        ],
        syslog: { url: collector.url, caFile: files.certFile, hostname: 'kakuin-under-test', events: ['device.*'] },
      },
    }));
    const env = {
      KAKUIN_DATA_DIR: dataDir, KAKUIN_CONFIG: configFile,
      KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0',
      KAKUIN_GATEWAY_WORKERS: '1', KAKUIN_KEY_PASSPHRASE: 'events-test-passphrase', KAKUIN_LOG_LEVEL: 'error', KAKUIN_ADMIN_TOKEN: `kktest_${randomBytes(24).toString('base64url')}`,
    };

    // Deliveries wait until every device is revoked, so the kill lands in the middle of them.
    let open!: () => void;
    receiver.gate = new Promise<void>((r) => { open = r; });
    child = await spawnService(env);
    const root = readFileSync(path.join(dataDir, 'ca', 'root.pem'), 'utf8');
    const api = (url: string, method: string, p: string, body?: object) => request(url, root, method, p, { token: env.KAKUIN_ADMIN_TOKEN, body });
    const m = await api(child.url, 'POST', '/api/v1/manufacturers', { name: 'Events Works' });
    // A station enrolling a serial nobody registered: station.created, then enrollment.refused.
    const station = await api(child.url, 'POST', `/api/v1/manufacturers/${m.json.id}/stations`, { name: 'line-1' });
    const refused = await request(child.url, root, 'POST', '/api/v1/enroll', {
      token: station.json.apiKey, body: { serialNumber: 'EV-NOBODY', csr: toPem('CERTIFICATE REQUEST', makeP256Csrs(['EV-NOBODY'])[0]) },
    });
    expect(refused.status, refused.text).to.be.within(400, 499);
    const n = 24;
    const devices: string[] = [];
    for (let i = 0; i < n; i++) {
      const d = await api(child.url, 'POST', '/api/v1/devices', { manufacturerId: m.json.id, serialNumber: `EV-${i}` });
      expect(d.status, d.text).to.equal(201);
      devices.push(d.json.id);
    }
    const sims = Object.fromEntries(devices.map((id, i) => [id, `894400000000000${String(1000 + i)}`]));
    writeFileSync(simsFile, JSON.stringify(sims));
    simReceiver = spawn(process.execPath, [path.join(tmp.dir, 'sim-kill-switch.mjs')], {
      env: { PATH: process.env.PATH ?? '', WEBHOOK_SECRET_FILE: path.join(tmp.dir, 'sim-secret'), SIMS_FILE: simsFile, CARRIER_URL: carrier.url, CARRIER_TOKEN: carrier.token, PORT: String(simPort) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    // The first two devices are suspended first: two events of another type before the revocations.
    for (const id of devices.slice(0, 2)) expect((await api(child.url, 'POST', `/api/v1/devices/${id}/suspend`)).status).to.equal(200);
    for (const id of devices) {
      const r = await api(child.url, 'POST', `/api/v1/devices/${id}/revoke`, { reason: 'keyCompromise' });
      expect(r.status, r.text).to.equal(200);
    }

    // SIGKILL while the receiver holds the 12th request, unanswered.
    const killed = child;
    receiver.onEvent = () => {
      if (receiver!.events.length === 12) {
        killed.proc.kill('SIGKILL');
        return new Promise((r) => setTimeout(r, 300));
      }
      return undefined;
    };
    open();
    await killed.exited;
    expect(receiver.events.length).to.equal(12);

    // The same data directory, a new process: it resumes from the saved cursors.
    receiver.onEvent = undefined;
    child = await spawnService(env);
    await receiver.waitFor(() => receiver!.events.length === n + 4, 60_000);
    await collector.waitFor(() => new Set(collector!.messages.map((x) => x.sd['kakuin@32473']?.id)).size >= n + 2, 30_000);
    await waitFor(() => carrier!.suspended.length >= n, 30_000);

    // Every event of the audit trail that goes out, once, in order; every request correctly signed.
    const audit = await api(child.url, 'GET', '/api/v1/audit-events?limit=1000');
    const trail = audit.json.events as { id: number; type: string; at: string }[];
    const idOf = (e: { id: number; at: string }) => `evt_${e.id}_${Date.parse(e.at)}`;
    // Everything that goes out, but the CA events of the first start (before the destinations began).
    const expected = trail.filter((e) => isEventType(e.type) && e.type !== 'ca.created').map(idOf);
    expect(expected).to.have.length(n + 4);
    expect(receiver.events.map((e) => e.id)).to.deep.equal(expected);
    expect(receiver.events.slice(0, 2).map((e) => e.type)).to.deep.equal(['station.created', 'enrollment.refused']);
    expect(receiver.events[1].details).to.include({ reason: 'unregistered', serialNumber: 'EV-NOBODY' });
    expect(receiver.badSignatures).to.equal(0);
    // The one held when the process died comes again, and those delivered since the cursor was last
    // saved (at most 100, or a second's worth; README "Events"): here all 12 went out within that second.
    expect(receiver.duplicates).to.be.within(1, 12);
    expect(receiver.events.filter((e) => e.type === 'device.revoked').map((e) => e.device)).to.deep.equal(devices);

    // Syslog over TLS: every frame an RFC 5424 message; every event there (a repeat allowed).
    expect(collector.malformed).to.deep.equal([]);
    const syslogIds = [...new Set(collector.messages.map((x) => x.sd['kakuin@32473'].id))];
    expect(syslogIds).to.deep.equal(trail.filter((e) => isEventType(e.type) && e.type.startsWith('device.')).map(idOf));
    for (const msg of collector.messages) {
      expect(msg).to.include({ version: 1, hostname: 'kakuin-under-test', appName: 'kakuin' });
      expect(JSON.parse(msg.msg!.replace(/^\uFEFF/, '')).type).to.equal(msg.msgId);
    }

    // The README receiver: each revoked device's SIM suspended exactly once, a forged request refused.
    expect([...carrier.suspended].sort()).to.deep.equal(Object.values(sims).sort());
    const forged = await new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ id: 'evt_999999', type: 'device.revoked', device: devices[0] });
      const req = http.request(`http://127.0.0.1:${simPort}/`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-kakuin-signature': `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}` },
      }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end(body);
    });
    expect(forged).to.equal(401);
    expect(carrier.suspended).to.have.length(n);
  });
});

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
