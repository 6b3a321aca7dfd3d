/**
 * OCSP (RFC 6960, RFC 5019, RFC 8954): requests written by `openssl ocsp` must decode to the CertIDs
 * pkix computes itself, and responses pkix builds and signs must satisfy `openssl ocsp` and pkijs.
 *
 * Vectors (made once with OpenSSL 3.0 for the CA in crl-ocsp-openssl-ca-p256-cert.der and the two
 * device certificates ocsp-openssl-leaf-{a,b}-cert.der, serials 5A17C0DE00112233445566778899AABB and
 * FEEDFACE, the latter written 00FEEDFACE):
 *   ocsp-request-openssl-nonce.der                openssl ocsp -issuer ca.pem -cert a.pem -reqout ...
 *   ocsp-request-openssl-no-nonce.der             ... -no_nonce
 *   ocsp-request-openssl-sha256-two-certs.der     openssl ocsp -sha256 -issuer ca.pem -cert a.pem -cert b.pem -reqout ...
 */
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import * as pkijs from 'pkijs';
import {
  derInteger, derNull, derOctetString, derOid, derSequence, derExplicit, encodeExtension, parseCertificate, type ParsedCertificate,
} from '../../pkix/index.js';
import { encodeCertId, encodeOcspRequest, parseOcspRequest } from '../../pkix/ocsp-request.js';
import {
  encodeBasicOcspResponse, encodeOcspResponse, encodeResponseData, encodeSingleResponse, type OcspCertStatus, type OcspErrorStatus,
  ocspErrorResponse, parseOcspResponse, verifyOcspResponseSignature,
} from '../../pkix/ocsp-response.js';
import { makeTempDir, openssl, opensslOk, vectorPath } from '../support/index.js';
import { issue, keyPem, makeCa, prng, signWith, type TestCa, type TestCert, type TestKey, thrownCode, writeIn } from './crl-ocsp-fixtures.js';

const HOUR = 3_600_000;
const REQUEST_CODES = ['KAKUIN_E_DER_MALFORMED', 'KAKUIN_E_OCSP_HASH_UNSUPPORTED', 'KAKUIN_E_OCSP_NONCE_INVALID'];

function vector(name: string): Buffer {
  return readFileSync(vectorPath(name));
}

/** The CertID pkix computes for `cert` issued by `issuer`: the reference the parsed bytes must equal. */
function certIdFor(hash: 'sha1' | 'sha256', issuer: ParsedCertificate, cert: ParsedCertificate): Buffer {
  return encodeCertId(hash, issuer.subject.rawDer, issuer.spki.subjectPublicKey, cert.serial);
}

/** Builds, signs and wraps a response: what the responder's hot path does. */
function respond(signer: TestKey, certs: Buffer[], singles: { certId: Buffer; certStatus: OcspCertStatus }[], nonce?: { nonce?: Buffer; nonceEncoding?: 'octet-string' | 'raw' }, now = new Date()): Buffer {
  const responses = singles.map((s) => encodeSingleResponse({ ...s, thisUpdate: now, nextUpdate: new Date(now.getTime() + HOUR) }));
  const tbs = encodeResponseData({ responderKeyHash: signer.keyId, producedAt: now, responses, ...nonce });
  return encodeOcspResponse(encodeBasicOcspResponse(tbs, signer.alg, signWith(signer, tbs), certs));
}

/** A request by hand: `extnValue` is placed in a nonce extension as given (to test both encodings and bad lengths). */
function requestWithNonceValue(certId: Buffer, extnValue: Buffer): Buffer {
  const ext = derSequence(derOid('1.3.6.1.5.5.7.48.1.2'), derOctetString(extnValue));
  return derSequence(derSequence(derSequence(derSequence(certId)), derExplicit(2, derSequence(ext))));
}

