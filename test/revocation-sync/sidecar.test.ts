/**
 * `kakuin revocation sync` against a real kakuin (in this process), run as the `kakuin` executable:
 * the PEM bundle it writes is what `openssl verify -crl_check_all` needs (root's and device CA's
 * CRLs, each with its IDP, in one file), a revocation reaches the file within about a second of the
 * full CRL, and what it must never write (an older CRL replayed, a tampered one) stays out — also
 * across a restart with --state-dir. Its entry path loads no native addon.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, openssl } from '../support/index.js';
import { bare, bundleSerials, kakuinBin, startRelyingPartyKakuin, startSidecar, waitFor, type RelyingPartyKakuin, type Sidecar } from './fixture.js';

function crlNumbers(file: string): number[] {
  return readFileSync(file, 'utf8').split(/(?<=-----END X509 CRL-----\n)/).filter((b) => b.includes('BEGIN'))
    .map((b) => Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(openssl(['crl', '-noout', '-text'], b).stdout)?.[1]));
}

describe('revocation sync: the sidecar that writes CRL files for relying parties', function () {
  this.timeout(90_000);
  let k: RelyingPartyKakuin;
  let sidecar: Sidecar | undefined;
  /** A stand-in in front of kakuin that can replay a given answer for the device CRL (an attacker on the path). */
  let proxy: http.Server;
  let proxyUrl: string;
  let deviceCrlOverride: Buffer | undefined;

  before(async () => {
    k = await startRelyingPartyKakuin();
    proxy = http.createServer((req, res) => {
      if (deviceCrlOverride && req.url === '/crl/device.crl') {
        res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(deviceCrlOverride);
        return;
      }
      const headers = { ...req.headers };
      delete headers.host;
      http.get(`${k.httpUrl}${req.url}`, { headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      }).on('error', () => res.writeHead(502).end());
    });
    const port = await freePort();
    await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${port}`;
  });

  afterEach(async () => {
    await sidecar?.stop();
    sidecar = undefined;
    deviceCrlOverride = undefined;
  });

  after(async () => {
    proxy?.close();
    await k?.stop();
  });

  it('writes root and device CA CRLs into one file that openssl verify -crl_check_all uses: a revoked device fails, a good one passes', async () => {
    const good = await k.device('sync-good-1');
    const stolen = await k.device('sync-stolen-1');
    const bundle = path.join(k.tmp.dir, 'all-1.pem');
    sidecar = startSidecar(['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--with-chain', '--pem-out', bundle]);
    await waitFor('the first bundle', 15_000, () => bundleSerials(bundle).size >= 0 && readFileSync(bundle, { flag: 'a+' }).includes('X509 CRL') || undefined);
    expect(crlNumbers(bundle)).to.have.length(2);
    const verify = (cert: string) => openssl(['verify', '-crl_check_all', '-CAfile', k.rootFile, '-untrusted', k.caFile, '-CRLfile', bundle, cert]);
    expect(verify(good.certFile).status, verify(good.certFile).stdout + verify(good.certFile).stderr).to.equal(0);
    expect(verify(stolen.certFile).status).to.equal(0);

    const started = Date.now();
    await k.revoke(stolen.serialHex);
    const listed = await waitFor('the revocation in the bundle', 10_000, () => bundleSerials(bundle).has(bare(stolen.serialHex)) || undefined);
    const revoked = verify(stolen.certFile);
    expect(revoked.status).to.not.equal(0);
    expect(revoked.stdout + revoked.stderr).to.match(/certificate revoked/);
    expect(verify(good.certFile).status).to.equal(0);
    // crl.fullCoalesceMs is 300 ms here; the sidecar polls every 500 ms.
    expect(Date.now() - started, `listed after ${listed.ms} ms`).to.be.below(5000);
    // No temporary file left next to it.
    expect(spawnSync('ls', ['-a', k.tmp.dir]).stdout.toString()).to.not.match(/all-1\.pem\..*tmp/);
  });

  it('serves /healthz and its view age in /metrics', async () => {
    const bundle = path.join(k.tmp.dir, 'all-2.pem');
    const port = await freePort();
    sidecar = startSidecar(['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--pem-out', bundle, '--listen', `127.0.0.1:${port}`]);
    const health = await waitFor('healthy', 15_000, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    });
    expect(await health.value.text()).to.match(/^ok view age/);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const age = Number(/kakuin_sync_view_age_seconds\{issuer="device"\} ([\d.]+)/.exec(metrics)?.[1]);
    expect(age).to.be.within(0, 2);
    expect(metrics).to.match(/kakuin_sync_crl_number\{issuer="device"\} \d+/);
  });

  it('never writes an older CRL replayed to it, nor a tampered one, also after a restart with --state-dir', async () => {
    const older = Buffer.from(await (await fetch(`${k.httpUrl}/crl/device.crl`)).arrayBuffer());
    const victim = await k.device('sync-stolen-2');
    await k.revoke(victim.serialHex);
    const bundle = path.join(k.tmp.dir, 'all-3.pem');
    const stateDir = path.join(k.tmp.dir, 'state-3');
    const port = await freePort();
    const args = ['--url', proxyUrl, '--trust', k.rootFile, '--issuer', 'device', '--pem-out', bundle, '--state-dir', stateDir, '--listen', `127.0.0.1:${port}`];
    sidecar = startSidecar(args);
    await waitFor('the revocation in the bundle', 15_000, () => bundleSerials(bundle).has(bare(victim.serialHex)) || undefined);
    const [inUse] = crlNumbers(bundle);

    const refused = async () => Number(/kakuin_sync_refused_total\{issuer="device"\} (\d+)/.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1]);
    deviceCrlOverride = older;
    await waitFor('the replay refused', 5000, async () => (await refused()) > 0 || undefined);
    const tampered = Buffer.from(readFileSync(bundle, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    tampered[tampered.length - 70] ^= 0x01; // inside the TBS: the signature no longer verifies
    deviceCrlOverride = tampered;
    const before = await refused();
    await waitFor('the tampered CRL refused', 5000, async () => (await refused()) > before || undefined);
    // A delta CRL (newer number, same issuer, good signature) is not a complete CRL: refused too.
    deviceCrlOverride = Buffer.from(await (await fetch(`${k.httpUrl}/crl/device-delta.crl`)).arrayBuffer());
    const beforeDelta = await refused();
    await waitFor('the delta CRL refused', 5000, async () => (await refused()) > beforeDelta || undefined);
    expect(crlNumbers(bundle)).to.deep.equal([inUse]);
    expect(bundleSerials(bundle).has(bare(victim.serialHex))).to.equal(true);

    // A restart while the replay goes on: the saved state keeps the newer CRL in use.
    await sidecar.stop();
    deviceCrlOverride = older;
    writeFileSync(bundle, '');
    sidecar = startSidecar(args);
    await waitFor('the bundle rewritten from the saved state', 15_000, () => readFileSync(bundle, 'utf8').includes('X509 CRL') || undefined);
    expect(crlNumbers(bundle)).to.deep.equal([inUse]);
    expect(sidecar.output()).to.match(/KAKUIN_E_CRL_UNVERIFIED|lower than/);
  });

  it('its entry path loads revocation-sync, pkix and errors only: no registry, no native addon', async () => {
    const dir = k.tmp.dir;
    writeFileSync(path.join(dir, 'hook.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.RESOLVE_LOG, r.url + '\\n');
  return r;
}\n`);
    writeFileSync(path.join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hook.mjs', import.meta.url);\n`);
    const log = path.join(dir, 'resolved.txt');
    writeFileSync(log, '');
    const bundle = path.join(dir, 'all-4.pem');
    sidecar = startSidecar(['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--pem-out', bundle], { RESOLVE_LOG: log }, ['--import', path.join(dir, 'register.mjs')]);
    await waitFor('the bundle', 15_000, () => readFileSync(bundle, { flag: 'a+' }).includes('X509 CRL') || undefined);
    const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    const ours = urls.filter((u) => u.startsWith('file:') && !u.endsWith('register.mjs') && !u.endsWith('hook.mjs'));
    expect(ours.length).to.be.above(5);
    const root = kakuinBin.replace(/cli\/entry\.js$/, '');
    for (const u of ours) {
      const rel = decodeURIComponent(new URL(u).pathname).replace(root, '');
      expect(rel, u).to.match(/^(revocation-sync|pkix|errors)\/|^cli\/entry\.js$/);
    }
    expect(urls.filter((u) => /better-sqlite3|pkcs11js|node_modules/.test(u))).to.deep.equal([]);
  });

  it('refuses bad arguments with KAKUIN_E_USAGE and writes nothing', () => {
    const bundle = path.join(k.tmp.dir, 'never.pem');
    for (const args of [
      ['--trust', k.rootFile, '--issuer', 'device', '--pem-out', bundle],
      ['--url', 'https://127.0.0.1:1', '--trust', k.rootFile, '--issuer', 'device', '--pem-out', bundle],
      ['--url', k.httpUrl, '--trust', k.rootFile, '--pem-out', bundle],
      ['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device'],
      ['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--hashed-dir', k.tmp.dir, '--haproxy-socket', '/tmp/x.sock', '--haproxy-crl', 'x'],
      ['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--pem-out', bundle, '--haproxy-socket', '/tmp/x.sock'],
      ['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--pem-out', bundle, '--bogus'],
    ]) {
      const r = spawnSync(process.execPath, [kakuinBin, 'revocation', 'sync', ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr).to.include('KAKUIN_E_USAGE');
    }
    expect(spawnSync('ls', [k.tmp.dir]).stdout.toString()).to.not.include('never.pem');
  });
});
