/**
 * Activity and firmware from both device front ends with real peers: five devices with real
 * certificates talk to the real gateway over HTTPS (curl) and MQTT (MQTT.js, 3.1.1 and 5.0, through
 * the gateway to a real Mosquitto); the aggregator flushes into a real SQLite registry. One device
 * is revoked and tries again on both front ends: each retry is a refusal with its source address.
 */
import { expect } from 'chai';
import tls from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ActivityAggregator, type NotableRefusal } from '../../operations/activity/aggregator.js';
import { startGateway, sleep, type RunningGateway } from './harness.js';
import { curl, startUpstream } from './peers.js';
import { createGatewayPki, GATEWAY_HOST, type GatewayPki, type TestDevice } from './pki.js';
import { startMosquitto, type Broker } from './mqtt/broker.js';

describe('gateway-auth activity from HTTPS and MQTT devices (real Mosquitto, real SQLite)', function () {
  this.timeout(30_000);
  let pki: GatewayPki;
  let broker: Broker;
  let gw: RunningGateway;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let recorder: ActivityAggregator;
  const notable: NotableRefusal[] = [];
  const clients: MqttClient[] = [];

  before(async function () {
    pki = await createGatewayPki();
    broker = await startMosquitto();
    upstream = await startUpstream();
    // A flush interval far beyond the test: every flush here is the test's own.
    recorder = new ActivityAggregator({ store: pki.registry.activity, flushIntervalMs: 600_000, onNotable: (r) => notable.push(r) });
    gw = await startGateway(pki, {
      telemetry: { upstreamUrl: upstream.url, bodyLimitBytes: 1024 },
      mqtt: { port: 0, upstreamUrl: `mqtt://127.0.0.1:${broker.openPort}` },
      activity: recorder,
    });
  });

  after(async function () {
    for (const c of clients) c.end(true);
    await gw?.close();
    await upstream?.close();
    await broker?.stop();
    await pki?.cleanup();
  });

  const post = (d: TestDevice, path: string, body: string, contentType = 'application/json') => curl(gw.port, {
    certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem'), method: 'POST', path,
    headers: [`Content-Type: ${contentType}`], body,
  });

  function mqttDevice(d: TestDevice, version: 4 | 5, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
    return mqtt.connectAsync(`mqtts://127.0.0.1:${gw.gateway.mqttAddress()!.port}`, {
      protocolVersion: version, clientId: d.deviceId, reconnectPeriod: 0, connectTimeout: 5_000,
      ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem, servername: GATEWAY_HOST, ...extra,
    }).then((c) => {
      clients.push(c);
      return c;
    });
  }

  const activityOf = async (d: TestDevice) => (await pki.registry.activity.deviceActivity(d.deviceId))!;
  const totals = (a: Awaited<ReturnType<typeof activityOf>>) => a.hourly.reduce((s, h) => ({
    messages: s.messages + h.messages, bytes: s.bytes + h.bytes, admitted: s.admitted + h.admitted, refused: s.refused + h.refused,
  }), { messages: 0, bytes: 0, admitted: 0, refused: 0 });

  it('records messages, bytes, sessions, last seen and firmware history of 5 devices over HTTPS and MQTT, and a revoked device retrying on both', async function () {
    const devices: TestDevice[] = [];
    for (let i = 0; i < 5; i++) devices.push(await pki.newDevice());
    const expected = devices.map(() => ({ messages: 0, bytes: 0, admitted: 0 }));

    // HTTPS: a status with the firmware, then one telemetry message (one connection each: curl).
    for (const [i, d] of devices.entries()) {
      const status = JSON.stringify({ firmwareVersion: `1.${i}.0` });
      const r = await post(d, '/v1/status', status);
      expect(r.status, r.stdout).to.equal(200);
      expect(JSON.parse(r.stdout.split('\nHTTP_STATUS=')[0])).to.deep.equal({ firmwareVersion: `1.${i}.0` });
      const telemetry = `{"t":${i}}`;
      expect((await post(d, '/v1/telemetry', telemetry)).status).to.equal(200);
      expected[i].messages += 2;
      expected[i].bytes += status.length + telemetry.length;
      expected[i].admitted += 2;
    }
    await recorder.flush();
    for (const [i, d] of devices.entries()) {
      const a = await activityOf(d);
      expect(a.firmwareVersion).to.equal(`1.${i}.0`);
      expect(a.lastSeen).to.include({ frontEnd: 'http' });
    }

    // MQTT: devices 0-3 speak 5.0 and report firmware in the CONNECT user property; device 4 speaks 3.1.1.
    const sessions: MqttClient[] = [];
    for (const [i, d] of devices.entries()) {
      const c = i < 4
        ? await mqttDevice(d, 5, { properties: { userProperties: { firmware: `2.0.${i}` } } })
        : await mqttDevice(d, 4);
      sessions.push(c);
      for (let n = 0; n <= i; n++) {
        const payload = `reading-${i}-${n}`;
        await c.publishAsync(`devices/${d.deviceId}/temp`, payload, { qos: 1 });
        expected[i].messages += 1;
        expected[i].bytes += payload.length;
      }
      expected[i].admitted += 1;
    }
    // Counts are taken per chunk read on the gateway: QoS 1 waits for each PUBACK, so all were read.
    await recorder.flush();
    for (const [i, d] of devices.entries()) {
      const a = await activityOf(d);
      expect(totals(a), d.deviceId).to.deep.include(expected[i]);
      expect(a.lastSeen?.frontEnd, d.deviceId).to.equal('mqtt');
      expect(a.lastSeen?.address).to.match(/127\.0\.0\.1$/);
      expect(a.openSessions.map((s) => s.address), 'its MQTT session is open now').to.have.length(1);
      expect(a.openSessions[0].address).to.match(/127\.0\.0\.1$/);
      if (i < 4) {
        expect(a.firmwareVersion).to.equal(`2.0.${i}`);
        expect(a.firmwareHistory.map((f) => f.version)).to.deep.equal([`1.${i}.0`, `2.0.${i}`]);
      } else {
        expect(a.firmwareHistory.map((f) => f.version), 'no user property in 3.1.1').to.deep.equal(['1.4.0']);
      }
    }

    // Device 4 is revoked: the kill switch closes its session; it tries again on both front ends.
    const revoked = devices[4];
    const closed = new Promise<void>((resolve) => sessions[4].once('close', () => resolve()));
    await pki.revoke(revoked);
    await gw.gateway.pokeFeed();
    await closed;
    expect((await post(revoked, '/v1/telemetry', '{"again":true}')).status, 'no HTTP response').to.equal(0);
    // MQTT: the TLS handshake is refused before any MQTT byte (MQTT.js would retry forever; a raw socket says what happened).
    const retry = await new Promise<string>((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1', port: gw.gateway.mqttAddress()!.port, servername: GATEWAY_HOST, ca: pki.root.pem, cert: revoked.cert.pem, key: revoked.cert.key.keyPem,
      });
      s.on('error', (e) => resolve(`error: ${e.message}`));
      s.on('close', () => resolve('closed'));
      s.on('data', () => resolve('data'));
      s.setTimeout(5_000, () => { s.destroy(); resolve('timeout'); });
    });
    expect(retry).to.match(/^(closed|error)/);
    for (const c of sessions.slice(0, 4)) await c.endAsync();
    await sleep(100); // the gateway sees the closes
    await recorder.flush();

    const r = await activityOf(revoked);
    const byFrontEnd = new Map(r.refusals.map((x) => [x.frontEnd, x]));
    expect([...byFrontEnd.keys()].sort()).to.deep.equal(['http', 'mqtt']);
    for (const x of byFrontEnd.values()) {
      expect(x.reason).to.equal('certificate revoked');
      expect(x.address).to.match(/127\.0\.0\.1$/);
    }
    expect(totals(r).refused).to.equal(2);
    expect(notable.map((n) => n.deviceId), 'one event per device per flush').to.deep.equal([revoked.deviceId]);
    for (const d of devices) expect((await activityOf(d)).openSessions, `${d.deviceId}: sessions closed`).to.deep.equal([]);
  });

  it('POST /v1/status refuses a malformed body with a stable code and records nothing of it', async function () {
    const d = await pki.newDevice();
    expect((await post(d, '/v1/status', '{"firmwareVersion":"3.1.0"}')).status).to.equal(200);
    const cases: [string, string, number, string][] = [
      ['{"firmwareVersion":"3.2 beta"}', 'application/json', 400, 'KAKUIN_E_VALIDATION'],
      ['{"firmwareVersion":"3.2.0","model":"X"}', 'application/json', 400, 'KAKUIN_E_UNKNOWN_FIELD'],
      ['{"firmwareVersion":320}', 'application/json', 400, 'KAKUIN_E_INVALID_FIELD'],
      ['{}', 'application/json', 400, 'KAKUIN_E_VALIDATION'],
      ['[1]', 'application/json', 400, 'KAKUIN_E_VALIDATION'],
      ['not json', 'application/json', 400, 'KAKUIN_E_VALIDATION'],
      ['firmwareVersion=3.2.0', 'application/x-www-form-urlencoded', 415, 'KAKUIN_E_UNSUPPORTED_MEDIA_TYPE'],
      [JSON.stringify({ firmwareVersion: 'a'.repeat(2000) }), 'application/json', 400, 'KAKUIN_E_VALIDATION'],
    ];
    for (const [body, type, status, code] of cases) {
      const r = await post(d, '/v1/status', body, type);
      expect(r.status, body).to.equal(status);
      expect(JSON.parse(r.stdout.split('\nHTTP_STATUS=')[0]).code, body).to.equal(code);
    }
    // An MQTT 5 user property in the wrong form is ignored (and logged), not recorded.
    const c = await mqttDevice(d, 5, { properties: { userProperties: { firmware: 'v 9 with spaces' } } });
    await c.endAsync();
    await recorder.flush();
    const a = await activityOf(d);
    expect(a.firmwareHistory.map((f) => f.version)).to.deep.equal(['3.1.0']);
    expect(gw.logger.find('mqtt gateway ignored a malformed firmware user property').map((l) => l.fields.deviceId)).to.include(d.deviceId);
  });
});
