/**
 * `kakuin enroll batch` across a device CA rollover: a retried item is answered with the certificate
 * the earlier device CA issued (`existing`), and the file written for it must carry THAT CA's
 * chain, not the chain of the CA issuing now. Checked with `openssl verify` and `openssl x509`.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, fromPem, toPem } from '../../pkix/index.js';
import { cliMain, makeTempDir, opensslAsync } from '../support/index.js';
import { startTestService, testEnv, type TestService } from '../support/service.js';
import { apiAs, newFactory, type Factory } from '../enrollment/support.js';

function csrPem(serialNumber: string): string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const info = encodeCertificationRequestInfo(encodeName([{ type: 'serialNumber', value: serialNumber }]), publicKey.export({ type: 'spki', format: 'der' }));
  return toPem('CERTIFICATE REQUEST', encodeCertificationRequest(info, 'ecdsa-with-SHA256', sign('sha256', info, privateKey)));
}

function enrollBatch(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cliMain, 'enroll', 'batch', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The certificates of a PEM file, leaf first. */
function certificatesOf(file: string): X509Certificate[] {
  return fromPem(readFileSync(file, 'utf8'), 'CERTIFICATE').map((der) => new X509Certificate(der));
}

describe('kakuin enroll batch across a device CA rollover', function () {
  this.timeout(180_000);
  let tmp: { dir: string; cleanup: () => void };
  let svc: TestService | undefined;
  const f = (name: string) => path.join(tmp.dir, name);

  before(() => {
    tmp = makeTempDir('kakuin-batch-rollover-');
  });
  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('a retried item answered by the earlier CA gets that CA\'s chain (openssl verify); GET /api/v1/ca/chain?issuer= names any CA', async () => {
    mkdirSync(f('data'));
    const env = { ...testEnv(f('data')), KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0' };
    svc = await startTestService({ dataDir: f('data'), env });
    writeFileSync(f('root.pem'), svc.rootPem);
    const factory: Factory = await newFactory(svc, 'Rollover line');
    const serials = ['RB-1', 'RB-2', 'RB-3'];
    expect((await apiAs(svc, factory.apiKey)('POST', '/api/v1/devices/import', { body: serials.map((serialNumber) => ({ serialNumber })) })).status).to.equal(201);
    writeFileSync(f('in.ndjson'), `${serials.map((s) => JSON.stringify({ serialNumber: s, csr: csrPem(s) })).join('\n')}\n`);
    const cli = { KAKUIN_STATION_API_KEY: factory.apiKey };

    const first = await enrollBatch(['--in', f('in.ndjson'), '--out', f('before'), '--url', svc.url, '--cacert', f('root.pem'), '--no-progress'], cli);
    expect(first.code, first.stderr + first.stdout).to.equal(0);
    const oldIssuer = certificatesOf(f('before/RB-1.pem'))[1];
    expect(oldIssuer.subject).to.match(/Device Issuing CA/);
    await svc.stop();
    svc = undefined;

    const rolled = spawnSync(process.execPath, [cliMain, 'ca', 'rollover'], { env: { ...process.env, ...env }, timeout: 60_000 });
    expect(rolled.status, rolled.stderr.toString()).to.equal(0);
    svc = await startTestService({ dataDir: f('data'), env });
    const currentChain = await apiAs(svc, factory.apiKey)('GET', '/api/v1/ca/chain');
    // The chain says which CA it is, so a client needs no other request for that CA's certificates.
    expect(currentChain.headers['kakuin-issuer-id']).to.equal('device-2');
    const current = fromPem(currentChain.text, 'CERTIFICATE').map((der) => new X509Certificate(der));
    expect(current[0].subject).to.include('Device Issuing CA 2');

    // The same input into a fresh directory: every item is a retry the server answers with the
    // certificate it issued before the rollover; nothing new is issued.
    const audit = async () => (await apiAs(svc!, svc!.adminToken)('GET', '/api/v1/audit-events?type=certificate.issued&limit=1000')).json.events.length as number;
    const issuedBefore = await audit();
    const again = await enrollBatch(['--in', f('in.ndjson'), '--out', f('after'), '--url', svc.url, '--cacert', f('root.pem'), '--no-progress'], cli);
    expect(again.code, again.stderr + again.stdout).to.equal(0);
    expect(await audit()).to.equal(issuedBefore);
    for (const s of serials) {
      const file = f(`after/${s}.pem`);
      const [leaf, issuer] = certificatesOf(file);
      expect(leaf.serialNumber).to.equal(certificatesOf(f(`before/${s}.pem`))[0].serialNumber);
      expect(issuer.fingerprint256).to.equal(oldIssuer.fingerprint256);
      expect(issuer.fingerprint256).to.not.equal(current[0].fingerprint256);
      const v = await opensslAsync(['verify', '-CAfile', f('root.pem'), '-untrusted', file, file]);
      expect(v.status, v.stderr).to.equal(0);
    }

    const api = apiAs(svc, factory.apiKey);
    const byId = fromPem((await api('GET', '/api/v1/ca/chain?issuer=device')).text, 'CERTIFICATE');
    expect(new X509Certificate(byId[0]).fingerprint256).to.equal(oldIssuer.fingerprint256);
    expect(new X509Certificate(byId[byId.length - 1]).subject).to.equal(new X509Certificate(svc.rootPem).subject);
    expect((await api('GET', '/api/v1/ca/chain?issuer=device-2')).text).to.equal((await api('GET', '/api/v1/ca/chain')).text);
    const unknown = await api('GET', '/api/v1/ca/chain?issuer=device-99');
    expect([unknown.status, unknown.json.code]).to.deep.equal([404, 'KAKUIN_E_ISSUER_UNKNOWN']);
    const responder = await api('GET', '/api/v1/ca/chain?issuer=ocsp-device');
    expect([responder.status, responder.json.code], 'an OCSP responder is not a CA').to.deep.equal([404, 'KAKUIN_E_ISSUER_UNKNOWN']);
    const bad = await api('GET', '/api/v1/ca/chain?issuer=Not%20An%20Id');
    expect([bad.status, bad.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);
  });
});
