/**
 * Proxied HTTP routes and WebSockets (gateway.routes) with real peers: devices are Node https and
 * `ws` clients with device certificates over real TLS; behind the gateway a real `node:http`
 * upstream (plain, and one over TLS with its own CA) and a `ws` WebSocketServer.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import { startGateway, sleep, type RunningGateway } from './harness.js';
import { createGatewayPki, GATEWAY_HOST, type GatewayPki, type TestDevice } from './pki.js';

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer; aborted: boolean }

describe('gateway-auth: proxied HTTP routes and WebSockets to real upstreams', function () {
  this.timeout(20_000);
  let pki: GatewayPki;
  let gw: RunningGateway;
  let upstream: http.Server;
  let tlsUpstream: https.Server;
  let wss: WebSocketServer;
  const seen: Seen[] = [];
  const held: http.ServerResponse[] = [];
  const telemetry: unknown[] = [];
  let upstreamPort = 0;

  before(async function () {
    pki = await createGatewayPki();
    const onRequest = (tag: string) => (req: IncomingMessage, res: http.ServerResponse) => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.alloc(0), aborted: false };
      seen.push(s);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('close', () => { if (!req.complete) s.aborted = true; });
      req.on('end', () => {
        s.body = Buffer.concat(chunks);
        if (req.url!.includes('/hold')) {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('started\n');
          held.push(res);
          return;
        }
        res.writeHead(req.url!.includes('/created') ? 201 : 200, { 'content-type': 'application/json', 'x-upstream': tag, 'set-cookie': ['a=1', 'b=2'] });
        res.end(JSON.stringify({ tag, url: req.url, bytes: s.body.length }));
      });
    };
    upstream = http.createServer(onRequest('plain'));
    wss = new WebSocketServer({ server: upstream, handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false) });
    wss.on('connection', (ws, req) => {
      ws.send(JSON.stringify({ hello: req.headers['x-kakuin-device-id'], serial: req.headers['x-kakuin-certificate-serial'], spoof: req.headers['x-kakuin-role'] ?? null }));
      ws.on('message', (m, isBinary) => ws.send(m, { binary: isBinary }));
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamPort = (upstream.address() as AddressInfo).port;
    // An https: upstream with the test PKI's server certificate (the infrastructure CA as its trust).
    tlsUpstream = https.createServer({ key: pki.server.key.keyPem, cert: [pki.server.pem, pki.infraCa.pem].join('\n') }, onRequest('tls'));
    tlsUpstream.listen(0, '127.0.0.1');
    await once(tlsUpstream, 'listening');
    gw = await startGateway(pki, {
      telemetry: { sink: { record: async (r) => { telemetry.push(r.data); } } },
      routes: [
        { prefix: '/', upstreamUrl: `http://127.0.0.1:${upstreamPort}` },
        { prefix: '/small', upstreamUrl: `http://127.0.0.1:${upstreamPort}/base/`, bodyLimitBytes: 1000 },
        { prefix: '/secure', upstreamUrl: `https://127.0.0.1:${(tlsUpstream.address() as AddressInfo).port}`, upstreamCa: [pki.root.pem, pki.infraCa.pem] },
        { prefix: '/down', upstreamUrl: 'http://127.0.0.1:1' },
      ],
    });
  });

  after(async function () {
    for (const r of held) r.destroy();
    await gw?.close();
    wss?.close();
    upstream?.closeAllConnections();
    upstream?.close();
    tlsUpstream?.closeAllConnections();
    tlsUpstream?.close();
    await pki?.cleanup();
  });

  interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

  function request(d: TestDevice, method: string, path: string, o: { headers?: http.OutgoingHttpHeaders; body?: Buffer[]; agent?: https.Agent } = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: gw.port, method, path, servername: GATEWAY_HOST, ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem,
        headers: o.headers, agent: o.agent ?? false,
      }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => { body += c.toString(); });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      (async () => {
        for (const c of o.body ?? []) {
          req.write(c);
          await sleep(5);
        }
        req.end();
      })().catch(reject);
    });
  }

  const lastSeen = (urlPart: string) => [...seen].reverse().find((s) => s.url.includes(urlPart));

  it('proxies any method under a prefix with the verified identity, dropping the device\'s own x-kakuin-* and X-Forwarded-*', async function () {
    const d = await pki.newDevice();
    const a = await request(d, 'PUT', '/things/42?x=1', {
      headers: { 'x-kakuin-device-id': 'someone-else', 'X-Kakuin-Role': 'admin', 'x-forwarded-for': '10.9.9.9', 'content-type': 'text/plain' },
      body: [Buffer.from('hello')],
    });
    expect(a.status).to.equal(200);
    expect(JSON.parse(a.body)).to.deep.equal({ tag: 'plain', url: '/things/42?x=1', bytes: 5 });
    expect(a.headers['x-upstream']).to.equal('plain');
    expect(a.headers['set-cookie']).to.deep.equal(['a=1', 'b=2']);
    const s = lastSeen('/things/42')!;
    expect(s.method).to.equal('PUT');
    expect(s.headers['x-kakuin-device-id']).to.equal(d.deviceId);
    expect(s.headers['x-kakuin-certificate-serial']).to.equal(d.cert.serialHex.toUpperCase()).and.match(/^[0-9A-F]+$/);
    expect(s.headers['x-kakuin-issuer']).to.equal('device');
    expect(s.headers['x-kakuin-role']).to.equal(undefined);
    expect(s.headers['x-forwarded-for']).to.equal('127.0.0.1');
    expect(s.headers['x-forwarded-proto']).to.equal('https');
    expect(s.body.toString()).to.equal('hello');
  });

  it('streams a chunked body within the route limit; beyond it answers 413 KAKUIN_E_ROUTE_BODY_TOO_LARGE and aborts the upstream request', async function () {
    const d = await pki.newDevice();
    const ok = await request(d, 'POST', '/small/created', { body: [Buffer.alloc(400, 1), Buffer.alloc(400, 2)] });
    expect(ok.status).to.equal(201);
    const s = lastSeen('/base/small/created')!;
    expect(s.body.length).to.equal(800);
    expect(s.headers['transfer-encoding']).to.equal('chunked');

    const before = seen.length;
    const big = await request(d, 'POST', '/small/upload', { body: [Buffer.alloc(600), Buffer.alloc(600), Buffer.alloc(600)] }).catch((e: Error) => e);
    if (big instanceof Error) throw big;
    expect(big.status).to.equal(413);
    expect(JSON.parse(big.body).code).to.equal('KAKUIN_E_ROUTE_BODY_TOO_LARGE');
    await sleep(200);
    const up = seen.slice(before).find((x) => x.url === '/base/small/upload');
    // The first chunk (under the limit) went upstream as it came; then the upstream request was aborted.
    expect(up, 'upstream saw the request start').to.not.equal(undefined);
    expect(up!.aborted, 'upstream request aborted').to.equal(true);
    expect(up!.body.length).to.be.below(1001);
  });

  it('refuses a declared Content-Length over the limit before anything goes upstream', async function () {
    const d = await pki.newDevice();
    const before = seen.length;
    const a = await request(d, 'POST', '/small/declared', { headers: { 'content-length': 5000 }, body: [Buffer.alloc(5000)] }).catch((e: Error) => e);
    if (a instanceof Error) throw a;
    expect(a.status).to.equal(413);
    expect(JSON.parse(a.body).code).to.equal('KAKUIN_E_ROUTE_BODY_TOO_LARGE');
    expect(seen.slice(before).filter((x) => x.url.includes('declared'))).to.have.length(0);
  });

  it('keeps POST /v1/telemetry and GET /healthz the gateway\'s own even under a "/" route', async function () {
    const d = await pki.newDevice();
    const before = seen.length;
    const t = await request(d, 'POST', '/v1/telemetry', { headers: { 'content-type': 'application/json' }, body: [Buffer.from('{"temp":21}')] });
    expect(t.status).to.equal(202);
    expect(telemetry).to.deep.include({ temp: 21 });
    const h = await request(d, 'GET', '/healthz');
    expect(JSON.parse(h.body)).to.deep.equal({ status: 'ok' });
    expect(seen.length).to.equal(before);
    // Another method on the telemetry path is the upstream's.
    const g = await request(d, 'GET', '/v1/telemetry');
    expect(JSON.parse(g.body).tag).to.equal('plain');
  });

  it('matches prefixes by whole segments, the longest first; dot segments match no route', async function () {
    const d = await pki.newDevice();
    expect(JSON.parse((await request(d, 'GET', '/small')).body).url).to.equal('/base/small');
    expect(JSON.parse((await request(d, 'GET', '/smaller')).body).url).to.equal('/smaller');
    const dots = await request(d, 'GET', '/small/../admin');
    expect(dots.status).to.equal(404);
    expect(JSON.parse(dots.body).code).to.equal('KAKUIN_E_ROUTE_NOT_FOUND');
    expect((await request(d, 'GET', '/small/%2E%2e/admin')).status).to.equal(404);
  });

  it('reaches an https: upstream verified with the route\'s CA file, over a kept-alive device connection', async function () {
    const d = await pki.newDevice();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        const a = await request(d, 'GET', `/secure/n${i}`, { agent });
        expect(JSON.parse(a.body)).to.include({ tag: 'tls', url: `/secure/n${i}` });
      }
      expect(lastSeen('/secure/n2')!.headers['x-kakuin-device-id']).to.equal(d.deviceId);
    } finally {
      agent.destroy();
    }
  });

  it('answers 502 KAKUIN_E_UPSTREAM_UNAVAILABLE when the route\'s upstream is down', async function () {
    const d = await pki.newDevice();
    const a = await request(d, 'GET', '/down/x');
    expect(a.status).to.equal(502);
    expect(JSON.parse(a.body).code).to.equal('KAKUIN_E_UPSTREAM_UNAVAILABLE');
  });

  function ws(d: TestDevice, path: string, protocols: string[] = [], headers: Record<string, string> = {}): WebSocket {
    return new WebSocket(`wss://127.0.0.1:${gw.port}${path}`, protocols, {
      ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem, servername: GATEWAY_HOST, headers,
    } as ClientOptions);
  }

  it('passes a WebSocket through with the identity headers and echoes text and binary frames', async function () {
    const d = await pki.newDevice();
    const c = ws(d, '/ws/echo', ['chat'], { 'x-kakuin-role': 'admin' });
    const messages: string[] = [];
    const first = new Promise<string>((resolve) => c.once('message', (m) => resolve(m.toString())));
    await once(c, 'open');
    expect(c.protocol).to.equal('chat');
    expect(JSON.parse(await first)).to.deep.equal({ hello: d.deviceId, serial: d.cert.serialHex.toUpperCase(), spoof: null });
    c.on('message', (m) => messages.push(m.toString()));
    c.send('ping-1');
    c.send(Buffer.alloc(70_000, 7));
    const until = Date.now() + 3_000;
    while (messages.length < 2 && Date.now() < until) await sleep(10);
    expect(messages[0]).to.equal('ping-1');
    expect(messages[1]).to.have.length(70_000);
    expect(gw.gateway.stats().routes!.webSockets).to.be.at.least(1);
    c.close();
    await once(c, 'close');
  });

  for (const proto of ['mqtt', 'mqttv3.1']) {
    it(`refuses the "${proto}" WebSocket subprotocol with 403 KAKUIN_E_UPGRADE_REFUSED (it would bypass the MQTT topic policy)`, async function () {
      const d = await pki.newDevice();
      const c = ws(d, '/mqtt', ['chat', proto]);
      c.on('error', () => { /* the refused handshake */ });
      const [, res] = await once(c, 'unexpected-response') as [unknown, IncomingMessage];
      let body = '';
      for await (const chunk of res) body += String(chunk);
      expect(res.statusCode).to.equal(403);
      expect(JSON.parse(body).code).to.equal('KAKUIN_E_UPGRADE_REFUSED');
      expect(JSON.parse(body).message).to.match(/MQTT front end/);
      expect(gw.logger.find('gateway route refused an upgrade').at(-1)?.fields).to.include({ deviceId: d.deviceId, subprotocol: proto });
      c.terminate();
    });
  }

  it('closes a revoked device\'s open proxied request and WebSocket, and the upstream sees both go', async function () {
    const d = await pki.newDevice();
    const c = ws(d, '/ws/live');
    const wsClosed = once(c, 'close');
    await once(c, 'open');
    const upstreamWs = [...wss.clients].at(-1)!;
    const upstreamWsClosed = once(upstreamWs, 'close');
    // A long-running response held open by the upstream.
    const streamed = new Promise<string>((resolve) => {
      const req = https.request({
        host: '127.0.0.1', port: gw.port, path: '/feed/hold', servername: GATEWAY_HOST, ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem, agent: false,
      }, (res) => {
        res.on('data', () => {});
        res.on('error', () => resolve('error'));
        res.on('close', () => resolve(res.complete ? 'complete' : 'cut'));
      });
      req.on('error', () => resolve('error'));
      req.end();
    });
    const until = Date.now() + 3_000;
    while (held.length === 0 && Date.now() < until) await sleep(10);
    const heldRes = held.at(-1)!;
    const heldClosed = once(heldRes, 'close');
    const t0 = Date.now();
    await pki.revoke(d);
    await gw.gateway.pokeFeed();
    await Promise.all([wsClosed, heldClosed, upstreamWsClosed]);
    const ms = Date.now() - t0;
    expect(await streamed).to.not.equal('complete');
    expect(ms).to.be.below(5_000);
    console.log(`      revoke → proxied request and WebSocket closed in ${ms} ms`);
    // And the next request of that device is refused in the handshake.
    const again = await request(d, 'GET', '/after').then(() => 'answered', () => 'refused');
    expect(again).to.equal('refused');
  });
});
