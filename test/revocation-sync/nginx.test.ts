/**
 * Recipe: nginx `ssl_crl` fed by `kakuin revocation sync --with-chain --exec "nginx -s reload"`.
 * nginx (Debian nginx-light) started by the test on a free port in a temp dir: a device is let in,
 * revoked in kakuin, and refused by nginx once the sidecar has written the bundle and reloaded it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort } from '../support/index.js';
import { bare, bundleSerials, startRelyingPartyKakuin, startSidecar, waitFor, type RelyingPartyKakuin, type Sidecar } from './fixture.js';
import { httpsWithClientCert } from './relying-party.js';

describe('recipe: nginx ssl_crl fed by the sync sidecar', function () {
  this.timeout(90_000);
  let k: RelyingPartyKakuin;
  let sidecar: Sidecar | undefined;
  let nginx: ChildProcess | undefined;
  let dir: string;
  let url: string;
  let nginxArgs: string[];

  before(async function () {
    if (spawnSync('nginx', ['-v']).error) this.skip();
    k = await startRelyingPartyKakuin();
    dir = path.join(k.tmp.dir, 'nginx');
    mkdirSync(path.join(dir, 'tmp'), { recursive: true });
    const port = await freePort();
    url = `https://127.0.0.1:${port}/`;
    writeFileSync(path.join(dir, 'nginx.conf'), `
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body; proxy_temp_path ${dir}/tmp/proxy; fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi; scgi_temp_path ${dir}/tmp/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${k.serverCert};
    ssl_certificate_key ${k.serverKey};
    ssl_client_certificate ${k.caFile};
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_crl ${dir}/kakuin-crls.pem;
    location / { return 200 "device $ssl_client_serial\\n"; }
  }
}
`);
    nginxArgs = ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')];
  });

  after(async () => {
    await sidecar?.stop();
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((r) => nginx!.once('exit', r));
      nginx.kill('SIGQUIT');
      await exited;
    }
    await k?.stop();
  });

  it('a revoked device is refused by nginx after the sidecar wrote the CRL bundle and reloaded nginx; a good one stays in', async () => {
    const good = await k.device('nginx-good');
    const stolen = await k.device('nginx-stolen');
    const bundle = path.join(dir, 'kakuin-crls.pem');
    const reload = ['nginx', ...nginxArgs, '-s', 'reload'].join(' ');
    sidecar = startSidecar(['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--with-chain', '--pem-out', bundle,
      '--exec', reload, '--min-reload-interval', '1', '--state-dir', path.join(dir, 'sync-state')]);
    await waitFor('the first bundle', 15_000, () => (existsSync(bundle) && readFileSync(bundle, 'utf8').includes('X509 CRL')) || undefined);
    nginx = spawn('nginx', [...nginxArgs, '-g', 'daemon off;'], { stdio: 'ignore' });
    await waitFor('nginx answering', 10_000, async () => (await httpsWithClientCert(url, good.certFile, good.keyFile)) === 200 || undefined);
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)).to.equal(200);

    await k.revoke(stolen.serialHex);
    const refused = await waitFor('nginx refusing the revoked device', 15_000, async () => (await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)) === 400 || undefined);
    // (waiting for 400, not for "not 200": during a reload a connection may fail, and an old worker still
    // holds the old CRL until it exits)
    expect(bundleSerials(bundle).has(bare(stolen.serialHex))).to.equal(true);
    // nginx answers 400 "The SSL certificate error" to a client certificate it refuses.
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)).to.equal(400);
    expect(await httpsWithClientCert(url, good.certFile, good.keyFile)).to.equal(200);
    expect(sidecar.output()).to.include('relying party reloaded');
    expect(refused.ms).to.be.below(10_000);
    expect(readFileSync(path.join(dir, 'error.log'), 'utf8')).to.match(/certificate revoked/);
  });
});
