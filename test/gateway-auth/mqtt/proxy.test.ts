/**
 * The gateway's MQTT front end with real peers: a Mosquitto started here (one for the file) as the
 * broker behind it, MQTT.js and `mosquitto_sub` / `mosquitto_pub` as devices with device
 * certificates, MQTT 3.1.1 and 5.0. What reaches the broker is checked by an observer attached to
 * Mosquitto directly (its ACL-free listener), so a refusal is the gateway's, not the broker's.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import type { FeedSubscription } from '../../../gateway-auth/index.js';
import { FeedFollower } from '../../../registry/feed-follower.js';
import { startGateway, sleep, type RunningGateway } from '../harness.js';
import { run } from '../peers.js';
import { createGatewayPki, GATEWAY_HOST, type GatewayPki, type TestDevice } from '../pki.js';
import { startMosquitto, type Broker } from './broker.js';

interface Seen { topic: string; payload: string }

describe('gateway-auth: MQTT front end in front of a real Mosquitto', function () {
  this.timeout(20_000);
  let pki: GatewayPki;
  let broker: Broker;
  let gw: RunningGateway;
  let observer: MqttClient;
  const seen: Seen[] = [];
  const clients: MqttClient[] = [];

  before(async function () {
    pki = await createGatewayPki();
    broker = await startMosquitto();
    gw = await startGateway(pki, {
      telemetry: { sink: { record: async () => {} } },
      mqtt: { port: 0, upstreamUrl: `mqtt://127.0.0.1:${broker.openPort}` },
    });
    observer = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.openPort}`, { clientId: 'test-observer', reconnectPeriod: 0 });
    observer.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString() }));
    await observer.subscribeAsync('#');
  });

  after(async function () {
    for (const c of clients) c.end(true);
    await observer?.endAsync(true);
    await gw?.close();
    await broker?.stop();
    await pki?.cleanup();
  });

  const mqttPort = () => gw.gateway.mqttAddress()!.port;

  function device(d: TestDevice, version: 4 | 5, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
    return mqtt.connectAsync(`mqtts://127.0.0.1:${mqttPort()}`, {
      protocolVersion: version, clientId: d.deviceId, reconnectPeriod: 0, connectTimeout: 5_000,
      ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem, servername: GATEWAY_HOST,
      ...extra,
    }).then((c) => {
      clients.push(c);
      return c;
    });
  }

  /** Waits until the observer saw `topic` (or `ms` passed); returns what it saw there. */
  async function observed(topic: string, ms = 1_500): Promise<Seen[]> {
    const until = Date.now() + ms;
    while (Date.now() < until && !seen.some((s) => s.topic === topic)) await sleep(20);
    return seen.filter((s) => s.topic === topic);
  }

  /** Proves the pipe is flushed: a message published after `topic` was refused has reached the observer. */
  async function marker(c: MqttClient, d: TestDevice): Promise<void> {
    const t = `devices/${d.deviceId}/marker-${Math.random()}`;
    await c.publishAsync(t, 'm', { qos: 1 });
    expect(await observed(t)).to.have.length(1);
  }

  for (const version of [4, 5] as const) {
    const v = version === 5 ? '5.0' : '3.1.1';

    it(`MQTT ${v}: a device subscribes to its own topic and receives what it publishes (and the broker gets it)`, async function () {
      const d = await pki.newDevice();
      const c = await device(d, version);
      const got = new Promise<string>((resolve) => c.once('message', (_t, p) => resolve(p.toString())));
      const granted = await c.subscribeAsync(`devices/${d.deviceId}/#`, { qos: 1 });
      expect(granted[0].qos).to.equal(1);
      await c.publishAsync(`devices/${d.deviceId}/temp`, '21.5', { qos: 1 });
      expect(await got).to.equal('21.5');
      expect((await observed(`devices/${d.deviceId}/temp`)).map((s) => s.payload)).to.deep.equal(['21.5']);
    });

    it(`MQTT ${v}: a publish outside the policy is acknowledged, dropped and counted; the session stays`, async function () {
      const d = await pki.newDevice();
      const other = await pki.newDevice();
      const c = await device(d, version);
      const before = gw.gateway.stats().mqtt!.refused.publish;
      const acks: number[] = [];
      c.on('packetreceive', (p) => { if (p.cmd === 'puback' || p.cmd === 'pubrec') acks.push((p as { reasonCode?: number }).reasonCode ?? 0); });
      const topics = [`devices/${other.deviceId}/temp`, '$SYS/broker/x', 'elsewhere'];
      for (const [i, t] of topics.entries()) {
        // QoS 0, 1 and 2: each completes its flow (MQTT-3.3.5-2) and nothing reaches the broker.
        await c.publishAsync(t, 'stolen', { qos: i as 0 | 1 | 2 }).catch((e: Error) => e);
      }
      await marker(c, d);
      for (const t of topics) expect(seen.filter((s) => s.topic === t), t).to.have.length(0);
      expect(gw.gateway.stats().mqtt!.refused.publish - before).to.equal(3);
      expect(acks.slice(0, 2)).to.deep.equal(version === 5 ? [0x87, 0x87] : [0, 0]);
      const logged = gw.logger.find('mqtt gateway refused a publish').filter((l) => l.fields.deviceId === d.deviceId);
      expect(logged.map((l) => l.fields.topic)).to.deep.equal(topics);
    });

    it(`MQTT ${v}: SUBSCRIBE filters must fit under the policy; refused ones get ${version === 5 ? '0x87' : '0x80'}, allowed ones are granted`, async function () {
      const d = await pki.newDevice();
      const other = await pki.newDevice();
      const c = await device(d, version);
      const filters = [`devices/${d.deviceId}/+/x`, 'devices/+/temp', '#', `devices/${other.deviceId}/#`, '$SYS/#', `$share/g1/devices/${d.deviceId}/#`];
      const suback = new Promise<number[]>((resolve) => c.on('packetreceive', (p) => { if (p.cmd === 'suback') resolve((p as { granted: number[] }).granted); }));
      // MQTT.js rejects a SUBACK with a failure code in it; the SUBACK itself is what is checked.
      await c.subscribeAsync(Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }]))).catch(() => undefined);
      const refused = version === 5 ? 0x87 : 0x80;
      expect(await suback).to.deep.equal([1, refused, refused, refused, refused, 1]);
      expect(gw.logger.find('mqtt gateway refused a subscribe').filter((l) => l.fields.deviceId === d.deviceId).map((l) => l.fields.filter))
        .to.deep.equal(filters.slice(1, 5));
      // Nothing of the other device reaches it.
      const got: string[] = [];
      c.on('message', (t) => got.push(t));
      await observer.publishAsync(`devices/${other.deviceId}/temp`, 'x', { qos: 1 });
      await observer.publishAsync(`devices/${d.deviceId}/a/x`, 'mine', { qos: 1 });
      await sleep(300);
      expect(got).to.include(`devices/${d.deviceId}/a/x`);
      expect(got).not.to.include(`devices/${other.deviceId}/temp`);
    });

    it(`MQTT ${v}: a Will topic outside the policy refuses the CONNECT (${version === 5 ? '0x87' : '0x05'}); its own topic is fine`, async function () {
      const d = await pki.newDevice();
      const err = await device(d, version, { will: { topic: 'devices/someone-else/status', payload: Buffer.from('gone'), qos: 0, retain: false } })
        .then(() => undefined, (e: { code?: number }) => e);
      expect(err?.code).to.equal(version === 5 ? 0x87 : 0x05);
      const c = await device(d, version, { will: { topic: `devices/${d.deviceId}/status`, payload: Buffer.from('gone'), qos: 0, retain: false } });
      expect(c.connected).to.equal(true);
    });

    it(`MQTT ${v}: a spoofed client id is refused (${version === 5 ? '0x85' : '0x02'})`, async function () {
      const d = await pki.newDevice();
      const other = await pki.newDevice();
      const err = await device(d, version, { clientId: other.deviceId }).then(() => undefined, (e: { code?: number }) => e);
      expect(err?.code).to.equal(version === 5 ? 0x85 : 0x02);
      const line = gw.logger.find('mqtt gateway refused a connect').at(-1);
      expect(line?.fields).to.include({ deviceId: d.deviceId, clientId: other.deviceId });
    });
  }

  it('MQTT 5.0: enhanced authentication is refused (CONNACK 0x8C)', async function () {
    const d = await pki.newDevice();
    const err = await device(d, 5, { properties: { authenticationMethod: 'SCRAM-SHA-1' } }).then(() => undefined, (e: { code?: number }) => e);
    expect(err?.code).to.equal(0x8c);
  });

  it('MQTT 5.0: the device is told Topic Alias Maximum 0 (the broker offers more)', async function () {
    const d = await pki.newDevice();
    const connack = new Promise<Record<string, unknown>>((resolve) => {
      const c = mqtt.connect(`mqtts://127.0.0.1:${mqttPort()}`, {
        protocolVersion: 5, clientId: d.deviceId, reconnectPeriod: 0, ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem, servername: GATEWAY_HOST,
      });
      clients.push(c);
      c.on('packetreceive', (p) => { if (p.cmd === 'connack') resolve(p as unknown as Record<string, unknown>); });
    });
    const p = await connack;
    expect((p.properties as Record<string, unknown> | undefined)?.topicAliasMaximum).to.equal(undefined);
  });

  it('mosquitto_pub / mosquitto_sub (3.1.1 and 5.0) with -i <deviceId> work through the gateway', async function () {
    for (const version of ['mqttv311', 'mqttv5']) {
      const d = await pki.newDevice();
      const topic = `devices/${d.deviceId}/cli-${version}`;
      const r = await run('mosquitto_pub', [
        '-h', '127.0.0.1', '-p', String(mqttPort()), '--cafile', pki.file('root.pem'), '--cert', d.certPath, '--key', d.keyPath,
        '-i', d.deviceId, '-V', version, '-q', '1', '-t', topic, '-m', 'hello',
      ]);
      expect(r.code, r.stderr).to.equal(0);
      expect((await observed(topic)).map((s) => s.payload)).to.deep.equal(['hello']);
      const spoof = await run('mosquitto_pub', [
        '-h', '127.0.0.1', '-p', String(mqttPort()), '--cafile', pki.file('root.pem'), '--cert', d.certPath, '--key', d.keyPath,
        '-i', 'not-me', '-V', version, '-t', topic, '-m', 'x',
      ]);
      expect(spoof.code).to.not.equal(0);
      expect(spoof.stderr).to.match(/identifier rejected|Client identifier not valid/i);
    }
  });

  for (const version of ['mqttv311', 'mqttv5'] as const) {
    it(`revoking a device disconnects its open mosquitto_sub (${version}) within 5 s, and a reconnect is refused`, async function () {
      const d = await pki.newDevice();
      const args = [
        '-h', '127.0.0.1', '-p', String(mqttPort()), '--cafile', pki.file('root.pem'), '--cert', d.certPath, '--key', d.keyPath,
        '-i', d.deviceId, '-V', version, '-t', `devices/${d.deviceId}/#`, '-d',
      ];
      const sub = spawn('mosquitto_sub', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      sub.stdout.on('data', (c: Buffer) => { out += c.toString(); });
      sub.stderr.on('data', (c: Buffer) => { out += c.toString(); });
      const exited = once(sub, 'exit');
      // mosquitto_sub's stdout is block-buffered on a pipe: the gateway's log says when its session is open.
      const until = Date.now() + 5_000;
      const isOpen = () => gw.logger.find('mqtt gateway session open').some((l) => l.fields.deviceId === d.deviceId);
      while (!isOpen() && Date.now() < until) await sleep(20);
      expect(isOpen(), 'session open').to.equal(true);
      await sleep(200);
      const t0 = Date.now();
      await pki.revoke(d);
      await gw.gateway.pokeFeed();
      const ceiling = sleep(5_000).then(() => 'timeout');
      const result = await Promise.race([exited.then(() => 'exited'), ceiling]);
      const latency = Date.now() - t0;
      if (result !== 'exited') sub.kill('SIGKILL');
      expect(result, out).to.equal('exited');
      console.log(`      revoke → mosquitto_sub (${version}) disconnected in ${latency} ms`);
      if (version === 'mqttv5') expect(out).to.match(/DISCONNECT|Administrative action/i);
      const again = await run('mosquitto_sub', [...args.filter((a) => a !== '-d'), '-C', '1', '-W', '3']);
      expect(again.code).to.not.equal(0);
      expect(gw.logger.find('gateway refused a device connection').at(-1)?.fields).to.include({ deviceId: d.deviceId, frontEnd: 'mqtt' });
    });
  }

  it('MQTT 5.0: the kill switch sends DISCONNECT 0x98 and closes the broker side too (its Will fires)', async function () {
    const d = await pki.newDevice();
    const c = await device(d, 5, { will: { topic: `devices/${d.deviceId}/status`, payload: Buffer.from('lost'), qos: 1, retain: false } });
    const disconnect = new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode)));
    await pki.setDeviceStatus(d, ['active'], 'suspended');
    await gw.gateway.pokeFeed();
    expect(await disconnect).to.equal(0x98);
    // The broker lost the gateway's connection for this device: it publishes the Will.
    expect((await observed(`devices/${d.deviceId}/status`, 3_000)).map((s) => s.payload)).to.deep.equal(['lost']);
  });

  /** A TLS connection sending one 3.1.1 CONNECT; resolves with what came back before the gateway closed it. */
  async function rawConnectAnswer(port: number, d: TestDevice, session?: Buffer): Promise<Buffer> {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem, servername: GATEWAY_HOST, session });
    const data: Buffer[] = [];
    socket.on('data', (b: Buffer) => data.push(b));
    socket.on('error', () => {});
    await once(socket, 'secureConnect');
    if (session !== undefined) expect(socket.isSessionReused(), 'resumed').to.equal(true);
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: d.deviceId, clean: true, keepalive: 30 }));
    await once(socket, 'close');
    return Buffer.concat(data);
  }

  it('refuses a resumed TLS session of a revoked device before any MQTT byte is read', async function () {
    const d = await pki.newDevice();
    const opts = { host: '127.0.0.1', port: mqttPort(), ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem, servername: GATEWAY_HOST };
    let session: Buffer | undefined;
    const first = tls.connect(opts);
    first.on('session', (s: Buffer) => { session = s; });
    await once(first, 'secureConnect');
    first.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: d.deviceId, clean: true, keepalive: 30 }));
    await once(first, 'data');
    first.end();
    await once(first, 'close');
    expect(session).to.not.equal(undefined);
    await pki.revoke(d);
    await gw.gateway.pokeFeed();
    expect(await rawConnectAnswer(mqttPort(), d, session), 'no CONNACK').to.have.length(0);
    expect(gw.logger.find('gateway refused a device connection').at(-1)?.fields).to.include({ deviceId: d.deviceId, resumed: true, frontEnd: 'mqtt' });
  });

  it('a broker connection that goes away closes the device side; a device that goes away closes the broker side', async function () {
    // A relay between the gateway and Mosquitto, so this test can cut "the broker" without stopping the shared one.
    const relayed = new Set<net.Socket>();
    const relay = net.createServer((inbound) => {
      const out = net.connect(broker.openPort, '127.0.0.1');
      relayed.add(inbound);
      inbound.pipe(out).pipe(inbound);
      inbound.on('error', () => {});
      out.on('error', () => {});
      inbound.once('close', () => { relayed.delete(inbound); out.destroy(); });
      out.once('close', () => inbound.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const gw2 = await startGateway(pki, {
      telemetry: { sink: { record: async () => {} } },
      mqtt: { port: 0, upstreamUrl: `mqtt://127.0.0.1:${(relay.address() as net.AddressInfo).port}` },
    });
    try {
      const d = await pki.newDevice();
      const connect = (): Promise<MqttClient> => mqtt.connectAsync(`mqtts://127.0.0.1:${gw2.gateway.mqttAddress()!.port}`, {
        protocolVersion: 4, clientId: d.deviceId, reconnectPeriod: 0, ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem, servername: GATEWAY_HOST,
      });
      const c = await connect();
      expect(relayed.size).to.equal(1);
      const closed = new Promise<void>((r) => c.once('close', () => r()));
      for (const s of relayed) s.destroy();
      const t0 = Date.now();
      await closed;
      expect(Date.now() - t0).to.be.below(1_000);
      c.end(true);
      const c2 = await connect();
      expect(relayed.size).to.equal(1);
      const [upstreamSide] = [...relayed];
      const upstreamClosed = once(upstreamSide, 'close');
      c2.stream.destroy();
      await upstreamClosed;
      c2.end(true);
    } finally {
      await gw2.close();
      await new Promise((r) => relay.close(r));
    }
  });
  it('clientId "replace": any client id becomes the device id upstream; stale status keeps open sessions but refuses new ones', async function () {
    const followers: FeedSubscription[] = [];
    const gw2 = await startGateway(pki, {
      telemetry: { sink: { record: async () => {} } },
      statusGraceMs: 300,
      feed: {
        pollIntervalMs: 20,
        factory: (afterSeq, handlers) => {
          const f = new FeedFollower(pki.registry, { afterSeq, pollIntervalMs: 20, onEntries: handlers.onEntries, onError: handlers.onError });
          followers.push(f);
          return f;
        },
      },
      mqtt: { port: 0, upstreamUrl: `mqtt://127.0.0.1:${broker.openPort}`, clientId: 'replace' },
    });
    try {
      const d = await pki.newDevice();
      const connect = (clientId: string) => mqtt.connectAsync(`mqtts://127.0.0.1:${gw2.gateway.mqttAddress()!.port}`, {
        protocolVersion: 5, clientId, reconnectPeriod: 0, ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem, servername: GATEWAY_HOST,
      }).then((c) => { clients.push(c); return c; });
      const first = await connect('first-name');
      const second = await connect('second-name');
      // Both arrive at the broker as the device id: the second session takes the first one over.
      const until = Date.now() + 3_000;
      while (first.connected && Date.now() < until) await sleep(20);
      expect(first.connected, 'first session taken over').to.equal(false);
      await followers[0].stop();
      await sleep(500);
      expect(gw2.gateway.readiness().ready).to.equal(false);
      await second.publishAsync(`devices/${d.deviceId}/still-open`, 'yes', { qos: 1 });
      expect((await observed(`devices/${d.deviceId}/still-open`)).map((x) => x.payload)).to.deep.equal(['yes']);
      expect(await rawConnectAnswer(gw2.gateway.mqttAddress()!.port, d), 'no CONNACK').to.have.length(0);
      expect(String(gw2.logger.find('gateway refused a device connection').at(-1)?.fields.reason)).to.match(/revocation feed last read/);
    } finally {
      await gw2.close();
    }
  });
});
