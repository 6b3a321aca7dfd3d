/**
 * The URL written into certificates is recorded at `kakuin init` and never guessed again: a start
 * without publicHttpUrl uses the recorded one whatever the OCSP port, a start with another value is
 * refused until `kakuin ca set-public-url URL --confirm`. Real `kakuin` processes, an in-process
 * `kakuin serve` on free ports, and certificates read back with openssl.
 */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { cliMain, makeTempDir, opensslOk } from '../support/index.js';
import { request, startTestService, testEnv } from '../support/service.js';

describe('publicHttpUrl recorded at init, changed only by kakuin ca set-public-url', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let dataDir: string;
  const A = 'http://pki-a.example.test:8080';
  const B = 'http://pki-b.example.test';
  const kakuin = (env: Record<string, string>, ...args: string[]) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...process.env, ...testEnv(dataDir), ...env }, timeout: 60_000 });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const recorded = async () => {
    const registry = await openSqliteRegistry({ path: path.join(dataDir, 'kakuin.db') });
    try {
      return (await registry.listAuditEvents({ type: 'ca.public-url' })).map((e) => e.details?.url);
    } finally {
      await registry.close();
    }
  };
  let serial = 0;
  /** A fresh device's certificate from a service started with `env`, as openssl prints it. */
  async function issuedCertificateText(env: Record<string, string>): Promise<{ text: string; banner: string; publicHttpUrl: string }> {
    const svc = await startTestService({ dataDir, env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', ...env } });
    try {
      const api = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(svc.url, svc.rootPem, m, p, { token: svc.adminToken, ...o });
      const mfr = (await api('POST', '/api/v1/manufacturers', { body: { name: `URL maker ${++serial}` } })).json.id;
      const sn = `URL-${serial}`;
      const dev = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: sn } });
      const keyFile = path.join(tmp.dir, `${sn}.key`);
      const csrFile = path.join(tmp.dir, `${sn}.csr`);
      opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-subj', `/serialNumber=${sn}`, '-out', csrFile]);
      const r = await api('POST', `/api/v1/devices/${dev.json.id}/certificates`, { body: opensslOk(['req', '-in', csrFile]), contentType: 'application/pkcs10' });
      expect(r.status, r.text).to.equal(201);
      const certFile = path.join(tmp.dir, `${sn}.pem`);
      writeFileSync(certFile, r.json.certificate);
      const { startBanner } = await import('../../cli/serve.js');
      return { text: opensslOk(['x509', '-in', certFile, '-noout', '-text']), banner: startBanner(svc.service), publicHttpUrl: svc.service.kakuin.config.publicHttpUrl };
    } finally {
      await svc.stop();
    }
  }

  before(() => {
    tmp = makeTempDir('kakuin-public-url-');
    dataDir = path.join(tmp.dir, 'data');
  });
  after(() => tmp?.cleanup());

  it('kakuin init records the URL; a start without publicHttpUrl, on another OCSP port, still writes it into certificates', async () => {
    const init = kakuin({ KAKUIN_PUBLIC_HTTP_URL: A }, 'init');
    expect(init.status, init.stderr).to.equal(0);
    expect(await recorded()).to.deep.equal([A]);
    // Without the file init wrote, nothing sets publicHttpUrl: the default would follow ocsp.port.
    rmSync(path.join(dataDir, 'kakuin.json'));
    const issued = await issuedCertificateText({});
    expect(issued.publicHttpUrl).to.equal(A);
    expect(issued.text).to.include(`OCSP - URI:${A}/ocsp`);
    expect(issued.text).to.include(`URI:${A}/crl/`);
    expect(issued.banner).to.include(`public HTTP URL   ${A}`);
  });

  it('refuses a start and a CLI command with another publicHttpUrl (KAKUIN_E_CONFIG naming both URLs and the fix), recording nothing', async () => {
    let code: string | undefined;
    let message = '';
    try {
      await startTestService({ dataDir, env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_PUBLIC_HTTP_URL: B } });
    } catch (e) {
      code = (e as { code?: string }).code;
      message = (e as Error).message;
    }
    expect(code).to.equal('KAKUIN_E_CONFIG');
    expect(message).to.include(A).and.include(B).and.include(`kakuin ca set-public-url ${B} --confirm`);
    const show = kakuin({ KAKUIN_PUBLIC_HTTP_URL: B }, 'ca', 'show');
    expect(show.status).to.equal(1);
    expect(show.stderr).to.match(/^kakuin: KAKUIN_E_CONFIG: publicHttpUrl is/);
    expect(show.stderr.trim().split('\n'), 'one line, no stack').to.have.length(1);
    expect(await recorded()).to.deep.equal([A]);
  });

  it('ca set-public-url wants --confirm and an http:// URL; with it, new certificates carry the new URL', async () => {
    const unconfirmed = kakuin({}, 'ca', 'set-public-url', B);
    expect(unconfirmed.status).to.equal(2);
    expect(unconfirmed.stderr).to.include('KAKUIN_E_USAGE').and.include('--confirm');
    const https = kakuin({}, 'ca', 'set-public-url', 'https://pki-b.example.test', '--confirm');
    expect(https.status).to.equal(1);
    expect(https.stderr).to.include('KAKUIN_E_CONFIG');
    expect(await recorded()).to.deep.equal([A]);
    const done = kakuin({}, 'ca', 'set-public-url', `${B}/`, '--confirm');
    expect(done.status, done.stderr).to.equal(0);
    expect(done.stdout).to.include(`now ${B} (was ${A})`);
    expect(await recorded()).to.deep.equal([A, B]);
    const issued = await issuedCertificateText({ KAKUIN_PUBLIC_HTTP_URL: B });
    expect(issued.text).to.include(`OCSP - URI:${B}/ocsp`);
    expect(issued.text).to.not.include(A);
    // The old value is now the refused one.
    expect(kakuin({ KAKUIN_PUBLIC_HTTP_URL: A }, 'ca', 'show').stderr).to.include('KAKUIN_E_CONFIG');
  });
});
