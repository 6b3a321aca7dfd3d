/**
 * The raw TCP front end (gateway.tcp) with real peers: devices open real TLS connections with device
 * certificates; behind the gateway a TCP server reads the PROXY v2 header with two libraries
 * (`proxy-protocol-js` for the whole header and its TLV bytes, `@balena/proxy-protocol-parser` for
 * the addresses, independently) and checks every TLV, then echoes; and a real HAProxy 2.6 with
 * `accept-proxy` reads the address (HAProxy of this version cannot read custom TLVs).
 */
import balena from '@balena/proxy-protocol-parser';
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { V2ProxyProtocol } from 'proxy-protocol-js';
import { freePort } from '../support/index.js';
import { startGateway, sleep, type RunningGateway } from './harness.js';
import { createGatewayPki, GATEWAY_HOST, type GatewayPki, type TestDevice } from './pki.js';

interface Received { header: V2ProxyProtocol; raw: Buffer; socket: net.Socket; closed: Promise<unknown> }

/** TLVs of a PROXY v2 header (spec §2.2.7): type, 2-byte length, value; repeated to the end. */
function tlvs(data: Uint8Array): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  const b = Buffer.from(data);
  for (let i = 0; i < b.length;) {
    const len = b.readUInt16BE(i + 1);
    expect(i + 3 + len, 'TLV inside the header').to.be.at.most(b.length);
    expect(out.has(b[i]), `TLV 0x${b[i].toString(16)} once`).to.equal(false);
    out.set(b[i], b.subarray(i + 3, i + 3 + len));
    i += 3 + len;
  }
  return out;
}

