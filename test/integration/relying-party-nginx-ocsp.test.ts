/**
 * Recipes: nginx (Debian nginx-light) checking device certificates by OCSP, with nothing but the
 * certificates' own URLs (issue 16). `ssl_ocsp on` checks the whole chain — the device at the device
 * CA's responder, the device CA at the root's delegated responder (the OCSP URL every intermediate now
 * carries) — with no cache, so a revoked device is refused on its next connection. `ssl_ocsp leaf` +
 * `ssl_ocsp_cache` keeps each answer until its nextUpdate, so a revoked device is refused within
 * `ocsp.validityMinutes` (2 here, the shortest allowed). One kakuin, two nginx instances on free ports.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { opensslAsync, peers, requirePeers } from '../support/index.js';
import { startRelyingPartyKakuin, waitFor, type RelyingPartyKakuin } from '../revocation-sync/fixture.js';
import { httpsWithClientCert, nginxPeer, type NginxPeer } from '../revocation-sync/relying-party.js';

const VALIDITY_MINUTES = 2;

describe('relying-party recipes without their servers installed', () => {
  const absent = { command: 'kakuin-no-such-relying-party', args: ['-v'], debian: 'none' };
  it('are skipped with a message, or fail under KAKUIN_REQUIRE_PEERS=1 (as in CI)', function () {
    const saved = process.env.KAKUIN_REQUIRE_PEERS;
    try {
      process.env.KAKUIN_REQUIRE_PEERS = '1';
      expect(() => requirePeers(this, [absent])).to.throw(/not installed: kakuin-no-such-relying-party .*KAKUIN_REQUIRE_PEERS=1/);
      delete process.env.KAKUIN_REQUIRE_PEERS;
      let skipped = false;
      const context = { skip: () => { skipped = true; } } as unknown as Mocha.Context;
      requirePeers(context, [absent]);
      expect(skipped).to.equal(true);
    } finally {
      if (saved === undefined) delete process.env.KAKUIN_REQUIRE_PEERS;
      else process.env.KAKUIN_REQUIRE_PEERS = saved;
    }
  });
});

describe('recipe: nginx ssl_ocsp with the certificates\' own OCSP URLs', function () {
  this.timeout(60_000);
  let k: RelyingPartyKakuin;
  let chainCheck: NginxPeer;
  let cached: NginxPeer;
  let issuingFile: string;

  before(async function () {
    requirePeers(this, [peers.nginx]);
    k = await startRelyingPartyKakuin({ env: { KAKUIN_OCSP_VALIDITY_MINUTES: String(VALIDITY_MINUTES) } });
    const tls = `
    ssl_certificate ${k.serverCert};
    ssl_certificate_key ${k.serverKey};
    ssl_client_certificate ${k.caFile};
    ssl_verify_client on;
    ssl_verify_depth 2;`;
    chainCheck = await nginxPeer(path.join(k.tmp.dir, 'nginx-on'), `${tls}
    ssl_ocsp on;
    location / { return 200 "device $ssl_client_serial\\n"; }`);
    cached = await nginxPeer(path.join(k.tmp.dir, 'nginx-leaf'), `${tls}
    ssl_ocsp leaf;
    ssl_ocsp_cache shared:kakuin_ocsp:1m;
    location / { return 200 "device $ssl_client_serial\\n"; }`);
    chainCheck.start();
    cached.start();
    issuingFile = path.join(k.tmp.dir, 'device-ca.pem');
    writeFileSync(issuingFile, (await k.api('GET', '/api/v1/ca/chain')).text.split(/(?<=-----END CERTIFICATE-----\n)/)[0]);
  });

  after(async () => {
    await chainCheck?.stop();
    await cached?.stop();
    await k?.stop();
  });

  /** The nextUpdate of the answer kakuin serves for `certFile` now (the pre-signed one: no nonce). */
  async function nextUpdateOf(certFile: string): Promise<number> {
    const r = await opensslAsync(['ocsp', '-issuer', issuingFile, '-cert', certFile, '-url', `${k.httpUrl}/ocsp`, '-no_nonce', '-resp_text', '-noverify', '-timeout', '10']);
    return Date.parse(/Next Update: (.*)/.exec(r.stdout)![1]);
  }

  it('ssl_ocsp on: good devices get 200 (device and device CA both answered good); a revoked one is refused on its next connection', async () => {
    const good = await k.device('ocsp-on-good');
    const stolen = await k.device('ocsp-on-stolen');
    const url = chainCheck.url;
    await waitFor('nginx answering', 10_000, async () => (await httpsWithClientCert(url, good.certFile, good.keyFile)) === 200 || undefined);
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)).to.equal(200);

    const revokedAt = Date.now();
    await k.revoke(stolen.serialHex);
    const returnedAt = Date.now();
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)).to.equal(400);
    const refusedAt = Date.now();
    console.log(`      nginx ssl_ocsp on, no cache: revoke call ${returnedAt - revokedAt} ms, refused on the next connection ${refusedAt - revokedAt} ms after the call started`);
    expect(await httpsWithClientCert(url, good.certFile, good.keyFile)).to.equal(200);
    expect(chainCheck.errorLog()).to.match(/certificate revoked/);
  });

  it(`ssl_ocsp leaf + ssl_ocsp_cache: a revoked device is still admitted from the cache, then refused once the cached answer's nextUpdate passes (≤ ${VALIDITY_MINUTES} min)`, async function () {
    this.timeout((VALIDITY_MINUTES * 60 + 60) * 1000);
    const good = await k.device('ocsp-leaf-good');
    const stolen = await k.device('ocsp-leaf-stolen');
    const url = cached.url;
    await waitFor('nginx answering', 10_000, async () => (await httpsWithClientCert(url, good.certFile, good.keyFile)) === 200 || undefined);
    // This connection puts the stolen device's "good" answer into nginx's cache.
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)).to.equal(200);
    // What nginx cached is this answer or an older one (a refresh may have followed), so it expires no later.
    const cachedUntil = await nextUpdateOf(stolen.certFile);
    expect(cachedUntil - Date.now()).to.be.at.most(VALIDITY_MINUTES * 60_000);

    const revokedAt = Date.now();
    await k.revoke(stolen.serialHex);
    expect(await httpsWithClientCert(url, stolen.certFile, stolen.keyFile), 'the cached answer still says good').to.equal(200);
    const refused = await waitFor('nginx refusing the revoked device', VALIDITY_MINUTES * 60_000 + 30_000,
      async () => (await httpsWithClientCert(url, stolen.certFile, stolen.keyFile)) === 400 || undefined);
    const delay = Date.now() - revokedAt;
    console.log(`      nginx ssl_ocsp leaf + ssl_ocsp_cache, ocsp.validityMinutes ${VALIDITY_MINUTES}: refused ${(delay / 1000).toFixed(1)} s after the revoke (cached answer's nextUpdate was ${((cachedUntil - revokedAt) / 1000).toFixed(1)} s ahead)`);
    // nginx drops a cached answer at its nextUpdate (whole seconds) and asks again: ≤ nextUpdate + 1 s + one poll.
    expect(revokedAt + refused.ms).to.be.at.most(cachedUntil + 2500);
    expect(delay).to.be.at.most(VALIDITY_MINUTES * 60_000 + 2500);
    expect(await httpsWithClientCert(url, good.certFile, good.keyFile)).to.equal(200);
  });
});
