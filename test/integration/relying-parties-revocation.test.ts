/**
 * What relying parties that only follow the certificates' own URLs see (issue 16): an OCSP URL on
 * the intermediates, answered by the root's delegated responder; a CN for brokers that need one;
 * OCSP answers whose lifetime is `ocsp.validityMinutes`; a forced CRL served the moment the call
 * returns, with ETag / Last-Modified / 304 and a max-age bounded by the CRL schedule. Checked with
 * openssl and plain HTTP against a real service.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, makeTempDir, openssl, opensslAsync, opensslOk } from '../support/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';
import { apiAs, newFactory, opensslCsr, type Factory } from '../enrollment/support.js';

describe('relying parties: intermediates answer OCSP, device CNs, OCSP validity in minutes, CRLs served when made', function () {
  this.timeout(60_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let base: string;
  let factory: Factory;
  const files = { root: '', issuing: '' };

  const admin = (method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc.url, svc.rootPem, method, p, { token: svc.adminToken, ...options });

  before(async () => {
    tmp = makeTempDir();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const configFile = path.join(tmp.dir, 'kakuin.json');
    // Default CN: the device id; the `camera` profile names the serial number instead.
    writeFileSync(configFile, JSON.stringify({
      ca: { device: { commonName: 'deviceId' }, profiles: { camera: { validityDays: 30, commonName: 'serialNumber' }, plain: { validityDays: 30, commonName: 'none' } } },
      crl: { fullRebuildMinutes: 30 },
    }));
    svc = await startTestService({
      env: {
        KAKUIN_CONFIG: configFile, KAKUIN_OCSP_PORT: String(port), KAKUIN_PUBLIC_HTTP_URL: base, KAKUIN_OCSP_VALIDITY_MINUTES: '2',
        KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0', KAKUIN_CRL_COALESCE_MS: '3000',
      },
    });
    files.root = path.join(tmp.dir, 'root.pem');
    files.issuing = path.join(tmp.dir, 'issuing.pem');
    writeFileSync(files.root, svc.rootPem);
    const chain = await request(svc.url, svc.rootPem, 'GET', '/api/v1/ca/chain');
    writeFileSync(files.issuing, chain.text.split(/(?<=-----END CERTIFICATE-----\n)/)[0]);
    factory = await newFactory(svc, 'Relying Works');
    const set = await admin('POST', `/api/v1/manufacturers/${factory.manufacturerId}/profiles`, { body: { profiles: ['device', 'camera', 'plain'] } });
    expect(set.status, set.text).to.equal(200);
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  async function enroll(serialNumber: string, profile?: string): Promise<{ deviceId: string; serialHex: string; certFile: string }> {
    const station = apiAs(svc, factory.apiKey);
    const imp = await station('POST', '/api/v1/devices/import', { body: [{ serialNumber }] });
    expect(imp.status, imp.text).to.equal(201);
    const csr = opensslCsr(tmp.dir, serialNumber, `/serialNumber=${serialNumber}`);
    const r = await apiAs(svc, factory.apiKey)('POST', '/api/v1/enroll', { body: { serialNumber, csr: csr.csrPem, ...(profile && { profile }) } });
    expect(r.status, r.text).to.equal(201);
    const certFile = path.join(tmp.dir, `${serialNumber}.pem`);
    writeFileSync(certFile, r.json.certificate);
    return { deviceId: r.json.deviceId, serialHex: r.json.serialHex, certFile };
  }

  it('the device CA certificate names an OCSP URL, and the root\'s delegated responder there answers good for it', async () => {
    const url = opensslOk(['x509', '-in', files.issuing, '-noout', '-ocsp_uri']).trim();
    expect(url).to.equal(`${base}/ocsp`);
    const r = await opensslAsync(['ocsp', '-issuer', files.root, '-cert', files.issuing, '-url', url, '-CAfile', files.root, '-timeout', '10']);
    const text = r.stdout + r.stderr;
    expect(text).to.match(/Response verify OK/);
    expect(text).to.match(new RegExp(`${files.issuing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: good`));
    // The responder is delegated (its own certificate, issued by the root), not the root key itself.
    const resp = await opensslAsync(['ocsp', '-issuer', files.root, '-cert', files.issuing, '-url', url, '-CAfile', files.root, '-resp_text', '-timeout', '10']);
    expect(resp.stdout).to.match(/Subject: .*OCSP Responder \(root\)/);
  });

  it('a device certificate verifies through root → device CA (now with an OCSP URL) with openssl verify', () => {
    // Chains are unchanged in shape: root → device CA (now with an OCSP URL) → device.
    return enroll('RP-VERIFY').then((d) => {
      const v = openssl(['verify', '-CAfile', files.root, '-untrusted', files.issuing, d.certFile]);
      expect(v.status, v.stdout + v.stderr).to.equal(0);
    });
  });

  it('ca.device.commonName puts the device id in the CN; a profile may name the serial number or nothing', async () => {
    const byId = await enroll('RP-CN-1');
    expect(opensslOk(['x509', '-in', byId.certFile, '-noout', '-subject', '-nameopt', 'RFC2253'])).to.include(`CN=${byId.deviceId}`);
    const bySerial = await enroll('RP-CN-2', 'camera');
    expect(opensslOk(['x509', '-in', bySerial.certFile, '-noout', '-subject', '-nameopt', 'RFC2253'])).to.match(/CN=RP-CN-2/);
    const none = await enroll('RP-CN-3', 'plain');
    const subject = opensslOk(['x509', '-in', none.certFile, '-noout', '-subject', '-nameopt', 'RFC2253']);
    expect(subject).to.not.match(/CN=/);
    expect(subject).to.match(/serialNumber=RP-CN-3/);
  });

  it('OCSP answers live ocsp.validityMinutes (2 min here) and a GET answer\'s max-age never reaches past nextUpdate', async () => {
    const d = await enroll('RP-OCSP-1');
    const reqFile = path.join(tmp.dir, 'rp-ocsp-1.req');
    opensslOk(['ocsp', '-issuer', files.issuing, '-cert', d.certFile, '-reqout', reqFile, '-no_nonce']);
    const der = opensslOk(['base64', '-A', '-in', reqFile]).trim();
    const r = await fetch(`${base}/ocsp/${encodeURIComponent(der)}`);
    expect(r.status).to.equal(200);
    const body = Buffer.from(await r.arrayBuffer());
    const respFile = path.join(tmp.dir, 'rp-ocsp-1.resp');
    writeFileSync(respFile, body);
    const text = opensslOk(['ocsp', '-respin', respFile, '-resp_text', '-noverify']);
    const thisUpdate = Date.parse(/This Update: (.*)/.exec(text)![1]);
    const nextUpdate = Date.parse(/Next Update: (.*)/.exec(text)![1]);
    expect(nextUpdate - thisUpdate).to.equal(120_000);
    const maxAge = Number(/max-age=(\d+)/.exec(r.headers.get('cache-control') ?? '')![1]);
    expect(maxAge).to.be.at.most(Math.ceil((nextUpdate - Date.now()) / 1000)).and.at.most(120);
  });

  it('a forced CRL is what the URL serves when the call returns, carries its number, and answers 304 to its ETag and date', async () => {
    const url = `${base}/crl/device.crl`;
    // Prime the listener's cache with the current CRL, so a stale answer would show.
    const before = await fetch(url);
    expect(before.status).to.equal(200);
    const forced = await admin('POST', '/api/v1/crls/device', { body: { kind: 'full' } });
    expect(forced.status, forced.text).to.equal(201);
    expect(forced.json.number).to.match(/^\d+$/);
    const after = await fetch(url);
    const der = Buffer.from(await after.arrayBuffer());
    const crlFile = path.join(tmp.dir, 'forced.crl');
    writeFileSync(crlFile, der);
    const number = /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(opensslOk(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']))![1];
    expect(number).to.equal(forced.json.number);
    expect(after.headers.get('etag')).to.not.equal(before.headers.get('etag'));

    const etag = after.headers.get('etag')!;
    const lastModified = after.headers.get('last-modified')!;
    expect(etag).to.match(/^"[0-9a-f]{40}"$/);
    expect(Date.parse(lastModified)).to.equal(Date.parse(forced.json.thisUpdate));
    // Strong and stable per CRL number: the same CRL gives the same ETag.
    expect((await fetch(url)).headers.get('etag')).to.equal(etag);
    const byTag = await fetch(url, { headers: { 'If-None-Match': etag } });
    expect(byTag.status).to.equal(304);
    expect(byTag.headers.get('etag')).to.equal(etag);
    expect((await fetch(url, { headers: { 'If-None-Match': `"other", W/${etag}` } })).status).to.equal(304);
    expect((await fetch(url, { headers: { 'If-None-Match': '"other"' } })).status).to.equal(200);
    expect((await fetch(url, { headers: { 'If-Modified-Since': lastModified } })).status).to.equal(304);
    expect((await fetch(url, { headers: { 'If-Modified-Since': new Date(Date.parse(lastModified) - 1000).toUTCString() } })).status).to.equal(200);
    // If-None-Match decides when both are sent (RFC 9110 §13.2.2).
    expect((await fetch(url, { headers: { 'If-None-Match': '"other"', 'If-Modified-Since': lastModified } })).status).to.equal(200);

    // max-age: no later than the next scheduled full CRL (crl.fullRebuildMinutes 30), nor nextUpdate.
    const fullAge = Number(/max-age=(\d+)/.exec(after.headers.get('cache-control')!)![1]);
    expect(fullAge).to.be.greaterThan(0).and.at.most(30 * 60);
    // A delta can be replaced within crl.coalesceMs (3 s here) of any revocation.
    const delta = await fetch(`${base}/crl/device-delta.crl`);
    expect(delta.status).to.equal(200);
    expect(Number(/max-age=(\d+)/.exec(delta.headers.get('cache-control')!)![1])).to.be.at.most(3);
  });
});
