/** The device data path: POST /v1/telemetry forwarded upstream with the verified identity, or recorded locally. */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createDeviceGateway, jsonLinesTelemetrySink } from '../../gateway-auth/index.js';
import { hasCode } from '../../errors/index.js';
import { gatewayOptions, MemoryLogger, startGateway, type RunningGateway } from './harness.js';
import { curl, KeepAliveDevice, startUpstream } from './peers.js';
import { createGatewayPki, type GatewayPki, type TestDevice } from './pki.js';

const JSON_TYPE = { 'content-type': 'application/json' };

describe('gateway-auth: telemetry', function () {
  let pki: GatewayPki;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let gw: RunningGateway;
  let d: TestDevice;
  let device: KeepAliveDevice;

  before(async function () {
    pki = await createGatewayPki();
    upstream = await startUpstream();
    gw = await startGateway(pki, { telemetry: { upstreamUrl: upstream.url, bodyLimitBytes: 1024 } });
    d = await pki.newDevice();
  });

  beforeEach(function () {
    device = new KeepAliveDevice(gw.port, d.certPath, d.keyPath, pki.file('root.pem'));
    upstream.requests.length = 0;
    upstream.status = 200;
  });

  afterEach(function () {
    device.destroy();
  });

  after(async function () {
    await gw?.close();
    await upstream?.close();
    await pki?.cleanup();
  });

  it('forwards telemetry from curl with the verified identity, after stripping spoofed x-kakuin-* headers', async function () {
    const r = await curl(gw.port, {
      certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem'), method: 'POST', path: '/v1/telemetry',
      headers: ['Content-Type: application/json', 'X-Kakuin-Device-Id: someone-else', 'X-Kakuin-Issuer: evil', 'X-Kakuin-Role: admin', 'X-Trace: t-1'],
      body: '{"temperature":21.5}',
    });
    expect(r.status, r.stderr).to.equal(200);
    expect(upstream.requests).to.have.length(1);
    const forwarded = upstream.requests[0];
    expect(forwarded.method).to.equal('POST');
    expect(forwarded.url).to.equal('/ingest');
    expect(forwarded.body).to.equal('{"temperature":21.5}');
    expect(forwarded.headers).to.include({
      'x-kakuin-device-id': d.deviceId, 'x-kakuin-certificate-serial': d.cert.serialHex, 'x-kakuin-issuer': 'device',
      'content-type': 'application/json', 'x-trace': 't-1',
    });
    expect(forwarded.headers).not.to.have.property('x-kakuin-role');
    const receipt = gw.logger.find('telemetry received').at(-1);
    expect(receipt?.fields).to.include({ deviceId: d.deviceId, serialHex: d.cert.serialHex, bytes: 20, upstreamStatus: 200, outcome: 'forwarded' });
    expect(receipt?.fields.ms).to.be.a('number');
  });

  it('answers malformed JSON with 400 and an oversize body with 413, and the connection stays usable', async function () {
    const ok1 = await device.request('POST', '/v1/telemetry', '{"a":1}', JSON_TYPE);
    expect(ok1.status).to.equal(200);
    const bad = await device.request('POST', '/v1/telemetry', '{"a":', JSON_TYPE);
    expect(bad.status).to.equal(400);
    expect(JSON.parse(bad.body)).to.include({ code: 'KAKUIN_E_TELEMETRY_INVALID' });
    const array = await device.request('POST', '/v1/telemetry', '[1,2]', JSON_TYPE);
    expect(JSON.parse(array.body)).to.include({ code: 'KAKUIN_E_TELEMETRY_INVALID' });
    const big = await device.request('POST', '/v1/telemetry', JSON.stringify({ x: 'y'.repeat(5000) }), JSON_TYPE);
    expect(big.status).to.equal(413);
    expect(JSON.parse(big.body)).to.include({ code: 'KAKUIN_E_TELEMETRY_TOO_LARGE' });
    const chunked = await device.request('POST', '/v1/telemetry', undefined, { ...JSON_TYPE, 'transfer-encoding': 'chunked' });
    expect(chunked.status).to.equal(400);
    const ok2 = await device.request('POST', '/v1/telemetry', '{"a":2}', JSON_TYPE);
    expect(ok2.status).to.equal(200);
    for (const r of [bad, array, big, chunked, ok2]) {
      expect(r.reused, 'same keep-alive connection').to.equal(true);
      expect(r.socket).to.equal(ok1.socket);
    }
    expect(upstream.requests.map((r) => r.body)).to.deep.equal(['{"a":1}', '{"a":2}']);
  });

  it('refuses a body that is not application/json with 415, and unknown routes with 404 JSON', async function () {
    const text = await device.request('POST', '/v1/telemetry', '{"a":1}', { 'content-type': 'text/plain' });
    expect(text.status).to.equal(415);
    expect(JSON.parse(text.body)).to.include({ code: 'KAKUIN_E_UNSUPPORTED_MEDIA_TYPE' });
    const missing = await device.request('GET', '/v1/other');
    expect(missing.status).to.equal(404);
    expect(missing.headers['content-type']).to.equal('application/json');
    expect(JSON.parse(missing.body)).to.include({ code: 'KAKUIN_E_ROUTE_NOT_FOUND' });
    expect(upstream.requests).to.have.length(0);
  });

  it('answers 502 KAKUIN_E_UPSTREAM_UNAVAILABLE when the upstream fails, and relays its 4xx', async function () {
    upstream.status = 503;
    const failed = await device.request('POST', '/v1/telemetry', '{"a":1}', JSON_TYPE);
    expect(failed.status).to.equal(502);
    expect(JSON.parse(failed.body)).to.include({ code: 'KAKUIN_E_UPSTREAM_UNAVAILABLE' });
    upstream.status = 422;
    expect((await device.request('POST', '/v1/telemetry', '{"a":1}', JSON_TYPE)).status).to.equal(422);
  });

  it('answers 502 when nothing listens at the upstream URL', async function () {
    const logger = new MemoryLogger();
    const gateway = createDeviceGateway(gatewayOptions(pki, logger, { telemetry: { upstreamUrl: 'http://127.0.0.1:1/ingest', upstreamTimeoutMs: 2000 } }));
    const { port } = await gateway.listen(0, '127.0.0.1');
    const other = new KeepAliveDevice(port, d.certPath, d.keyPath, pki.file('root.pem'));
    try {
      const r = await other.request('POST', '/v1/telemetry', '{"a":1}', JSON_TYPE);
      expect(r.status).to.equal(502);
      expect(JSON.parse(r.body)).to.include({ code: 'KAKUIN_E_UPSTREAM_UNAVAILABLE' });
      expect(logger.find('telemetry not delivered upstream')).to.have.length(1);
    } finally {
      other.destroy();
      await gateway.close();
    }
  });
});

