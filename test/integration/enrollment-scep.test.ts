/**
 * SCEP (RFC 8894) with certmonger's SCEP helper as the independent client: `scep-submit` (Debian
 * `certmonger`; the daemon needs D-Bus, so the helper is run directly) makes the GetCACaps,
 * GetCACert and PKIOperation requests, verifies the signature of kakuin's CertRep with OpenSSL
 * and prints the pkcsPKIEnvelope, which `openssl cms -decrypt` opens with the requester's key.
 * The requests are built by `openssl req` / `openssl cms -encrypt` (test/enrollment/scep-client.ts);
 * the refusals use hand-built messages.
 */
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import path from 'node:path';
import {
  encodeIssuerAndSubject, fromPem, parseCertificate, parseSignedData, scepReplyFields, toPem,
} from '../../pkix/index.js';
import { makeTempDir, opensslAsync, opensslOk, requirePeers } from '../support/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { apiAs, curl, newFactory, type Factory } from '../enrollment/support.js';
import { envelopeTo, newRequester, pkcs7Pem, scepMessage, type Requester } from '../enrollment/scep-client.js';

const SCEP_SUBMIT = ['/usr/libexec/certmonger/scep-submit', '/usr/lib/certmonger/scep-submit'].find((p) => existsSync(p)) ?? 'scep-submit';

interface Run { status: number; stdout: string; stderr: string }

