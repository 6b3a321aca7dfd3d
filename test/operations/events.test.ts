/**
 * Events out over real sockets: the audit trail of a real SQLite registry goes to an HTTPS webhook
 * receiver that checks every signature, and to a TLS syslog collector that parses RFC 5424; the
 * cursor in the registry lets a new dispatcher resume where the last one stopped.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../cli/config.js';
import { startEvents } from '../../cli/events.js';
import { createLogger } from '../../cli/logger.js';
import { expect } from 'chai';
import { EventDispatcher, eventFilter, formatSyslogMessage, signatureHeader, SyslogDestination, verifySignature, WebhookDestination } from '../../operations/events/index.js';
import { openSqliteRegistry, type SqliteRegistry } from '../../registry/sqlite/index.js';
import { freePort, makeTempDir } from '../support/index.js';
import { receiverTls, startSyslogCollector, startWebhookReceiver, parseRfc5424, type TlsFiles } from './event-receivers.js';

const SECRET = 'whsec-test-0123456789abcdef';

describe('operations/events: events out', function () {
  this.timeout(60_000);
  let tmp: ReturnType<typeof makeTempDir>;
  let registry: SqliteRegistry;
  let files: TlsFiles;
  before(function () {
    tmp = makeTempDir('kakuin-events-');
    files = receiverTls(tmp.dir);
  });
  after(() => tmp.cleanup());
  beforeEach(async function () {
    registry = await openSqliteRegistry({ path: path.join(tmp.dir, `registry-${Date.now()}-${Math.random()}.db`) });
  });
  afterEach(async () => registry.close());

  const webhook = (url: string) => new WebhookDestination({ url, secret: Buffer.from(SECRET), ca: [files.cert] });
  const dispatcher = (destination: WebhookDestination | SyslogDestination, filter = eventFilter(['*'])) => new EventDispatcher({
    audit: registry, cursors: registry.eventCursors, destination, filter, pollMs: 20, saveEveryMs: 0, backoff: { initialMs: 20, maxMs: 200 },
  });

  it('a signature verifies with its secret and time only', function () {
    const body = '{"id":"evt_1"}';
    const h = signatureHeader(SECRET, body, 1_700_000_000);
    expect(h).to.match(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, body, h, { nowSeconds: 1_700_000_010 })).to.equal(true);
    expect(verifySignature('another-secret-0123456789', body, h, { nowSeconds: 1_700_000_010 })).to.equal(false);
    expect(verifySignature(SECRET, `${body} `, h, { nowSeconds: 1_700_000_010 })).to.equal(false);
    expect(verifySignature(SECRET, body, h, { nowSeconds: 1_700_001_000 }), 'replayed 1000 s later').to.equal(false);
    expect(verifySignature(SECRET, body, h.replace('t=1700000000', 't=1700000001'), { nowSeconds: 1_700_000_010 })).to.equal(false);
  });

  it('sends the audit events that go out to a webhook in order, signed, after a new destination starts; others are skipped', async function () {
    await registry.appendAuditEvent({ type: 'device.revoked', actor: 'cli', deviceId: 'before-start' });
    const receiver = await startWebhookReceiver(SECRET, files);
    const d = dispatcher(webhook(receiver.url));
    d.start();
    await waitUntil(async () => (await registry.eventCursors.readEventCursor(d.name)) !== undefined);
    await registry.appendAuditEvent({ type: 'device.suspended', actor: 'token:alice', deviceId: 'dev-1', details: { previousStatus: 'active' } });
    await registry.appendAuditEvent({ type: 'certificate.issued', actor: 'station:s1', deviceId: 'dev-1', serialHex: 'AA' });
    await registry.appendAuditEvent({ type: 'certificate.revoked', actor: 'token:alice', deviceId: 'dev-1', serialHex: '7F01', details: { reason: 'keyCompromise' } });
    await registry.appendAuditEvent({ type: 'enrollment.refused', actor: 'station:s1', details: { reason: 'unregistered', serialNumber: 'X-9' } });
    await receiver.waitFor(() => receiver.events.length === 3);
    await d.stop();
    await receiver.close();
    expect(receiver.badSignatures).to.equal(0);
    expect(receiver.events.map((e) => e.type)).to.deep.equal(['device.suspended', 'certificate.revoked', 'enrollment.refused']);
    const audit = await registry.listAuditEvents({ limit: 100 });
    const revoked = audit.find((a) => a.type === 'certificate.revoked')!;
    expect(receiver.events[1]).to.deep.equal({
      id: `evt_${revoked.id}_${revoked.at.getTime()}`, type: 'certificate.revoked', time: revoked.at.toISOString(), device: 'dev-1', actor: 'token:alice',
      details: { serialHex: '7F01', reason: 'keyCompromise' },
    });
    expect(receiver.events[2].device).to.equal(null);
    expect(await registry.eventCursors.readEventCursor(d.name)).to.equal(audit[audit.length - 1].id);
  });

  it('retries a receiver that answers 503 with backoff, then delivers each event once and in order', async function () {
    const receiver = await startWebhookReceiver(SECRET, files);
    const errors: number[] = [];
    const d = new EventDispatcher({
      audit: registry, cursors: registry.eventCursors, destination: webhook(receiver.url), filter: eventFilter(['device.*']),
      pollMs: 20, saveEveryMs: 0, backoff: { initialMs: 20, maxMs: 100 }, onDeliveryError: (_e, _ev, attempt, wait) => errors.push(wait),
    });
    d.start();
    await waitUntil(async () => (await registry.eventCursors.readEventCursor(d.name)) !== undefined);
    receiver.failNext(4);
    for (let i = 0; i < 5; i++) await registry.appendAuditEvent({ type: 'device.revoked', actor: 'cli', deviceId: `dev-${i}` });
    await registry.appendAuditEvent({ type: 'station.created', actor: 'cli', details: { stationId: 's' } });
    await receiver.waitFor(() => receiver.events.length === 5);
    await d.stop();
    await receiver.close();
    expect(errors).to.deep.equal([20, 40, 80, 100]);
    expect(receiver.events.map((e) => e.device)).to.deep.equal(['dev-0', 'dev-1', 'dev-2', 'dev-3', 'dev-4']);
    expect(receiver.duplicates).to.equal(0);
  });

  it('a new dispatcher resumes after the saved cursor: nothing lost, nothing sent twice', async function () {
    const receiver = await startWebhookReceiver(SECRET, files);
    const first = dispatcher(webhook(receiver.url));
    first.start();
    await waitUntil(async () => (await registry.eventCursors.readEventCursor(first.name)) !== undefined);
    await registry.appendAuditEvent({ type: 'device.revoked', actor: 'cli', deviceId: 'a' });
    await receiver.waitFor(() => receiver.events.length === 1);
    await first.stop();
    // While no dispatcher runs.
    await registry.appendAuditEvent({ type: 'device.retired', actor: 'cli', deviceId: 'b' });
    await registry.appendAuditEvent({ type: 'legacy.locked', actor: 'system', deviceId: 'c' });
    const second = dispatcher(webhook(receiver.url));
    second.start();
    await receiver.waitFor(() => receiver.events.length === 3);
    await second.stop();
    await receiver.close();
    expect(receiver.events.map((e) => e.device)).to.deep.equal(['a', 'b', 'c']);
    expect(receiver.deliveries).to.equal(3);
  });

  it('saves the cursor every saveEveryEvents deliveries even within saveEveryMs, so a crash re-sends at most that many', async function () {
    const receiver = await startWebhookReceiver(SECRET, files);
    const destination = webhook(receiver.url);
    await registry.eventCursors.saveEventCursor(destination.name, 0);
    for (let i = 0; i < 7; i++) await registry.appendAuditEvent({ type: 'device.revoked', actor: 'cli', deviceId: `s-${i}` });
    const ids = (await registry.listAuditEvents({ limit: 100 })).map((a) => a.id);
    const saves: number[] = [];
    const cursors = {
      readEventCursor: (n: string) => registry.eventCursors.readEventCursor(n),
      latestAuditEventId: () => registry.eventCursors.latestAuditEventId(),
      saveEventCursor: (n: string, at: number) => { saves.push(at); return registry.eventCursors.saveEventCursor(n, at); },
    };
    const d = new EventDispatcher({ audit: registry, cursors, destination, filter: eventFilter(['*']), pollMs: 20, saveEveryMs: 3_600_000, saveEveryEvents: 3 });
    d.start();
    await receiver.waitFor(() => receiver.events.length === 7);
    await d.stop();
    await receiver.close();
    expect(saves).to.deep.equal([ids[2], ids[5], ids[6]]);
  });

  it('a receiver with the wrong secret refuses every request, and the event is not skipped', async function () {
    const receiver = await startWebhookReceiver('the-receivers-other-secret', files);
    const d = dispatcher(webhook(receiver.url));
    d.start();
    await waitUntil(async () => (await registry.eventCursors.readEventCursor(d.name)) !== undefined);
    const before = await registry.eventCursors.readEventCursor(d.name);
    await registry.appendAuditEvent({ type: 'device.revoked', actor: 'cli', deviceId: 'x' });
    await receiver.waitFor(() => receiver.badSignatures >= 3);
    await d.stop();
    await receiver.close();
    expect(receiver.events).to.have.length(0);
    expect(await registry.eventCursors.readEventCursor(d.name)).to.equal(before);
  });

  it('refuses plain http except to the loopback host', function () {
    expect(() => new WebhookDestination({ url: 'http://soc.example.net/hook', secret: Buffer.from(SECRET) })).to.throw(/https/).with.property('code', 'KAKUIN_E_CONFIG');
    expect(new WebhookDestination({ url: 'http://127.0.0.1:9/hook', secret: Buffer.from(SECRET) }).name).to.equal('webhook:http://127.0.0.1:9/hook');
    expect(new WebhookDestination({ url: 'http://localhost:9/hook', secret: Buffer.from(SECRET) }).name).to.equal('webhook:http://localhost:9/hook');
  });

  it('sends RFC 5424 messages over TLS with octet counting, one per event, the event in structured data and as JSON', async function () {
    const collector = await startSyslogCollector(files);
    const d = dispatcher(new SyslogDestination({ url: collector.url, ca: [files.cert], hostname: 'kakuin-test' }), eventFilter(['device.*', 'station.*']));
    d.start();
    await waitUntil(async () => (await registry.eventCursors.readEventCursor(d.name)) !== undefined);
    await registry.appendAuditEvent({ type: 'device.refused', actor: 'system', deviceId: 'dev-"]\\', details: { reason: 'device is revoked', address: '198.51.100.7', frontEnd: 'http' } });
    await registry.appendAuditEvent({ type: 'enrollment.refused', actor: 'station:s1' });
    await registry.appendAuditEvent({ type: 'station.disabled', actor: 'token:bob', details: { stationId: 'st-1', note: 'ünïcödé' } });
    await collector.waitFor(() => collector.messages.length === 2);
    await d.stop();
    await collector.close();
    expect(collector.malformed).to.deep.equal([]);
    const [refused, station] = collector.messages;
    expect(refused).to.include({ pri: 4 * 8 + 4, version: 1, hostname: 'kakuin-test', appName: 'kakuin', msgId: 'device.refused' });
    expect(refused.sd['kakuin@32473']).to.deep.include({ type: 'device.refused', device: 'dev-"]\\', actor: 'system' });
    const body = JSON.parse(refused.msg!.replace(/^\uFEFF/, ''));
    expect(body).to.include({ type: 'device.refused', device: 'dev-"]\\', id: refused.sd['kakuin@32473'].id });
    expect(body.details).to.deep.equal({ reason: 'device is revoked', address: '198.51.100.7', frontEnd: 'http' });
    expect(station).to.include({ pri: 4 * 8 + 5, msgId: 'station.disabled' });
    expect(JSON.parse(station.msg!.slice(1)).details.note).to.equal('ünïcödé');
  });

  it('retries a syslog collector that is down and delivers once it listens, nothing skipped', async function () {
    const port = await freePort();
    const failures: unknown[] = [];
    const d = new EventDispatcher({
      audit: registry, cursors: registry.eventCursors, filter: eventFilter(['*']), pollMs: 20, saveEveryMs: 0, backoff: { initialMs: 20, maxMs: 100 },
      destination: new SyslogDestination({ url: `tls://127.0.0.1:${port}`, ca: [files.cert] }), onDeliveryError: (e) => failures.push(e),
    });
    d.start();
    await waitUntil(async () => (await registry.eventCursors.readEventCursor(d.name)) !== undefined);
    await registry.appendAuditEvent({ type: 'legacy.throttled', actor: 'system', details: { scope: 'source', source: '203.0.113.9' } });
    await registry.appendAuditEvent({ type: 'legacy.locked', actor: 'system', deviceId: 'legacy-1' });
    await waitUntil(async () => failures.length >= 3);
    expect(failures.every((e) => (e as { code?: string }).code === 'KAKUIN_E_EVENT_DELIVERY')).to.equal(true);
    const collector = await startSyslogCollector(files, port);
    await collector.waitFor(() => collector.messages.length === 2);
    await d.stop();
    await collector.close();
    expect(collector.messages.map((m) => m.msgId)).to.deep.equal(['legacy.throttled', 'legacy.locked']);
    expect(collector.malformed).to.deep.equal([]);
  });

  it('refuses to start with a missing or short webhook secret file (KAKUIN_E_CONFIG), and starts nothing without destinations', async function () {
    const dataDir = path.join(tmp.dir, `cfg-${Date.now()}`);
    const configFile = path.join(tmp.dir, `cfg-${Date.now()}.json`);
    const logger = createLogger('error');
    const config = (secretFile: string) => {
      writeFileSync(configFile, JSON.stringify({ events: { webhooks: [{ url: 'https://127.0.0.1:9/hook', secretFile }] } }));
      return loadConfig({ KAKUIN_DATA_DIR: dataDir, KAKUIN_CONFIG: configFile }, '/');
    };
    expect(() => startEvents(config(path.join(tmp.dir, 'no-such-secret')), registry, logger)).to.throw(/cannot read/).with.property('code', 'KAKUIN_E_CONFIG');
    writeFileSync(path.join(tmp.dir, 'short-secret'), 'short\n');
    expect(() => startEvents(config(path.join(tmp.dir, 'short-secret')), registry, logger)).to.throw(/at least 16 bytes/).with.property('code', 'KAKUIN_E_CONFIG');
    expect(startEvents(loadConfig({ KAKUIN_DATA_DIR: dataDir }, '/'), registry, logger)).to.equal(undefined);
  });

  it('the RFC 5424 check refuses what is not a syslog message', function () {
    const ok = formatSyslogMessage({ id: 'evt_1', type: 'device.revoked', time: '2026-12-07T10:00:00.000Z', device: 'd', actor: 'cli', details: {} }, 'h');
    expect(parseRfc5424(ok)).to.not.equal(null);
    for (const bad of [ok.replace('>1 ', '>0 '), ok.replace('<36>', '<192>'), ok.replace('2026-12-07T10', '2026-12-07 10'), ok.replace(' h ', ' h\tx '), ok.replace('[kakuin@32473 ', '[kakuin@32473  ')]) {
      expect(parseRfc5424(bad), bad).to.equal(null);
    }
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
