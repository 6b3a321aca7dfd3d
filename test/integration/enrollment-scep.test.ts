/**
 * SCEP (RFC 8894) with certmonger's SCEP helper as the independent client: `scep-submit` (Debian
 * `certmonger`; the daemon needs D-Bus, so the helper is run directly) makes the GetCACaps,
 * GetCACert and PKIOperation requests, verifies the signature of kakuin's CertRep with OpenSSL
 * and prints the pkcsPKIEnvelope, which `openssl cms -decrypt` opens with the requester's key.
 * The requests are built by `openssl req` / `openssl cms -encrypt` (test/enrollment/scep-client.ts);
 * the refusals use hand-built messages.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
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
});
