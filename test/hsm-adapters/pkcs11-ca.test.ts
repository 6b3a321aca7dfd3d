/**
 * A CA whose root, issuing and OCSP responder keys live in a SoftHSM2 token (`kakuin init --keys
 * pkcs11:token=...`): issuance, OCSP and CRLs work unchanged, checked with `openssl verify` and
 * `openssl ocsp`; TLS listener keys stay in the software store.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, makeTempDir, opensslAsync, opensslOk, cliMain } from '../support/index.js';
import { request, startTestService, testEnv, type HttpResponse, type TestService } from '../support/service.js';
import { createToken, requireSoftHsm, softhsmConf, TEST_PIN } from './softhsm.js';

describe('a CA with its keys in a PKCS#11 token (SoftHSM2)', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let token = '';
  let dataDir = '';
  let env: Record<string, string> = {};
  let svc: TestService | undefined;
  let ocspBase = '';
  const kakuin = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc!.url, svc!.rootPem, method, p, { token: svc!.adminToken, ...options });

  before(async function () {
    const modulePath = requireSoftHsm(this);
    softhsmConf();
    token = createToken('ca');
    tmp = makeTempDir('kakuin-pkcs11-ca-');
    dataDir = path.join(tmp.dir, 'data');
    mkdirSync(dataDir);
    mkdirSync(path.join(tmp.dir, 'wrong-pin'));
    ocspBase = `http://127.0.0.1:${await freePort()}`;
    env = {
      ...testEnv(dataDir), KAKUIN_PKCS11_MODULE: modulePath, KAKUIN_PKCS11_PIN: TEST_PIN, SOFTHSM2_CONF: process.env.SOFTHSM2_CONF!,
      KAKUIN_OCSP_PORT: new URL(ocspBase).port, KAKUIN_GATEWAY_PORT: '0', KAKUIN_PUBLIC_HTTP_URL: ocspBase, KAKUIN_CRL_COALESCE_MS: '200',
    };
  });

  after(async function () {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('init refuses a --keys URI that names a key or carries a PIN, before writing anything', function () {
    for (const bad of [`pkcs11:token=${token};object=mine`, `pkcs11:token=${token}?pin-value=${TEST_PIN}`]) {
      const r = kakuin('init', '--keys', bad);
      expect(r.status, r.stdout).to.equal(1);
      expect(r.stderr).to.include('KAKUIN_E_KEY_URI_INVALID');
    }
  });

  it('init with a wrong PIN fails with KAKUIN_E_PKCS11_PIN', function () {
    const saved = env;
    env = { ...env, KAKUIN_PKCS11_PIN: 'wrong', KAKUIN_DATA_DIR: path.join(tmp.dir, 'wrong-pin') };
    try {
      const r = kakuin('init', '--keys', `pkcs11:token=${token}`);
      expect(r.status).to.equal(1);
      expect(r.stderr).to.include('KAKUIN_E_PKCS11_PIN');
    } finally {
      env = saved;
    }
  });

  it('init --keys pkcs11:token=... makes root, issuing and responder keys in the token, none on disk', function () {
    const r = kakuin('init', '--keys', `pkcs11:token=${token}`);
    expect(r.status, r.stderr).to.equal(0);
    const show = kakuin('ca', 'show');
    expect(show.status, show.stderr).to.equal(0);
    for (const id of ['root', 'device', 'infrastructure']) {
      expect(show.stdout).to.match(new RegExp(`key +pkcs11:token=${token};id=[^;]+;object=${id}-ca `));
    }
    const keyDir = path.join(dataDir, 'keys');
    const keyFiles = existsSync(keyDir) ? readdirSync(keyDir) : [];
    expect(keyFiles.filter((f) => /-ca\.key\.pem$|^ocsp-/.test(f)), keyFiles.join(', ')).to.deep.equal([]);
  });

  it('serves: a certificate and CRL signed in the token pass openssl verify, OCSP responses pass openssl ocsp', async function () {
    svc = await startTestService({ dataDir, env });
    const issuers = await svc.service.kakuin.registry.listIssuers();
    expect(issuers.map((i) => i.keyUri.split(':')[0])).to.deep.equal(issuers.map(() => 'pkcs11'));
    // The TLS listener key of the API stays in the software store.
    expect(readdirSync(path.join(dataDir, 'keys')).some((f) => f.endsWith('.key.pem'))).to.equal(true);
    const files = { root: path.join(tmp.dir, 'root.pem'), issuing: path.join(tmp.dir, 'issuing.pem') };
    writeFileSync(files.root, svc.rootPem);
    const chain = await request(svc.url, svc.rootPem, 'GET', '/api/v1/ca/chain');
    writeFileSync(files.issuing, chain.text.split(/(?<=-----END CERTIFICATE-----\n)/)[0]);

    const m = await api('POST', '/api/v1/manufacturers', { body: { name: 'HSM Works' } });
    const d = await api('POST', '/api/v1/devices', { body: { manufacturerId: m.json.id, serialNumber: 'HSM-1' } });
    expect(d.status, d.text).to.equal(201);
    const key = path.join(tmp.dir, 'dev.key');
    const csr = path.join(tmp.dir, 'dev.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/serialNumber=HSM-1', '-out', csr]);
    const issued = await api('POST', `/api/v1/devices/${d.json.id}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    const certFile = path.join(tmp.dir, 'dev.pem');
    writeFileSync(certFile, issued.json.certificate);
    expect(opensslOk(['verify', '-CAfile', files.root, '-untrusted', files.issuing, certFile])).to.include(': OK');

    const ocsp = async () => {
      const r = await opensslAsync(['ocsp', '-issuer', files.issuing, '-cert', certFile, '-url', `${ocspBase}/ocsp`, '-CAfile', files.root, '-timeout', '10']);
      return r.stdout + r.stderr;
    };
    let text = await ocsp();
    expect(text).to.match(/Response verify OK/);
    expect(text).to.include(`${certFile}: good`);

    const crlResponse = await fetch(`${ocspBase}/crl/device.crl`);
    expect(crlResponse.status).to.equal(200);
    const crlFile = path.join(tmp.dir, 'device.crl.pem');
    writeFileSync(crlFile, opensslOk(['crl', '-inform', 'DER', '-outform', 'PEM'], Buffer.from(await crlResponse.arrayBuffer())));
    expect(opensslOk(['verify', '-crl_check', '-CAfile', files.root, '-untrusted', files.issuing, '-CRLfile', crlFile, certFile])).to.include(': OK');

    const revoked = await api('POST', `/api/v1/certificates/${issued.json.serialHex.toLowerCase()}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(revoked.status, revoked.text).to.equal(200);
    text = await ocsp();
    expect(text).to.match(/Response verify OK/);
    expect(text).to.include(`${certFile}: revoked`);
  });
});
