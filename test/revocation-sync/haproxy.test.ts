/**
 * Recipe: HAProxy `crl-file` kept current by `kakuin revocation sync --haproxy-socket` (HAProxy 2.6
 * from Debian, master-worker, started by the test on a free port): a CRL that fits tune.bufsize goes
 * in through the runtime API (`set ssl crl-file` + `commit ssl crl-file`, no reload); one over
 * 16 KiB makes the sidecar reload HAProxy through the master socket, which re-reads the file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, peers, requirePeers } from '../support/index.js';
import { fakeCertificate, issuance } from '../contract/registry-fixtures.js';
import { bare, bundleSerials, startRelyingPartyKakuin, startSidecar, waitFor, type RelyingPartyKakuin, type Sidecar } from './fixture.js';
import { httpsWithClientCert } from './relying-party.js';

describe('recipe: HAProxy crl-file hot-updated by the sync sidecar', function () {
  this.timeout(90_000);
  let k: RelyingPartyKakuin;
  let sidecar: Sidecar | undefined;
  let haproxy: ChildProcess | undefined;
  let dir: string;
  let url: string;
  let bundle: string;

  before(async function () {
    requirePeers(this, [peers.haproxy]);
    k = await startRelyingPartyKakuin();
    dir = path.join(k.tmp.dir, 'haproxy');
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    url = `https://127.0.0.1:${port}/`;
    bundle = path.join(dir, 'kakuin-crls.pem');
    writeFileSync(path.join(dir, 'server.pem'), readFileSync(k.serverCert, 'utf8') + readFileSync(k.serverKey, 'utf8'));
    writeFileSync(path.join(dir, 'haproxy.cfg'), `
global
  pidfile ${dir}/haproxy.pid
defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend devices
  bind 127.0.0.1:${port} ssl crt ${dir}/server.pem ca-file ${k.caFile} verify required crl-file ${bundle}
  http-request return status 200 content-type text/plain string "device ok"
`);
  });

  after(async () => {
    await sidecar?.stop();
    if (haproxy && haproxy.exitCode === null) {
      const exited = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGTERM');
      await exited;
    }
    await k?.stop();
  });

  it('a revoked device is refused after the runtime API update, with no reload; a CRL over 16 KiB goes in by a reload through the master socket', async () => {
    const good = await k.device('haproxy-good');
    const stolen = await k.device('haproxy-stolen');
    const master = path.join(dir, 'master.sock');
    sidecar = startSidecar(['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--with-chain', '--pem-out', bundle,
      '--haproxy-socket', master, '--haproxy-crl', bundle, '--min-reload-interval', '0']);
    await waitFor('the first bundle', 15_000, () => (existsSync(bundle) && readFileSync(bundle, 'utf8').includes('X509 CRL')) || undefined);
    haproxy = spawn('haproxy', ['-W', '-S', master, '-f', path.join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
    await waitFor('HAProxy answering', 10_000, async () => (await httpsWithClientCert(url, good.certFile, good.keyFile)) === 200 || undefined);
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)).to.equal(200);

    await k.revoke(stolen.serialHex);
    await waitFor('HAProxy refusing the revoked device', 15_000, async () => (await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)) !== 200 || undefined);
    expect(await httpsWithClientCert(url, good.certFile, good.keyFile)).to.equal(200);
    expect(sidecar.output()).to.include('HAProxy CRL updated through the runtime API');
    expect(sidecar.output()).to.not.include('HAProxy reloaded');

    // 400 more revoked certificates of the device CA: the bundle grows past 16 KiB.
    const registry = k.svc.service.kakuin.registry;
    const many = [];
    for (let i = 0; i < 400; i++) many.push((await registry.recordIssuance(issuance(fakeCertificate({ issuerId: 'device' })))).serialHex);
    const entries = await registry.applyStatusChange({
      certificates: many.map((serialHex) => ({ serialHex, from: ['good' as const], to: 'revoked' as const, reason: 'keyCompromise' as const, revokedAt: new Date() })), audit: [],
    });
    k.svc.service.plane.crls.onFeedEntries(entries);
    const late = await k.device('haproxy-stolen-late');
    await k.revoke(late.serialHex);
    await waitFor('the big bundle', 15_000, () => bundleSerials(bundle).has(bare(late.serialHex)) || undefined);
    expect(statSync(bundle).size).to.be.above(16 * 1024);
    await waitFor('HAProxy refusing the device revoked last', 15_000, async () => (await httpsWithClientCert(url, late.certFile, late.keyFile)) !== 200 || undefined);
    expect(sidecar.output()).to.include('HAProxy reloaded through the master socket');
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)).to.not.equal(200);
    expect(await httpsWithClientCert(url, good.certFile, good.keyFile)).to.equal(200);
  });
});
