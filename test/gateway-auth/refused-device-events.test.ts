/**
 * A revoked device that tries the real mTLS gateway again becomes a `device.refused` event at a
 * webhook: the gateway's refusal → the activity aggregator's notable refusal → a device.refused
 * audit event (cli/events.ts notableRefusalSink) → the dispatcher → an HTTPS receiver that checks
 * the signature. Real TLS (curl as the device), real SQLite.
 */
import { expect } from 'chai';
import { notableRefusalSink } from '../../cli/events.js';
import { createLogger } from '../../cli/logger.js';
import { ActivityAggregator } from '../../operations/activity/aggregator.js';
import { EventDispatcher, eventFilter, WebhookDestination } from '../../operations/events/index.js';
import { makeTempDir } from '../support/index.js';
import { receiverTls, startWebhookReceiver, type WebhookReceiver } from '../operations/event-receivers.js';
import { startGateway, type RunningGateway } from './harness.js';
import { curl, startUpstream } from './peers.js';
import { createGatewayPki, type GatewayPki } from './pki.js';

describe('gateway-auth: a revoked device trying again is a device.refused event', function () {
  this.timeout(60_000);
  let pki: GatewayPki;
  let gw: RunningGateway;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let receiver: WebhookReceiver;
  let dispatcher: EventDispatcher;
  let tmp: ReturnType<typeof makeTempDir>;
  const secret = 'refused-events-secret-0123456789';

  before(async function () {
    tmp = makeTempDir('kakuin-refused-events-');
    const files = receiverTls(tmp.dir);
    pki = await createGatewayPki();
    upstream = await startUpstream();
    receiver = await startWebhookReceiver(secret, files);
    const onNotable = notableRefusalSink(pki.registry, createLogger('error'));
    expect(onNotable).to.be.a('function');
    const recorder = new ActivityAggregator({ store: pki.registry.activity, flushIntervalMs: 60_000, onNotable });
    gw = await startGateway(pki, { telemetry: { upstreamUrl: upstream.url, bodyLimitBytes: 1024 }, activity: recorder });
    dispatcher = new EventDispatcher({
      audit: pki.registry, cursors: pki.registry.eventCursors, filter: eventFilter(['device.refused']), pollMs: 20,
      destination: new WebhookDestination({ url: receiver.url, secret: Buffer.from(secret), ca: [files.cert] }),
    });
    dispatcher.start();
  });

  after(async function () {
    await dispatcher?.stop();
    await gw?.close();
    await upstream?.close();
    await receiver?.close();
    await pki?.cleanup();
    tmp?.cleanup();
  });

  it('names the device, the reason, the front end and the source address, once per flush interval', async function () {
    const start = Date.now();
    while ((await pki.registry.eventCursors.readEventCursor(dispatcher.name)) === undefined) {
      if (Date.now() - start > 10_000) throw new Error('the dispatcher did not start');
      await new Promise((r) => setTimeout(r, 10));
    }
    const device = await pki.newDevice();
    const other = await pki.newDevice();
    const send = (d: typeof device) => curl(gw.port, {
      certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem'), method: 'POST', path: '/v1/telemetry',
      headers: ['Content-Type: application/json'], body: '{}',
    });
    expect((await send(device)).status).to.equal(200);
    await pki.revoke(device);
    await gw.gateway.pokeFeed();
    expect((await send(device)).status, 'refused: no HTTP response').to.equal(0);
    expect((await send(device)).status).to.equal(0);
    expect((await send(other)).status).to.equal(200);
    await receiver.waitFor(() => receiver.events.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.badSignatures).to.equal(0);
    expect(receiver.events).to.have.length(1);
    const [e] = receiver.events;
    expect(e).to.include({ type: 'device.refused', device: device.deviceId, actor: 'system' });
    expect(e.details).to.include({ reason: 'certificate revoked', frontEnd: 'http' });
    expect(e.details.address).to.match(/127\.0\.0\.1$/);
    const audit = await pki.registry.listAuditEvents({ deviceId: device.deviceId, type: 'device.refused' });
    expect(audit.map((a) => `evt_${a.id}_${a.at.getTime()}`)).to.deep.equal([e.id]);
  });
});
