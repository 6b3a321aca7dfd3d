/**
 * Detections wired end to end with real sockets (issue 20 item 4): five devices with real
 * certificates over real TLS to the real gateway; the gateway's activity goes through the
 * detection feed (operations/detections) into the engine; the responder records the detection in
 * the real SQLite registry and suspends through RevocationService; the gateway follows the feed
 * and cuts the device's session. A clone's second session from another loopback address is
 * refused at the handshake and its device suspended.
 */
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { RevocationService } from '../../ca/revocation.js';
import { ActivityAggregator } from '../../operations/activity/aggregator.js';
import { DetectionFeed } from '../../operations/detections/feed.js';
import { DetectionResponder } from '../../operations/detections/responder.js';
import { DetectionService } from '../../operations/detections/service.js';
import { registrySubjects } from '../../operations/detections/subjects.js';
import { startGateway, sleep, type RunningGateway } from './harness.js';
import { closedWithin, GET_HEALTHZ, KeepAliveDevice, startUpstream } from './peers.js';
import { createGatewayPki, GATEWAY_HOST, type GatewayPki, type TestDevice } from './pki.js';

describe('detections wired to the real gateway: activity → detection → suspend → session cut', function () {
  this.timeout(30_000);
  let pki: GatewayPki;
  let gw: RunningGateway;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let feed: DetectionFeed;
  let responder: DetectionResponder;
  let service: DetectionService;
  const devices: TestDevice[] = [];
  const held: KeepAliveDevice[] = [];

  before(async function () {
    pki = await createGatewayPki();
    for (let i = 0; i < 5; i++) devices.push(await pki.newDevice());
    const manufacturerId = (await pki.registry.getDevice(devices[0].deviceId)).manufacturerId;
    let pokeGateway = async () => {};
    const revocation = new RevocationService(pki.registry, async () => pokeGateway());
    service = new DetectionService({ store: pki.registry.detections, onTemplatesChanged: (t) => feed?.setTemplates(t) });
    await service.ensureShippedTemplates();
    // The shipped camera template's figures are for hours; this one fires within the test's seconds.
    await service.createTemplate({
      id: 'wiring', description: 'test', assignedTo: { manufacturerIds: [manufacturerId] },
      rules: {
        rate: { maxMessages: 5, perSeconds: 60, action: 'suspend' },
        sessions: { maxConcurrent: 1, refuseExtra: true, action: 'suspend' },
        networks: { allowed: ['127.0.0.0/8', '::1/128'], action: 'alert' },
      },
    }, 'token:test');
    responder = new DetectionResponder({ store: pki.registry.detections, suspender: revocation, audit: pki.registry });
    const aggregator = new ActivityAggregator({ store: pki.registry.activity, flushIntervalMs: 600_000 });
    feed = new DetectionFeed({ inner: aggregator, subjectOf: registrySubjects(pki.registry), onFinding: responder.accept });
    feed.setTemplates(await service.templates());
    upstream = await startUpstream();
    gw = await startGateway(pki, { telemetry: { upstreamUrl: upstream.url, bodyLimitBytes: 1024 }, activity: feed, sessionGate: feed });
    pokeGateway = () => gw.gateway.pokeFeed();
  });

  after(async function () {
    for (const d of held) d.destroy();
    await gw?.close();
    await upstream?.close();
    await pki?.cleanup();
  });

  const caPath = () => pki.file('root.pem');
  async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await sleep(20);
    }
  }

  it('leaves three devices sending at their usual rate alone', async function () {
    for (const d of devices.slice(2)) {
      const k = new KeepAliveDevice(gw.port, d.certPath, d.keyPath, caPath());
      held.push(k);
      for (let i = 0; i < 3; i++) expect((await k.request('GET', '/healthz')).status).to.equal(200);
    }
    await feed.settled();
    await responder.idle();
    for (const d of devices.slice(2)) {
      expect((await pki.registry.getDevice(d.deviceId)).status).to.equal('active');
      expect(await pki.registry.detections.listDetections({ deviceId: d.deviceId })).to.deep.equal([]);
    }
  });

  it('suspends a device sending beyond its rate and cuts its open session', async function () {
    const d = devices[0];
    const k = new KeepAliveDevice(gw.port, d.certPath, d.keyPath, caPath());
    held.push(k);
    const first = await k.request('GET', '/healthz');
    expect(first.status).to.equal(200);
    const since = performance.now();
    // The 6th message in a minute is beyond the template's 5; the session is then cut.
    for (let i = 0; i < 6 && !first.socket.destroyed; i++) await k.request('GET', '/healthz').catch(() => undefined);
    await closedWithin(first.socket, since, 5_000);
    await until(async () => (await pki.registry.getDevice(d.deviceId)).status === 'suspended', 5_000);
    const [det] = await pki.registry.detections.listDetections({ deviceId: d.deviceId });
    expect(det).to.include({ rule: 'rate', action: 'suspend', templateId: 'wiring', templateVersion: 1, outcome: 'suspended', state: 'open' });
    const [audit] = await pki.registry.listAuditEvents({ deviceId: d.deviceId, type: 'device.suspended' });
    expect(audit).to.include({ actor: `detection:${det.id}` });
    expect(audit.details).to.include({ detectionId: det.id });
    // Back in: refused (the device is suspended now).
    const again = await rawSession(d, '127.0.0.1');
    expect(again.closedBeforeData).to.equal(true);
  });

  it('refuses a clone\'s second session from another address at the handshake and suspends the device, cutting the first', async function () {
    const d = devices[1];
    const k = new KeepAliveDevice(gw.port, d.certPath, d.keyPath, caPath());
    held.push(k);
    const first = await k.request('GET', '/healthz');
    expect(first.status).to.equal(200);
    await feed.settled();
    const since = performance.now();
    const clone = await rawSession(d, '127.0.0.2');
    expect(clone.closedBeforeData, 'the clone got an HTTP answer').to.equal(true);
    await closedWithin(first.socket, since, 5_000);
    await until(async () => (await pki.registry.getDevice(d.deviceId)).status === 'suspended', 5_000);
    const [det] = await pki.registry.detections.listDetections({ deviceId: d.deviceId, rule: 'sessions' });
    expect(det).to.include({ action: 'suspend', outcome: 'suspended' });
    expect(det.evidence).to.include({ newAddress: '127.0.0.2', refused: true });
    expect(gw.logger.find('gateway refused a device connection').some((l) => String(l.fields.reason).includes('concurrent session'))).to.equal(true);
  });

  it('resolves the detection with the operator\'s note when the device is resumed', async function () {
    const d = devices[0];
    const revocation = new RevocationService(pki.registry, () => gw.gateway.pokeFeed());
    await revocation.resumeDevice(d.deviceId, 'token:ops');
    const [r] = await service.deviceResumed(d.deviceId, 'token:ops', 'firmware bug, fixed');
    expect(r).to.include({ state: 'resolved', resolveNote: 'firmware bug, fixed', resolvedBy: 'token:ops' });
    const k = new KeepAliveDevice(gw.port, d.certPath, d.keyPath, caPath());
    held.push(k);
    expect((await k.request('GET', '/healthz')).status).to.equal(200);
  });

  /** One TLS session from `localAddress` sending GET /healthz: whether the gateway closed it without answering. */
  function rawSession(d: TestDevice, localAddress: string): Promise<{ closedBeforeData: boolean }> {
    return new Promise((resolve, reject) => {
      let data = '';
      // Another loopback address is another source address to the gateway (Linux answers all of 127/8).
      const raw = net.connect({ host: '127.0.0.1', port: gw.port, localAddress });
      const s: TLSSocket = tls.connect({
        socket: raw, servername: GATEWAY_HOST,
        cert: readFileSync(d.certPath), key: readFileSync(d.keyPath), ca: readFileSync(caPath()),
      }, () => s.write(GET_HEALTHZ));
      s.setEncoding('utf8');
      s.on('data', (c: string) => { data += c; });
      s.on('error', () => { /* the close decides */ });
      s.on('close', () => resolve({ closedBeforeData: data === '' }));
      setTimeout(() => reject(new Error('session neither answered nor closed')), 5_000).unref();
    });
  }
});
