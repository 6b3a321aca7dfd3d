/**
 * Reconnect-storm bounds (gateway-auth/connection-limits.ts) with real TLS sockets on 127.0.0.1:
 * handshakes in flight are bounded across listeners, a source over its rate is refused while
 * another is not, and `/readyz` data and metrics say when the gateway sheds.
 */
import { expect } from 'chai';
import net from 'node:net';
import tls from 'node:tls';
import { metricsCollector } from '../../cli/metrics.js';
import { createDeviceGateway } from '../../gateway-auth/index.js';
import { gatewayOptions, MemoryLogger, sleep, startGateway, type RunningGateway } from './harness.js';
import { createGatewayPki, GATEWAY_HOST, type GatewayPki, type TestDevice } from './pki.js';

type Outcome = 'ok' | 'shed' | 'other';

/** One device connection: GET /healthz; 'shed' when the connection closed before the handshake finished. */
function healthz(pki: GatewayPki, port: number, d: TestDevice, localAddress?: string, socket?: net.Socket): Promise<Outcome> {
  return new Promise((resolve) => {
    let secured = false;
    let body = '';
    const s = tls.connect({
      host: '127.0.0.1', port, servername: GATEWAY_HOST, ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem,
      ...(localAddress !== undefined && { localAddress }), ...(socket !== undefined && { socket }),
    }, () => {
      secured = true;
      s.write(`GET /healthz HTTP/1.1\r\nHost: ${GATEWAY_HOST}\r\nConnection: close\r\n\r\n`);
    });
    s.setEncoding('utf8');
    s.on('data', (c: string) => { body += c; });
    s.on('error', () => { /* close follows */ });
    s.on('close', () => resolve(!secured ? 'shed' : body.startsWith('HTTP/1.1 200') ? 'ok' : 'other'));
    s.setTimeout(10_000, () => s.destroy());
  });
}

/** A TCP connection that never sends a ClientHello: a handshake in flight until it is closed. */
function stalledHandshake(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

async function waitFor(cond: () => boolean, ms = 3_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(10);
  }
}

async function metricValue(gw: RunningGateway, pki: GatewayPki, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const families = await metricsCollector({ registry: pki.registry, caCertificates: () => [], gateway: gw.gateway })();
  const f = families.find((x) => x.name === name);
  return f?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))?.value;
}

