/**
 * The listener against real peers: `openssl ocsp` (POST, with and without a nonce, SHA-256 CertIDs,
 * several certificates), curl for the GET form (raw and %-encoded `+`, `/`, `=`) read back with
 * `openssl ocsp -respin`, an independent client on pkijs, RFC 5019 caching headers, CRLs, issuer
 * certificates, /healthz, and bad input of every kind.
 */
import { randomBytes, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import * as pkijs from 'pkijs';
import { derOid, encodeCertId, encodeOcspRequest, encodeTlv, parseOcspResponse, type ParsedOcspResponse } from '../../pkix/index.js';
import {
  issue, keyPem, makeCa, makeResponder, newSerial, openRegistry, putIssuer, recordLeaf, type RegistryFixture, type Responder, setStatus,
  type TestCa, type TestCert, writeIn,
} from './fixtures.js';
import { fetchRaw, postOcsp, run, type RunningListener, startListener } from './http-support.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as any }));

const ISSUER = 'device';

describe('ocsp-responder: HTTP listener with openssl, curl and pkijs', function () {
  this.timeout(60_000);
  let fx: RegistryFixture;
  let ca: TestCa;
  let responder: Responder;
  let srv: RunningListener;
  const certs: Record<'good' | 'revoked' | 'held' | 'unknown' | 'plusSlash', TestCert> = {} as never;
  const pem: Record<string, string> = {};
  let caPem: string;

  function sha1Request(cert: TestCert, nonce?: Buffer): Buffer {
    return encodeOcspRequest([encodeCertId('sha1', ca.nameDer, ca.subjectPublicKey, cert.serial)], nonce);
  }

  /** A serial whose SHA-1 request's base64 holds `+`, `/` and `=`, so the GET form needs them. */
  function awkwardSerial(): Buffer {
    for (;;) {
      const serial = newSerial();
      const b64 = encodeOcspRequest([encodeCertId('sha1', ca.nameDer, ca.subjectPublicKey, serial)]).toString('base64');
      if (b64.includes('+') && b64.includes('/') && b64.endsWith('=')) return serial;
    }
  }

  before(async function () {
    fx = await openRegistry();
    ca = makeCa('p256', 'Device CA');
    await putIssuer(fx.registry, ISSUER, ca);
    responder = makeResponder(ca, ISSUER);
    certs.good = await recordLeaf(fx.registry, ca, ISSUER, 'good');
    certs.revoked = await recordLeaf(fx.registry, ca, ISSUER, 'revoked');
    certs.held = await recordLeaf(fx.registry, ca, ISSUER, 'held');
    certs.plusSlash = await recordLeaf(fx.registry, ca, ISSUER, 'plus-slash', awkwardSerial());
    certs.unknown = issue(ca, 'never-recorded');
    caPem = writeIn(fx.dir, 'ca.pem', ca.certPem);
    for (const [name, c] of Object.entries(certs)) pem[name] = writeIn(fx.dir, `${name}.pem`, c.certPem);
    writeIn(fx.dir, 'responder.pem', responder.cert.certPem);
    writeIn(fx.dir, 'responder.key', keyPem(responder.cert));
    srv = await startListener(fx, [responder]);
    await setStatus(fx.registry, certs.revoked, 'revoked', 'keyCompromise');
    const seq = await setStatus(fx.registry, certs.held, 'held');
    expect(await srv.responder.waitForSeq(seq, 5000)).to.equal(true);
  });

  after(async function () {
    await srv?.stop();
    await fx?.cleanup();
  });

  async function opensslOcsp(args: string[]): Promise<string> {
    const r = await run('openssl', ['ocsp', '-issuer', caPem, '-CAfile', caPem, ...args]);
    return `${r.stdout}\n${r.stderr}`;
  }

  describe('POST /ocsp with openssl ocsp', function () {
    it('with a nonce (openssl\'s default): good, revoked with reason, held as certificateHold, unknown; verify OK', async function () {
      const out = await opensslOcsp([
        '-cert', pem.good, '-cert', pem.revoked, '-cert', pem.held, '-cert', pem.unknown, '-url', `${srv.base}/ocsp`,
      ]);
      expect(out).to.contain('Response verify OK');
      expect(out).to.not.contain('nonce');
      expect(out).to.contain(`${pem.good}: good`);
      expect(out).to.match(new RegExp(`${pem.revoked}: revoked[\\s\\S]*?Reason: keyCompromise`));
      expect(out).to.match(new RegExp(`${pem.held}: revoked[\\s\\S]*?Reason: certificateHold`));
      expect(out).to.contain(`${pem.unknown}: unknown`);
    });

    it('without a nonce: answered from the pre-signed response, verify OK', async function () {
      const before = srv.responder.metrics.presigned;
      const out = await opensslOcsp(['-no_nonce', '-cert', pem.revoked, '-url', `${srv.base}/ocsp`]);
      expect(out).to.contain('Response verify OK');
      expect(out).to.match(new RegExp(`${pem.revoked}: revoked[\\s\\S]*?Reason: keyCompromise`));
      expect(srv.responder.metrics.presigned).to.equal(before + 1);
    });

    it('with SHA-256 CertIDs (-sha256), with and without a nonce', async function () {
      for (const extra of [['-no_nonce'], []]) {
        const out = await opensslOcsp(['-sha256', ...extra, '-cert', pem.good, '-cert', pem.held, '-url', `${srv.base}/ocsp`]);
        expect(out).to.contain('Response verify OK');
        expect(out).to.contain(`${pem.good}: good`);
        expect(out).to.match(new RegExp(`${pem.held}: revoked[\\s\\S]*?Reason: certificateHold`));
      }
    });
  });

  describe('GET /ocsp/{request} with curl, read by openssl ocsp -respin', function () {
    let b64: string;

    before(async function () {
      const reqPath = path.join(fx.dir, 'get-req.der');
      await run('openssl', ['ocsp', '-issuer', caPem, '-cert', pem.plusSlash, '-no_nonce', '-reqout', reqPath]);
      b64 = readFileSync(reqPath).toString('base64');
      expect(b64).to.include('+').and.to.include('/');
      expect(b64.endsWith('=')).to.equal(true);
    });

    async function curlGet(urlPath: string, name: string): Promise<{ headers: string; der: Buffer; file: string }> {
      const file = path.join(fx.dir, `${name}.der`);
      const r = await run('curl', ['-s', '-S', '-D', '-', '-o', file, `${srv.base}${urlPath}`]);
      expect(r.code, r.stderr).to.equal(0);
      return { headers: r.stdout, der: readFileSync(file), file };
    }

    async function respinSaysGood(file: string): Promise<void> {
      const out = await opensslOcsp(['-respin', file, '-cert', pem.plusSlash]);
      expect(out).to.contain('Response verify OK');
      expect(out).to.contain(`${pem.plusSlash}: good`);
    }

    it('raw +, / and = in the path', async function () {
      const got = await curlGet(`/ocsp/${b64}`, 'get-raw');
      expect(got.headers).to.match(/^HTTP\/1\.1 200/);
      expect(got.headers.toLowerCase()).to.contain('content-type: application/ocsp-response');
      await respinSaysGood(got.file);
    });

    it('%2B, %2F and %3D (and lower-case %2b %2f %3d) give the same answer', async function () {
      const raw = await curlGet(`/ocsp/${b64}`, 'get-raw-2');
      const upper = await curlGet(`/ocsp/${encodeURIComponent(b64)}`, 'get-pct');
      const lower = await curlGet(`/ocsp/${encodeURIComponent(b64).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())}`, 'get-pct-lower');
      expect(encodeURIComponent(b64)).to.contain('%2B').and.to.contain('%2F').and.to.contain('%3D');
      expect(upper.der.equals(raw.der)).to.equal(true);
      expect(lower.der.equals(raw.der)).to.equal(true);
      await respinSaysGood(upper.file);
    });

    it('never reads + as a space: a request with a space where + belongs is malformed', async function () {
      const r = await fetchRaw(srv.port, 'GET', `/ocsp/${b64.replace(/\+/g, '%20')}`);
      expect(r.status).to.equal(200);
      expect(parseOcspResponse(r.body).status).to.equal('malformedRequest');
    });

    it('tolerates the doubled slash of an AIA URL ending in /', async function () {
      const r = await fetchRaw(srv.port, 'GET', `/ocsp//${b64}`);
      expect(parseOcspResponse(r.body).status).to.equal('successful');
    });

    it('RFC 5019 §6.2 caching headers: max-age within nextUpdate, Last-Modified, Expires, a stable ETag, 304 on If-None-Match', async function () {
      const a = await fetchRaw(srv.port, 'GET', `/ocsp/${b64}`);
      const b = await fetchRaw(srv.port, 'GET', `/ocsp/${encodeURIComponent(b64)}`);
      const resp = parseOcspResponse(a.body);
      const single = resp.responses[0];
      const cc = String(a.headers['cache-control']);
      const m = /^max-age=(\d+), public, no-transform, must-revalidate$/.exec(cc);
      expect(m, cc).to.not.equal(null);
      const maxAge = Number(m![1]);
      expect(maxAge).to.be.greaterThan(0);
      expect(maxAge).to.be.at.most(Math.floor((single.nextUpdate!.getTime() - Date.now()) / 1000) + 1);
      expect(a.headers['last-modified']).to.equal(single.thisUpdate.toUTCString());
      expect(a.headers.expires).to.equal(single.nextUpdate!.toUTCString());
      expect(a.headers.etag).to.match(/^"[0-9a-f]{40}"$/);
      expect(b.headers.etag).to.equal(a.headers.etag);
      expect(b.body.equals(a.body)).to.equal(true);
      const c = await fetchRaw(srv.port, 'GET', `/ocsp/${b64}`, { headers: { 'if-none-match': String(a.headers.etag) } });
      expect(c.status).to.equal(304);
      expect(c.body.length).to.equal(0);
      const head = await fetchRaw(srv.port, 'HEAD', `/ocsp/${b64}`);
      expect(head.status).to.equal(200);
      expect(head.headers['content-length']).to.equal(String(a.body.length));
      expect(head.body.length).to.equal(0);
    });
  });

  describe('cache headers of answers that must not be reused', function () {
    it('POST answers and nonce answers carry Cache-Control: no-store', async function () {
      const post = await postOcsp(srv.port, sha1Request(certs.good));
      expect(parseOcspResponse(post.body).status).to.equal('successful');
      expect(post.headers['cache-control']).to.equal('no-store');
      const nonce = randomBytes(12);
      const get = await fetchRaw(srv.port, 'GET', `/ocsp/${encodeURIComponent(sha1Request(certs.good, nonce).toString('base64'))}`);
      const resp = parseOcspResponse(get.body);
      expect(resp.nonce!.equals(nonce)).to.equal(true);
      expect(get.headers['cache-control']).to.equal('no-store');
      expect(get.headers.etag).to.equal(undefined);
    });
  });

  describe('an independent client on pkijs', function () {
    async function pkijsStatus(cert: TestCert): Promise<{ status: number; verified: boolean; reason?: number }> {
      const caCert = pkijs.Certificate.fromBER(new Uint8Array(ca.certDer));
      const leaf = pkijs.Certificate.fromBER(new Uint8Array(cert.certDer));
      const request = new pkijs.OCSPRequest();
      await request.createForCertificate(leaf, { hashAlgorithm: 'SHA-1', issuerCertificate: caCert });
      const der = Buffer.from(request.toSchema(true).toBER(false));
      const reply = await postOcsp(srv.port, der);
      const ocsp = pkijs.OCSPResponse.fromBER(new Uint8Array(reply.body));
      expect(ocsp.responseStatus.valueBlock.valueDec).to.equal(0);
      const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes!.response.valueBlock.valueHexView);
      const verified = await basic.verify({ trustedCerts: [caCert] });
      const { status } = await basic.getCertificateStatus(leaf, caCert);
      const single = basic.tbsResponseData.responses[0];
      let reason: number | undefined;
      if (status === 1) {
        // RevokedInfo [1] { revocationTime, [0] EXPLICIT CRLReason }
        const info = single.certStatus as { valueBlock: { value: { idBlock: { tagClass: number }; valueBlock: { value: { valueBlock: { valueDec: number } }[] } }[] } };
        const reasonNode = info.valueBlock.value.find((n) => n.idBlock.tagClass === 3);
        reason = reasonNode?.valueBlock.value[0].valueBlock.valueDec;
      }
      return { status, verified, reason };
    }

    it('verifies the signature and reads the same statuses as openssl', async function () {
      expect(await pkijsStatus(certs.good)).to.deep.equal({ status: 0, verified: true, reason: undefined });
      expect(await pkijsStatus(certs.revoked)).to.deep.equal({ status: 1, verified: true, reason: 1 });
      expect(await pkijsStatus(certs.held)).to.deep.equal({ status: 1, verified: true, reason: 6 });
      expect(await pkijsStatus(certs.unknown)).to.deep.equal({ status: 2, verified: true, reason: undefined });
      const out = await opensslOcsp(['-no_nonce', '-cert', pem.good, '-cert', pem.revoked, '-cert', pem.held, '-cert', pem.unknown, '-url', `${srv.base}/ocsp`]);
      expect(out).to.contain(`${pem.good}: good`);
      expect(out).to.contain(`${pem.revoked}: revoked`);
      expect(out).to.contain(`${pem.held}: revoked`);
      expect(out).to.contain(`${pem.unknown}: unknown`);
    });
  });

  describe('bad input', function () {
    async function stillAnswers(): Promise<void> {
      const r = await postOcsp(srv.port, sha1Request(certs.good));
      expect(r.status).to.equal(200);
      const resp: ParsedOcspResponse = parseOcspResponse(r.body);
      expect(resp.status).to.equal('successful');
      expect(resp.responses[0].certStatus.status).to.equal('good');
    }

    function ocspStatus(r: { status: number; headers: Record<string, unknown>; body: Buffer }): string {
      expect(r.status).to.equal(200);
      expect(r.headers['content-type']).to.equal('application/ocsp-response');
      return parseOcspResponse(r.body).status;
    }

    it('truncated and garbage DER → malformedRequest (POST and GET)', async function () {
      const good = sha1Request(certs.good);
      for (const body of [good.subarray(0, good.length - 1), good.subarray(0, 5), randomBytes(64), Buffer.from('hello'), Buffer.alloc(0)]) {
        expect(ocspStatus(await postOcsp(srv.port, body))).to.equal('malformedRequest');
        if (body.length > 0) expect(ocspStatus(await fetchRaw(srv.port, 'GET', `/ocsp/${encodeURIComponent(body.toString('base64'))}`))).to.equal('malformedRequest');
      }
      for (const p of ['/ocsp/', '/ocsp/!!!!', '/ocsp/%ZZ', '/ocsp/A', '/ocsp/MA==extra', '/ocsp/%']) {
        expect(ocspStatus(await fetchRaw(srv.port, 'GET', p)), p).to.equal('malformedRequest');
      }
      await stillAnswers();
    });

    it('a CertID of another issuer → unauthorized; a nonce of 33 octets → malformedRequest', async function () {
      const stranger = makeCa('p256', 'Stranger CA');
      const req = encodeOcspRequest([encodeCertId('sha1', stranger.nameDer, stranger.subjectPublicKey, certs.good.serial)]);
      expect(ocspStatus(await postOcsp(srv.port, req))).to.equal('unauthorized');
      expect(ocspStatus(await fetchRaw(srv.port, 'GET', `/ocsp/${encodeURIComponent(req.toString('base64'))}`))).to.equal('unauthorized');
      // encodeOcspRequest refuses a 33-octet nonce (RFC 8954 §2.1), so this one is put together by hand.
      const nonceExt = encodeTlv(0x30, [derOid('1.3.6.1.5.5.7.48.1.2'), encodeTlv(0x04, encodeTlv(0x04, randomBytes(33)))]);
      const certIdDer = encodeCertId('sha1', ca.nameDer, ca.subjectPublicKey, certs.good.serial);
      const tbs = encodeTlv(0x30, [encodeTlv(0x30, encodeTlv(0x30, certIdDer)), encodeTlv(0xa2, encodeTlv(0x30, nonceExt))]);
      expect(ocspStatus(await postOcsp(srv.port, encodeTlv(0x30, tbs)))).to.equal('malformedRequest');
      await stillAnswers();
    });

    it('a wrong Content-Type → 415 without reading the body; none at all is read as an OCSP request', async function () {
      const r = await postOcsp(srv.port, sha1Request(certs.good), 'application/json');
      expect(r.status).to.equal(415);
      expect(JSON.parse(r.body.toString()).code).to.equal('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE');
      const typed = await postOcsp(srv.port, sha1Request(certs.good), 'Application/OCSP-Request; charset=binary');
      expect(ocspStatus(typed)).to.equal('successful');
      const untyped = await fetchRaw(srv.port, 'POST', '/ocsp', { body: sha1Request(certs.good) });
      expect(ocspStatus(untyped)).to.equal('successful');
      await stillAnswers();
    });

    it('a huge body → 413, announced or streamed; a huge GET path → 414', async function () {
      const huge = Buffer.alloc(1024 * 1024, 0x30);
      const announced = await postOcsp(srv.port, huge).catch((e: NodeJS.ErrnoException) => ({ status: e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 413 : 0, headers: {}, body: Buffer.alloc(0) }));
      expect(announced.status).to.equal(413);
      const chunked = await fetchRaw(srv.port, 'POST', '/ocsp', { body: huge, headers: { 'content-type': 'application/ocsp-request', 'transfer-encoding': 'chunked' } })
        .catch((e: NodeJS.ErrnoException) => ({ status: e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 413 : 0, headers: {}, body: Buffer.alloc(0) }));
      expect(chunked.status).to.equal(413);
      const longPath = await fetchRaw(srv.port, 'GET', `/ocsp/${'A'.repeat(8000)}`);
      expect(longPath.status).to.equal(414);
      await stillAnswers();
    });

    it('unknown paths → 404, other methods → 405', async function () {
      expect((await fetchRaw(srv.port, 'GET', '/')).status).to.equal(404);
      expect((await fetchRaw(srv.port, 'GET', '/ocspx')).status).to.equal(404);
      expect((await fetchRaw(srv.port, 'GET', '/crl/device.pem')).status).to.equal(404);
      const del = await fetchRaw(srv.port, 'DELETE', '/ocsp');
      expect(del.status).to.equal(405);
      expect(del.headers.allow).to.equal('GET, HEAD, POST');
      expect((await fetchRaw(srv.port, 'PUT', '/healthz')).status).to.equal(405);
      await stillAnswers();
    });
  });

  describe('CRLs, issuer certificates and /healthz on the same listener', function () {
    it('serves the latest CRL with caching headers, 404 when there is none', async function () {
      const der = randomBytes(200);
      const thisUpdate = new Date(Math.floor(Date.now() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + 3600_000);
      await fx.registry.putCrl({ issuerId: ISSUER, kind: 'full', number: 1n, thisUpdate, nextUpdate, feedSeq: 0, der });
      const r = await fetchRaw(srv.port, 'GET', `/crl/${ISSUER}.crl`);
      expect(r.status).to.equal(200);
      expect(r.headers['content-type']).to.equal('application/pkix-crl');
      expect(r.body.equals(der)).to.equal(true);
      expect(r.headers['last-modified']).to.equal(thisUpdate.toUTCString());
      expect(r.headers.expires).to.equal(nextUpdate.toUTCString());
      expect(r.headers.etag).to.match(/^"[0-9a-f]{40}"$/);
      const maxAge = Number(/max-age=(\d+)/.exec(String(r.headers['cache-control']))![1]);
      expect(maxAge).to.be.greaterThan(0).and.at.most(3600);
      expect((await fetchRaw(srv.port, 'HEAD', `/crl/${ISSUER}.crl`)).body.length).to.equal(0);
      expect((await fetchRaw(srv.port, 'GET', `/crl/${ISSUER}-delta.crl`)).status).to.equal(404);
      expect((await fetchRaw(srv.port, 'GET', '/crl/nobody.crl')).status).to.equal(404);
      expect((await fetchRaw(srv.port, 'GET', '/crl/..%2f..%2fetc.crl')).status).to.equal(404);
    });

    it('serves /ca/{issuer}.cer as application/pkix-cert', async function () {
      const r = await fetchRaw(srv.port, 'GET', `/ca/${ISSUER}.cer`);
      expect(r.status).to.equal(200);
      expect(r.headers['content-type']).to.equal('application/pkix-cert');
      expect(r.body.equals(ca.certDer)).to.equal(true);
      expect((await fetchRaw(srv.port, 'GET', '/ca/nobody.cer')).status).to.equal(404);
    });

    it('/healthz reports readiness, feed lag and cache size', async function () {
      const r = await fetchRaw(srv.port, 'GET', '/healthz');
      expect(r.status).to.equal(200);
      const h = JSON.parse(r.body.toString());
      expect(h.status).to.equal('ok');
      expect(h.cache.responses).to.equal(4);
      expect(h.feed.lagEntries).to.equal(0);
      expect(h.feed.lastReadAgeMs).to.be.a('number');
      expect(h.issuers[0].issuerId).to.equal(ISSUER);
      expect(h.counters.presigned).to.be.greaterThan(0);
    });
  });
});
