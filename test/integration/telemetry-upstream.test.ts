/**
 * Both device paths — mTLS and legacy token — forward telemetry to the configured upstream the
 * same way: the verified identity in X-Kakuin-* headers, whatever the device sent in their place.
 */
import http from 'node:http';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { makeTempDir, opensslOk } from '../support/index.js';
import { request, startTestService, type TestService } from '../support/service.js';

interface Received { headers: http.IncomingHttpHeaders; body: string }

function curl(args: string[]): Promise<{ code: number; body: string }> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', '-m', '10', '-w', '\n%{http_code}', ...args]);
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.resume();
    child.on('close', () => {
      const cut = out.lastIndexOf('\n');
      resolve({ body: out.slice(0, cut), code: Number(out.slice(cut + 1)) });
    });
  });
}

describe('telemetry upstream forwarding (mTLS and legacy paths)', function () {
  this.timeout(60_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let upstream: http.Server;
  const received: Received[] = [];

  before(async () => {
    tmp = makeTempDir();
    upstream = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"stored":true}');
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const port = (upstream.address() as AddressInfo).port;
    svc = await startTestService({ env: {
      KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0',
      KAKUIN_GATEWAY_UPSTREAM_URL: `http://127.0.0.1:${port}/ingest`,
    } });
  });
  after(async () => {
    await svc?.stop();
    await new Promise<void>((r) => upstream.close(() => r()));
    tmp?.cleanup();
  });

  it('forwards both paths with the verified identity and strips spoofed identity headers', async () => {
    const api = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(svc.url, svc.rootPem, m, p, { token: svc.adminToken, ...o });
    const root = path.join(tmp.dir, 'root.pem');
    writeFileSync(root, svc.rootPem);
    const mfr = (await api('POST', '/api/v1/manufacturers', { body: { name: 'Upstream Works' } })).json.id;

    // mTLS device
    const dev = (await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: 'UP-1' } })).json.id;
    const key = path.join(tmp.dir, 'up.key');
    const csr = path.join(tmp.dir, 'up.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/serialNumber=UP-1', '-out', csr]);
    const issued = await api('POST', `/api/v1/devices/${dev}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
    const cert = path.join(tmp.dir, 'up.pem');
    writeFileSync(cert, issued.json.certificate);
    const viaMtls = await curl(['--cert', cert, '--key', key, '--cacert', root, '-H', 'Content-Type: application/json',
      '-H', 'X-Kakuin-Device-Id: someone-else', '--data', '{"path":"mtls"}', `${svc.service.gatewayUrl}/v1/telemetry`]);
    expect(viaMtls.code, viaMtls.body).to.equal(200);

    // legacy device
    const legacyDev = (await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: 'UP-2', identifiers: { imei: '356938035643809' } } })).json.id;
    const cai = (await api('POST', '/api/v1/legacy/common-auth-ids', { body: { name: 'up-line', manufacturerId: mfr } })).json.commonAuthId;
    const secret = (await api('POST', `/api/v1/devices/${legacyDev}/legacy-credentials`, { body: { commonAuthId: cai, uniqueId: '356938035643809' } })).json.authSecret;
    const tok = await request(svc.service.legacyUrl, svc.rootPem, 'POST', '/legacy/v1/token', { body: { commonAuthId: cai, uniqueId: '356938035643809', authSecret: secret } });
    expect(tok.status, tok.text).to.equal(200);
    const viaLegacy = await curl(['--cacert', root, '-H', 'Content-Type: application/json', '-H', `Authorization: Bearer ${tok.json.token}`,
      '-H', `X-Device-Id: ${legacyDev}`, '-H', 'X-Kakuin-Device-Id: someone-else', '--data', '{"path":"legacy"}', `${svc.service.legacyUrl}/legacy/v1/telemetry`]);
    expect(viaLegacy.code, viaLegacy.body).to.equal(200);

    const mtls = received.find((r) => r.body.includes('mtls'));
    const leg = received.find((r) => r.body.includes('legacy'));
    expect(mtls?.headers['x-kakuin-device-id']).to.equal(dev);
    expect(mtls?.headers['x-kakuin-certificate-serial']).to.equal(issued.json.serialHex);
    expect(leg?.headers['x-kakuin-device-id']).to.equal(legacyDev);
    expect(JSON.parse(mtls!.body)).to.deep.equal({ path: 'mtls' });
    expect(JSON.parse(leg!.body)).to.deep.equal({ path: 'legacy' });
  });
});
