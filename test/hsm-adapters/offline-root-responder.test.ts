/**
 * An offline root's ceremony, driven with openssl and the real CLI: besides the CA certificates the
 * root signs a delegated OCSP responder certificate for the key `kakuin ca csr` made, and its CRL;
 * `kakuin ca import-root-publications` records them, and `kakuin serve` then answers OCSP for the
 * intermediates (checked with `openssl ocsp`, the root as the only trust anchor) and serves the
 * root's CRL (checked with `openssl verify -crl_check_all`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, makeTempDir, opensslAsync, opensslOk, cliMain, peers, requirePeers } from '../support/index.js';
import { waitFor } from '../revocation-sync/fixture.js';
import { httpsWithClientCert, nginxPeer, type NginxPeer } from '../revocation-sync/relying-party.js';
import { request, startTestService, testEnv, type HttpResponse, type TestService } from '../support/service.js';

describe('offline root: the ceremony signs a root OCSP responder and CRL, kakuin ca import-root-publications', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let env: Record<string, string> = {};
  let svc: TestService | undefined;
  let ocspBase = '';
  let nginx: NginxPeer | undefined;
  const f = (name: string) => path.join(tmp.dir, name);
  const kakuin = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc!.url, svc!.rootPem, method, p, { token: svc!.adminToken, ...options });
  /** `openssl ca` as an offline root keeps it: its own database, CRL numbers and extensions. */
  const rootCa = (name: string, ...args: string[]) => opensslOk(['ca', '-batch', '-config', f(`${name}/ca.cnf`), ...args]);
  const makeRoot = (name: string) => {
    mkdirSync(f(name));
    writeFileSync(f(`${name}/index.txt`), '');
    writeFileSync(f(`${name}/crlnumber`), '01\n');
    writeFileSync(f(`${name}/ca.cnf`), `[ca]
default_ca = root
[root]
dir = ${f(name)}
database = $dir/index.txt
new_certs_dir = $dir
certificate = $dir/root.pem
private_key = $dir/root.key
crlnumber = $dir/crlnumber
rand_serial = yes
default_md = sha384
default_crl_days = 30
policy = any
unique_subject = no
copy_extensions = none
crl_extensions = crl_ext
[any]
organizationName = optional
commonName = supplied
[crl_ext]
authorityKeyIdentifier = keyid
[sub_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
authorityInfoAccess = OCSP;URI:${ocspBase}/ocsp
crlDistributionPoints = URI:${ocspBase}/crl/root.crl
[root_responder]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = OCSPSigning
noCheck = ignored
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[no_eku]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
noCheck = ignored
`);
    opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', f(`${name}/root.key`),
      '-subj', `/O=Offline Works/CN=${name}`, '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', f(`${name}/root.pem`)]);
  };
  const root = (name = 'root') => f(`${name}/root.pem`);
  const sign = (name: string, csr: string, extensions: string, days: number, out: string) =>
    rootCa(name, '-in', csr, '-extensions', extensions, '-days', String(days), '-notext', '-out', out);
  const showOcspSigners = () => kakuin('ca', 'show').stdout;

  before(async function () {
    tmp = makeTempDir('kakuin-offline-root-responder-');
    const dataDir = f('data');
    mkdirSync(dataDir);
    ocspBase = `http://127.0.0.1:${await freePort()}`;
    env = { ...testEnv(dataDir), KAKUIN_ORGANIZATION: 'kakuin offline test', KAKUIN_OCSP_PORT: new URL(ocspBase).port, KAKUIN_GATEWAY_PORT: '0', KAKUIN_PUBLIC_HTTP_URL: ocspBase, KAKUIN_CRL_COALESCE_MS: '200' };
    // A short limit, to see a longer responder refused.
    writeFileSync(path.join(dataDir, 'kakuin.json'), JSON.stringify({ ca: { rootResponderValidityDays: 40 } }));
    makeRoot('root');
    makeRoot('other');
  });

  after(async function () {
    await nginx?.stop();
    await svc?.stop();
    tmp?.cleanup();
  });

  it('ca csr also writes the root responder request; the CA certificates are imported', function () {
    mkdirSync(f('csrs'));
    const r = kakuin('ca', 'csr', '--out-dir', f('csrs'));
    expect(r.status, r.stderr).to.equal(0);
    expect(readdirSync(f('csrs')).sort()).to.deep.equal(['device-ca.csr', 'infrastructure-ca.csr', 'root-ocsp-responder.csr', 'station-ca.csr']);
    expect(r.stdout).to.include('import-root-publications').and.include('at most 40 days');
    expect(opensslOk(['req', '-in', f('csrs/root-ocsp-responder.csr'), '-verify', '-noout', '-subject'])).to.match(/OCSP Responder \(root\)/);
    for (const id of ['device', 'infrastructure', 'station']) sign('root', f(`csrs/${id}-ca.csr`), 'sub_ca', 1825, f(`${id}-ca.pem`));
    const imported = kakuin('ca', 'import', '--root', root(), '--device', f('device-ca.pem'), '--infrastructure', f('infrastructure-ca.pem'), '--station', f('station-ca.pem'));
    expect(imported.status, imported.stderr).to.equal(0);
    expect(opensslOk(['x509', '-in', f('device-ca.pem'), '-noout', '-ocsp_uri']).trim()).to.equal(`${ocspBase}/ocsp`);
  });

  it('refuses a responder the root did not sign, one without id-kp-OCSPSigning, one longer than ca.rootResponderValidityDays, and a CRL of another root, recording nothing', function () {
    const csr = f('csrs/root-ocsp-responder.csr');
    sign('other', csr, 'root_responder', 30, f('resp-other.pem'));
    sign('root', csr, 'no_eku', 30, f('resp-no-eku.pem'));
    sign('root', csr, 'root_responder', 60, f('resp-long.pem'));
    rootCa('other', '-gencrl', '-out', f('other.crl'));
    const before = showOcspSigners();
    for (const [args, why] of [
      [['--responder', f('resp-other.pem')], 'the root did not sign it'],
      [['--responder', f('resp-no-eku.pem')], 'id-kp-OCSPSigning'],
      [['--responder', f('resp-long.pem')], 'ca.rootResponderValidityDays (40)'],
      [['--crl', f('other.crl')], 'the root did not sign it'],
    ] as const) {
      const r = kakuin('ca', 'import-root-publications', ...args);
      expect(r.status, r.stdout).to.equal(1);
      expect(r.stderr).to.include('KAKUIN_E_VALIDATION').and.include(why);
    }
    expect(kakuin('ca', 'import-root-publications').stderr).to.include('KAKUIN_E_USAGE');
    expect(showOcspSigners()).to.equal(before);
    expect(before).to.not.include('ocsp-root');
  });

  it('after import-root-publications, serve answers OCSP for the intermediates with the root responder (openssl ocsp, the root the only anchor) and serves the root CRL (openssl verify -crl_check_all)', async function () {
    sign('root', f('csrs/root-ocsp-responder.csr'), 'root_responder', 30, f('root-responder.pem'));
    rootCa('root', '-gencrl', '-out', f('root.crl'));
    const r = kakuin('ca', 'import-root-publications', '--responder', f('root-responder.pem'), '--crl', f('root.crl'));
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('root OCSP responder').and.include('root CRL number 1');
    expect(showOcspSigners()).to.include('ocsp-root (ocsp-signer)');
    // The same CRL again is not newer: refused.
    const again = kakuin('ca', 'import-root-publications', '--crl', f('root.crl'));
    expect(again.stderr).to.include('KAKUIN_E_VALIDATION').and.include('not above');

    svc = await startTestService({ dataDir: env.KAKUIN_DATA_DIR, env });
    for (const id of ['device', 'infrastructure', 'station']) {
      const o = await opensslAsync(['ocsp', '-issuer', root(), '-cert', f(`${id}-ca.pem`), '-url', `${ocspBase}/ocsp`, '-CAfile', root(), '-timeout', '10', '-resp_text']);
      expect(o.stdout + o.stderr, id).to.match(/Response verify OK/);
      expect(o.stdout, id).to.include(`${f(`${id}-ca.pem`)}: good`);
      expect(o.stdout, id).to.match(/Responder Id: .*OCSP Responder \(root\)|OCSP Responder \(root\)/);
    }

    const m = await api('POST', '/api/v1/manufacturers', { body: { name: 'Offline Works' } });
    const d = await api('POST', '/api/v1/devices', { body: { manufacturerId: m.json.id, serialNumber: 'OFF-R1' } });
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('dev.key'), '-subj', '/serialNumber=OFF-R1', '-out', f('dev.csr')]);
    const issued = await api('POST', `/api/v1/devices/${d.json.id}/certificates`, { body: opensslOk(['req', '-in', f('dev.csr')]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    writeFileSync(f('dev.pem'), issued.json.certificate);

    const pemOf = async (url: string) => opensslOk(['crl', '-inform', 'DER', '-outform', 'PEM'], Buffer.from(await (await fetch(url)).arrayBuffer()));
    const rootCrl = await fetch(`${ocspBase}/crl/root.crl`);
    expect(rootCrl.status).to.equal(200);
    writeFileSync(f('served-root.crl.pem'), await pemOf(`${ocspBase}/crl/root.crl`));
    writeFileSync(f('served-device.crl.pem'), await pemOf(`${ocspBase}/crl/device.crl`));
    const verify = (...args: string[]) => spawnSync('openssl', ['verify', '-crl_check_all', '-CAfile', root(), '-untrusted', f('device-ca.pem'),
      '-CRLfile', f('served-root.crl.pem'), '-CRLfile', f('served-device.crl.pem'), ...args, f('dev.pem')], { encoding: 'utf8' });
    const ok = verify();
    expect(ok.stdout + ok.stderr).to.include(': OK');
    // The check has teeth: without the root's CRL, openssl cannot check the device CA.
    const missing = spawnSync('openssl', ['verify', '-crl_check_all', '-CAfile', root(), '-untrusted', f('device-ca.pem'),
      '-CRLfile', f('served-device.crl.pem'), f('dev.pem')], { encoding: 'utf8' });
    expect(missing.status).to.not.equal(0);
    expect(missing.stdout + missing.stderr).to.include('unable to get certificate CRL');
  });

  it('nginx ssl_verify_client on + ssl_ocsp on (the whole chain, the certificates\' own URLs only): a good device gets 200, a revoked one is refused', async function () {
    requirePeers(this, [peers.nginx]);
    opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.pem'), '-subj', '/CN=127.0.0.1', '-days', '2']);
    writeFileSync(f('client-cas.pem'), readFileSync(root(), 'utf8') + readFileSync(f('device-ca.pem'), 'utf8'));
    nginx = await nginxPeer(f('nginx'), `
    ssl_certificate ${f('server.pem')};
    ssl_certificate_key ${f('server.key')};
    ssl_client_certificate ${f('client-cas.pem')};
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_ocsp on;
    location / { return 200 "device $ssl_client_serial\\n"; }`);
    nginx.start();
    const devices = [];
    for (const name of ['OFF-N1', 'OFF-N2']) {
      const m = await api('POST', '/api/v1/manufacturers', { body: { name: `Works ${name}` } });
      const d = await api('POST', '/api/v1/devices', { body: { manufacturerId: m.json.id, serialNumber: name } });
      opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-subj', `/serialNumber=${name}`, '-out', f(`${name}.csr`)]);
      const issued = await api('POST', `/api/v1/devices/${d.json.id}/certificates`, { body: opensslOk(['req', '-in', f(`${name}.csr`)]), contentType: 'application/pkcs10' });
      expect(issued.status, issued.text).to.equal(201);
      writeFileSync(f(`${name}.pem`), issued.json.certificate);
      devices.push({ cert: f(`${name}.pem`), key: f(`${name}.key`), serialHex: opensslOk(['x509', '-in', f(`${name}.pem`), '-noout', '-serial']).trim().replace('serial=', '') });
    }
    const [good, stolen] = devices;
    await waitFor('nginx answering', 10_000, async () => (await httpsWithClientCert(nginx!.url, good.cert, good.key)) === 200 || undefined);
    expect(await httpsWithClientCert(nginx!.url, stolen.cert, stolen.key)).to.equal(200);
    const revoked = await api('POST', `/api/v1/certificates/${stolen.serialHex.toLowerCase()}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(revoked.status, revoked.text).to.equal(200);
    expect(await httpsWithClientCert(nginx!.url, stolen.cert, stolen.key)).to.equal(400);
    expect(await httpsWithClientCert(nginx!.url, good.cert, good.key)).to.equal(200);
    expect(nginx!.errorLog()).to.match(/certificate revoked/);
  });

  it('a later ceremony: the root revokes the infrastructure CA and renews its responder; after the import OCSP says revoked and the new CRL is served', async function () {
    const renewed = kakuin('ca', 'csr', '--root-responder', '--out-dir', f('csrs3'));
    expect(renewed.status, renewed.stderr).to.equal(1);
    mkdirSync(f('csrs3'));
    const r0 = kakuin('ca', 'csr', '--root-responder', '--out-dir', f('csrs3'));
    expect(r0.status, r0.stderr).to.equal(0);
    expect(readdirSync(f('csrs3'))).to.deep.equal(['root-ocsp-responder.csr']);
    sign('root', f('csrs3/root-ocsp-responder.csr'), 'root_responder', 30, f('root-responder-2.pem'));
    rootCa('root', '-revoke', f('infrastructure-ca.pem'), '-crl_reason', 'keyCompromise');
    rootCa('root', '-gencrl', '-out', f('root-2.crl'));
    const r = kakuin('ca', 'import-root-publications', '--responder', f('root-responder-2.pem'), '--crl', f('root-2.crl'));
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('root CRL number 2');

    // The running serve follows the revocation feed and serves the stored CRL within its 1 s cache.
    const infra = async () => opensslAsync(['ocsp', '-issuer', root(), '-cert', f('infrastructure-ca.pem'), '-url', `${ocspBase}/ocsp`, '-CAfile', root(), '-timeout', '10']);
    let o = await infra();
    for (let i = 0; i < 50 && !o.stdout.includes(': revoked'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      o = await infra();
    }
    expect(o.stdout + o.stderr).to.match(/Response verify OK/);
    expect(o.stdout).to.include(`${f('infrastructure-ca.pem')}: revoked`);
    expect(o.stdout).to.match(/Reason: keyCompromise/);
    const device = await opensslAsync(['ocsp', '-issuer', root(), '-cert', f('device-ca.pem'), '-url', `${ocspBase}/ocsp`, '-CAfile', root(), '-timeout', '10']);
    expect(device.stdout).to.include(`${f('device-ca.pem')}: good`);
    // Publications keeps a CRL up to 1 s and refreshes it behind the request that finds it stale.
    const servedNumber = async () => /X509v3 CRL Number: *\n *(\d+)/.exec(opensslOk(['crl', '-inform', 'DER', '-noout', '-text'],
      Buffer.from(await (await fetch(`${ocspBase}/crl/root.crl`)).arrayBuffer())))?.[1];
    let number = await servedNumber();
    for (let i = 0; i < 30 && number !== '2'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      number = await servedNumber();
    }
    expect(number).to.equal('2');

    // After a restart the renewed responder signs.
    await svc!.stop();
    svc = await startTestService({ dataDir: env.KAKUIN_DATA_DIR, env });
    const after = await opensslAsync(['ocsp', '-issuer', root(), '-cert', f('device-ca.pem'), '-url', `${ocspBase}/ocsp`, '-CAfile', root(), '-timeout', '10', '-resp_text']);
    expect(after.stdout + after.stderr).to.match(/Response verify OK/);
    const serial = opensslOk(['x509', '-in', f('root-responder-2.pem'), '-noout', '-serial']).trim().replace('serial=', '');
    expect(after.stdout.replace(/[:\s]/g, '').toUpperCase()).to.include(serial.toUpperCase());
  });

  it('a separate `serve --role ocsp` process answers for the intermediates with the imported root responder too', async function () {
    const proc = spawn(process.execPath, [cliMain, 'serve', '--role', 'ocsp'], {
      env: { PATH: process.env.PATH ?? '', ...env, KAKUIN_OCSP_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`serve --role ocsp did not start:\n${out}`)), 30_000);
        const seen = (c: Buffer) => {
          out += c.toString();
          const m = /OCSP, CRLs\s+(http:\/\/\S+?)\/ocsp,/.exec(out);
          if (m) { clearTimeout(timer); resolve(m[1]); }
        };
        proc.stdout!.on('data', seen);
        proc.stderr!.on('data', seen);
        proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`serve --role ocsp exited with ${code}:\n${out}`)); });
      });
      for (const [id, status] of [['device', 'good'], ['infrastructure', 'revoked']] as const) {
        const o = await opensslAsync(['ocsp', '-issuer', root(), '-cert', f(`${id}-ca.pem`), '-url', `${url}/ocsp`, '-CAfile', root(), '-timeout', '10']);
        expect(o.stdout + o.stderr, id).to.match(/Response verify OK/);
        expect(o.stdout, id).to.include(`${f(`${id}-ca.pem`)}: ${status}`);
      }
    } finally {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await exited;
      }
    }
  });
});
