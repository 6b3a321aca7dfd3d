/**
 * `kakuin ca reissue-intermediates` (issue 16): CAs whose certificates do not name kakuin's OCSP URL
 * (made before intermediates carried one, or under another `publicHttpUrl`, as here) get new
 * certificates with the same key, Name and validity. Device certificates issued before verify with
 * `openssl verify` under the old and the new device CA certificate alike, and the root's delegated
 * responder answers for the new one at the URL it names. The real `kakuin` command on a data dir.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { cliMain, freePort, makeTempDir, openssl, opensslAsync, opensslOk } from '../support/index.js';
import { request, startTestService, testEnv, type TestService } from '../support/service.js';

describe('kakuin ca reissue-intermediates', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let svc: TestService | undefined;
  const f = (name: string) => path.join(tmp.dir, name);
  const kakuin = (env: Record<string, string>, ...args: string[]) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  before(() => {
    tmp = makeTempDir('kakuin-reissue-');
    mkdirSync(f('data'));
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('gives the CAs new certificates naming the OCSP URL, same key and Name; devices issued before verify under old and new', async () => {
    const port = await freePort();
    const base = { ...testEnv(f('data')), KAKUIN_OCSP_PORT: String(port), KAKUIN_GATEWAY_PORT: '0' };
    const before = { ...base, KAKUIN_PUBLIC_HTTP_URL: 'http://kakuin-old.example:8080' };
    const now = { ...base, KAKUIN_PUBLIC_HTTP_URL: `http://127.0.0.1:${port}` };
    expect(kakuin(before, 'init').status).to.equal(0);
    copyFileSync(f('data/ca/device.pem'), f('old-device-ca.pem'));
    copyFileSync(f('data/ca/root.pem'), f('root.pem'));
    expect(opensslOk(['x509', '-in', f('old-device-ca.pem'), '-noout', '-ocsp_uri']).trim()).to.equal('http://kakuin-old.example:8080/ocsp');

    // A device certified under the old device CA certificate.
    svc = await startTestService({ dataDir: f('data'), env: before });
    const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}) => request(svc!.url, svc!.rootPem, method, p, { token: svc!.adminToken, ...options });
    const m = await api('POST', '/api/v1/manufacturers', { body: { name: 'Reissue Works' } });
    const d = await api('POST', '/api/v1/devices', { body: { manufacturerId: m.json.id, serialNumber: 'REISSUE-1' } });
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('dev.key'), '-subj', '/serialNumber=REISSUE-1', '-out', f('dev.csr')]);
    const issued = await api('POST', `/api/v1/devices/${d.json.id}/certificates`, { body: opensslOk(['req', '-in', f('dev.csr')]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    writeFileSync(f('dev.pem'), issued.json.certificate);
    await svc.stop();
    svc = undefined;

    // The operator moves the installation to its new URL (recorded; a start with another is refused).
    const moved = kakuin(now, 'ca', 'set-public-url', now.KAKUIN_PUBLIC_HTTP_URL, '--confirm');
    expect(moved.status, moved.stderr).to.equal(0);
    const run = kakuin(now, 'ca', 'reissue-intermediates');
    expect(run.status, run.stderr).to.equal(0);
    for (const id of ['device', 'infrastructure', 'station']) expect(run.stdout).to.match(new RegExp(`^${id} CA: new certificate [0-9A-F]+ \\(was [0-9A-F]+\\)`, 'm'));
    // A second run finds nothing to do.
    const again = kakuin(now, 'ca', 'reissue-intermediates');
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stdout).to.not.include('new certificate');
    expect(again.stdout).to.include('device CA: unchanged');

    svc = await startTestService({ dataDir: f('data'), env: now });
    const newCa = f('data/ca/device.pem');
    const field = (file: string, flag: string) => opensslOk(['x509', '-in', file, '-noout', flag]).trim();
    expect(field(newCa, '-ocsp_uri')).to.equal(`http://127.0.0.1:${port}/ocsp`);
    expect(field(newCa, '-subject')).to.equal(field(f('old-device-ca.pem'), '-subject'));
    expect(field(newCa, '-pubkey')).to.equal(field(f('old-device-ca.pem'), '-pubkey'));
    expect(field(newCa, '-enddate')).to.equal(field(f('old-device-ca.pem'), '-enddate'));
    expect(field(newCa, '-serial')).to.not.equal(field(f('old-device-ca.pem'), '-serial'));
    // The chain the API hands out is the new one.
    expect((await request(svc.url, svc.rootPem, 'GET', '/api/v1/ca/chain')).text).to.include(readFileSync(newCa, 'utf8').trim());

    for (const ca of [newCa, f('old-device-ca.pem')]) {
      const v = openssl(['verify', '-CAfile', f('root.pem'), '-untrusted', ca, f('dev.pem')]);
      expect(v.status, v.stdout + v.stderr).to.equal(0);
    }
    const r = await opensslAsync(['ocsp', '-issuer', f('root.pem'), '-cert', newCa, '-url', `http://127.0.0.1:${port}/ocsp`, '-CAfile', f('root.pem'), '-timeout', '10']);
    expect(r.stdout + r.stderr).to.match(/Response verify OK/);
    expect(r.stdout).to.match(/device\.pem: good/);
  });
});
