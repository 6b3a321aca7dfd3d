/**
 * The device gateway with real TLS peers (`openssl s_client`, `curl`, Node's https client) on
 * 127.0.0.1, a real SQLite registry, and the revocation feed in this process.
 */
import { expect } from 'chai';
import path from 'node:path';
import { createDeviceGateway } from '../../gateway-auth/index.js';
import { FeedFollower } from '../../registry/feed-follower.js';
import type { FeedSubscription } from '../../gateway-auth/index.js';
import { gatewayOptions, MemoryLogger, sleep, startGateway, type RunningGateway } from './harness.js';
import { closedWithin, curl, httpStatusOf, KeepAliveDevice, sClient } from './peers.js';
import { createGatewayPki, type GatewayPki, type TestDevice } from './pki.js';

const DAY = 86_400_000;

describe('gateway-auth: device admission over mTLS', function () {
  let pki: GatewayPki;
  let gw: RunningGateway;
  let good: TestDevice;

  before(async function () {
    pki = await createGatewayPki();
    good = await pki.newDevice();
    gw = await startGateway(pki, { telemetry: { sink: { record: async () => {} } } });
  });

  after(async function () {
    await gw?.close();
    await pki?.cleanup();
  });

  const client = (d: TestDevice, extra: { version?: '1.2' | '1.3'; sessOut?: string; sessIn?: string } = {}) =>
    sClient(gw.port, { certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem'), ...extra });

  /** No HTTP response; refused by the gateway's check with `reason`, or in the handshake itself (`'handshake'`). */
  async function expectRefused(d: TestDevice, reason: RegExp | 'handshake'): Promise<void> {
    const before = gw.logger.find('gateway refused a device connection').length;
    const r = await client(d);
    expect(httpStatusOf(r.stdout), r.stdout).to.equal(undefined);
    const refused = gw.logger.find('gateway refused a device connection').slice(before);
    if (reason === 'handshake') expect(refused, 'refused by the TLS layer, before the gateway check').to.have.length(0);
    else expect(String(refused[0]?.fields.reason)).to.match(reason);
  }

  it('openssl s_client with a good device certificate completes the handshake and gets 200', async function () {
    for (const version of ['1.3', '1.2'] as const) {
      const r = await client(good, { version });
      expect(r.stdout).to.include(version === '1.3' ? 'TLSv1.3' : 'TLSv1.2');
      expect(httpStatusOf(r.stdout), r.stdout + r.stderr).to.equal(200);
      expect(r.stdout).to.include('{"status":"ok"}');
    }
  });

  it('curl with a good device certificate gets 200', async function () {
    const r = await curl(gw.port, { certPath: good.certPath, keyPath: good.keyPath, caPath: pki.file('root.pem') });
    expect(r.status, r.stderr).to.equal(200);
  });

  it('refuses a certificate from an unknown CA in the handshake (no HTTP response)', async function () {
    const d = await pki.newDevice({ ca: pki.unknownCa, record: false });
    const r = await curl(gw.port, { certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem') });
    expect(r.status).to.equal(0);
    await expectRefused(d, 'handshake');
  });

  it('refuses an expired device certificate (no HTTP response)', async function () {
    const d = await pki.newDevice({ notBefore: new Date(Date.now() - 30 * DAY), notAfter: new Date(Date.now() - DAY) });
    await expectRefused(d, 'handshake');
    const r = await curl(gw.port, { certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem') });
    expect(r.status).to.equal(0);
  });

  it('refuses a revoked device certificate (no HTTP response)', async function () {
    const d = await pki.newDevice();
    await pki.revoke(d);
    await gw.gateway.pokeFeed();
    await expectRefused(d, /certificate revoked/);
  });

  it('refuses a held certificate and admits it again once released', async function () {
    const d = await pki.newDevice();
    await pki.hold(d);
    await gw.gateway.pokeFeed();
    await expectRefused(d, /certificate held/);
    await pki.release(d);
    await gw.gateway.pokeFeed();
    expect(httpStatusOf((await client(d)).stdout)).to.equal(200);
  });

  it('refuses a station certificate with clientAuth even though its chain verifies (no HTTP response)', async function () {
    // Same SAN URI as a good, active device: only the issuer tells it apart.
    const station = await pki.newDevice({ ca: pki.stationCa, record: false, deviceId: good.deviceId, key: undefined });
    await expectRefused(station, /not a device issuing CA/);
    const lines = gw.logger.find('gateway refused a device connection');
    expect(lines.at(-1)?.fields.reason).to.equal('issuer is not a device issuing CA');
  });

  it('refuses a device whose registry record is retired though its certificate is good', async function () {
    const d = await pki.newDevice();
    expect(httpStatusOf((await client(d)).stdout)).to.equal(200);
    await pki.setDeviceStatus(d, ['active'], 'retired');
    await gw.gateway.pokeFeed();
    expect((await pki.registry.getCertificate(d.cert.serialHex)).status).to.equal('good');
    await expectRefused(d, /device retired/);
  });

  it('refuses a device certificate the registry never recorded', async function () {
    const d = await pki.newDevice({ record: false, deviceId: (await pki.newDevice()).deviceId });
    await expectRefused(d, /does not know this certificate/);
  });

  it('refuses plain HTTP on the gateway port: no response, no redirect', async function () {
    const r = await curl(gw.port, { scheme: 'http' });
    expect(r.status).to.equal(0);
    expect(r.stdout).not.to.match(/Location|HTTP\/1/);
  });

  for (const version of ['1.2', '1.3'] as const) {
    it(`refuses a resumed TLS ${version} session of a device revoked in between (Reused, no HTTP response)`, async function () {
      const d = await pki.newDevice();
      const sess = path.join(pki.dir, `sess-${version}-${d.cert.serialHex}.pem`);
      const first = await client(d, { version, sessOut: sess });
      expect(httpStatusOf(first.stdout), first.stdout).to.equal(200);
      // Resumption works while the device is good...
      const again = await client(d, { version, sessIn: sess });
      expect(again.stdout).to.match(/^Reused,/m);
      expect(httpStatusOf(again.stdout)).to.equal(200);
      await pki.revoke(d);
      await gw.gateway.pokeFeed();
      // ...and a resumed session is checked like a full handshake.
      const resumed = await client(d, { version, sessIn: sess });
      expect(resumed.stdout, resumed.stdout).to.match(/^Reused,/m);
      expect(httpStatusOf(resumed.stdout), resumed.stdout).to.equal(undefined);
      const refused = gw.logger.find('gateway refused a device connection').at(-1);
      expect(refused?.fields).to.include({ resumed: true, reason: 'certificate revoked', serialHex: d.cert.serialHex });
    });
  }

  it('refuses a resumed session whose certificate has expired since the first handshake', async function () {
    let offsetMs = 0;
    const logger = new MemoryLogger();
    const gateway = createDeviceGateway(gatewayOptions(pki, logger, {
      telemetry: { sink: { record: async () => {} } }, now: () => Date.now() + offsetMs, statusGraceMs: 10 * 365 * DAY,
    }));
    const { port } = await gateway.listen(0, '127.0.0.1');
    try {
      const d = await pki.newDevice();
      const sess = path.join(pki.dir, `sess-expiry-${d.cert.serialHex}.pem`);
      const base = { certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem'), version: '1.2' as const };
      expect(httpStatusOf((await sClient(port, { ...base, sessOut: sess })).stdout)).to.equal(200);
      offsetMs = d.cert.notAfter.getTime() - Date.now() + DAY;
      const resumed = await sClient(port, { ...base, sessIn: sess });
      expect(resumed.stdout).to.match(/^Reused,/m);
      expect(httpStatusOf(resumed.stdout)).to.equal(undefined);
      expect(logger.find('gateway refused a device connection').at(-1)?.fields).to.include({ reason: 'certificate expired', resumed: true });
    } finally {
      await gateway.close();
    }
  });

  it('closes a keep-alive connection within 1 s of its certificate being revoked (5 s ceiling)', async function () {
    const d = await pki.newDevice();
    const device = new KeepAliveDevice(gw.port, d.certPath, d.keyPath, pki.file('root.pem'));
    try {
      const first = await device.request('GET', '/healthz');
      expect(first.status).to.equal(200);
      const second = await device.request('GET', '/healthz');
      expect(second.reused).to.equal(true);
      const t0 = performance.now();
      await pki.revoke(d);
      void gw.gateway.pokeFeed();
      const ms = await closedWithin(second.socket, t0, 5_000);
      console.log(`      revoke → close of a keep-alive connection: ${ms.toFixed(1)} ms`);
      expect(ms).to.be.below(1_000);
    } finally {
      device.destroy();
    }
  });

  it('closes a connection when its device is suspended, and also without a poke (polling)', async function () {
    const d = await pki.newDevice();
    const device = new KeepAliveDevice(gw.port, d.certPath, d.keyPath, pki.file('root.pem'));
    try {
      const res = await device.request('GET', '/healthz');
      const t0 = performance.now();
      await pki.setDeviceStatus(d, ['active'], 'suspended');
      const ms = await closedWithin(res.socket, t0, 5_000);
      console.log(`      device suspended → close (feed poll, no poke): ${ms.toFixed(1)} ms`);
      await expectRefused(d, /device suspended/);
    } finally {
      device.destroy();
    }
  });

  it('reports readiness with the feed lag', async function () {
    const r = gw.gateway.readiness();
    expect(r.ready).to.equal(true);
    expect(r.statusSource).to.equal('feed');
    expect(r.feedLagMs).to.be.a('number').below(1_000);
    const res = await curl(gw.port, { certPath: good.certPath, keyPath: good.keyPath, caPath: pki.file('root.pem'), path: '/readyz' });
    expect(res.status).to.equal(200);
    expect(JSON.parse(res.stdout.split('\nHTTP_STATUS')[0])).to.include({ ready: true, statusSource: 'feed' });
  });
});

describe('gateway-auth: fails closed when the revocation feed stops', function () {
  let pki: GatewayPki;

  before(async function () {
    pki = await createGatewayPki();
  });

  after(async function () {
    await pki?.cleanup();
  });

  it('refuses new devices and answers /readyz 503 with the lag once the feed is older than statusGraceMs', async function () {
    const followers: FeedSubscription[] = [];
    const logger = new MemoryLogger();
    const gateway = createDeviceGateway(gatewayOptions(pki, logger, {
      statusGraceMs: 300,
      telemetry: { sink: { record: async () => {} } },
      feed: {
        pollIntervalMs: 20,
        factory: (afterSeq, handlers) => {
          const f = new FeedFollower(pki.registry, { afterSeq, pollIntervalMs: 20, onEntries: handlers.onEntries, onError: handlers.onError });
          followers.push(f);
          return f;
        },
      },
    }));
    const { port } = await gateway.listen(0, '127.0.0.1');
    try {
      const d = await pki.newDevice();
      const device = new KeepAliveDevice(port, d.certPath, d.keyPath, pki.file('root.pem'));
      try {
        expect((await device.request('GET', '/readyz')).status).to.equal(200);
        await followers[0].stop();
        await sleep(500);
        const ready = await device.request('GET', '/readyz');
        expect(ready.status).to.equal(503);
        const body = JSON.parse(ready.body) as Record<string, unknown>;
        expect(body).to.include({ ready: false, statusSource: 'feed' });
        expect(body.feedLagMs).to.be.a('number').at.least(300);
        const telemetry = await device.request('POST', '/v1/telemetry', '{"t":1}', { 'content-type': 'application/json' });
        expect(telemetry.status).to.equal(503);
        expect(JSON.parse(telemetry.body)).to.include({ code: 'KAKUIN_E_STATUS_STALE' });
        const r = await sClient(port, { certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem') });
        expect(httpStatusOf(r.stdout)).to.equal(undefined);
        expect(logger.find('gateway refused a device connection').at(-1)?.fields.reason).to.match(/revocation feed last read \d+ ms ago/);
        expect(logger.find('gateway fails closed: revocation status is stale')).to.have.length.at.least(1);
        expect(gateway.readiness()).to.include({ ready: false });
      } finally {
        device.destroy();
      }
    } finally {
      await gateway.close();
    }
  });
});
