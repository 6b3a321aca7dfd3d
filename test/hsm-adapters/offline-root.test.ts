/**
 * An offline root made by `openssl` signs the device and infrastructure CAs whose keys and CSRs
 * `kakuin ca csr` made; `kakuin ca import` records them, and `kakuin serve` issues, answers OCSP
 * and publishes CRLs under them, checked with `openssl verify` and `openssl ocsp`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, makeTempDir, opensslAsync, opensslOk, cliMain } from '../support/index.js';
import { request, startTestService, testEnv, type HttpResponse, type TestService } from '../support/service.js';

const SUB_CA_EXTENSIONS = `[v3]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

describe('offline root: kakuin ca csr, an openssl-made root signs, kakuin ca import', function () {
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
  const makeRoot = (name: string) => opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes',
    '-keyout', f(`${name}.key`), '-subj', `/O=Offline Works/CN=${name}`, '-days', '3650',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', f(`${name}.pem`)]);
  const signWith = (rootName: string, csr: string, out: string) => opensslOk(['x509', '-req', '-in', csr, '-CA', f(`${rootName}.pem`),
    '-CAkey', f(`${rootName}.key`), '-CAcreateserial', '-days', '1825', '-extfile', f('sub-ca.cnf'), '-extensions', 'v3', '-out', out]);

  before(async function () {
    tmp = makeTempDir('kakuin-offline-root-');
    const dataDir = f('data');
    mkdirSync(dataDir);
    ocspBase = `http://127.0.0.1:${await freePort()}`;
    env = { ...testEnv(dataDir), KAKUIN_ORGANIZATION: 'kakuin offline test', KAKUIN_OCSP_PORT: new URL(ocspBase).port, KAKUIN_GATEWAY_PORT: '0', KAKUIN_PUBLIC_HTTP_URL: ocspBase, KAKUIN_CRL_COALESCE_MS: '200' };
    writeFileSync(f('sub-ca.cnf'), SUB_CA_EXTENSIONS);
    makeRoot('offline-root');
    makeRoot('other-root');
  });

  after(async function () {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('ca csr refuses to default the organization name (KAKUIN_ORGANIZATION), writing nothing', function () {
    mkdirSync(f('csrs-unnamed'));
    const { KAKUIN_ORGANIZATION: _, ...unnamed } = env;
    const r = spawnSync(process.execPath, [cliMain, 'ca', 'csr', '--out-dir', f('csrs-unnamed')], { env: { ...process.env, ...unnamed, KAKUIN_ORGANIZATION: '' }, timeout: 60_000 });
    expect(r.status).to.equal(1);
    expect(r.stderr.toString()).to.include('KAKUIN_E_CONFIG').and.include('KAKUIN_ORGANIZATION');
    expect(readdirSync(f('csrs-unnamed'))).to.deep.equal([]);
    expect(existsSync(path.join(env.KAKUIN_DATA_DIR, 'keys')) ? readdirSync(path.join(env.KAKUIN_DATA_DIR, 'keys')) : []).to.deep.equal([]);
  });

  it('ca csr writes PKCS#10 requests for the device, infrastructure and station CAs that openssl verifies', function () {
    mkdirSync(f('csrs'));
    const r = kakuin('ca', 'csr', '--out-dir', f('csrs'));
    expect(r.status, r.stderr).to.equal(0);
    for (const id of ['device', 'infrastructure', 'station']) {
      const text = opensslOk(['req', '-in', f(`csrs/${id}-ca.csr`), '-verify', '-noout', '-subject']) ;
      expect(text).to.match(/subject=.*CN ?= ?kakuin/i);
    }
  });

  it('ca import refuses CA certificates the given root did not sign, and records nothing', function () {
    signWith('other-root', f('csrs/device-ca.csr'), f('device-by-other.pem'));
    signWith('offline-root', f('csrs/infrastructure-ca.csr'), f('infrastructure-ca.pem'));
    const r = kakuin('ca', 'import', '--root', f('offline-root.pem'), '--device', f('device-by-other.pem'), '--infrastructure', f('infrastructure-ca.pem'));
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include('KAKUIN_E_VALIDATION');
    expect(kakuin('ca', 'show').stderr).to.include('KAKUIN_E_CA_NOT_INITIALIZED');
  });

  it('after ca import, serve issues device certificates that chain to the openssl root; OCSP and CRLs verify', async function () {
    signWith('offline-root', f('csrs/device-ca.csr'), f('device-ca.pem'));
    const imported = kakuin('ca', 'import', '--root', f('offline-root.pem'), '--device', f('device-ca.pem'), '--infrastructure', f('infrastructure-ca.pem'));
    expect(imported.status, imported.stderr).to.equal(0);
    const show = kakuin('ca', 'show');
    expect(show.stdout).to.include('offline:root');

    svc = await startTestService({ dataDir: env.KAKUIN_DATA_DIR, env });
    const m = await api('POST', '/api/v1/manufacturers', { body: { name: 'Offline Works' } });
    const d = await api('POST', '/api/v1/devices', { body: { manufacturerId: m.json.id, serialNumber: 'OFF-1' } });
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('dev.key'), '-subj', '/serialNumber=OFF-1', '-out', f('dev.csr')]);
    const issued = await api('POST', `/api/v1/devices/${d.json.id}/certificates`, { body: opensslOk(['req', '-in', f('dev.csr')]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    writeFileSync(f('dev.pem'), issued.json.certificate);
    expect(opensslOk(['verify', '-CAfile', f('offline-root.pem'), '-untrusted', f('device-ca.pem'), f('dev.pem')])).to.include(': OK');

    const r = await opensslAsync(['ocsp', '-issuer', f('device-ca.pem'), '-cert', f('dev.pem'), '-url', `${ocspBase}/ocsp`, '-CAfile', f('offline-root.pem'), '-timeout', '10']);
    expect(r.stdout + r.stderr).to.match(/Response verify OK/);
    expect(r.stdout).to.include(`${f('dev.pem')}: good`);

    const crl = await fetch(`${ocspBase}/crl/device.crl`);
    expect(crl.status).to.equal(200);
    writeFileSync(f('device.crl.pem'), opensslOk(['crl', '-inform', 'DER', '-outform', 'PEM'], Buffer.from(await crl.arrayBuffer())));
    expect(opensslOk(['verify', '-crl_check', '-CAfile', f('offline-root.pem'), '-untrusted', f('device-ca.pem'), '-CRLfile', f('device.crl.pem'), f('dev.pem')]))
      .to.include(': OK');
  });

  it('without --station stations use API keys; ca import --root --station adds the station CA later, and it issues station certificates that chain to the offline root', async function () {
    // The import above left the station CA out.
    const none = await api('POST', '/api/v1/manufacturers', { body: { name: 'Offline Stations' } });
    const station = await api('POST', `/api/v1/manufacturers/${none.json.id}/stations`, { body: { name: 'line-1' } });
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('sta.key'), '-subj', '/CN=line-1', '-out', f('sta.csr')]);
    const csr = opensslOk(['req', '-in', f('sta.csr')]);
    const refused = await api('POST', `/api/v1/stations/${station.json.id}/certificate`, { body: { csr } });
    expect([refused.status, refused.json.code]).to.deep.equal([503, 'KAKUIN_E_STATION_CA_UNAVAILABLE']);
    await svc!.stop();
    svc = undefined;

    // A data dir whose pending station key is gone (imported by an older kakuin, or the request was
    // lost): ca csr on the existing hierarchy makes the station CA's key and request only.
    rmSync(f('data/ca-pending.json'), { force: true });
    mkdirSync(f('csrs2'));
    const again0 = kakuin('ca', 'csr', '--out-dir', f('csrs2'));
    expect(again0.status, again0.stderr).to.equal(0);
    expect(readdirSync(f('csrs2'))).to.deep.equal(['station-ca.csr']);
    signWith('other-root', f('csrs2/station-ca.csr'), f('station-by-other.pem'));
    const wrong = kakuin('ca', 'import', '--root', f('other-root.pem'), '--station', f('station-by-other.pem'));
    expect(wrong.status).to.equal(1);
    expect(wrong.stderr).to.include('KAKUIN_E_VALIDATION');
    signWith('offline-root', f('csrs2/station-ca.csr'), f('station-ca.pem'));
    const again = kakuin('ca', 'import', '--root', f('offline-root.pem'), '--device', f('device-ca.pem'), '--infrastructure', f('infrastructure-ca.pem'), '--station', f('station-ca.pem'));
    expect(again.status).to.equal(1);
    expect(again.stderr).to.include('KAKUIN_E_CA_EXISTS');
    const added = kakuin('ca', 'import', '--root', f('offline-root.pem'), '--station', f('station-ca.pem'));
    expect(added.status, added.stderr).to.equal(0);
    expect(added.stdout).to.include('station CA');
    expect(kakuin('ca', 'import', '--root', f('offline-root.pem'), '--station', f('station-ca.pem')).status).to.equal(1);
    expect(kakuin('ca', 'csr', '--out-dir', f('csrs2')).stderr, 'nothing left to request').to.include('KAKUIN_E_CA_EXISTS');

    svc = await startTestService({ dataDir: env.KAKUIN_DATA_DIR, env });
    const issued = await api('POST', `/api/v1/stations/${station.json.id}/certificate`, { body: { csr } });
    expect(issued.status, issued.text).to.equal(201);
    writeFileSync(f('sta.pem'), issued.json.certificate);
    expect(opensslOk(['verify', '-CAfile', f('offline-root.pem'), '-untrusted', f('station-ca.pem'), '-purpose', 'sslclient', f('sta.pem')])).to.include(': OK');
    const r = await opensslAsync(['ocsp', '-issuer', f('station-ca.pem'), '-cert', f('sta.pem'), '-url', `${ocspBase}/ocsp`, '-CAfile', f('offline-root.pem'), '-timeout', '10']);
    expect(r.stdout + r.stderr).to.match(/Response verify OK/);
    expect(r.stdout).to.include(`${f('sta.pem')}: good`);
  });

  it('ca reissue-intermediates refuses while the root is offline (KAKUIN_E_KEY_OFFLINE) and changes no CA', async function () {
    await svc?.stop();
    svc = undefined;
    const before = kakuin('ca', 'show');
    expect(before.status, before.stderr).to.equal(0);
    const r = kakuin('ca', 'reissue-intermediates');
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include('KAKUIN_E_KEY_OFFLINE');
    expect(kakuin('ca', 'show').stdout).to.equal(before.stdout);
  });
});
