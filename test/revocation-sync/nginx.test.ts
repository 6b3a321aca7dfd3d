/**
 * Recipe: nginx `ssl_crl` fed by `kakuin revocation sync --with-chain --exec "nginx -s reload"`.
 * nginx (Debian nginx-light) started by the test on a free port in a temp dir: a device is let in,
 * revoked in kakuin, and refused by nginx once the sidecar has written the bundle and reloaded it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { peers, requirePeers } from '../support/index.js';
import { bare, bundleSerials, startRelyingPartyKakuin, startSidecar, waitFor, type RelyingPartyKakuin, type Sidecar } from './fixture.js';
import { httpsWithClientCert, nginxPeer, type NginxPeer } from './relying-party.js';

describe('recipe: nginx ssl_crl fed by the sync sidecar', function () {
  this.timeout(90_000);
  let k: RelyingPartyKakuin;
  let sidecar: Sidecar | undefined;
  let nginx: NginxPeer;
  let dir: string;

  before(async function () {
    requirePeers(this, [peers.nginx]);
    k = await startRelyingPartyKakuin();
    dir = path.join(k.tmp.dir, 'nginx');
    nginx = await nginxPeer(dir, `
    ssl_certificate ${k.serverCert};
    ssl_certificate_key ${k.serverKey};
    ssl_client_certificate ${k.caFile};
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_crl ${dir}/kakuin-crls.pem;
    location / { return 200 "device $ssl_client_serial\\n"; }`);
  });

  after(async () => {
    await sidecar?.stop();
    await nginx?.stop();
    await k?.stop();
  });

  it('a revoked device is refused by nginx after the sidecar wrote the CRL bundle and reloaded nginx; a good one stays in', async () => {
    const good = await k.device('nginx-good');
    const stolen = await k.device('nginx-stolen');
    const bundle = path.join(dir, 'kakuin-crls.pem');
    const reload = ['nginx', ...nginx.args, '-s', 'reload'].join(' ');
    sidecar = startSidecar(['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--with-chain', '--pem-out', bundle,
      '--exec', reload, '--min-reload-interval', '1', '--state-dir', path.join(dir, 'sync-state')]);
    await waitFor('the first bundle', 15_000, () => (existsSync(bundle) && readFileSync(bundle, 'utf8').includes('X509 CRL')) || undefined);
    nginx.start();
    const url = nginx.url;
    await waitFor('nginx answering', 10_000, async () => (await httpsWithClientCert(url, good.certFile, good.keyFile)) === 200 || undefined);
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)).to.equal(200);

    await k.revoke(stolen.serialHex);
    const refusedOnce = async () => (await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)) === 400;
    const refused = await waitFor('nginx refusing the revoked device', 15_000, async () => await refusedOnce() || undefined);
    // (waiting for 400, not for "not 200": during a reload a connection may fail, and an old worker still
    // holds the old CRL until it exits — a new connection may reach it just after the new worker's first 400,
    // so the checks below wait for three refusals in a row before they look again)
    await waitFor('every nginx worker refusing it', 10_000, async () => (await refusedOnce() && await refusedOnce() && await refusedOnce()) || undefined);
    expect(bundleSerials(bundle).has(bare(stolen.serialHex))).to.equal(true);
    // nginx answers 400 "The SSL certificate error" to a client certificate it refuses.
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)).to.equal(400);
    expect(await httpsWithClientCert(url, good.certFile, good.keyFile)).to.equal(200);
    expect(sidecar.output()).to.include('relying party reloaded');
    expect(refused.ms).to.be.below(10_000);
    expect(nginx.errorLog()).to.match(/certificate revoked/);
  });
});
