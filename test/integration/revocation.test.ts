/**
 * The kill switch end to end: revoke, suspend, resume and retire through the management API, and
 * what independent verifiers see — `openssl ocsp` against kakuin's responder, `openssl verify
 * -crl_check` and `openssl crl` against its full and delta CRLs.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, makeTempDir, openssl, opensslAsync, opensslOk } from '../support/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';

async function httpGet(url: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const r = await fetch(url);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()), headers: r.headers };
}

describe('revocation: API, OCSP and CRLs checked with openssl', function () {
  this.timeout(60_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let ocspBase: string;
  let manufacturerId: string;
  const files = { root: '', issuing: '' };

  const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc.url, svc.rootPem, method, p, { token: svc.adminToken, ...options });

  /** A registered device with a certificate; returns its id, serial and the certificate file. */
  async function enrolledDevice(serialNumber: string): Promise<{ id: string; serialHex: string; certFile: string }> {
    const d = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber } });
    expect(d.status, d.text).to.equal(201);
    const key = path.join(tmp.dir, `${serialNumber}.key`);
    const csr = path.join(tmp.dir, `${serialNumber}.csr`);
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/serialNumber=${serialNumber}`, '-out', csr]);
    const r = await api('POST', `/api/v1/devices/${d.json.id}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
    expect(r.status, r.text).to.equal(201);
    const certFile = path.join(tmp.dir, `${serialNumber}.pem`);
    writeFileSync(certFile, r.json.certificate);
    return { id: d.json.id, serialHex: r.json.serialHex, certFile };
  }

  /** `openssl ocsp` as the relying party: the status line and whether the response verified. */
  async function ocspStatus(certFile: string, extra: string[] = []): Promise<{ status: string; verified: boolean; text: string }> {
    const r = await opensslAsync(['ocsp', '-issuer', files.issuing, '-cert', certFile, '-url', `${ocspBase}/ocsp`, '-CAfile', files.root, '-timeout', '10', ...extra]);
    const text = r.stdout + r.stderr;
    const m = new RegExp(`${certFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (\\w+)`).exec(text);
    return { status: m ? m[1] : `no status (${r.status}): ${text}`, verified: /Response verify OK/.test(text), text };
  }

  async function crl(kind: 'full' | 'delta'): Promise<{ file: string; der: Buffer }> {
    const r = await httpGet(`${ocspBase}/crl/device${kind === 'delta' ? '-delta' : ''}.crl`);
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.match(/application\/pkix-crl/);
    const file = path.join(tmp.dir, `device-${kind}-${Date.now()}-${Math.random().toString(36).slice(2)}.crl.pem`);
    writeFileSync(file, opensslOk(['crl', '-inform', 'DER', '-outform', 'PEM'], r.body));
    return { file, der: r.body };
  }

  /** Waits (≤ 10 s) until the served CRL of `kind` satisfies `ready` (its `openssl crl -text`); returns its file. */
  async function servedCrl(kind: 'full' | 'delta', ready: (text: string) => boolean): Promise<{ file: string; text: string }> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = await crl(kind);
      const text = opensslOk(['crl', '-in', c.file, '-noout', '-text']);
      if (ready(text)) return { file: c.file, text };
      if (Date.now() > deadline) throw new Error(`the ${kind} CRL never became ready; last:\n${text}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The part of `openssl crl -text` about one serial: its line and the extension lines after it. */
  function entryText(text: string, serialHex: string): string | undefined {
    const m = new RegExp(`Serial Number: ${serialHex}\\n((?:\\s{8,}.*\\n)*)`).exec(text);
    return m ? m[0] : undefined;
  }

  function crlNumber(file: string): number {
    return Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(opensslOk(['crl', '-in', file, '-noout', '-text']))?.[1]);
  }

  function verifyWithCrls(certFile: string, crlFiles: string[], deltas: boolean): { ok: boolean; text: string } {
    const args = ['verify', '-crl_check', '-CAfile', files.root, '-untrusted', files.issuing];
    if (deltas) args.push('-use_deltas', '-extended_crl');
    for (const f of crlFiles) args.push('-CRLfile', f);
    const r = openssl([...args, certFile]);
    return { ok: r.status === 0 && /: OK/.test(r.stdout), text: r.stdout + r.stderr };
  }

  before(async () => {
    tmp = makeTempDir();
    const port = await freePort();
    ocspBase = `http://127.0.0.1:${port}`;
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: String(port), KAKUIN_PUBLIC_HTTP_URL: ocspBase, KAKUIN_CRL_COALESCE_MS: '200' } });
    files.root = path.join(tmp.dir, 'root.pem');
    files.issuing = path.join(tmp.dir, 'issuing.pem');
    writeFileSync(files.root, svc.rootPem);
    const chain = await request(svc.url, svc.rootPem, 'GET', '/api/v1/ca/chain');
    writeFileSync(files.issuing, chain.text.split(/(?<=-----END CERTIFICATE-----\n)/)[0]);
    const m = await api('POST', '/api/v1/manufacturers', { body: { name: 'Revocation Works' } });
    manufacturerId = m.json.id;
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('a stolen device: good, then revoked with its reason in OCSP, the delta CRL and then the full CRL', async () => {
    const dev = await enrolledDevice('STOLEN-1');
    for (const extra of [[], ['-no_nonce']]) {
      const s = await ocspStatus(dev.certFile, extra);
      expect(s.status, s.text).to.equal('good');
      expect(s.verified, s.text).to.equal(true);
    }
    const baseFull = await crl('full');
    expect(verifyWithCrls(dev.certFile, [baseFull.file], false).ok).to.equal(true);

    const r = await api('POST', `/api/v1/certificates/${dev.serialHex.toLowerCase()}/revoke`, { body: { reason: 'keyCompromise', invalidityDate: new Date(Date.now() - 86_400_000).toISOString() } });
    expect(r.status, r.text).to.equal(200);
    expect(r.json).to.include({ status: 'revoked', reason: 'keyCompromise' });
    expect(r.json.revokedAt).to.be.a('string');

    // When the call has returned, the responder already answers revoked.
    for (const extra of [[], ['-no_nonce']]) {
      const s = await ocspStatus(dev.certFile, extra);
      expect(s.status, s.text).to.equal('revoked');
      expect(s.text).to.match(/Reason: keyCompromise/);
      expect(s.verified, s.text).to.equal(true);
    }

    const delta = await servedCrl('delta', (t) => /Key Compromise/.test(entryText(t, dev.serialHex) ?? ''));
    expect(crlNumber(delta.file)).to.be.greaterThan(crlNumber(baseFull.file));
    expect(verifyWithCrls(dev.certFile, [baseFull.file], true).ok, 'the old full CRL alone does not know it').to.equal(true);
    const withDelta = verifyWithCrls(dev.certFile, [baseFull.file, delta.file], true);
    expect(withDelta.ok, withDelta.text).to.equal(false);
    expect(withDelta.text).to.match(/certificate revoked/);

    const full = await api('POST', '/api/v1/crls/device', { body: { kind: 'full' } });
    expect(full.status, full.text).to.equal(201);
    const newFull = await servedCrl('full', (t) => entryText(t, dev.serialHex) !== undefined);
    const v = verifyWithCrls(dev.certFile, [newFull.file], false);
    expect(v.ok).to.equal(false);
    expect(v.text).to.match(/certificate revoked/);
    expect(entryText(newFull.text, dev.serialHex)).to.match(/Key Compromise/).and.to.match(/Invalidity Date/);
    expect(newFull.text).to.match(/Freshest CRL/);

    const again = await api('POST', `/api/v1/certificates/${dev.serialHex}/revoke`, { body: { reason: 'superseded' } });
    expect(again.status).to.equal(409);
    expect(again.json.code).to.equal('KAKUIN_E_CERTIFICATE_STATE');
    const audit = await api('GET', `/api/v1/audit-events?deviceId=${dev.id}&type=certificate.revoked`);
    expect(audit.json.events).to.have.length(1);
    expect(audit.json.events[0]).to.include({ actor: 'token:bootstrap', serialHex: dev.serialHex });
  });

  it('states the invalidityDate of a revocation in the OCSP answer as the CRL entry does (RFC 6960 §4.4.5), and none when the revocation gave none', async () => {
    const dev = await enrolledDevice('LEAKED-KEY-1');
    const plain = await enrolledDevice('LEAKED-KEY-2');
    const invalidity = new Date(Math.floor(Date.now() / 1000) * 1000 - 3 * 86_400_000);
    expect((await api('POST', `/api/v1/certificates/${dev.serialHex}/revoke`, { body: { reason: 'keyCompromise', invalidityDate: invalidity.toISOString() } })).status).to.equal(200);
    expect((await api('POST', `/api/v1/certificates/${plain.serialHex}/revoke`, { body: { reason: 'keyCompromise' } })).status).to.equal(200);
    const dateAfter = (text: string) => /Invalidity Date:\s*\n?\s*([A-Z][a-z]{2} +\d+ [\d:]+ \d{4} GMT)/.exec(text)?.[1];
    for (const extra of [['-resp_text'], ['-resp_text', '-no_nonce']]) {
      const s = await ocspStatus(dev.certFile, extra);
      expect(s.status, s.text).to.equal('revoked');
      expect(s.verified, s.text).to.equal(true);
      expect(s.text).to.match(/Response Single Extensions:/);
      expect(dateAfter(s.text), s.text).to.equal(invalidity.toUTCString().replace(/^\w+, (\d+) (\w+) (\d+) ([\d:]+) GMT$/, (_, d, m, y, t) => `${m} ${String(Number(d)).padStart(2, ' ')} ${t} ${y} GMT`));
      const none = await ocspStatus(plain.certFile, extra);
      expect(none.status, none.text).to.equal('revoked');
      expect(none.verified, none.text).to.equal(true);
      expect(none.text).to.not.match(/Invalidity Date/);
    }
    expect((await api('POST', '/api/v1/crls/device', { body: { kind: 'full' } })).status).to.equal(201);
    const full = await servedCrl('full', (t) => entryText(t, dev.serialHex) !== undefined && entryText(t, plain.serialHex) !== undefined);
    const ocspDate = dateAfter((await ocspStatus(dev.certFile, ['-resp_text'])).text);
    expect(dateAfter(entryText(full.text, dev.serialHex)!), 'the CRL entry and the OCSP answer say the same').to.equal(ocspDate);
    expect(entryText(full.text, plain.serialHex)).to.not.match(/Invalidity Date/);
  });

  it('a car in an underground car park: suspended (certificateHold), then resumed and good again', async () => {
    const dev = await enrolledDevice('PARKED-1');
    const s1 = await api('POST', `/api/v1/devices/${dev.id}/suspend`);
    expect(s1.status, s1.text).to.equal(200);
    expect(s1.json.device.status).to.equal('suspended');
    const held = await ocspStatus(dev.certFile);
    expect(held.status, held.text).to.equal('revoked');
    expect(held.text).to.match(/Reason: certificateHold/);
    const cert = await api('GET', `/api/v1/certificates/${dev.serialHex}`);
    expect(cert.json).to.include({ status: 'held', reason: 'certificateHold' });
    await servedCrl('delta', (t) => /Certificate Hold/.test(entryText(t, dev.serialHex) ?? ''));

    const s2 = await api('POST', `/api/v1/devices/${dev.id}/resume`);
    expect(s2.status, s2.text).to.equal(200);
    expect(s2.json.device.status).to.equal('active');
    for (const extra of [[], ['-no_nonce']]) {
      const s = await ocspStatus(dev.certFile, extra);
      expect(s.status, s.text).to.equal('good');
    }
    await servedCrl('delta', (t) => /Remove From CRL/.test(entryText(t, dev.serialHex) ?? ''));
  });

  it('revoke, suspend and retire also work on a device without a certificate, and terminal states stay terminal', async () => {
    const ids: string[] = [];
    for (const n of ['NOCERT-1', 'NOCERT-2', 'NOCERT-3']) {
      const d = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber: n } });
      ids.push(d.json.id);
    }
    const suspended = await api('POST', `/api/v1/devices/${ids[0]}/suspend`);
    expect(suspended.json.device.status).to.equal('suspended');
    const resumed = await api('POST', `/api/v1/devices/${ids[0]}/resume`);
    expect(resumed.json.device.status).to.equal('registered');
    expect((await api('POST', `/api/v1/devices/${ids[1]}/revoke`, { body: { reason: 'cessationOfOperation' } })).json.device.status).to.equal('revoked');
    expect((await api('POST', `/api/v1/devices/${ids[2]}/retire`)).json.device.status).to.equal('retired');
    for (const [id, action] of [[ids[1], 'resume'], [ids[1], 'suspend'], [ids[2], 'resume'], [ids[2], 'revoke']]) {
      const r = await api('POST', `/api/v1/devices/${id}/${action}`);
      expect(r.status, `${action}`).to.equal(409);
      expect(r.json.code).to.equal('KAKUIN_E_DEVICE_STATE');
    }
    // A revoked device gets no new certificate.
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(tmp.dir, 'x.key'), '-subj', '/serialNumber=NOCERT-2', '-out', path.join(tmp.dir, 'x.csr')]);
    const issue = await api('POST', `/api/v1/devices/${ids[1]}/certificates`, { body: opensslOk(['req', '-in', path.join(tmp.dir, 'x.csr')]), contentType: 'application/pkcs10' });
    expect(issue.status).to.equal(409);
    expect(issue.json.code).to.equal('KAKUIN_E_DEVICE_STATE');
  });

  it('revoking a device revokes all its certificates, with one audit event naming the token', async () => {
    const dev = await enrolledDevice('FLEET-9');
    const r = await api('POST', `/api/v1/devices/${dev.id}/revoke`, { body: { reason: 'affiliationChanged' } });
    expect(r.status, r.text).to.equal(200);
    expect(r.json.device.status).to.equal('revoked');
    expect((await api('GET', `/api/v1/certificates/${dev.serialHex}`)).json).to.include({ status: 'revoked', reason: 'affiliationChanged' });
    const s = await ocspStatus(dev.certFile);
    expect(s.status).to.equal('revoked');
    expect(s.text).to.match(/Reason: affiliationChanged/);
    const events = await api('GET', `/api/v1/audit-events?deviceId=${dev.id}&type=device.revoked`);
    expect(events.json.events).to.have.length(1);
    expect(events.json.events[0].actor).to.equal('token:bootstrap');
  });

  it('refuses bad revocation requests with stable codes and changes nothing', async () => {
    const dev = await enrolledDevice('BADREV-1');
    const cases: [string, object, number, string][] = [
      [`/api/v1/certificates/${dev.serialHex}/revoke`, { reason: 'certificateHold' }, 400, 'KAKUIN_E_VALIDATION'],
      [`/api/v1/certificates/${dev.serialHex}/revoke`, { reason: 'stolen' }, 400, 'KAKUIN_E_VALIDATION'],
      [`/api/v1/certificates/${dev.serialHex}/revoke`, { reason: 'keyCompromise', invalidityDate: '2999-01-01T00:00:00Z' }, 400, 'KAKUIN_E_VALIDATION'],
      ['/api/v1/certificates/ZZ/revoke', { reason: 'keyCompromise' }, 400, 'KAKUIN_E_VALIDATION'],
      ['/api/v1/certificates/7F0000000000000000000000000000AA/revoke', {}, 404, 'KAKUIN_E_CERTIFICATE_NOT_FOUND'],
      ['/api/v1/devices/00000000-0000-4000-8000-000000000000/revoke', {}, 404, 'KAKUIN_E_DEVICE_NOT_FOUND'],
    ];
    for (const [p, body, status, code] of cases) {
      const r = await api('POST', p, { body });
      expect(r.status, `${p} ${JSON.stringify(body)}`).to.equal(status);
      expect(r.json.code).to.equal(code);
    }
    const unauth = await request(svc.url, svc.rootPem, 'POST', `/api/v1/certificates/${dev.serialHex}/revoke`, { body: {} });
    expect(unauth.status).to.equal(401);
    expect((await api('GET', `/api/v1/certificates/${dev.serialHex}`)).json.status).to.equal('good');
    expect((await ocspStatus(dev.certFile)).status).to.equal('good');
  });
});