describe('gateway-auth: reconnect storms', function () {
  let pki: GatewayPki;
  let good: TestDevice;

  before(async function () {
    pki = await createGatewayPki();
    good = await pki.newDevice();
  });

  after(async function () {
    await pki?.cleanup();
  });

  describe('maxPendingHandshakes', function () {
    let gw: RunningGateway;
    before(async function () {
      gw = await startGateway(pki, { telemetry: { sink: { record: async () => {} } }, maxPendingHandshakes: 4 });
    });
    after(async function () {
      await gw?.close();
    });

    it('closes a new connection before its handshake while the bound is in flight, and admits again once they finish', async function () {
      expect(await healthz(pki, gw.port, good)).to.equal('ok');
      const stalled = await Promise.all([1, 2, 3, 4].map(() => stalledHandshake(gw.port)));
      await waitFor(() => gw.gateway.stats().pendingHandshakes === 4);
      const shedBefore = gw.gateway.stats().shed.handshakes;

      expect(await healthz(pki, gw.port, good)).to.equal('shed');
      expect(gw.gateway.stats().shed.handshakes).to.equal(shedBefore + 1);
      expect(gw.gateway.stats().pendingHandshakes, 'the shed connection never counted').to.equal(4);
      expect(gw.gateway.readiness()).to.include({ ready: true, shedding: true, pendingHandshakes: 4 });
      expect(await metricValue(gw, pki, 'kakuin_gateway_shedding')).to.equal(1);
      expect(await metricValue(gw, pki, 'kakuin_gateway_pending_handshakes')).to.equal(4);
      expect(await metricValue(gw, pki, 'kakuin_gateway_shed_connections_total', { reason: 'handshakes' })).to.equal(shedBefore + 1);
      expect(gw.logger.find('gateway is shedding new connections (reconnect storm)')[0]?.fields.code).to.equal('KAKUIN_E_HANDSHAKES_SHED');

      for (const s of stalled) s.destroy();
      await waitFor(() => gw.gateway.stats().pendingHandshakes === 0);
      expect(await healthz(pki, gw.port, good)).to.equal('ok');
      // A device's own GET /readyz (the same object as the management API's) says it shed just now.
      const readyz = await new Promise<string>((resolve) => {
        let body = '';
        const c = tls.connect({ host: '127.0.0.1', port: gw.port, servername: GATEWAY_HOST, ca: pki.root.pem, cert: good.cert.pem, key: good.cert.key.keyPem },
          () => c.write(`GET /readyz HTTP/1.1\r\nHost: ${GATEWAY_HOST}\r\nConnection: close\r\n\r\n`));
        c.setEncoding('utf8');
        c.on('data', (d: string) => { body += d; });
        c.on('close', () => resolve(body));
      });
      expect(readyz).to.match(/^HTTP\/1.1 200/);
      expect(JSON.parse(readyz.slice(readyz.indexOf('\r\n\r\n') + 4))).to.include({ ready: true, shedding: true });
    });

    it('a burst of 60 devices beyond a bound of 2 sheds some, and every device is admitted on retry after the storm', async function () {
      // One client process and one gateway share this event loop, so at most a few handshakes overlap
      // here (about 3, measured); a bound of 2 is what a burst can exceed in-process.
      const burst = await startGateway(pki, { telemetry: { sink: { record: async () => {} } }, maxPendingHandshakes: 2 });
      after(() => burst.close());
      const devices = await Promise.all(Array.from({ length: 60 }, () => pki.newDevice({ writeFiles: false })));
      const shedBefore = burst.gateway.stats().shed.handshakes;
      // Their TCP connections are up before any ClientHello, as when the kernel backlog fills after an outage.
      const sockets = await Promise.all(devices.map(() => new Promise<net.Socket>((resolve) => {
        const s = net.connect(burst.port, '127.0.0.1', () => resolve(s));
        s.on('error', () => resolve(s));
      })));
      const first = await Promise.all(devices.map((d, i) => healthz(pki, burst.port, d, undefined, sockets[i])));
      const shed = first.filter((x) => x === 'shed').length;
      expect(first.filter((x) => x === 'other'), 'nothing but admitted or shed').to.have.length(0);
      expect(shed, 'a 60-connection burst over a bound of 2 sheds').to.be.greaterThan(0);
      expect(burst.gateway.stats().shed.handshakes - shedBefore).to.equal(shed);

      // Devices retry (sequentially here, as backoff would spread them): all get in.
      for (const [i, d] of devices.entries()) {
        if (first[i] === 'shed') expect(await healthz(pki, burst.port, d)).to.equal('ok');
      }
      await waitFor(() => burst.gateway.stats().pendingHandshakes === 0);
      expect(burst.gateway.stats().refused, 'no device was refused by admission').to.equal(0);
    });
  });

  describe('perSourceConnectionsPerSecond', function () {
    let gw: RunningGateway;
    before(async function () {
      gw = await startGateway(pki, { telemetry: { sink: { record: async () => {} } }, perSourceConnectionsPerSecond: 1, perSourceBurst: 3 });
    });
    after(async function () {
      await gw?.close();
    });

    it('refuses a source over its rate before the handshake while another source is admitted', async function () {
      for (let i = 0; i < 3; i++) expect(await healthz(pki, gw.port, good, '127.0.0.2'), `burst connection ${i + 1}`).to.equal('ok');
      expect(await healthz(pki, gw.port, good, '127.0.0.2')).to.equal('shed');
      expect(gw.gateway.stats().shed).to.deep.equal({ handshakes: 0, sourceRate: 1 });
      expect(gw.logger.find('gateway is shedding new connections (reconnect storm)')[0]?.fields)
        .to.include({ code: 'KAKUIN_E_SOURCE_RATE_LIMITED', remoteAddress: '127.0.0.2' });

      expect(await healthz(pki, gw.port, good, '127.0.0.3')).to.equal('ok');
      expect(await metricValue(gw, pki, 'kakuin_gateway_shed_connections_total', { reason: 'source_rate' })).to.equal(1);

      // The bucket refills at one connection per second.
      await sleep(1_100);
      expect(await healthz(pki, gw.port, good, '127.0.0.2')).to.equal('ok');
    });
  });

  it('refuses bad bounds with KAKUIN_E_CONFIG', function () {
    for (const bad of [{ maxPendingHandshakes: 0 }, { maxPendingHandshakes: 1.5 }, { perSourceConnectionsPerSecond: -1 }, { perSourceBurst: 0 }]) {
      expect(() => createDeviceGateway(gatewayOptions(pki, new MemoryLogger(), { telemetry: { sink: { record: async () => {} } }, ...bad })), JSON.stringify(bad))
        .to.throw().with.property('code', 'KAKUIN_E_CONFIG');
    }
  });
});
