/**
 * ACME protocol rules a real client never breaks on purpose, with a client built on `jose`
 * (test/support/acme-client.ts) against kakuin over HTTPS: nonces are single-use (badNonce), the
 * JWS url must be the request URL, refused algorithms are badSignatureAlgorithm, accounts need an
 * external account binding that binds one account once; dns-01 through the configured hook; ARI
 * (RFC 9773) renewal windows, before and after a revocation; key rollover; revokeCert by the
 * account and by the certificate's own key. Problems are application/problem+json.
 */
import { createHash, createPrivateKey } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { exportJWK, importPKCS8 } from 'jose';
import { makeTempDir, opensslOk } from '../support/index.js';
import { AcmeTestClient, newKey } from '../support/acme-client.js';
import { createEab, startAcmeServer, type AcmeTestServer } from '../support/acme-server.js';

const NAME = 'broker-5.example.internal';

describe('ACME protocol (a jose client): nonces, JWS, EAB, dns-01, ARI, key rollover, revocation', function () {
  this.timeout(120_000);
  let server: AcmeTestServer;
  let txtDir: string;
  let tmp: { dir: string; cleanup: () => void };

  before(async function () {
    tmp = makeTempDir('kakuin-acme-hook-');
    txtDir = path.join(tmp.dir, 'txt');
    mkdirSync(txtDir);
    // The dns-01 hook prints the TXT values of the record it is given: here, a file the test writes.
    const hook = path.join(tmp.dir, 'dns-hook');
    writeFileSync(hook, `#!/bin/sh\ncat '${txtDir}/'"$1" 2>/dev/null\n`);
    chmodSync(hook, 0o755);
    server = await startAcmeServer([NAME], { dnsHook: hook });
  });
  after(async () => {
    await server?.svc.stop();
    tmp?.cleanup();
  });

  async function registered(names = 'broker-*.example.internal'): Promise<AcmeTestClient> {
    const client = await AcmeTestClient.open(server.directory, server.svc.rootPem);
    const eab = createEab(server.svc, names);
    const r = await client.register(eab.kid, eab.hmac);
    expect(r.status, r.text).to.equal(201);
    return client;
  }

  /** An order for `name` completed by dns-01 through the hook, finalized with an openssl CSR; returns the PEM chain and key. */
  async function issueByDns01(client: AcmeTestClient, name: string): Promise<{ pem: string; keyPem: string; order: any }> {
    const order = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: name }] });
    expect(order.status, order.text).to.equal(201);
    const authz = (await client.post(order.json.authorizations[0], undefined)).json;
    const challenge = authz.challenges.find((c: any) => c.type === 'dns-01');
    expect(challenge, JSON.stringify(authz)).to.not.equal(undefined);
    // RFC 8555 §8.4: the TXT value is base64url(SHA-256(token "." thumbprint)), computed here independently.
    const { calculateJwkThumbprint } = await import('jose');
    const keyAuth = `${challenge.token}.${await calculateJwkThumbprint(client.jwk, 'sha256')}`;
    writeFileSync(path.join(txtDir, `_acme-challenge.${name.replace(/^\*\./, '')}`), `"unrelated"\n${createHash('sha256').update(keyAuth).digest('base64url')}\n`);
    await client.post(challenge.url, {});
    const ready = await client.poll(String(order.headers.location), (o) => o.status !== 'pending');
    expect(ready.status, JSON.stringify(ready)).to.equal('ready');
    const keyFile = path.join(tmp.dir, `${name.replace(/^\*\./, 'wildcard.')}.key`);
    opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
    const der = Buffer.from(opensslOk(['req', '-new', '-key', keyFile, '-subj', '/', '-addext', `subjectAltName=DNS:${name}`]).replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const finalized = await client.post(ready.finalize, { csr: der.toString('base64url') });
    expect(finalized.status, finalized.text).to.equal(200);
    expect(finalized.json.status).to.equal('valid');
    const cert = await client.post(finalized.json.certificate, undefined);
    expect(cert.status).to.equal(200);
    expect(String(cert.headers['content-type'])).to.match(/^application\/pem-certificate-chain/);
    const { readFileSync } = await import('node:fs');
    return { pem: cert.text, keyPem: readFileSync(keyFile, 'utf8'), order: finalized.json };
  }

  /** RFC 9773 §4.1 certID from openssl's reading of the certificate (independent of kakuin's pkix). */
  function certIdOf(pem: string): string {
    const leaf = pem.split(/(?<=-----END CERTIFICATE-----\n)/)[0];
    const aki = opensslOk(['x509', '-noout', '-ext', 'authorityKeyIdentifier'], leaf).split('\n').map((l) => l.trim()).find((l) => /^([0-9A-F]{2}:)+[0-9A-F]{2}$/i.test(l.replace(/^keyid:/, '')))!.replace(/^keyid:/, '');
    let serial = Buffer.from(opensslOk(['x509', '-noout', '-serial'], leaf).trim().replace(/^serial=/, ''), 'hex');
    if (serial[0] & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
    return `${Buffer.from(aki.replace(/:/g, ''), 'hex').toString('base64url')}.${serial.toString('base64url')}`;
  }

  it('announces renewalInfo and externalAccountRequired in the directory, and gives nonces on HEAD', async function () {
    const client = await AcmeTestClient.open(server.directory, server.svc.rootPem);
    expect(client.directory.renewalInfo).to.equal(`${server.svc.url}/acme/renewal-info`);
    expect(client.directory.meta?.externalAccountRequired).to.equal(true);
    const a = await client.nonce();
    const b = await client.nonce();
    expect(a).to.match(/^[A-Za-z0-9_-]{16,}$/);
    expect(a).to.not.equal(b);
  });

  it('accepts account keys signing with EdDSA (Ed25519) and RS256 as well as ES256', async function () {
    for (const alg of ['EdDSA', 'RS256']) {
      const client = await AcmeTestClient.open(server.directory, server.svc.rootPem);
      const k = await newKey(alg);
      client.privateKey = k.privateKey;
      client.jwk = k.jwk;
      const eab = createEab(server.svc, 'broker-*.example.internal');
      const r = await client.post(client.directory.newAccount, { termsOfServiceAgreed: true, externalAccountBinding: await client.eab(eab.kid, eab.hmac) }, { jwk: true, alg });
      expect(r.status, `${alg}: ${r.text}`).to.equal(201);
      client.kid = String(r.headers.location);
      const order = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: 'broker-10.example.internal' }] }, { alg });
      expect(order.status, `${alg}: ${order.text}`).to.equal(201);
    }
  });

  it('refuses a replayed nonce with badNonce (problem+json, a fresh Replay-Nonce) and accepts the retry', async function () {
    const client = await registered();
    const first = await client.post(String(client.kid), undefined);
    expect(first.status).to.equal(200);
    const replay = await client.post(String(client.kid), undefined, { nonce: client.lastNonce });
    expect(replay.status).to.equal(400);
    expect(String(replay.headers['content-type'])).to.match(/^application\/problem\+json/);
    expect(replay.json.type).to.equal('urn:ietf:params:acme:error:badNonce');
    expect(replay.json.kakuinCode).to.equal('KAKUIN_E_ACME_BAD_NONCE');
    const fresh = String(replay.headers['replay-nonce']);
    expect((await client.post(String(client.kid), undefined, { nonce: fresh })).status).to.equal(200);
    const unknown = await client.post(String(client.kid), undefined, { nonce: 'bm90LWEtbm9uY2UtZnJvbS1rYWt1aW4' });
    expect(unknown.json.type).to.equal('urn:ietf:params:acme:error:badNonce');
  });

  it('refuses a JWS whose url is not the request URL, an unaccepted algorithm, and a body that is not a flattened JWS', async function () {
    const client = await registered();
    const wrongUrl = await client.post(String(client.kid), undefined, { url: client.directory.newOrder });
    expect(wrongUrl.status).to.equal(403);
    expect(wrongUrl.json.type).to.equal('urn:ietf:params:acme:error:unauthorized');
    const ps = await newKey('PS256');
    const badAlg = await client.post(client.directory.newAccount, {}, { jwk: true, alg: 'PS256', key: ps.privateKey, publicJwk: ps.jwk });
    expect(badAlg.json.type).to.equal('urn:ietf:params:acme:error:badSignatureAlgorithm');
    expect(badAlg.json.algorithms).to.include('ES256').and.include('EdDSA');
    const notJws = await client.postRaw(client.directory.newOrder, '{"hello":1}');
    expect(notJws.json.type).to.equal('urn:ietf:params:acme:error:malformed');
    const wrongType = await client.postRaw(client.directory.newOrder, JSON.stringify(await client.jws(client.directory.newOrder, {})), 'application/json');
    expect(wrongType.status).to.equal(415);
  });

  it('requires an external account binding, refuses a bad MAC, and binds each EAB key to one account only', async function () {
    const client = await AcmeTestClient.open(server.directory, server.svc.rootPem);
    const none = await client.post(client.directory.newAccount, { termsOfServiceAgreed: true }, { jwk: true });
    expect(none.json.type).to.equal('urn:ietf:params:acme:error:externalAccountRequired');
    const eab = createEab(server.svc, 'broker-*.example.internal');
    const badMac = await client.register(eab.kid, Buffer.alloc(32, 1).toString('base64url'));
    expect(badMac.status).to.equal(403);
    expect(badMac.json.kakuinCode).to.equal('KAKUIN_E_ACME_EAB_INVALID');
    expect((await client.register(eab.kid, eab.hmac)).status).to.equal(201);
    // The same key again finds the same account (RFC 8555 §7.3.1: 200 with its Location).
    const again = await client.post(client.directory.newAccount, { onlyReturnExisting: true }, { jwk: true });
    expect(again.status).to.equal(200);
    expect(again.headers.location).to.equal(client.kid);
    const other = await AcmeTestClient.open(server.directory, server.svc.rootPem);
    const reused = await other.register(eab.kid, eab.hmac);
    expect(reused.json.kakuinCode).to.equal('KAKUIN_E_ACME_EAB_USED');
  });

  it('issues by dns-01 through acme.dnsHook, and ARI suggests a window in the last third of the validity', async function () {
    const client = await registered();
    const { pem } = await issueByDns01(client, NAME);
    const leafFile = path.join(tmp.dir, 'dns01.pem');
    writeFileSync(leafFile, pem.split(/(?<=-----END CERTIFICATE-----\n)/)[0]);
    expect(opensslOk(['verify', '-CAfile', server.rootFile, '-untrusted', server.infraFile, leafFile]).trim()).to.equal(`${leafFile}: OK`);
    const info = await client.get(`${client.directory.renewalInfo}/${certIdOf(pem)}`);
    expect(info.status, info.text).to.equal(200);
    expect(Number(info.headers['retry-after'])).to.be.greaterThan(0);
    const notBefore = new Date(opensslOk(['x509', '-noout', '-startdate'], pem).trim().replace(/^notBefore=/, '')).getTime();
    const notAfter = new Date(opensslOk(['x509', '-noout', '-enddate'], pem).trim().replace(/^notAfter=/, '')).getTime();
    const start = Date.parse(info.json.suggestedWindow.start);
    const end = Date.parse(info.json.suggestedWindow.end);
    expect(start).to.be.greaterThan(notBefore + ((notAfter - notBefore) * 2) / 3 - 2000);
    expect(end).to.be.greaterThan(start).and.lessThan(notAfter);
    const unknown = await client.get(`${client.directory.renewalInfo}/${certIdOf(pem).split('.')[0]}.AQID`);
    expect(unknown.status).to.equal(404);
    // RFC 9773 §5: the renewal order says which certificate it replaces; only the account's own.
    const renewal = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: NAME }], replaces: certIdOf(pem) });
    expect(renewal.status, renewal.text).to.equal(201);
    expect(renewal.json.replaces).to.equal(certIdOf(pem));
    const stranger = await registered();
    const foreign = await stranger.post(stranger.directory.newOrder, { identifiers: [{ type: 'dns', value: NAME }], replaces: certIdOf(pem) });
    expect(foreign.json.type).to.equal('urn:ietf:params:acme:error:malformed');
  });

  it('issues a wildcard certificate by dns-01 only, to an EAB key with that wildcard pattern', async function () {
    const client = await registered('*.edge.example.internal');
    const order = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: '*.edge.example.internal' }] });
    const authz = (await client.post(order.json.authorizations[0], undefined)).json;
    expect(authz.wildcard).to.equal(true);
    expect(authz.identifier).to.deep.equal({ type: 'dns', value: 'edge.example.internal' });
    expect(authz.challenges.map((c: any) => c.type)).to.deep.equal(['dns-01']);
    const { pem } = await issueByDns01(client, '*.edge.example.internal');
    expect(opensslOk(['x509', '-noout', '-ext', 'subjectAltName'], pem)).to.include('DNS:*.edge.example.internal');
    const narrow = await registered('broker-*.example.internal');
    const refused = await narrow.post(narrow.directory.newOrder, { identifiers: [{ type: 'dns', value: '*.example.internal' }] });
    expect(refused.json.type).to.equal('urn:ietf:params:acme:error:rejectedIdentifier');
  });

  it('revokes by the account that ordered it: ARI then asks for renewal now, a second revocation is alreadyRevoked', async function () {
    const client = await registered();
    const { pem } = await issueByDns01(client, 'broker-6.example.internal');
    const der = Buffer.from(pem.split('-----END CERTIFICATE-----')[0].replace(/-----BEGIN CERTIFICATE-----/, '').replace(/\s+/g, ''), 'base64');
    const stranger = await registered();
    const refused = await stranger.post(stranger.directory.revokeCert, { certificate: der.toString('base64url') });
    expect(refused.json.type).to.equal('urn:ietf:params:acme:error:unauthorized');
    const r = await client.post(client.directory.revokeCert, { certificate: der.toString('base64url'), reason: 4 });
    expect(r.status, r.text).to.equal(200);
    const serial = opensslOk(['x509', '-noout', '-serial'], pem).trim().replace(/^serial=/, '');
    const record = await import('../support/service.js').then((m) => m.request(server.svc.url, server.svc.rootPem, 'GET', `/api/v1/certificates/${serial}`, { token: server.svc.adminToken }));
    expect(record.json.status).to.equal('revoked');
    expect(record.json.reason).to.equal('superseded');
    const info = await client.get(`${client.directory.renewalInfo}/${certIdOf(pem)}`);
    expect(Date.parse(info.json.suggestedWindow.end)).to.be.lessThan(Date.now());
    const again = await client.post(client.directory.revokeCert, { certificate: der.toString('base64url') });
    expect(again.json.type).to.equal('urn:ietf:params:acme:error:alreadyRevoked');
  });

  it('revokes by the certificate\'s own key (jwk), without the account', async function () {
    const client = await registered();
    const { pem, keyPem } = await issueByDns01(client, 'broker-9.example.internal');
    const der = Buffer.from(pem.split('-----END CERTIFICATE-----')[0].replace(/-----BEGIN CERTIFICATE-----/, '').replace(/\s+/g, ''), 'base64');
    const pkcs8 = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'pem' }).toString();
    const certKey = await importPKCS8(pkcs8, 'ES256', { extractable: true });
    const publicJwk = await exportJWK(certKey);
    delete publicJwk.d;
    const holder = await AcmeTestClient.open(server.directory, server.svc.rootPem);
    const r = await holder.post(holder.directory.revokeCert, { certificate: der.toString('base64url') }, { jwk: true, key: certKey as never, publicJwk });
    expect(r.status, r.text).to.equal(200);
  });

  it('rolls the account key over: the old key no longer signs, the new one does', async function () {
    const client = await registered();
    const next = await newKey('ES256');
    const { FlattenedSign } = await import('jose');
    const inner = await new FlattenedSign(new TextEncoder().encode(JSON.stringify({ account: client.kid, oldKey: client.jwk })))
      .setProtectedHeader({ alg: 'ES256', jwk: next.jwk, url: client.directory.keyChange }).sign(next.privateKey);
    const r = await client.post(client.directory.keyChange, inner);
    expect(r.status, r.text).to.equal(200);
    const old = await client.post(String(client.kid), undefined);
    expect(old.json.type).to.equal('urn:ietf:params:acme:error:unauthorized');
    client.privateKey = next.privateKey;
    client.jwk = next.jwk;
    expect((await client.post(String(client.kid), undefined)).status).to.equal(200);
  });

  it('refuses a name outside the patterns (rejectedIdentifier) and an unknown account kid (accountDoesNotExist)', async function () {
    const client = await registered('proxy-*.example.internal');
    const r = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: NAME }] });
    expect(r.json.type).to.equal('urn:ietf:params:acme:error:rejectedIdentifier');
    client.kid = `${server.svc.url}/acme/acct/nope`;
    const unknown = await client.post(client.directory.newOrder, { identifiers: [{ type: 'dns', value: 'proxy-1.example.internal' }] });
    expect(unknown.json.type).to.equal('urn:ietf:params:acme:error:accountDoesNotExist');
  });
});
