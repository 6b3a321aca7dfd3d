/**
 * Activity recording through the real mTLS gateway: five devices talk with curl (real TLS sockets
 * on 127.0.0.1), one of them is revoked and tries again; the aggregator's flush writes the hourly
 * rollups, last seen and refusals into the real SQLite registry.
 */
import { expect } from 'chai';
import { ActivityAggregator, type NotableRefusal } from '../../operations/activity/aggregator.js';
import { truncateAddress } from '../../operations/activity/address.js';
import { startGateway, type RunningGateway } from './harness.js';
import { curl, startUpstream } from './peers.js';
import { createGatewayPki, type GatewayPki, type TestDevice } from './pki.js';

describe('gateway-auth activity recording', function () {
  let pki: GatewayPki;
  let gw: RunningGateway;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let recorder: ActivityAggregator;
  const notable: NotableRefusal[] = [];

  before(async function () {
    pki = await createGatewayPki();
    upstream = await startUpstream();
    recorder = new ActivityAggregator({ store: pki.registry.activity, flushIntervalMs: 60_000, onNotable: (r) => notable.push(r) });
    gw = await startGateway(pki, { telemetry: { upstreamUrl: upstream.url, bodyLimitBytes: 1024 }, activity: recorder });
  });

  after(async function () {
    await gw?.close();
    await upstream?.close();
    await pki?.cleanup();
  });

  const send = (d: TestDevice, body: string) => curl(gw.port, {
    certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem'), method: 'POST', path: '/v1/telemetry',
    headers: ['Content-Type: application/json'], body,
  });

  it('records last seen, messages and bytes of 5 devices, and the revoked one trying again as a refusal and an event', async function () {
    const devices: TestDevice[] = [];
    for (let i = 0; i < 5; i++) devices.push(await pki.newDevice());
    for (const [i, d] of devices.entries()) {
      for (let n = 0; n <= i; n++) expect((await send(d, `{"n":${n}}`)).status).to.equal(200);
    }
    const revoked = devices[4];
    await pki.revoke(revoked);
    await gw.gateway.pokeFeed();
    expect((await send(revoked, '{"again":true}')).status, 'no HTTP response').to.equal(0);
    await recorder.flush();

    for (const [i, d] of devices.entries()) {
      const a = await pki.registry.activity.deviceActivity(d.deviceId);
      expect(a?.lastSeen, d.deviceId).to.include({ frontEnd: 'http' });
      expect(a?.lastSeen?.address).to.match(/127\.0\.0\.1$/);
      const total = a!.hourly.reduce((s, h) => ({ messages: s.messages + h.messages, bytes: s.bytes + h.bytes, admitted: s.admitted + h.admitted }), { messages: 0, bytes: 0, admitted: 0 });
      expect(total.messages).to.equal(i + 1);
      expect(total.admitted).to.equal(i + 1);
      expect(total.bytes).to.equal(Array.from({ length: i + 1 }, (_, n) => `{"n":${n}}`.length).reduce((x, y) => x + y, 0));
    }
    const r = await pki.registry.activity.deviceActivity(revoked.deviceId);
    expect(r?.refusals[0]).to.include({ reason: 'certificate revoked', frontEnd: 'http' });
    expect(r?.refusals[0].address).to.match(/127\.0\.0\.1$/);
    expect(notable.map((n) => n.deviceId)).to.deep.equal([revoked.deviceId]);
    expect(await pki.registry.activity.devicesLastSeen({ after: new Date(Date.now() - 60_000) })).to.include.members(devices.map((d) => d.deviceId));
  });

  it('truncates source addresses to the configured prefix', function () {
    expect(truncateAddress('198.51.100.7', { v4: 24, v6: 48 })).to.equal('198.51.100.0/24');
    expect(truncateAddress('::ffff:198.51.100.7', { v4: 16, v6: 32 })).to.equal('198.51.0.0/16');
    expect(truncateAddress('2001:db8:abcd:12::1', { v4: 24, v6: 48 })).to.equal('2001:db8:abcd:0:0:0:0:0/48');
  });
});