describe('gateway-auth: raw TCP front end with a PROXY v2 header', function () {
  this.timeout(20_000);
  let pki: GatewayPki;
  let gw: RunningGateway;
  let upstream: net.Server;
  const received: Received[] = [];
  let haproxy: ChildProcess | undefined;
  let haproxyPort = 0;
  let downPort = 0;
  const traffic: { deviceId: string; messages: number; bytes: number }[] = [];

  before(async function () {
    pki = await createGatewayPki();
    upstream = net.createServer((socket) => {
      let buf = Buffer.alloc(0);
      const closed = once(socket, 'close');
      socket.on('error', () => {});
      const onData = (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length < 16) return;
        const total = 16 + buf.readUInt16BE(14);
        if (buf.length < total) return;
        socket.off('data', onData);
        const raw = buf.subarray(0, total);
        received.push({ header: V2ProxyProtocol.parse(raw), raw, socket, closed });
        const rest = buf.subarray(total);
        // Echo what follows the header.
        if (rest.length > 0) socket.write(rest);
        socket.on('data', (d: Buffer) => socket.write(d));
      };
      socket.on('data', onData);
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    haproxyPort = await freePort();
    downPort = await freePort();
    gw = await startGateway(pki, {
      telemetry: { sink: { record: async () => {} } },
      tcp: [
        { port: 0, upstream: `127.0.0.1:${(upstream.address() as net.AddressInfo).port}` },
        { port: 0, upstream: `127.0.0.1:${haproxyPort}` },
        { port: 0, upstream: `127.0.0.1:${downPort}` },
      ],
      activity: {
        admitted() {}, refused() {}, closed() {}, tokenResult() {}, firmware() {},
        traffic(deviceId, messages, bytes) { traffic.push({ deviceId, messages, bytes }); },
      },
    });
  });

  after(async function () {
    if (haproxy !== undefined && haproxy.exitCode === null) {
      const exited = once(haproxy, 'exit');
      haproxy.kill('SIGTERM');
      await exited;
    }
    await gw?.close();
    upstream?.close();
    for (const r of received) r.socket.destroy();
    await pki?.cleanup();
  });

  const tcpPort = (i = 0) => gw.gateway.tcpAddresses()[i]!.port;

  async function connect(d: TestDevice, o: { port?: number; session?: Buffer; maxVersion?: tls.SecureVersion; onSession?: (b: Buffer) => void } = {}): Promise<tls.TLSSocket> {
    const s = tls.connect({
      host: '127.0.0.1', port: o.port ?? tcpPort(), servername: GATEWAY_HOST, ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem,
      ...(o.session !== undefined && { session: o.session }), ...(o.maxVersion !== undefined && { maxVersion: o.maxVersion }),
    });
    s.on('error', () => {});
    if (o.onSession !== undefined) s.on('session', o.onSession);
    await once(s, 'secureConnect');
    return s;
  }

  async function nextReceived(count: number): Promise<Received> {
    const until = Date.now() + 5_000;
    while (received.length <= count && Date.now() < until) await sleep(5);
    expect(received.length, 'a connection reached the upstream').to.be.above(count);
    return received[count];
  }

  function echo(s: tls.TLSSocket, text: string): Promise<string> {
    return new Promise((resolve) => {
      let got = '';
      const onData = (c: Buffer) => {
        got += c.toString();
        if (got.length >= text.length) {
          s.off('data', onData);
          resolve(got);
        }
      };
      s.on('data', onData);
      s.write(text);
    });
  }

  function checkHeader(r: Received, s: tls.TLSSocket, d: TestDevice, client: number, authority = true): void {
    const h = r.header;
    expect(h.command).to.equal(1); // PROXY
    expect(h.transportProtocol).to.equal(1); // STREAM
    const addr = h.proxyAddress as { sourceAddress: { address: number[] }; sourcePort: number; destinationAddress: { address: number[] }; destinationPort: number };
    expect([...addr.sourceAddress.address]).to.deep.equal([127, 0, 0, 1]);
    expect(addr.sourcePort).to.equal(s.localPort);
    expect(addr.destinationPort).to.equal(tcpPort());
    // A second, independent decoder agrees on the addresses.
    expect(balena.v2_decode(r.raw)).to.deep.include({ remoteAddress: '127.0.0.1', remotePort: s.localPort, localAddress: '127.0.0.1', localPort: tcpPort() });
    const t = tlvs(h.data!);
    expect([...t.keys()].sort((a, b) => a - b)).to.deep.equal([...(authority ? [0x02] : []), 0x20, 0xe0, 0xe1, 0xe2]);
    if (authority) expect(t.get(0x02)!.toString()).to.equal(GATEWAY_HOST);
    const ssl = t.get(0x20)!;
    expect(ssl[0], 'PP2_TYPE_SSL client bits').to.equal(client);
    expect(ssl.readUInt32BE(1), 'verify: 0 = verified').to.equal(0);
    const sub = tlvs(ssl.subarray(5));
    expect([...sub.keys()].sort((a, b) => a - b)).to.deep.equal([0x21, 0x23]);
    expect(sub.get(0x21)!.toString()).to.equal(s.getProtocol());
    expect(sub.get(0x23)!.toString()).to.equal(s.getCipher().standardName);
    expect(t.get(0xe0)!.toString('utf8')).to.equal(d.deviceId);
    expect(t.get(0xe1)!.toString()).to.equal(d.cert.serialHex.toUpperCase()).and.match(/^[0-9A-F]+$/);
    expect(t.get(0xe2)!.toString()).to.equal('device');
  }

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`${version}: forwards the device's bytes after a PROXY v2 header with its address, PP2_TYPE_SSL (CERT_CONN) and kakuin's TLVs`, async function () {
      const d = await pki.newDevice();
      const n = received.length;
      const s = await connect(d, { maxVersion: version });
      expect(s.getProtocol()).to.equal(version);
      expect(await echo(s, 'hello, service')).to.equal('hello, service');
      const r = await nextReceived(n);
      // PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS
      checkHeader(r, s, d, 0x07);
      s.end();
    });

    it(`${version}: a resumed session says PP2_CLIENT_CERT_SESS without PP2_CLIENT_CERT_CONN`, async function () {
      const d = await pki.newDevice();
      let session: Buffer | undefined;
      const first = await connect(d, { maxVersion: version, onSession: (b) => { session = b; } });
      await echo(first, 'one');
      const until = Date.now() + 2_000;
      while (session === undefined && Date.now() < until) await sleep(5);
      first.end();
      expect(session, 'a session to resume').to.not.equal(undefined);
      const n = received.length;
      const s = await connect(d, { session, maxVersion: version });
      expect(s.isSessionReused(), 'resumed').to.equal(true);
      expect(await echo(s, 'two')).to.equal('two');
      // Node reports no SNI host name on a resumed TLS 1.2 session, so no PP2_TYPE_AUTHORITY there.
      checkHeader(await nextReceived(n), s, d, 0x05, version === 'TLSv1.3');
      s.end();
    });
  }

  it('cuts a revoked device\'s open TCP connection at both ends and refuses its next one before the upstream hears of it', async function () {
    const d = await pki.newDevice();
    const n = received.length;
    const s = await connect(d);
    await echo(s, 'alive');
    const r = await nextReceived(n);
    const closed = once(s, 'close');
    const t0 = Date.now();
    await pki.revoke(d);
    await gw.gateway.pokeFeed();
    await Promise.all([closed, r.closed]);
    const ms = Date.now() - t0;
    expect(ms).to.be.below(5_000);
    console.log(`      revoke → TCP connection cut in ${ms} ms`);
    const before = received.length;
    const again = tls.connect({ host: '127.0.0.1', port: tcpPort(), servername: GATEWAY_HOST, ca: pki.root.pem, cert: d.cert.pem, key: d.cert.key.keyPem });
    again.on('error', () => {});
    await once(again, 'close');
    await sleep(100);
    expect(received.length, 'no header reached the upstream').to.equal(before);
    expect(gw.logger.find('gateway refused a device connection').at(-1)?.fields).to.include({ deviceId: d.deviceId, frontEnd: 'tcp' });
  });

  it('closes the device connection when the upstream cannot be reached, and reports the device\'s bytes as activity', async function () {
    const d = await pki.newDevice();
    const before = gw.gateway.stats().tcp!.upstreamErrors;
    const s = await connect(d, { port: tcpPort(2) });
    s.write('lost');
    await once(s, 'close');
    expect(gw.gateway.stats().tcp!.upstreamErrors).to.equal(before + 1);
    expect(gw.logger.find('tcp gateway cannot reach its upstream').length).to.be.at.least(1);
    const e = await pki.newDevice();
    const ok = await connect(e);
    await echo(ok, 'x'.repeat(1000));
    ok.end();
    await once(ok, 'close');
    const until = Date.now() + 2_000;
    while (!traffic.some((t) => t.deviceId === e.deviceId) && Date.now() < until) await sleep(10);
    const mine = traffic.filter((t) => t.deviceId === e.deviceId);
    expect(mine.reduce((n, t) => n + t.bytes, 0)).to.equal(1000);
  });

  it('HAProxy 2.6 with accept-proxy reads the device\'s address (and the authority TLV) from the header', async function () {
    if (spawnSync('haproxy', ['-v']).error) this.skip();
    const dir = path.join(pki.dir, 'haproxy');
    spawnSync('mkdir', ['-p', dir]);
    const cfg = path.join(dir, 'haproxy.cfg');
    writeFileSync(cfg, `
global
  pidfile ${dir}/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 5s
  timeout server 5s
frontend devices
  bind 127.0.0.1:${haproxyPort} accept-proxy
  http-request return status 200 content-type text/plain lf-string "src=%[src] port=%[src_port] authority=%[fc_pp_authority]\\n"
`);
    const check = spawnSync('haproxy', ['-c', '-f', cfg], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).to.equal(0);
    haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
    const d = await pki.newDevice();
    let answer = '';
    const until = Date.now() + 10_000;
    while (!answer.includes('src=') && Date.now() < until) {
      const s = await connect(d, { port: tcpPort(1) });
      const localPort = s.localPort;
      answer = await new Promise<string>((resolve) => {
        let got = '';
        s.on('data', (c: Buffer) => { got += c.toString(); });
        s.on('close', () => resolve(`${got}|port=${localPort}`));
        s.write('GET / HTTP/1.1\r\nHost: service\r\nConnection: close\r\n\r\n');
      });
      if (!answer.includes('src=')) await sleep(100);
    }
    const [response, local] = answer.split('|');
    expect(response).to.match(/^HTTP\/1\.1 200/);
    expect(response).to.include(`src=127.0.0.1 ${local} authority=${GATEWAY_HOST}`);
  });
});
