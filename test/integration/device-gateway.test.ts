/**
 * The device gateway as `kakuin serve` wires it: a device enrolled through the management API
 * connects with `curl --cert --key`, sends telemetry, and is shut out once it is revoked.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { makeTempDir, opensslOk } from '../support/index.js';
import { request, startTestService, type TestService } from '../support/service.js';

/** curl without blocking the event loop (the gateway runs in this process). */
function curl(args: string[]): Promise<{ exit: number; body: string; code: number }> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', '-m', '10', '-w', '\n%{http_code}', ...args]);
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.resume();
    child.on('close', (exit) => {
      const cut = out.lastIndexOf('\n');
      resolve({ exit: exit ?? -1, body: out.slice(0, cut), code: Number(out.slice(cut + 1)) });
    });
  });
}

describe('device gateway wired into kakuin serve', function () {
  this.timeout(60_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0' } });
  });
  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('admits an enrolled device over mTLS, records its telemetry, and refuses it after revocation', async () => {
    const api = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(svc.url, svc.rootPem, m, p, { token: svc.adminToken, ...o });
    const mfr = await api('POST', '/api/v1/manufacturers', { body: { name: 'Gateway Works' } });
    const dev = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr.json.id, serialNumber: 'GW-0001' } });
    const key = path.join(tmp.dir, 'gw.key');
    const csr = path.join(tmp.dir, 'gw.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/serialNumber=GW-0001', '-out', csr]);
    const issued = await api('POST', `/api/v1/devices/${dev.json.id}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    const cert = path.join(tmp.dir, 'gw.pem');
    const root = path.join(tmp.dir, 'root.pem');
    writeFileSync(cert, issued.json.certificate);
    writeFileSync(root, svc.rootPem);

    const gw = svc.service.gatewayUrl;
    const send = () => curl(['--cert', cert, '--key', key, '--cacert', root, '-H', 'Content-Type: application/json',
      '-H', 'X-Kakuin-Device-Id: spoofed', '--data', '{"temperature":21.5}', `${gw}/v1/telemetry`]);
    const ok = await send();
    expect(ok.exit, ok.body).to.equal(0);
    expect(ok.code, ok.body).to.be.oneOf([200, 202]);
    const recorded = readFileSync(path.join(svc.dataDir, 'telemetry', 'telemetry.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(recorded.at(-1)).to.deep.include({ deviceId: dev.json.id, serialHex: issued.json.serialHex, data: { temperature: 21.5 } });

    const noCert = await curl(['--cacert', root, `${gw}/v1/telemetry`]);
    expect(noCert.code, 'no client certificate: no HTTP response').to.equal(0);

    const ready = await request(svc.url, svc.rootPem, 'GET', '/readyz');
    expect(ready.status).to.equal(200);
    expect(ready.json).to.include({ ready: true, statusSource: 'feed' });

    const revoked = await api('POST', `/api/v1/devices/${dev.json.id}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(revoked.status).to.equal(200);
    const refused = await send();
    expect(refused.code, 'a revoked device gets no HTTP response').to.equal(0);
    expect(refused.exit).to.not.equal(0);
  });

  it('admits at once a device suspended and resumed before its first certificate, then issued one (no stale "device registered" refusal)', async () => {
    const api = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(svc.url, svc.rootPem, m, p, { token: svc.adminToken, ...o });
    const mfr = await api('POST', '/api/v1/manufacturers', { body: { name: 'Gateway Works Resumed' } });
    const dev = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr.json.id, serialNumber: 'GW-SR-1' } });
    expect((await api('POST', `/api/v1/devices/${dev.json.id}/suspend`)).status).to.equal(200);
    expect((await api('POST', `/api/v1/devices/${dev.json.id}/resume`)).status).to.equal(200);
    const key = path.join(tmp.dir, 'gwsr.key');
    const csr = path.join(tmp.dir, 'gwsr.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/serialNumber=GW-SR-1', '-out', csr]);
    // The gateway learns "registered" from the resume's feed entry before the certificate exists.
    await svc.service.gateway.gateway.pokeFeed();
    const issued = await api('POST', `/api/v1/devices/${dev.json.id}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    const cert = path.join(tmp.dir, 'gwsr.pem');
    const root = path.join(tmp.dir, 'root.pem');
    writeFileSync(cert, issued.json.certificate);
    writeFileSync(root, svc.rootPem);
    const r = await curl(['--cert', cert, '--key', key, '--cacert', root, '-H', 'Content-Type: application/json', '--data', '{"t":1}', `${svc.service.gatewayUrl}/v1/telemetry`]);
    expect(r.code, r.body).to.be.oneOf([200, 202]);
  });
});
