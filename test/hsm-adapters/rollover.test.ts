/**
 * Device issuing CA rollover: after `kakuin ca rollover` the new CA issues, and during the overlap
 * both CAs are trusted, answer OCSP and publish CRLs — checked with `openssl verify` and `openssl ocsp`.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, makeTempDir, opensslAsync, opensslOk, cliMain } from '../support/index.js';
import { request, startTestService, testEnv, type HttpResponse, type TestService } from '../support/service.js';

describe('device issuing CA rollover with an overlap', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let env: Record<string, string> = {};
  let svc: TestService | undefined;
  let ocspBase = '';
  const f = (name: string) => path.join(tmp.dir, name);
  const kakuin = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc!.url, svc!.rootPem, method, p, { token: svc!.adminToken, ...options });

  async function issue(serialNumber: string, manufacturerId: string): Promise<{ file: string; serialHex: string; issuerFile: string }> {
    const d = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber } });
    expect(d.status, d.text).to.equal(201);
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${serialNumber}.key`), '-subj', `/serialNumber=${serialNumber}`, '-out', f(`${serialNumber}.csr`)]);
    const r = await api('POST', `/api/v1/devices/${d.json.id}/certificates`, { body: opensslOk(['req', '-in', f(`${serialNumber}.csr`)]), contentType: 'application/pkcs10' });
    expect(r.status, r.text).to.equal(201);
    writeFileSync(f(`${serialNumber}.pem`), r.json.certificate);
    // The issuing CA now in service, as published for operators in data/ca/device.pem.
    const issuerFile = f(`${serialNumber}-issuer.pem`);
    copyFileSync(f('data/ca/device.pem'), issuerFile);
    return { file: f(`${serialNumber}.pem`), serialHex: r.json.serialHex, issuerFile };
  }

  async function ocsp(cert: { file: string; issuerFile: string }): Promise<string> {
    const r = await opensslAsync(['ocsp', '-issuer', cert.issuerFile, '-cert', cert.file, '-url', `${ocspBase}/ocsp`, '-CAfile', f('root.pem'), '-timeout', '10']);
    return r.stdout + r.stderr;
  }

  before(async function () {
    tmp = makeTempDir('kakuin-rollover-');
    mkdirSync(f('data'));
    ocspBase = `http://127.0.0.1:${await freePort()}`;
    env = { ...testEnv(f('data')), KAKUIN_OCSP_PORT: new URL(ocspBase).port, KAKUIN_GATEWAY_PORT: '0', KAKUIN_PUBLIC_HTTP_URL: ocspBase, KAKUIN_CRL_COALESCE_MS: '200' };
  });

  after(async function () {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('the old CA keeps answering for its certificates while the new one issues', async function () {
    expect(kakuin('init').status).to.equal(0);
    svc = await startTestService({ dataDir: f('data'), env });
    writeFileSync(f('root.pem'), svc.rootPem);
    const m = await api('POST', '/api/v1/manufacturers', { body: { name: 'Rollover Works' } });
    expect(m.status, m.text).to.equal(201);
    const old = await issue('ROLL-OLD', m.json.id);
    await svc.stop();
    svc = undefined;

    const rolled = kakuin('ca', 'rollover');
    expect(rolled.status, rolled.stderr).to.equal(0);
    expect(rolled.stdout).to.include('device-2');

    svc = await startTestService({ dataDir: f('data'), env });
    const fresh = await issue('ROLL-NEW', m.json.id);
    const oldIssuer = opensslOk(['x509', '-in', old.file, '-noout', '-issuer']);
    const newIssuer = opensslOk(['x509', '-in', fresh.file, '-noout', '-issuer']);
    expect(newIssuer).to.include('Device Issuing CA 2');
    expect(oldIssuer).to.not.equal(newIssuer);

    for (const cert of [old, fresh]) {
      expect(opensslOk(['verify', '-CAfile', f('root.pem'), '-untrusted', cert.issuerFile, cert.file])).to.include(': OK');
      const text = await ocsp(cert);
      expect(text).to.match(/Response verify OK/);
      expect(text).to.include(`${cert.file}: good`);
    }

    const revoked = await api('POST', `/api/v1/certificates/${old.serialHex.toLowerCase()}/revoke`, { body: { reason: 'superseded' } });
    expect(revoked.status, revoked.text).to.equal(200);
    const text = await ocsp(old);
    expect(text).to.match(/Response verify OK/);
    expect(text).to.include(`${old.file}: revoked`);

    for (const [id, cert] of [['device', old], ['device-2', fresh]] as const) {
      const crl = await fetch(`${ocspBase}/crl/${id}.crl`);
      expect(crl.status, id).to.equal(200);
      const file = f(`${id}.crl.pem`);
      writeFileSync(file, opensslOk(['crl', '-inform', 'DER', '-outform', 'PEM'], Buffer.from(await crl.arrayBuffer())));
      opensslOk(['crl', '-in', file, '-CAfile', cert.issuerFile, '-noout']);
    }
  });
});
