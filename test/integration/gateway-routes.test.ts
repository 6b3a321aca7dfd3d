/**
 * `gateway.routes` and `gateway.tcp` as `kakuin serve` wires them from data/kakuin.json: a device
 * enrolled through the management API reaches a real HTTP upstream with `curl` (README "Putting
 * kakuin in front of your device API") and a TCP service through its TLS port (PROXY v2 header with
 * its device id); revoking it through the API cuts its open TCP connection.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { freePort, makeTempDir, opensslOk } from '../support/index.js';
import { request, startTestService, type TestService } from '../support/service.js';

/** A command run asynchronously: the gateway answering it lives in this process's event loop. */
function run(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('gateway routes and TCP front ends wired into kakuin serve from the config file', function () {
  this.timeout(60_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let upstream: http.Server;
  let service: net.Server;
  const seenHeaders: http.IncomingHttpHeaders[] = [];
  const headers: Buffer[] = [];
  const serviceSockets: net.Socket[] = [];
  let tcpPort: number;

  before(async () => {
    tmp = makeTempDir();
    upstream = http.createServer((req, res) => {
      seenHeaders.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url }));
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    service = net.createServer((s) => {
      serviceSockets.push(s);
      s.on('error', () => {});
      s.once('data', (b: Buffer) => {
        headers.push(b);
        s.write('ready\n');
      });
    });
    service.listen(0, '127.0.0.1');
    await once(service, 'listening');
    tcpPort = await freePort();
    const dataDir = path.join(tmp.dir, 'data');
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, 'kakuin.json'), JSON.stringify({
      gateway: {
        routes: [{ prefix: '/api', upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` }],
        tcp: [{ port: tcpPort, upstream: `127.0.0.1:${(service.address() as AddressInfo).port}` }],
      },
    }));
    svc = await startTestService({ dataDir, env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_GATEWAY_MQTT_PORT: '0' } });
  });
  after(async () => {
    await svc?.stop();
    upstream?.close();
    for (const s of serviceSockets) s.destroy();
    service?.close();
    tmp?.cleanup();
  });

  it('a device reaches the HTTP route with curl and the TCP service with its identity, and revocation cuts the TCP connection', async () => {
    const gw = svc.service.gateway.gateway;
    expect(gw.tcpAddresses()[0]?.port).to.equal(tcpPort);
    const api = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(svc.url, svc.rootPem, m, p, { token: svc.adminToken, ...o });
    const mfr = await api('POST', '/api/v1/manufacturers', { body: { name: 'Route Works' } });
    const dev = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr.json.id, serialNumber: 'RT-0001' } });
    const deviceId = dev.json.id as string;
    const key = path.join(tmp.dir, 'device.key');
    const csr = path.join(tmp.dir, 'device.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/serialNumber=RT-0001', '-out', csr]);
    const issued = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    const cert = path.join(tmp.dir, 'device.pem');
    const root = path.join(tmp.dir, 'root.pem');
    writeFileSync(cert, issued.json.certificate);
    writeFileSync(root, svc.rootPem);

    // The README's curl, with a spoofed identity header that must not arrive.
    const port = gw.address()!.port;
    const curl = await run('curl', ['-sS', '--max-time', '20', '--fail-with-body', '--cert', cert, '--key', key, '--cacert', root, '-H', 'X-Kakuin-Device-Id: someone-else',
      `https://localhost:${port}/api/settings`]);
    expect(curl.status, curl.stderr + curl.stdout).to.equal(0);
    expect(JSON.parse(curl.stdout)).to.deep.equal({ path: '/api/settings' });
    expect(seenHeaders.at(-1)!['x-kakuin-device-id']).to.equal(deviceId);

    const device = tls.connect({ host: '127.0.0.1', port: tcpPort, servername: 'localhost', ca: svc.rootPem, cert: issued.json.certificate, key: opensslOk(['pkey', '-in', key]) });
    device.on('error', () => {});
    await once(device, 'secureConnect');
    device.write('hello');
    await once(device, 'data');
    expect(headers[0].subarray(0, 12).toString('hex')).to.equal('0d0a0d0a000d0a515549540a');
    expect(headers[0].includes(Buffer.from(deviceId))).to.equal(true);
    expect(headers[0].subarray(-5).toString()).to.equal('hello');

    const closed = once(device, 'close');
    const t0 = Date.now();
    const revoked = await api('POST', `/api/v1/devices/${deviceId}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(revoked.status).to.equal(200);
    const result = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('timeout'), 5_000))]);
    expect(result).to.equal('closed');
    console.log(`      revoke (API) → TCP connection closed in ${Date.now() - t0} ms`);
  });
});
