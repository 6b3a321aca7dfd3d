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

  function newKey(name: string): string {
    const file = path.join(tmp.dir, `${name}.key`);
    opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
    return file;
  }

  function certOf(file: string) {
    return parseCertificate(fromPem(readFileSync(file, 'utf8'), 'CERTIFICATE')[0]);
  }

  let station: { certFile: string; keyFile: string };
  async function stationCertificate() {
    if (station) return station;
    const { csrPem, keyFile } = opensslCsr(tmp.dir, 'station', '/CN=line-1');
    const r = await apiAs(svc, svc.adminToken)('POST', `/api/v1/stations/${a.stationId}/certificate`, { body: { csr: csrPem } });
    expect(r.status, r.text).to.equal(201);
    const certFile = path.join(tmp.dir, 'station.pem');
    writeFileSync(certFile, r.json.certificate);
    station = { certFile, keyFile };
    return station;
  }

  it('ir with a MAC secret: the certificate and, in caPubs, the root (openssl -cacertsout)', async () => {
    const { reference, secret } = await secretFor('CMP-0002');
    const key = newKey('ir');
    const out = path.join(tmp.dir, 'ir.pem');
    const caPubs = path.join(tmp.dir, 'ir-capubs.pem');
    const r = await cmp(['-cmd', 'ir', '-ref', reference, '-secret', `pass:${secret}`, '-recipient', '/CN=kakuin', '-newkey', key, '-subject', '/serialNumber=CMP-0002', '-certout', out, '-cacertsout', caPubs]);
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    expect(certOf(out).subject.attributes.find((x) => x.type === 'serialNumber')?.value).to.equal('CMP-0002');
    expect(readFileSync(caPubs, 'utf8')).to.include(svc.rootPem.trim().split('\n')[1]);
  });

  it('a MAC secret serves one transaction: a second ir with it is refused notAuthorized', async () => {
    const { reference, secret } = await secretFor('CMP-0006');
    const key = newKey('once');
    const first = await cmp(['-cmd', 'ir', '-ref', reference, '-secret', `pass:${secret}`, '-recipient', '/CN=kakuin', '-newkey', key, '-subject', '/serialNumber=CMP-0006', '-certout', path.join(tmp.dir, 'once.pem')]);
    expect(first.status, first.stderr).to.equal(0);
    const again = await cmp(['-cmd', 'ir', '-ref', reference, '-secret', `pass:${secret}`, '-recipient', '/CN=kakuin', '-newkey', key, '-subject', '/serialNumber=CMP-0006', '-certout', path.join(tmp.dir, 'once2.pem'), '-unprotected_errors']);
    expect(again.status).to.not.equal(0);
    expect(again.stderr + again.stdout).to.match(/notAuthorized|KAKUIN_E_CMP_SECRET_UNKNOWN/);
  });

  it('cr and p10cr signed with the station certificate; the signed answer verifies to the root (-trusted)', async () => {
    const st = await stationCertificate();
    const key = newKey('cr');
    const out = path.join(tmp.dir, 'cr.pem');
    const r = await cmp(['-cmd', 'cr', '-cert', st.certFile, '-key', st.keyFile, '-trusted', rootFile, '-newkey', key, '-subject', '/serialNumber=CMP-0003', '-certout', out]);
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    expect(certOf(out).subject.attributes.find((x) => x.type === 'serialNumber')?.value).to.equal('CMP-0003');
    const { csrFile } = opensslCsr(tmp.dir, 'p10s', '/serialNumber=CMP-0004');
    const out2 = path.join(tmp.dir, 'p10s.pem');
    const p = await cmp(['-cmd', 'p10cr', '-cert', st.certFile, '-key', st.keyFile, '-trusted', rootFile, '-csr', csrFile, '-certout', out2]);
    expect(p.status, p.stderr + p.stdout).to.equal(0);
    expect(certOf(out2).subject.attributes.find((x) => x.type === 'serialNumber')?.value).to.equal('CMP-0004');
    const events = await apiAs(svc, svc.adminToken)('GET', '/api/v1/audit-events?type=certificate.issued&limit=1000');
    expect(events.json.events.filter((e: { actor: string }) => e.actor === `station:${a.stationId}`).length).to.be.greaterThanOrEqual(2);
  });

  it('kur signed with the device\'s current certificate: a new certificate, the old one superseded', async () => {
    const oldCert = path.join(tmp.dir, 'cr.pem');
    const oldKey = path.join(tmp.dir, 'cr.key');
    const newKeyFile = newKey('kur');
    const out = path.join(tmp.dir, 'kur.pem');
    const r = await cmp(['-cmd', 'kur', '-cert', oldCert, '-key', oldKey, '-trusted', rootFile, '-newkey', newKeyFile, '-certout', out]);
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    const renewed = certOf(out);
    const old = certOf(oldCert);
    expect(renewed.serialHex).to.not.equal(old.serialHex);
    expect(renewed.subject.rawDer.equals(old.subject.rawDer)).to.equal(true);
    const record = await apiAs(svc, svc.adminToken)('GET', `/api/v1/certificates/${old.serialHex}`);
    expect(record.json.status).to.equal('revoked');
    expect(record.json.reason).to.equal('superseded');
  });

  it('rr signed with the device\'s certificate revokes it; kur with the revoked certificate is refused certRevoked', async () => {
    const cert = path.join(tmp.dir, 'kur.pem');
    const key = path.join(tmp.dir, 'kur.key');
    const r = await cmp(['-cmd', 'rr', '-oldcert', cert, '-cert', cert, '-key', key, '-trusted', rootFile, '-revreason', '1']);
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    const record = await apiAs(svc, svc.adminToken)('GET', `/api/v1/certificates/${certOf(cert).serialHex}`);
    expect(record.json.status).to.equal('revoked');
    expect(record.json.reason).to.equal('keyCompromise');
    const again = await cmp(['-cmd', 'kur', '-cert', cert, '-key', key, '-trusted', rootFile, '-newkey', newKey('kur2'), '-certout', path.join(tmp.dir, 'kur2.pem'), '-unprotected_errors']);
    expect(again.status).to.not.equal(0);
    expect(again.stderr + again.stdout).to.match(/certRevoked/);
  });

  it('genm with a MAC secret: openssl cmp logs the genp; the raw answer (-rspout) is a MAC-protected genp', async () => {
    const { reference, secret } = await secretFor('CMP-0005');
    const rsp = path.join(tmp.dir, 'genp.der');
    const r = await cmp(['-cmd', 'genm', '-ref', reference, '-secret', `pass:${secret}`, '-recipient', '/CN=kakuin', '-infotype', 'signKeyPairTypes', '-rspout', rsp]);
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    expect(existsSync(rsp)).to.equal(true);
    const m = parsePkiMessage(readFileSync(rsp));
    expect(m.bodyTag).to.equal(22);
    expect(m.header.protectionAlg?.oid).to.equal('1.2.840.113533.7.66.13');
  });
});