describe('gateway-auth: telemetry without an upstream', function () {
  let pki: GatewayPki;

  before(async function () {
    pki = await createGatewayPki();
  });

  after(async function () {
    await pki?.cleanup();
  });

  it('records each receipt as a JSON line and answers 202', async function () {
    const sink = jsonLinesTelemetrySink(path.join(pki.dir, 'telemetry'));
    const gw = await startGateway(pki, { telemetry: { sink } });
    const d = await pki.newDevice();
    const device = new KeepAliveDevice(gw.port, d.certPath, d.keyPath, pki.file('root.pem'));
    try {
      const r = await device.request('POST', '/v1/telemetry', '{\n  "rpm": 1200\n}', { ...JSON_TYPE, 'x-kakuin-device-id': 'spoofed' });
      expect(r.status).to.equal(202);
      expect(JSON.parse(r.body)).to.deep.equal({ status: 'accepted' });
      await sink.close();
      const lines = readFileSync(sink.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({ deviceId: d.deviceId, serialHex: d.cert.serialHex, issuerId: 'device', bytes: 17 });
      expect(lines[0].data).to.deep.equal({ rpm: 1200 });
      expect(gw.logger.find('telemetry received').at(-1)?.fields).to.include({ outcome: 'recorded', deviceId: d.deviceId });
    } finally {
      device.destroy();
      await gw.close();
    }
  });

  it('refuses options without an upstream or a sink, or without device issuers, with KAKUIN_E_CONFIG', function () {
    const logger = new MemoryLogger();
    const bad = [
      gatewayOptions(pki, logger, { telemetry: {} }),
      gatewayOptions(pki, logger, { telemetry: { sink: { record: async () => {} } }, deviceIssuers: [] }),
      gatewayOptions(pki, logger, { telemetry: { sink: { record: async () => {} } }, statusSource: 'ocsp' }),
      gatewayOptions(pki, logger, { telemetry: { upstreamUrl: 'ftp://example.test/' } }),
    ];
    for (const options of bad) {
      let caught: unknown;
      try {
        createDeviceGateway(options);
      } catch (e) {
        caught = e;
      }
      expect(hasCode(caught, 'KAKUIN_E_CONFIG'), String(caught)).to.equal(true);
    }
  });
});
