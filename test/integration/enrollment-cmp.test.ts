/**
 * CMP (Lightweight CMP profile, RFC 9483; HTTP transport RFC 9811) with `openssl cmp` (OpenSSL 3.0)
 * as the independent client, over HTTPS to the management API port, for every message type and both
 * protections (MAC with a one-time secret, signature with a station or device certificate); and
 * refusals with hand-built PKIMessages, each checked for its PKIFailureInfo bit.
 */
import { expect } from 'chai';
import * as asn1js from 'asn1js';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { freePort, makeTempDir, opensslAsync, opensslOk } from '../support/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { apiAs, newFactory, opensslCsr, type Factory } from '../enrollment/support.js';
import { answerStatus, fromPem, genpInfos, parseCertificate, parsePkiMessage, PKI_FAILURE_INFO, derChildren, derRaw, readOid, certRepCertificate, derExplicit, derSequence, derOctetString, derInteger, type DerNode, type PkiMessage } from '../../pkix/index.js';
import { request } from '../support/service.js';
import { buildCmpRequest, genmBody, p10crBody } from '../enrollment/cmp-client.js';
import { createHash, randomBytes } from 'node:crypto';
import { opensslBytes } from '../support/index.js';

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
    const reqout = path.join(tmp.dir, 'p10-req.der');
    const rspout = path.join(tmp.dir, 'p10-rsp.der');
    const r = await cmp(['-cmd', 'p10cr', '-ref', reference, '-secret', `pass:${secret}`, '-recipient', '/CN=kakuin', '-csr', csrFile, '-certout', out, '-reqout', `${reqout},`, '-rspout', `${rspout},`]);
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    const cert = parseCertificate(fromPem(readFileSync(out, 'utf8'), 'CERTIFICATE')[0]);
    expect(cert.subject.attributes.find((x) => x.type === 'serialNumber')?.value).to.equal('CMP-0001');
    // openssl's request as pkix reads it and as asn1js reads it (an independent decoder): the same header fields.
    const req = readFileSync(reqout);
    const mine = parsePkiMessage(req);
    const theirs = (asn1js.fromBER(new Uint8Array(req).buffer).result as asn1js.Sequence).valueBlock.value;
    const header = (theirs[0] as asn1js.Sequence).valueBlock.value;
    expect((header[0] as asn1js.Integer).valueBlock.valueDec).to.equal(mine.header.pvno);
    const tagged = (n: number) => { const t = header.slice(3).find((h) => h.idBlock.tagClass === 3 && h.idBlock.tagNumber === n) as asn1js.Constructed; expect(t, `header [${n}] in ${header.map((h) => `${h.idBlock.tagClass}/${h.idBlock.tagNumber}`).join(",")}`).to.not.equal(undefined); return t; };
    expect(Buffer.from((tagged(4).valueBlock.value[0] as asn1js.OctetString).valueBlock.valueHexView).equals(mine.header.transactionID!)).to.equal(true);
    expect(Buffer.from((tagged(2).valueBlock.value[0] as asn1js.OctetString).valueBlock.valueHexView).toString()).to.equal(reference);
    expect(theirs[1].idBlock.tagNumber).to.equal(mine.bodyTag).and.to.equal(4);
    // kakuin's answer (cp) is DER: asn1js re-encodes it byte for byte; same transactionID, recipNonce = openssl's senderNonce.
    const rsp = readFileSync(rspout);
    expect(Buffer.from(asn1js.fromBER(new Uint8Array(rsp).buffer).result.toBER()).equals(rsp)).to.equal(true);
    const answer = parsePkiMessage(rsp);
    expect(answer.bodyTag).to.equal(3);
    expect(answer.header.transactionID!.equals(mine.header.transactionID!)).to.equal(true);
    expect(answer.header.recipNonce!.equals(mine.header.senderNonce!)).to.equal(true);
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

  async function post(der: Buffer, p = '/.well-known/cmp'): Promise<{ raw: Buffer; msg: PkiMessage }> {
    const r = await request(svc.url, svc.rootPem, 'POST', p, { body: der, contentType: 'application/pkixcmp' });
    expect(r.status, r.text).to.equal(200);
    expect(r.headers['content-type']).to.equal('application/pkixcmp');
    return { raw: r.body, msg: parsePkiMessage(r.body) };
  }

  function expectFailure(msg: PkiMessage, bit: keyof typeof PKI_FAILURE_INFO, code: string): void {
    expect(msg.bodyTag, 'an error message').to.equal(23);
    const st = answerStatus(msg)!;
    expect(st.status).to.equal(2);
    expect(st.failInfoBits).to.deep.equal([PKI_FAILURE_INFO[bit]]);
    expect(st.text.join(' ')).to.match(new RegExp(`^${code}: `));
  }

  function csrDer(name: string, serialNumber: string): Buffer {
    const { csrFile } = opensslCsr(tmp.dir, name, `/serialNumber=${serialNumber}`);
    return opensslBytes(['req', '-in', csrFile, '-outform', 'DER']);
  }

  it('genm for caCerts, rootCaCert and certReqTemplate (RFC 9483 §4.3), pvno 3: the genp carries the CA chain, no root update, the template', async () => {
    const { reference, secret } = await secretFor('CMP-0005');
    const { msg } = await post(buildCmpRequest({ pvno: 3, protect: { mac: { reference, secret } }, body: genmBody('1.3.6.1.5.5.7.4.17', '1.3.6.1.5.5.7.4.20', '1.3.6.1.5.5.7.4.19') }));
    expect(msg.header.pvno).to.equal(3);
    const infos = genpInfos(msg);
    expect(infos.map((i) => i.infoType)).to.deep.equal(['1.3.6.1.5.5.7.4.17', '1.3.6.1.5.5.7.4.18', '1.3.6.1.5.5.7.4.19']);
    const caCerts = derChildren(infos[0].value!).map((c) => parseCertificate(Buffer.from(derRaw(c))));
    expect(caCerts.map((c) => c.subject.rawDer.toString('hex'))).to.have.length(2);
    expect(caCerts[1].rawDer.equals(fromPem(svc.rootPem, 'CERTIFICATE')[0])).to.equal(true);
    expect(infos[1].value, 'no root CA key update pending: value absent').to.equal(undefined);
    // CertReqTemplateContent { certTemplate, keySpec { id-regCtrl-algId: id-ecPublicKey P-256 } }
    const [, keySpec] = derChildren(infos[2].value!);
    const [algCtrl] = derChildren(keySpec);
    expect(readOid(derChildren(algCtrl)[0])).to.equal('1.3.6.1.5.5.7.5.1.11');
  });

  it('a wrong MAC is refused badMessageCheck and changes nothing (the secret still works after)', async () => {
    const { reference, secret } = await secretFor('CMP-0005');
    const bad = await post(buildCmpRequest({ protect: { mac: { reference, secret } }, tamper: true, body: p10crBody(csrDer('badmac', 'CMP-0005')) }));
    expectFailure(bad.msg, 'badMessageCheck', 'KAKUIN_E_CMP_PROTECTION_INVALID');
    const wrongSecret = await post(buildCmpRequest({ protect: { mac: { reference, secret: `${secret}x` } }, body: p10crBody(csrDer('badmac2', 'CMP-0005')) }));
    expectFailure(wrongSecret.msg, 'badMessageCheck', 'KAKUIN_E_CMP_PROTECTION_INVALID');
    const unknownRef = await post(buildCmpRequest({ protect: { mac: { reference: 'cmp-nosuch', secret } }, body: p10crBody(csrDer('badmac3', 'CMP-0005')) }));
    expectFailure(unknownRef.msg, 'notAuthorized', 'KAKUIN_E_CMP_SECRET_UNKNOWN');
    const ok = await post(buildCmpRequest({ protect: { mac: { reference, secret } }, body: p10crBody(csrDer('goodmac', 'CMP-0005')) }));
    expect(ok.msg.bodyTag, 'cp').to.equal(3);
    expect(answerStatus(ok.msg)!.status).to.equal(0);
  });

  it('an unknown device (not pre-registered) is refused notAuthorized, with an audit event', async () => {
    const st = await stationCertificate();
    const { msg } = await post(buildCmpRequest({ protect: { signature: st }, body: p10crBody(csrDer('unknown', 'CMP-9999')) }));
    expectFailure(msg, 'notAuthorized', 'KAKUIN_E_DEVICE_NOT_REGISTERED');
    const events = await apiAs(svc, svc.adminToken)('GET', '/api/v1/audit-events?type=enrollment.refused&limit=1000');
    expect(events.json.events.some((e: { details?: { serialNumber?: string } }) => e.details?.serialNumber === 'CMP-9999')).to.equal(true);
  });

  it('a retried message (same transactionID, same bytes) gets the same answer; other content under it is refused transactionIdInUse', async () => {
    const imp = await apiAs(svc, a.apiKey)('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'CMP-0007' }, { serialNumber: 'CMP-0008' }] });
    expect(imp.status, imp.text).to.equal(201);
    const st = await stationCertificate();
    const transactionId = randomBytes(16);
    const first = buildCmpRequest({ transactionId, protect: { signature: st }, body: p10crBody(csrDer('retry', 'CMP-0007')) });
    const one = await post(first);
    expect(one.msg.bodyTag).to.equal(3);
    const two = await post(first);
    expect(two.raw.equals(one.raw), 'the stored answer, byte for byte').to.equal(true);
    const other = await post(buildCmpRequest({ transactionId, protect: { signature: st }, body: p10crBody(csrDer('retry2', 'CMP-0008')) }));
    expectFailure(other.msg, 'transactionIdInUse', 'KAKUIN_E_CMP_TRANSACTION_IN_USE');
    const devices = await apiAs(svc, a.apiKey)('GET', '/api/v1/station/devices?serialNumber=CMP-0008');
    expect(devices.json.devices[0].status, 'nothing issued for the refused one').to.equal('registered');
  });

  it('pvno 1, an unreadable body and an unprotected request are refused (unsupportedVersion, badDataFormat, badMessageCheck)', async () => {
    const { reference, secret } = await secretFor('CMP-0008');
    const v1 = await post(buildCmpRequest({ pvno: 1, protect: { mac: { reference, secret } }, body: genmBody('1.3.6.1.5.5.7.4.17') }));
    expectFailure(v1.msg, 'unsupportedVersion', 'KAKUIN_E_CMP_UNSUPPORTED_VERSION');
    const garbage = await post(Buffer.from('30030201', 'hex'));
    expectFailure(garbage.msg, 'badDataFormat', 'KAKUIN_E_DER_MALFORMED');
    const unprotected = await post(buildCmpRequest({ protect: { none: true }, body: genmBody('1.3.6.1.5.5.7.4.17') }));
    expectFailure(unprotected.msg, 'badMessageCheck', 'KAKUIN_E_CMP_PROTECTION_INVALID');
  });

  it('a bad proof of possession in a CSR is refused badPOP; an unknown profile label badRequest', async () => {
    const st = await stationCertificate();
    const der = csrDer('badpop', 'CMP-0008');
    der[der.length - 3] ^= 0x01;
    const bad = await post(buildCmpRequest({ protect: { signature: st }, body: p10crBody(der) }));
    expectFailure(bad.msg, 'badPOP', 'KAKUIN_E_CSR_SIGNATURE_INVALID');
    const profile = await post(buildCmpRequest({ protect: { signature: st }, body: p10crBody(csrDer('prof', 'CMP-0008')) }), '/.well-known/cmp/p/no-such-profile');
    expectFailure(profile.msg, 'badRequest', 'KAKUIN_E_PROFILE_UNKNOWN');
  });

  it('cmp-secret: a station gets one for its own devices only; the secret is shown once and not stored', async () => {
    const b = await newFactory(svc, 'CMP Factory B');
    const other = await apiAs(svc, b.apiKey)('POST', `/api/v1/devices/${await deviceId('CMP-0001')}/cmp-secret`, { body: {} });
    expect(other.status).to.equal(404);
    const bad = await apiAs(svc, a.apiKey)('POST', `/api/v1/devices/${await deviceId('CMP-0001')}/cmp-secret`, { body: { lifetimeMinutes: 0 } });
    expect(bad.status).to.equal(400);
    const { secret } = await secretFor('CMP-0001');
    // The database file and its write-ahead log hold the nonce, never the secret.
    for (const file of ['kakuin.db', 'kakuin.db-wal']) {
      const f = path.join(svc.dataDir, file);
      if (existsSync(f)) expect(readFileSync(f).includes(Buffer.from(secret)), `the secret is not in ${file}`).to.equal(false);
    }
    expect(existsSync(path.join(svc.dataDir, 'kakuin.db'))).to.equal(true);
  });

  it('a second key for an enrolled device (a clone?) is refused notAuthorized; the same CSR again gets the same certificate', async () => {
    const st = await stationCertificate();
    const clone = await post(buildCmpRequest({ protect: { signature: st }, body: p10crBody(csrDer('clone', 'CMP-0001')) }));
    expectFailure(clone.msg, 'notAuthorized', 'KAKUIN_E_DEVICE_ALREADY_ENROLLED');
    // The p10cr test's CSR, sent again in a new transaction: the certificate issued then (idempotence by key).
    const again = await post(buildCmpRequest({ protect: { signature: st }, body: p10crBody(opensslBytes(['req', '-in', path.join(tmp.dir, 'p10.csr'), '-outform', 'DER'])) }));
    expect(again.msg.bodyTag).to.equal(3);
    const issued = fromPem(readFileSync(path.join(tmp.dir, 'p10.pem'), 'utf8'), 'CERTIFICATE')[0];
    expect(certRepCertificate((again.msg.body as { node: DerNode }).node)!.equals(issued)).to.equal(true);
  });

  it('certConf rejecting the new certificate (PKIStatus rejection) revokes it and is answered pkiConf', async () => {
    const imp = await apiAs(svc, a.apiKey)('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'CMP-0009' }] });
    expect(imp.status, imp.text).to.equal(201);
    const st = await stationCertificate();
    const transactionId = randomBytes(16);
    const cp = await post(buildCmpRequest({ transactionId, protect: { signature: st }, body: p10crBody(csrDer('rejected', 'CMP-0009')) }));
    const cert = certRepCertificate((cp.msg.body as { node: DerNode }).node)!;
    const hash = createHash('sha256').update(cert).digest();
    // CertConfirmContent { CertStatus { certHash, certReqId -1, statusInfo { rejection } } }
    const certConf = derExplicit(24, derSequence(derSequence(derOctetString(hash), derInteger(-1), derSequence(derInteger(2)))));
    const conf = await post(buildCmpRequest({ transactionId, protect: { signature: st }, body: certConf }));
    expect(conf.msg.bodyTag, 'pkiConf').to.equal(19);
    const record = await apiAs(svc, svc.adminToken)('GET', `/api/v1/certificates/${parseCertificate(cert).serialHex}`);
    expect(record.json.status).to.equal('revoked');
    // A certConf with a hash of something else is refused badRequest.
    const t2 = randomBytes(16);
    const imp2 = await apiAs(svc, a.apiKey)('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'CMP-0010' }] });
    expect(imp2.status).to.equal(201);
    await post(buildCmpRequest({ transactionId: t2, protect: { signature: st }, body: p10crBody(csrDer('wronghash', 'CMP-0010')) }));
    const wrong = await post(buildCmpRequest({ transactionId: t2, protect: { signature: st }, body: derExplicit(24, derSequence(derSequence(derOctetString(randomBytes(32)), derInteger(-1)))) }));
    expectFailure(wrong.msg, 'badRequest', 'KAKUIN_E_CMP_MESSAGE_INVALID');
  });

  // Last: it supersedes the station certificate the tests above sign with.
  it('a superseded (revoked) station certificate no longer authenticates: notAuthorized, nothing issued', async () => {
    const old = await stationCertificate();
    const { csrPem } = opensslCsr(tmp.dir, 'station2', '/CN=line-1');
    const r = await apiAs(svc, svc.adminToken)('POST', `/api/v1/stations/${a.stationId}/certificate`, { body: { csr: csrPem } });
    expect(r.status, r.text).to.equal(201);
    const imp = await apiAs(svc, a.apiKey)('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'CMP-0011' }] });
    expect(imp.status).to.equal(201);
    const { msg } = await post(buildCmpRequest({ protect: { signature: old }, body: p10crBody(csrDer('old-station', 'CMP-0011')) }));
    expectFailure(msg, 'notAuthorized', 'KAKUIN_E_UNAUTHENTICATED');
    const devices = await apiAs(svc, a.apiKey)('GET', '/api/v1/station/devices?serialNumber=CMP-0011');
    expect(devices.json.devices[0].status).to.equal('registered');
  });
});