function scepSubmit(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(SCEP_SUBMIT, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

describe('SCEP (RFC 8894) with certmonger scep-submit and openssl', function () {
  this.timeout(120_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let trustFile: string;
  let raFile: string;
  let caFile: string;
  let raDer: Buffer;
  let a: Factory;
  let scepUrl: string;
  let plainUrl: string;

  before(async function () {
    requirePeers(this, [{ command: SCEP_SUBMIT, args: ['--help'], debian: 'certmonger' }]);
    tmp = makeTempDir('kakuin-scep-');
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_SCEP_PLAIN_HTTP: 'true' } });
    scepUrl = `${svc.url}/scep`;
    plainUrl = `${svc.service.httpUrl}/scep`;
    // curl (inside scep-submit) checks the API's TLS certificate against this bundle; the CertRep
    // signature is checked against it and the RA certificate.
    const ca = (name: string) => readFileSync(path.join(svc.dataDir, 'ca', `${name}.pem`), 'utf8');
    trustFile = path.join(tmp.dir, 'trust.pem');
    writeFileSync(trustFile, ca('root') + ca('infrastructure') + ca('device'));
    caFile = path.join(tmp.dir, 'device-ca.pem');
    writeFileSync(caFile, ca('device'));
    a = await newFactory(svc, 'SCEP Factory A');
    const imp = await apiAs(svc, a.apiKey)('POST', '/api/v1/devices/import', { body: ['0001', '0002', '0003', '0004', '0005', '0006'].map((n) => ({ serialNumber: `SCEP-${n}` })) });
    expect(imp.status, imp.text).to.equal(201);
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  async function deviceId(serialNumber: string): Promise<string> {
    const r = await apiAs(svc, a.apiKey)('GET', `/api/v1/station/devices?serialNumber=${serialNumber}`);
    expect(r.status, r.text).to.equal(200);
    return r.json.devices[0].id;
  }

  async function challengeFor(serialNumber: string, body: Record<string, unknown> = {}): Promise<string> {
    const r = await apiAs(svc, a.apiKey)('POST', `/api/v1/devices/${await deviceId(serialNumber)}/scep-challenge`, { body });
    expect(r.status, r.text).to.equal(201);
    return r.json.challengePassword;
  }

  /**
   * scep-submit -p: sends the message, verifies kakuin's signed CertRep (against -N, the chain up to
   * the root, and the RA certificate), prints the pkcsPKIEnvelope. Over the plain-HTTP listener (scep.plainHttp): scep-submit 0.79 passes its -R trust file to the
   * GetCACaps request only, not to the PKIOperation that follows, so over HTTPS it cannot verify the
   * server (curl error 60). The HTTPS PKIOperation is checked with curl below.
   */
  async function submit(message: Buffer, url = plainUrl): Promise<Run> {
    const file = path.join(tmp.dir, `msg-${randomBytes(4).toString('hex')}.pem`);
    writeFileSync(file, pkcs7Pem(message));
    return scepSubmit(['-u', url, '-R', trustFile, '-N', trustFile, '-r', raFile, '-I', caFile, '-p', file]);
  }

  /** Opens a pkcsPKIEnvelope with the requester's key (openssl cms -decrypt) and returns the issued certificate. */
  async function openEnvelope(envelopePem: string, r: Requester): Promise<Buffer> {
    const out = path.join(tmp.dir, `certs-${randomBytes(4).toString('hex')}.der`);
    const decrypted = await opensslAsync(['cms', '-decrypt', '-inform', 'PEM', '-recip', r.selfSignedFile, '-inkey', r.keyFile, '-binary', '-out', out], envelopePem);
    expect(decrypted.status, decrypted.stderr).to.equal(0);
    const printed = await opensslAsync(['pkcs7', '-inform', 'DER', '-in', out, '-print_certs']);
    expect(printed.status, printed.stderr).to.equal(0);
    const certs = fromPem(printed.stdout, 'CERTIFICATE');
    expect(certs).to.have.length(1);
    return certs[0];
  }

  it('GetCACaps: POSTPKIOperation, SHA-256, AES and Renewal, as scep-submit -c prints them', async () => {
    const r = await scepSubmit(['-u', scepUrl, '-R', trustFile, '-c']);
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    const caps = r.stdout.split(/\r?\n/).filter(Boolean);
    expect(caps).to.include.members(['POSTPKIOperation', 'SHA-256', 'AES', 'Renewal']);
  });

  it('GetCACert: the RSA RA certificate (issued by the device CA, keyEncipherment) and the CAs, as scep-submit -C picks them', async () => {
    const r = await scepSubmit(['-u', scepUrl, '-R', trustFile, '-C']);
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    const certs = fromPem(r.stdout, 'CERTIFICATE');
    expect(certs.length).to.be.at.least(2);
    // scep-submit prints the RA certificate first (the one with keyEncipherment), then the CA.
    raDer = certs[0];
    raFile = path.join(tmp.dir, 'ra.pem');
    writeFileSync(raFile, toPem('CERTIFICATE', raDer));
    const ra = parseCertificate(raDer);
    expect(ra.spki.keyType).to.equal('rsa');
    const text = opensslOk(['x509', '-in', raFile, '-noout', '-text']);
    expect(text).to.match(/Key Encipherment/);
    expect(opensslOk(['verify', '-CAfile', trustFile, raFile])).to.match(/OK/);
    const device = parseCertificate(fromPem(readFileSync(caFile, 'utf8'), 'CERTIFICATE')[0]);
    expect(ra.issuer.rawDer.equals(device.subject.rawDer)).to.equal(true);
    expect(device.spki.keyType, 'the CAs stay ECDSA').to.equal('ec');
  });

  it('PKCSReq over GET: certmonger verifies the CertRep, openssl opens the envelope, the certificate names the device', async () => {
    const r = newRequester(tmp.dir, 'dev1', 'SCEP-0001', await challengeFor('SCEP-0001'));
    const message = await scepMessage({ messageType: 'PKCSReq', transactionId: 'tx-dev1', envelope: envelopeTo(tmp.dir, raFile, r.csrDer), signerDer: r.selfSignedDer, key: r.key });
    const run = await submit(message);
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    const cert = await openEnvelope(run.stdout, r);
    const certFile = path.join(tmp.dir, 'dev1.pem');
    writeFileSync(certFile, toPem('CERTIFICATE', cert));
    expect(opensslOk(['verify', '-CAfile', trustFile, certFile])).to.match(/OK/);
    expect(opensslOk(['x509', '-in', certFile, '-noout', '-subject'])).to.match(/serialNumber\s*=\s*SCEP-0001/);
    // The certificate is for the requester's key.
    const pub = opensslOk(['pkey', '-in', r.keyFile, '-pubout']);
    expect(opensslOk(['x509', '-in', certFile, '-noout', '-pubkey'])).to.equal(pub);
  });

  /** POSTs a pkiMessage over HTTPS with curl; the CertRep is checked by `openssl cms -verify` and its fields read back. */
  async function postOverHttps(message: Buffer): Promise<{ fields: ReturnType<typeof scepReplyFields>; der: Buffer }> {
    const file = path.join(tmp.dir, `post-${randomBytes(4).toString('hex')}.der`);
    const out = `${file}.rep`;
    writeFileSync(file, message);
    const r = await curl(['--cacert', trustFile, '-H', 'Content-Type: application/x-pki-message', '--data-binary', `@${file}`, '-o', out, `${scepUrl}?operation=PKIOperation`]);
    expect(r.status, r.body).to.equal(200);
    expect(r.headers).to.match(/content-type: application\/x-pki-message/i);
    const der = readFileSync(out);
    const verified = await opensslAsync(['cms', '-verify', '-inform', 'DER', '-in', out, '-CAfile', trustFile, '-purpose', 'any', '-out', `${out}.content`]);
    expect(verified.status, verified.stderr).to.equal(0);
    const signed = parseSignedData(der);
    expect(parseCertificate(signed.certificates.find((c) => parseCertificate(c).spki.keyType === 'rsa')!).rawDer.equals(raDer)).to.equal(true);
    return { fields: scepReplyFields(signed.signers[0]), der };
  }

  async function pkcsReq(r: Requester, transactionId: string, extra: { signingTime?: Date; cipher?: string; key?: Requester['key'] } = {}): Promise<Buffer> {
    return scepMessage({
      messageType: 'PKCSReq', transactionId, envelope: envelopeTo(tmp.dir, raFile, r.csrDer, extra.cipher), signerDer: r.selfSignedDer,
      key: extra.key ?? r.key, ...(extra.signingTime && { signingTime: extra.signingTime }),
    });
  }

  it('PKCSReq over POST on the HTTPS port: SUCCESS, the nonces and transactionID echoed, openssl cms -verify accepts the RA signature', async () => {
    const r = newRequester(tmp.dir, 'dev2', 'SCEP-0002', await challengeFor('SCEP-0002'));
    const nonce = randomBytes(16);
    const message = await scepMessage({ messageType: 'PKCSReq', transactionId: 'tx-dev2', envelope: envelopeTo(tmp.dir, raFile, r.csrDer), signerDer: r.selfSignedDer, key: r.key, senderNonce: nonce });
    const { fields } = await postOverHttps(message);
    expect(fields.messageType).to.equal('3');
    expect(fields.pkiStatus).to.equal('0');
    expect(fields.transactionId).to.equal('tx-dev2');
    expect(fields.recipientNonce?.equals(nonce)).to.equal(true);
  });

  it('refusals are CertRep FAILURE with the failInfo certmonger names: wrong challenge (badRequest), reused challenge (badRequest)', async () => {
    const wrong = newRequester(tmp.dir, 'dev3-wrong', 'SCEP-0003', 'not-a-challenge-kakuin-issued');
    const run = await submit(await pkcsReq(wrong, 'tx-dev3-wrong'));
    expect(run.status, run.stdout + run.stderr).to.equal(2);
    expect(run.stdout).to.match(/Transaction either is not permitted or is not supported by server/);
    const challenge = await challengeFor('SCEP-0003');
    const first = newRequester(tmp.dir, 'dev3', 'SCEP-0003', challenge);
    expect((await submit(await pkcsReq(first, 'tx-dev3'))).status).to.equal(0);
    // The same challenge again, in another transaction (another key): used already.
    const again = newRequester(tmp.dir, 'dev3-again', 'SCEP-0003', challenge);
    const { fields } = await postOverHttps(await pkcsReq(again, 'tx-dev3-again'));
    expect([fields.pkiStatus, fields.failInfo]).to.deep.equal(['2', '2']);
    const audit = await apiAs(svc, svc.adminToken)('GET', '/api/v1/audit-events?type=enrollment.refused');
    expect(audit.status, audit.text).to.equal(200);
    expect(JSON.stringify(audit.json)).to.match(/KAKUIN_E_SCEP_CHALLENGE_INVALID/);
  });

  it('a replayed PKCSReq (the same message again) gets the same certificate; nothing new is issued', async () => {
    const r = newRequester(tmp.dir, 'dev4', 'SCEP-0004', await challengeFor('SCEP-0004'));
    const message = await pkcsReq(r, 'tx-dev4');
    const one = await submit(message);
    const two = await submit(message);
    expect([one.status, two.status]).to.deep.equal([0, 0]);
    const [c1, c2] = [await openEnvelope(one.stdout, r), await openEnvelope(two.stdout, r)];
    expect(c1.equals(c2)).to.equal(true);
    const certs = await apiAs(svc, svc.adminToken)('GET', `/api/v1/devices/${await deviceId('SCEP-0004')}`);
    expect(certs.status, certs.text).to.equal(200);
    expect(JSON.stringify(certs.json).match(/"serialHex"/g)).to.have.length(1);
  });

  it('an expired challenge is refused (badRequest); a stale signingTime is badTime; a bad signature is badMessageCheck; 3DES is badAlg', async () => {
    const challenge = await challengeFor('SCEP-0005');
    // Expire it in the registry (the API's shortest validity is a minute).
    const db = new Database(path.join(svc.dataDir, 'kakuin.db'));
    try {
      db.prepare('UPDATE scep_challenges SET expires_at = ? WHERE device_id = ?').run(Date.now() - 1000, await deviceId('SCEP-0005'));
    } finally {
      db.close();
    }
    const r = newRequester(tmp.dir, 'dev5', 'SCEP-0005', challenge);
    const expired = await postOverHttps(await pkcsReq(r, 'tx-dev5'));
    expect([expired.fields.pkiStatus, expired.fields.failInfo]).to.deep.equal(['2', '2']);
    const stale = await postOverHttps(await pkcsReq(r, 'tx-dev5-stale', { signingTime: new Date(Date.now() - 3 * 3600_000) }));
    expect([stale.fields.pkiStatus, stale.fields.failInfo]).to.deep.equal(['2', '3']);
    const other = newRequester(tmp.dir, 'dev5-other-key', 'SCEP-0005', challenge);
    const forged = await postOverHttps(await pkcsReq(r, 'tx-dev5-forged', { key: other.key }));
    expect([forged.fields.pkiStatus, forged.fields.failInfo]).to.deep.equal(['2', '1']);
    const des = await postOverHttps(await pkcsReq(r, 'tx-dev5-des', { cipher: '-des3' }));
    expect([des.fields.pkiStatus, des.fields.failInfo]).to.deep.equal(['2', '0']);
  });

  it('CertPoll for a transaction kakuin does not know: FAILURE badCertId', async () => {
    const r = newRequester(tmp.dir, 'poller', 'SCEP-0006', undefined);
    const ias = encodeIssuerAndSubject(parseCertificate(raDer).issuer.rawDer, parseCertificate(r.selfSignedDer).subject.rawDer);
    const { fields } = await postOverHttps(await scepMessage({ messageType: 'CertPoll', transactionId: 'tx-never-sent', envelope: envelopeTo(tmp.dir, raFile, ias), signerDer: r.selfSignedDer, key: r.key }));
    expect([fields.pkiStatus, fields.failInfo]).to.deep.equal(['2', '4']);
  });

  it('RenewalReq signed with the current certificate: a new certificate for a new key, the old one superseded; a revoked signer is refused', async () => {
    // SCEP-0001 was enrolled above (dev1): renew it with a new key, signed with dev1's certificate and key.
    const oldCert = path.join(tmp.dir, 'dev1.pem');
    const newKey = path.join(tmp.dir, 'dev1-renewed.key');
    opensslOk(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', newKey]);
    // x509toreq: a CSR with exactly the current certificate's subject (RFC 8894 §3.3.1.2 renews the same subject).
    const csrFile = path.join(tmp.dir, 'dev1-renew.csr');
    opensslOk(['x509', '-x509toreq', '-in', oldCert, '-signkey', newKey, '-out', csrFile]);
    const csr = fromPem(readFileSync(csrFile, 'utf8'), 'CERTIFICATE REQUEST')[0];
    const dev1: Requester = { ...newRequester(tmp.dir, 'dev1-signer', 'SCEP-0001', undefined, path.join(tmp.dir, 'dev1.key')) };
    const current = fromPem(readFileSync(oldCert, 'utf8'), 'CERTIFICATE')[0];
    const message = await scepMessage({ messageType: 'RenewalReq', transactionId: 'tx-dev1-renew', envelope: envelopeTo(tmp.dir, raFile, csr), signerDer: current, key: dev1.key });
    const run = await submit(message);
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    const renewed = await openEnvelope(run.stdout, { ...dev1, selfSignedFile: oldCert });
    const renewedFile = path.join(tmp.dir, 'dev1-renewed.pem');
    writeFileSync(renewedFile, toPem('CERTIFICATE', renewed));
    expect(opensslOk(['x509', '-in', renewedFile, '-noout', '-pubkey'])).to.equal(opensslOk(['pkey', '-in', newKey, '-pubout']));
    const old = parseCertificate(current);
    const status = await apiAs(svc, svc.adminToken)('GET', `/api/v1/certificates/${old.serialHex}`);
    expect(status.json.status, status.text).to.equal('revoked');
    // The superseded certificate signs another RenewalReq: refused (badMessageCheck).
    const again = await postOverHttps(await scepMessage({ messageType: 'RenewalReq', transactionId: 'tx-dev1-renew-2', envelope: envelopeTo(tmp.dir, raFile, csr), signerDer: current, key: dev1.key }));
    expect([again.fields.pkiStatus, again.fields.failInfo]).to.deep.equal(['2', '1']);
  });

  it('a message that is no pkiMessage at all: HTTP 400 text with the KAKUIN_E_* code; an unknown operation too', async () => {
    const bad = await curl(['--cacert', trustFile, `${scepUrl}?operation=PKIOperation&message=bm90IGEgbWVzc2FnZQ%3D%3D`]);
    expect(bad.status).to.equal(400);
    expect(bad.body).to.match(/^KAKUIN_E_DER_MALFORMED: /);
    const op = await curl(['--cacert', trustFile, `${scepUrl}?operation=GetCRL`]);
    expect(op.status).to.equal(400);
    expect(op.body).to.match(/^KAKUIN_E_SCEP_MESSAGE_UNSUPPORTED: /);
  });
});

describe('SCEP CertPoll: a request over the station\'s rate limit is PENDING, then issued when polled', function () {
  this.timeout(120_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };

  before(async function () {
    requirePeers(this, [{ command: SCEP_SUBMIT, args: ['--help'], debian: 'certmonger' }]);
    tmp = makeTempDir('kakuin-scep-poll-');
    const config = path.join(tmp.dir, 'kakuin.json');
    writeFileSync(config, JSON.stringify({ enrollment: { stationPerSecond: 1, stationBurst: 1 } }));
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_SCEP_PLAIN_HTTP: 'true', KAKUIN_CONFIG: config } });
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('two PKCSReqs at once → one SUCCESS, one PENDING; CertPoll (by certmonger) after the bucket refills → SUCCESS with the certificate', async () => {
    const a = await newFactory(svc, 'SCEP Poll Factory');
    const station = apiAs(svc, a.apiKey);
    expect((await station('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'POLL-1' }, { serialNumber: 'POLL-2' }] })).status).to.equal(201);
    const ca = (name: string) => readFileSync(path.join(svc.dataDir, 'ca', `${name}.pem`), 'utf8');
    const trust = path.join(tmp.dir, 'trust.pem');
    writeFileSync(trust, ca('root') + ca('infrastructure') + ca('device'));
    const caFile = path.join(tmp.dir, 'device.pem');
    writeFileSync(caFile, ca('device'));
    const url = `${svc.service.httpUrl}/scep`;
    const certs = await scepSubmit(['-u', url, '-C']);
    expect(certs.status, certs.stdout).to.equal(0);
    const raFile = path.join(tmp.dir, 'ra.pem');
    writeFileSync(raFile, toPem('CERTIFICATE', fromPem(certs.stdout, 'CERTIFICATE')[0]));
    const run = async (message: Buffer) => {
      const file = path.join(tmp.dir, `m-${randomBytes(4).toString('hex')}.pem`);
      writeFileSync(file, pkcs7Pem(message));
      return scepSubmit(['-u', url, '-R', trust, '-N', trust, '-r', raFile, '-I', caFile, '-p', file]);
    };
    const requesters: Requester[] = [];
    for (const serial of ['POLL-1', 'POLL-2']) {
      const list = await station('GET', `/api/v1/station/devices?serialNumber=${serial}`);
      const c = await station('POST', `/api/v1/devices/${list.json.devices[0].id}/scep-challenge`, { body: {} });
      requesters.push(newRequester(tmp.dir, serial, serial, c.json.challengePassword));
    }
    // Both at once over HTTPS (no helper process to start): the bucket holds one, so one is issued
    // and the other is PENDING, whichever comes second.
    const messages = await Promise.all(requesters.map((q, i) => scepMessage({ messageType: 'PKCSReq', transactionId: `tx-poll-${i}`, envelope: envelopeTo(tmp.dir, raFile, q.csrDer), signerDer: q.selfSignedDer, key: q.key })));
    const post = (body: Buffer) => new Promise<Buffer>((resolve, reject) => {
      const req = https.request(`${svc.url}/scep?operation=PKIOperation`, { method: 'POST', ca: svc.rootPem, headers: { 'content-type': 'application/x-pki-message', 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
      req.end(body);
    });
    const statuses = (await Promise.all(messages.map(post))).map((der) => scepReplyFields(parseSignedData(der).signers[0]).pkiStatus);
    expect([...statuses].sort()).to.deep.equal(['0', '3']);
    const pending = statuses.indexOf('3');
    // The bucket refills (1 a second); then the requester polls with certmonger.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const r = requesters[pending];
    const ias = encodeIssuerAndSubject(parseCertificate(fromPem(ca('device'), 'CERTIFICATE')[0]).subject.rawDer, parseCertificate(r.selfSignedDer).subject.rawDer);
    const poll = await run(await scepMessage({ messageType: 'CertPoll', transactionId: `tx-poll-${pending}`, envelope: envelopeTo(tmp.dir, raFile, ias), signerDer: r.selfSignedDer, key: r.key }));
    expect(poll.status, poll.stdout + poll.stderr).to.equal(0);
    const out = path.join(tmp.dir, 'poll.der');
    const dec = await opensslAsync(['cms', '-decrypt', '-inform', 'PEM', '-recip', r.selfSignedFile, '-inkey', r.keyFile, '-binary', '-out', out], poll.stdout);
    expect(dec.status, dec.stderr).to.equal(0);
    expect((await opensslAsync(['pkcs7', '-inform', 'DER', '-in', out, '-print_certs', '-noout'])).stdout).to.match(new RegExp(`serialNumber\\s*=\\s*POLL-${pending + 1}`));
  });
});

describe('SCEP on the plain-HTTP port only with scep.plainHttp', function () {
  this.timeout(60_000);
  let svc: TestService;

  before(async () => {
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0' } });
  });

  after(async () => {
    await svc?.stop();
  });

  it('without the option /scep is 404 on the OCSP/CRL port and served on the HTTPS port', async () => {
    const plain = await curl([`${svc.service.httpUrl}/scep?operation=GetCACaps`]);
    expect(plain.status).to.equal(404);
    const https = await curl(['--cacert', path.join(svc.dataDir, 'ca', 'root.pem'), `${svc.url}/scep?operation=GetCACaps`]);
    expect(https.status).to.equal(200);
    expect(https.body).to.match(/^POSTPKIOperation$/m);
  });
});