describe('pkix OCSP (RFC 6960, RFC 5019, RFC 8954)', function () {
  let tmp: { dir: string; cleanup: () => void };
  let vca: ParsedCertificate;
  let va: ParsedCertificate;
  let vb: ParsedCertificate;

  before(function () {
    tmp = makeTempDir('kakuin-ocsp-');
    vca = parseCertificate(vector('crl-ocsp-openssl-ca-p256-cert.der'));
    va = parseCertificate(vector('ocsp-openssl-leaf-a-cert.der'));
    vb = parseCertificate(vector('ocsp-openssl-leaf-b-cert.der'));
  });

  after(function () {
    tmp.cleanup();
  });

  describe('parseOcspRequest on OpenSSL vectors', function () {
    it('reads a SHA-1 request with a nonce: the CertID is byte-for-byte encodeCertId\'s and the nonce is 16 octets', function () {
      const der = vector('ocsp-request-openssl-nonce.der');
      const req = parseOcspRequest(der);
      expect(req.rawDer.equals(der)).to.equal(true);
      expect(req.signed).to.equal(false);
      expect(req.certIds).to.have.length(1);
      const id = req.certIds[0];
      expect(id.hashAlgorithm).to.equal('sha1');
      expect(id.hashAlgorithmOid).to.equal('1.3.14.3.2.26');
      expect(id.serialHex).to.equal('5A17C0DE00112233445566778899AABB');
      expect(id.serial.equals(va.serial)).to.equal(true);
      expect(id.rawDer.equals(certIdFor('sha1', vca, va))).to.equal(true);
      expect(req.nonceEncoding).to.equal('octet-string');
      expect(req.nonce?.length).to.equal(16);
      // The nonce sits at the end of the request: 04 12 04 10 <16 octets>.
      expect(der.subarray(der.length - 20).equals(Buffer.concat([Buffer.from([0x04, 0x12, 0x04, 0x10]), req.nonce!]))).to.equal(true);
    });

    it('reads a request without a nonce', function () {
      const req = parseOcspRequest(vector('ocsp-request-openssl-no-nonce.der'));
      expect(req.nonce).to.equal(undefined);
      expect(req.nonceEncoding).to.equal(undefined);
      expect(req.certIds[0].rawDer.equals(certIdFor('sha1', vca, va))).to.equal(true);
    });

    it('reads a SHA-256 request for two certificates, a serial with a sign octet among them', function () {
      const req = parseOcspRequest(vector('ocsp-request-openssl-sha256-two-certs.der'));
      expect(req.certIds.map((c) => [c.hashAlgorithm, c.serialHex])).to.deep.equal([
        ['sha256', '5A17C0DE00112233445566778899AABB'], ['sha256', 'FEEDFACE'],
      ]);
      expect(req.certIds[0].rawDer.equals(certIdFor('sha256', vca, va))).to.equal(true);
      expect(req.certIds[1].rawDer.equals(certIdFor('sha256', vca, vb))).to.equal(true);
      expect(req.certIds[1].serial.toString('hex')).to.equal('feedface');
      expect(req.certIds[0].issuerNameHash).to.have.length(32);
    });
  });

  describe('requests and responses with a P-256 CA and a delegated responder', function () {
    let ca: TestCa;
    let responder: TestCert;
    let good: TestCert;
    let revoked: TestCert;
    let unknown: TestCert;
    const file = (name: string, data: string | Buffer) => writeIn(tmp.dir, name, data);

    before(function () {
      ca = makeCa('p256', 'OCSP Test CA');
      responder = issue(ca, 'OCSP Responder', 'ocsp-responder');
      good = issue(ca, 'device-good');
      revoked = issue(ca, 'device-revoked');
      unknown = issue(ca, 'device-unknown');
      file('ca.pem', ca.certPem);
      file('good.pem', good.certPem);
      file('revoked.pem', revoked.certPem);
      file('unknown.pem', unknown.certPem);
    });

    function opensslRequest(name: string, args: string[]): Buffer {
      const out = `${tmp.dir}/${name}`;
      opensslOk(['ocsp', '-issuer', `${tmp.dir}/ca.pem`, ...args, '-reqout', out]);
      return readFileSync(out);
    }

    it('parses fresh openssl requests (SHA-1/SHA-256, with and without nonce, several CertIDs) into encodeCertId\'s bytes', function () {
      const pc = parseCertificate(ca.certDer);
      const cases: [string, string[], 'sha1' | 'sha256', TestCert[], boolean][] = [
        ['r1.der', ['-cert', `${tmp.dir}/good.pem`], 'sha1', [good], true],
        ['r2.der', ['-no_nonce', '-cert', `${tmp.dir}/good.pem`], 'sha1', [good], false],
        ['r3.der', ['-sha256', '-cert', `${tmp.dir}/good.pem`], 'sha256', [good], true],
        ['r4.der', ['-sha256', '-cert', `${tmp.dir}/good.pem`, '-cert', `${tmp.dir}/revoked.pem`, '-cert', `${tmp.dir}/unknown.pem`], 'sha256', [good, revoked, unknown], true],
      ];
      for (const [name, args, hash, certs, nonce] of cases) {
        const req = parseOcspRequest(opensslRequest(name, args));
        expect(req.certIds.length, name).to.equal(certs.length);
        req.certIds.forEach((id, i) => {
          expect(id.rawDer.equals(certIdFor(hash, pc, parseCertificate(certs[i].certDer))), `${name} CertID ${i}`).to.equal(true);
          expect(id.serialHex).to.equal(certs[i].serial.toString('hex').toUpperCase());
        });
        expect(req.nonce !== undefined, `${name} nonce`).to.equal(nonce);
      }
    });

    it('reads a signed request (optionalSignature) as signed', function () {
      file('good.key', keyPem(good));
      const req = parseOcspRequest(opensslRequest('signed.der', ['-cert', `${tmp.dir}/good.pem`, '-signer', `${tmp.dir}/good.pem`, '-signkey', `${tmp.dir}/good.key`]));
      expect(req.signed).to.equal(true);
      expect(req.certIds[0].serial.equals(good.serial)).to.equal(true);
    });

    it('openssl reads the request encodeOcspRequest writes (CertIDs and nonce)', function () {
      const pc = parseCertificate(ca.certDer);
      const nonce = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
      const der = encodeOcspRequest([certIdFor('sha256', pc, parseCertificate(good.certDer)), certIdFor('sha1', pc, parseCertificate(revoked.certDer))], nonce);
      const text = opensslOk(['ocsp', '-reqin', file('ours.der', der), '-req_text']);
      expect(text).to.contain(`Serial Number: ${good.serial.toString('hex').toUpperCase()}`);
      expect(text).to.contain(`Serial Number: ${revoked.serial.toString('hex').toUpperCase()}`);
      expect(text).to.match(/Hash Algorithm: sha256[\s\S]*Hash Algorithm: sha1/);
      expect(text).to.match(/OCSP Nonce: *\n\s+041000112233445566778899AABBCCDDEEFF/);
      const back = parseOcspRequest(der);
      expect(back.nonce?.equals(nonce)).to.equal(true);
    });

    it('a response with good, revoked (keyCompromise) and unknown passes openssl ocsp: statuses, nonce and "Response verify OK"', function () {
      const reqDer = opensslRequest('flow-req.der', ['-cert', `${tmp.dir}/good.pem`, '-cert', `${tmp.dir}/revoked.pem`, '-cert', `${tmp.dir}/unknown.pem`]);
      const req = parseOcspRequest(reqDer);
      const revokedAt = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
      const resp = respond(responder, [responder.certDer], [
        { certId: req.certIds[0].rawDer, certStatus: { status: 'good' } },
        { certId: req.certIds[1].rawDer, certStatus: { status: 'revoked', revokedAt, reason: 'keyCompromise' } },
        { certId: req.certIds[2].rawDer, certStatus: { status: 'unknown' } },
      ], { nonce: req.nonce, nonceEncoding: req.nonceEncoding });
      const r = openssl(['ocsp', '-respin', file('flow-resp.der', resp), '-reqin', `${tmp.dir}/flow-req.der`, '-issuer', `${tmp.dir}/ca.pem`,
        '-CAfile', `${tmp.dir}/ca.pem`, '-resp_text']);
      const all = r.stdout + r.stderr;
      expect(r.status, all).to.equal(0);
      expect(all).to.contain('Response verify OK');
      expect(all).not.to.contain('Nonce Verify error');
      expect(all).not.to.contain('no nonce in response');
      const statuses = [...all.matchAll(/Serial Number: ([0-9A-F]+)\n\s+Cert Status: (\w+)/g)].map((m) => [m[1], m[2]]);
      expect(statuses).to.deep.equal([
        [good.serial.toString('hex').toUpperCase(), 'good'], [revoked.serial.toString('hex').toUpperCase(), 'revoked'],
        [unknown.serial.toString('hex').toUpperCase(), 'unknown'],
      ]);
      expect(all).to.contain('Revocation Time: Jan  2 03:04:05 2026 GMT');
      expect(all).to.contain('Revocation Reason: keyCompromise (0x1)');
      expect(all).to.match(new RegExp(`OCSP Nonce: *\\n\\s+0410${req.nonce!.toString('hex').toUpperCase()}`));
    });

    it('openssl notices a nonce that does not match, a broken signature and a responder the CA did not delegate', function () {
      const reqDer = opensslRequest('neg-req.der', ['-cert', `${tmp.dir}/good.pem`]);
      const req = parseOcspRequest(reqDer);
      const single = [{ certId: req.certIds[0].rawDer, certStatus: { status: 'good' } as OcspCertStatus }];
      const check = (name: string, der: Buffer) => {
        const r = openssl(['ocsp', '-respin', file(name, der), '-reqin', `${tmp.dir}/neg-req.der`, '-issuer', `${tmp.dir}/ca.pem`, '-CAfile', `${tmp.dir}/ca.pem`]);
        return r.stdout + r.stderr;
      };
      const otherNonce = Buffer.from(req.nonce!);
      otherNonce[0] ^= 1;
      expect(check('neg-nonce.der', respond(responder, [responder.certDer], single, { nonce: otherNonce }))).to.contain('Nonce Verify error');
      expect(check('neg-no-nonce.der', respond(responder, [responder.certDer], single))).to.contain('WARNING: no nonce in response');
      const broken = respond(responder, [responder.certDer], single, { nonce: req.nonce });
      // producedAt's last seconds digit, changed: still well formed, no longer what was signed.
      const digit = broken.indexOf(Buffer.concat([Buffer.from([0xa2, 0x16, 0x04, 0x14]), responder.keyId])) + 24 + 2 + 13;
      broken[digit] = broken[digit] === 0x30 ? 0x31 : broken[digit] - 1;
      expect(check('neg-sig.der', broken)).to.contain('Response Verify Failure');
      const notDelegated = issue(ca, 'device-pretending');
      expect(check('neg-deleg.der', respond(notDelegated, [notDelegated.certDer], single, { nonce: req.nonce }))).to.contain('Response Verify Failure');
      expect(check('ok.der', respond(responder, [responder.certDer], single, { nonce: req.nonce }))).to.contain('Response verify OK');
    });

    it('pkijs reads the response identically, verifies it and finds each certificate\'s status', async function () {
      pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as any }));
      const pc = parseCertificate(ca.certDer);
      const ids = [good, revoked, unknown].map((c) => certIdFor('sha256', pc, parseCertificate(c.certDer)));
      const nonce = Buffer.from('a1b2c3d4e5f60718', 'hex');
      const revokedAt = new Date(Date.UTC(2025, 6, 1, 0, 0, 0));
      const der = respond(responder, [responder.certDer], [
        { certId: ids[0], certStatus: { status: 'good' } },
        { certId: ids[1], certStatus: { status: 'revoked', revokedAt, reason: 'superseded' } },
        { certId: ids[2], certStatus: { status: 'unknown' } },
      ], { nonce });
      const ocsp = pkijs.OCSPResponse.fromBER(new Uint8Array(der));
      expect(ocsp.responseStatus.valueBlock.valueDec).to.equal(0);
      expect(ocsp.responseBytes!.responseType).to.equal('1.3.6.1.5.5.7.48.1.1');
      const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes!.response.valueBlock.valueHexView);
      const responses = basic.tbsResponseData.responses;
      expect(responses.map((r) => Buffer.from(r.certID.serialNumber.valueBlock.valueHexView).toString('hex').replace(/^00/, ''))).to.deep.equal(
        [good, revoked, unknown].map((c) => c.serial.toString('hex')),
      );
      expect(responses.map((r) => r.certStatus.idBlock.tagNumber)).to.deep.equal([0, 1, 2]);
      // pkijs hands back ResponderID byKey as the KeyHash OCTET STRING itself.
      expect(Buffer.from(basic.tbsResponseData.responderID.valueBlock.valueHexView).equals(responder.keyId)).to.equal(true);
      const nonceExt = basic.tbsResponseData.responseExtensions!.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2')!;
      expect(Buffer.from(nonceExt.extnValue.valueBlock.valueHexView).toString('hex')).to.equal(`0408${nonce.toString('hex')}`);
      const caCert = pkijs.Certificate.fromBER(new Uint8Array(ca.certDer));
      expect(await basic.verify({ trustedCerts: [caCert] })).to.equal(true);
      const statusOf = async (c: TestCert) => (await basic.getCertificateStatus(pkijs.Certificate.fromBER(new Uint8Array(c.certDer)), caCert)).status;
      expect([await statusOf(good), await statusOf(revoked), await statusOf(unknown)]).to.deep.equal([0, 1, 2]);
      const tampered = Buffer.from(der);
      tampered[tampered.indexOf(nonce)] ^= 0x01;
      const tamperedBasic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(new Uint8Array(tampered)).responseBytes!.response.valueBlock.valueHexView);
      expect(await tamperedBasic.verify({ trustedCerts: [caCert] })).to.equal(false);
    });

    it('parseOcspResponse gives back what was built, and the signature verifies over the original bytes', function () {
      const pc = parseCertificate(ca.certDer);
      const id = certIdFor('sha1', pc, parseCertificate(revoked.certDer));
      const now = new Date(Date.UTC(2026, 4, 5, 6, 7, 8, 999));
      const der = respond(responder, [responder.certDer], [
        { certId: id, certStatus: { status: 'revoked', revokedAt: new Date(Date.UTC(2051, 0, 1)), reason: 'cessationOfOperation' } },
        { certId: id, certStatus: { status: 'revoked', revokedAt: new Date(Date.UTC(2020, 0, 1)), reason: 'unspecified' } },
      ], { nonce: Buffer.from([7]) }, now);
      const resp = parseOcspResponse(der);
      expect(resp.status).to.equal('successful');
      expect(resp.producedAt?.toISOString()).to.equal('2026-05-05T06:07:08.000Z');
      expect(resp.responderKeyHash?.equals(responder.keyId)).to.equal(true);
      expect(resp.nonce?.toString('hex')).to.equal('07');
      expect(resp.nonceEncoding).to.equal('octet-string');
      expect(resp.certs).to.have.length(1);
      expect(resp.certs[0].equals(responder.certDer)).to.equal(true);
      expect(resp.responses).to.have.length(2);
      expect(resp.responses[0].certId.rawDer.equals(id)).to.equal(true);
      expect(resp.responses[0].certStatus).to.deep.equal({ status: 'revoked', revokedAt: new Date(Date.UTC(2051, 0, 1)), reason: 'cessationOfOperation' });
      // 'unspecified' is left out, as in CRLs (RFC 5280 §5.3.1).
      expect(resp.responses[1].certStatus).to.deep.equal({ status: 'revoked', revokedAt: new Date(Date.UTC(2020, 0, 1)) });
      expect(resp.responses[0].thisUpdate.toISOString()).to.equal('2026-05-05T06:07:08.000Z');
      expect(resp.responses[0].nextUpdate?.toISOString()).to.equal('2026-05-05T07:07:08.000Z');
      expect(verifyOcspResponseSignature(resp, parseCertificate(responder.certDer).spki)).to.equal(true);
      expect(verifyOcspResponseSignature(resp, parseCertificate(good.certDer).spki)).to.equal(false);
    });

    it('a response signed by the CA itself (ResponderID byKey, no certs) verifies in openssl', function () {
      const reqDer = opensslRequest('ca-req.der', ['-no_nonce', '-cert', `${tmp.dir}/good.pem`]);
      const req = parseOcspRequest(reqDer);
      const r = openssl(['ocsp', '-respin', file('ca-resp.der', respond(ca, [], [{ certId: req.certIds[0].rawDer, certStatus: { status: 'good' } }])),
        '-issuer', `${tmp.dir}/ca.pem`, '-CAfile', `${tmp.dir}/ca.pem`, '-resp_text']);
      expect(r.stdout + r.stderr).to.contain('Response verify OK');
      expect(r.stdout).to.contain('Cert Status: good');
    });
  });

  describe('an RSA CA with a delegated P-256 responder', function () {
    it('openssl verifies the response and shows the revocation', function () {
      const ca = makeCa('rsa', 'OCSP Test CA RSA');
      const responder = issue(ca, 'OCSP Responder RSA CA', 'ocsp-responder');
      const leaf = issue(ca, 'device-rsa-ca');
      const caFile = writeIn(tmp.dir, 'rsa-ca.pem', ca.certPem);
      const reqFile = `${tmp.dir}/rsa-req.der`;
      opensslOk(['ocsp', '-issuer', caFile, '-cert', writeIn(tmp.dir, 'rsa-leaf.pem', leaf.certPem), '-reqout', reqFile]);
      const req = parseOcspRequest(readFileSync(reqFile));
      const resp = respond(responder, [responder.certDer], [{ certId: req.certIds[0].rawDer, certStatus: { status: 'revoked', revokedAt: new Date(), reason: 'affiliationChanged' } }],
        { nonce: req.nonce });
      const r = openssl(['ocsp', '-respin', writeIn(tmp.dir, 'rsa-resp.der', resp), '-reqin', reqFile, '-issuer', caFile, '-CAfile', caFile, '-resp_text']);
      expect(r.stdout + r.stderr).to.contain('Response verify OK');
      expect(r.stdout).to.contain('Cert Status: revoked');
      expect(r.stdout).to.contain('Revocation Reason: affiliationChanged (0x3)');
    });
  });

  describe('nonces (RFC 8954)', function () {
    const certId = (): Buffer => encodeCertId('sha1', vca.subject.rawDer, vca.spki.subjectPublicKey, va.serial);

    it('accepts 1 and 32 octets and refuses 0 and 33 with KAKUIN_E_OCSP_NONCE_INVALID', function () {
      for (const n of [1, 32]) expect(parseOcspRequest(requestWithNonceValue(certId(), derOctetString(Buffer.alloc(n, 9)))).nonce).to.have.length(n);
      for (const n of [0, 33]) {
        expect(thrownCode(() => parseOcspRequest(requestWithNonceValue(certId(), derOctetString(Buffer.alloc(n, 9))))), `${n} octets`).to.equal('KAKUIN_E_OCSP_NONCE_INVALID');
      }
      expect(thrownCode(() => parseOcspRequest(requestWithNonceValue(certId(), Buffer.alloc(0)))), 'empty extnValue').to.equal('KAKUIN_E_OCSP_NONCE_INVALID');
      expect(thrownCode(() => encodeOcspRequest([certId()], Buffer.alloc(33)))).to.equal('KAKUIN_E_ENCODING_INPUT');
    });

    it('takes an unwrapped (raw) nonce from an old client and echoes it byte-for-byte in the same form', function () {
      const ca = makeCa('p256', 'Raw Nonce CA');
      const responder = issue(ca, 'Raw Nonce Responder', 'ocsp-responder');
      const leaf = issue(ca, 'device-raw-nonce');
      const raw = Buffer.from('deadbeefcafebabe0102', 'hex'); // not an OCTET STRING TLV
      const reqDer = requestWithNonceValue(encodeCertId('sha1', ca.nameDer, ca.subjectPublicKey, leaf.serial), raw);
      const req = parseOcspRequest(reqDer);
      expect(req.nonce?.equals(raw)).to.equal(true);
      expect(req.nonceEncoding).to.equal('raw');
      const single = [{ certId: req.certIds[0].rawDer, certStatus: { status: 'good' } as OcspCertStatus }];
      const echoed = respond(responder, [responder.certDer], single, req);
      const resp = parseOcspResponse(echoed);
      expect(resp.nonce?.equals(raw)).to.equal(true);
      expect(resp.nonceEncoding).to.equal('raw');
      const reqExt = reqDer.subarray(reqDer.indexOf(Buffer.from([0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02])) - 2);
      expect(resp.rawDer.includes(reqExt), 'the nonce extension is echoed verbatim').to.equal(true);
      // openssl as the client compares the extnValues (OCSP_check_nonce): the raw echo passes, a wrapped one would not.
      const caFile = writeIn(tmp.dir, 'raw-ca.pem', ca.certPem);
      const reqFile = writeIn(tmp.dir, 'raw-req.der', reqDer);
      const check = (name: string, der: Buffer) => {
        const r = openssl(['ocsp', '-reqin', reqFile, '-respin', writeIn(tmp.dir, name, der), '-issuer', caFile, '-CAfile', caFile]);
        return r.stdout + r.stderr;
      };
      const ok = check('raw-resp.der', echoed);
      expect(ok).to.contain('Response verify OK');
      expect(ok).not.to.contain('Nonce Verify error');
      expect(check('raw-wrapped.der', respond(responder, [responder.certDer], single, { nonce: raw, nonceEncoding: 'octet-string' }))).to.contain('Nonce Verify error');
    });
  });

  describe('malformed and unsupported requests', function () {
    const real = (): Buffer => vector('ocsp-request-openssl-sha256-two-certs.der');

    it('refuses an unknown CertID hash with KAKUIN_E_OCSP_HASH_UNSUPPORTED, and accepts absent hash parameters', function () {
      const hashes = [Buffer.alloc(20, 1), Buffer.alloc(20, 2)];
      const withAlg = (alg: Buffer) => derSequence(derSequence(derSequence(derSequence(
        derSequence(alg, derOctetString(hashes[0]), derOctetString(hashes[1]), derInteger(Buffer.from([0x2a])))))));
      const md5 = withAlg(derSequence(derOid('1.2.840.113549.2.5'), derNull()));
      expect(thrownCode(() => parseOcspRequest(md5))).to.equal('KAKUIN_E_OCSP_HASH_UNSUPPORTED');
      const absent = parseOcspRequest(withAlg(derSequence(derOid('1.3.14.3.2.26'))));
      expect(absent.certIds[0].hashAlgorithm).to.equal('sha1');
      expect(absent.certIds[0].issuerNameHash.equals(hashes[0])).to.equal(true);
      expect(absent.certIds[0].serialHex).to.equal('2A');
      expect(thrownCode(() => parseOcspRequest(withAlg(derSequence(derOid('1.3.14.3.2.26'), derInteger(0)))))).to.equal('KAKUIN_E_DER_MALFORMED');
      // A SHA-1 CertID with 32-octet hashes cannot name any issuer.
      const wrongLength = derSequence(derSequence(derSequence(derSequence(
        derSequence(derSequence(derOid('1.3.14.3.2.26'), derNull()), derOctetString(Buffer.alloc(32)), derOctetString(Buffer.alloc(32)), derInteger(1))))));
      expect(thrownCode(() => parseOcspRequest(wrongLength))).to.equal('KAKUIN_E_DER_MALFORMED');
    });

    it('refuses a critical request extension it does not understand (RFC 6960 §4.4), and ignores a non-critical one', function () {
      const id = encodeCertId('sha1', vca.subject.rawDer, vca.spki.subjectPublicKey, va.serial);
      const withExt = (critical: boolean) => derSequence(derSequence(derSequence(derSequence(id)),
        derExplicit(2, derSequence(encodeExtension('1.3.6.1.5.5.7.48.1.8', critical, derSequence(derOid('1.2.840.10045.4.3.2')))))));
      expect(thrownCode(() => parseOcspRequest(withExt(true)))).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(parseOcspRequest(withExt(false)).certIds).to.have.length(1);
    });

    it('throws only KakuinErrors: every truncation, trailing bytes, garbage, and 2,000 random mutations of a real request', function () {
      const der = real();
      for (let n = 0; n < der.length; n++) expect(thrownCode(() => parseOcspRequest(der.subarray(0, n))), `truncated to ${n}`).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => parseOcspRequest(Buffer.concat([der, Buffer.from([0x00])])))).to.equal('KAKUIN_E_DER_MALFORMED');
      expect(thrownCode(() => parseOcspRequest(Buffer.concat([der, der])))).to.equal('KAKUIN_E_DER_MALFORMED');
      for (const bad of [Buffer.alloc(0), Buffer.from('GET / HTTP/1.1\r\n'), Buffer.from([0x30, 0x80, 0, 0]), Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
        Buffer.from([0x30, 0x00]), Buffer.from([0x30, 0x02, 0x30, 0x00]), 'text' as unknown as Buffer, undefined as unknown as Buffer]) {
        expect(thrownCode(() => parseOcspRequest(bad))).to.equal('KAKUIN_E_DER_MALFORMED');
      }
      const seed = 424242;
      const rnd = prng(seed);
      const codes = new Map<string, number>();
      for (let i = 0; i < 2000; i++) {
        let m = Buffer.from(der);
        const flips = 1 + Math.floor(rnd() * 4);
        for (let k = 0; k < flips; k++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
        if (rnd() < 0.1) m = m.subarray(0, Math.floor(rnd() * m.length));
        const code = thrownCode(() => parseOcspRequest(m));
        expect(['no error', ...REQUEST_CODES], `seed ${seed} iteration ${i}`).to.include(code);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      expect(codes.get('KAKUIN_E_DER_MALFORMED') ?? 0).to.be.greaterThan(1000);
    });

    it('parseOcspResponse throws only KakuinErrors on truncations and 1,000 random mutations', function () {
      const ca = makeCa('p256', 'Mutation CA');
      const id = encodeCertId('sha256', ca.nameDer, ca.subjectPublicKey, Buffer.from([1, 2, 3]));
      const der = respond(ca, [ca.certDer], [{ certId: id, certStatus: { status: 'revoked', revokedAt: new Date(), reason: 'keyCompromise' } }], { nonce: Buffer.alloc(16, 3) });
      for (let n = 0; n < der.length; n += 7) expect(thrownCode(() => parseOcspResponse(der.subarray(0, n)))).to.equal('KAKUIN_E_DER_MALFORMED');
      const rnd = prng(99);
      for (let i = 0; i < 1000; i++) {
        const m = Buffer.from(der);
        m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
        expect(['no error', 'KAKUIN_E_DER_MALFORMED', 'KAKUIN_E_OCSP_HASH_UNSUPPORTED'], `iteration ${i}`).to.include(thrownCode(() => parseOcspResponse(m)));
      }
    });
  });

  describe('error responses', function () {
    const cases: [OcspErrorStatus, number, string][] = [
      ['malformedRequest', 1, 'malformedrequest'], ['internalError', 2, 'internalerror'], ['tryLater', 3, 'trylater'],
      ['sigRequired', 5, 'sigrequired'], ['unauthorized', 6, 'unauthorized'],
    ];
    for (const [status, code, text] of cases) {
      it(`${status} is exactly 30 03 0a 01 0${code} and openssl reads it`, function () {
        const der = ocspErrorResponse(status);
        expect(der.toString('hex')).to.equal(`30030a010${code}`);
        const resp = parseOcspResponse(der);
        expect(resp.status).to.equal(status);
        expect(resp.responses).to.deep.equal([]);
        expect(verifyOcspResponseSignature(resp, vca.spki)).to.equal(false);
        const r = openssl(['ocsp', '-respin', writeIn(tmp.dir, `err-${code}.der`, der), '-resp_text']);
        expect((r.stdout + r.stderr).toLowerCase()).to.contain(`responder error: ${text} (${code})`);
      });
    }

    it('refuses an unknown status name', function () {
      expect(thrownCode(() => ocspErrorResponse('teapot' as OcspErrorStatus))).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => parseOcspResponse(Buffer.from('30030a0104', 'hex')))).to.equal('KAKUIN_E_DER_MALFORMED');
    });
  });

  describe('encodeSingleResponse', function () {
    const id = (): Buffer => encodeCertId('sha1', vca.subject.rawDer, vca.spki.subjectPublicKey, va.serial);

    it('writes GeneralizedTime for every time (RFC 5019 §2.2.4), drops milliseconds and echoes the CertID bytes', function () {
      const t = new Date(Date.UTC(2030, 1, 3, 4, 5, 6, 789));
      const der = encodeSingleResponse({ certId: id(), certStatus: { status: 'revoked', revokedAt: t, reason: 'keyCompromise' }, thisUpdate: t, nextUpdate: new Date(t.getTime() + HOUR) });
      const header = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
      expect(der.subarray(header, header + id().length).equals(id())).to.equal(true);
      const rest = der.subarray(header + id().length).toString('hex');
      const gt = (s: string) => `180f${Buffer.from(s, 'latin1').toString('hex')}`;
      expect(rest).to.equal(`a116${gt('20300203040506Z')}a0030a0101${gt('20300203040506Z')}a011${gt('20300203050506Z')}`);
      const goodDer = encodeSingleResponse({ certId: id(), certStatus: { status: 'good' }, thisUpdate: t });
      expect(goodDer.subarray(2 + id().length).toString('hex')).to.equal(`8000${gt('20300203040506Z')}`);
    });

    it('puts a revocation\'s invalidityDate into singleExtensions (RFC 6960 §4.4.5, RFC 5280 §5.3.2: not critical, GeneralizedTime) and reads it back', function () {
      const t = new Date(Date.UTC(2030, 1, 3, 4, 5, 6));
      const compromised = new Date(Date.UTC(2030, 0, 31, 23, 0, 0, 500));
      const der = encodeSingleResponse({
        certId: id(), certStatus: { status: 'revoked', revokedAt: t, reason: 'keyCompromise', invalidityDate: compromised }, thisUpdate: t, nextUpdate: new Date(t.getTime() + HOUR),
      });
      const gt = (s: string) => `180f${Buffer.from(s, 'latin1').toString('hex')}`;
      expect(der.toString('hex').endsWith(`a011${gt('20300203050506Z')}a11c301a30180603551d180411${gt('20300131230000Z')}`)).to.equal(true);
      const basic = encodeBasicOcspResponse(encodeResponseData({ responderKeyHash: Buffer.alloc(20, 1), producedAt: t, responses: [der] }), 'ecdsa-with-SHA256', Buffer.alloc(64), []);
      const parsed = parseOcspResponse(encodeOcspResponse(basic));
      expect(parsed.responses[0].certStatus).to.deep.equal({ status: 'revoked', revokedAt: t, reason: 'keyCompromise', invalidityDate: new Date(Date.UTC(2030, 0, 31, 23, 0, 0)) });
      const without = encodeSingleResponse({ certId: id(), certStatus: { status: 'revoked', revokedAt: t }, thisUpdate: t });
      expect(without.includes(Buffer.from('551d18', 'hex')), 'no invalidityDate, no extension').to.equal(false);
      expect(thrownCode(() => encodeSingleResponse({ certId: id(), certStatus: { status: 'revoked', revokedAt: t, invalidityDate: new Date(NaN) }, thisUpdate: t }))).to.equal('KAKUIN_E_ENCODING_INPUT');
    });

    it('refuses a nextUpdate before thisUpdate, an unknown status or reason, and a certId that is not DER', function () {
      const t = new Date();
      expect(thrownCode(() => encodeSingleResponse({ certId: id(), certStatus: { status: 'good' }, thisUpdate: t, nextUpdate: new Date(t.getTime() - 1000) }))).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => encodeSingleResponse({ certId: id(), certStatus: { status: 'fine' } as unknown as OcspCertStatus, thisUpdate: t }))).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => encodeSingleResponse({ certId: id(), certStatus: { status: 'revoked', revokedAt: t, reason: 'lost' as never }, thisUpdate: t }))).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => encodeSingleResponse({ certId: Buffer.from([1, 2]), certStatus: { status: 'good' }, thisUpdate: t }))).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => encodeResponseData({ responderKeyHash: Buffer.alloc(19), producedAt: t, responses: [encodeSingleResponse({ certId: id(), certStatus: { status: 'good' }, thisUpdate: t })] }))).to.equal('KAKUIN_E_ENCODING_INPUT');
    });
  });
});
