import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parseCsr, parseSubjectAltName, readCsr, toPem, verifyCsr, type ParsedCsr } from '../../pkix/index.js';
import { isKakuinError } from '../../errors/index.js';
import { opensslOk, sharedVectorsDir } from '../support/index.js';
import { hex, pkijs, readVector, thrownCode } from './fixtures.js';

/** Flips one octet inside the first occurrence of `needle` (a value in the signed CertificationRequestInfo). */
function tamper(der: Buffer, needle: string): Buffer {
  const out = Buffer.from(der);
  const at = out.indexOf(needle);
  expect(at, `"${needle}" is in the request`).to.be.greaterThan(0);
  out[at + needle.length - 1] ^= 0x01;
  return out;
}

describe('pkix PKCS#10 requests', () => {
  describe('made by openssl req', () => {
    it('parses and verifies `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /serialNumber=ABC123` (vector csr-p256-openssl.der)', async () => {
      const der = readVector('csr-p256-openssl.der');
      const csr = parseCsr(der);
      expect(csr.rawDer.equals(der)).to.equal(true);
      expect(csr.subject.attributes.map((a) => [a.type, a.value, a.stringTag])).to.deep.equal([['serialNumber', 'ABC123', 0x13]]);
      expect(csr.spki).to.include({ keyType: 'ec', curve: 'P-256', algorithmOid: '1.2.840.10045.2.1' });
      expect(csr.signatureAlgorithmOid).to.equal('1.2.840.10045.4.3.2');
      expect(csr.attributes).to.deep.equal([]);
      verifyCsr(csr);
      // pkijs, independently: same subject, same key, signature valid
      const pk = pkijs.CertificationRequest.fromBER(new Uint8Array(der));
      expect(pk.subject.typesAndValues.map((t) => [t.type, t.value.valueBlock.value])).to.deep.equal([['2.5.4.5', 'ABC123']]);
      expect(hex(pk.subjectPublicKeyInfo.toSchema().toBER())).to.equal(csr.spki.rawDer.toString('hex'));
      expect(hex(pk.tbsView)).to.equal(csr.certificationRequestInfoDer.toString('hex'));
      expect(await pk.verify()).to.equal(true);
    });

    const accepted: [string, Partial<ParsedCsr['spki']>, string][] = [
      ['csr-p384-openssl.der', { keyType: 'ec', curve: 'P-384' }, '1.2.840.10045.4.3.3'],
      ['csr-ed25519-openssl.der', { keyType: 'ed25519' }, '1.3.101.112'],
      ['csr-rsa2048-openssl.der', { keyType: 'rsa', rsaBits: 2048 }, '1.2.840.113549.1.1.11'],
      ['csr-rsa2048-pss-openssl.der', { keyType: 'rsa', rsaBits: 2048 }, '1.2.840.113549.1.1.10'],
    ];
    for (const [file, key, alg] of accepted) {
      it(`parses and verifies ${file}`, () => {
        const csr = parseCsr(readVector(file));
        expect(csr.spki).to.include(key);
        expect(csr.signatureAlgorithmOid).to.equal(alg);
        verifyCsr(csr);
      });
    }

    it('reads requested extensions (vector csr-p256-extensions-openssl.der)', () => {
      const csr = parseCsr(readVector('csr-p256-extensions-openssl.der'));
      verifyCsr(csr);
      expect(csr.attributes.map((a) => a.oid)).to.deep.equal(['1.2.840.113549.1.9.14']);
      expect(csr.requestedExtensions.map((e) => [e.oid, e.critical])).to.deep.equal([['2.5.29.17', false], ['2.5.29.15', true], ['2.5.29.37', false]]);
      expect(parseSubjectAltName(csr.requestedExtensions[0].value)).to.deep.equal([{ uri: 'urn:kakuin:device:ext-1' }, { dns: 'ext.example' }]);
    });

    it('accepts PEM labelled CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST, as text or bytes, and DER bytes', () => {
      const der = readVector('csr-ed25519-openssl.der');
      const pem = opensslOk(['req', '-inform', 'DER', '-outform', 'PEM'], der);
      expect(pem).to.equal(toPem('CERTIFICATE REQUEST', der));
      for (const input of [pem, Buffer.from(pem), pem.replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST'), `comment\r\n${pem.replace(/\n/g, '\r\n')}`, der]) {
        expect(readCsr(input).rawDer.equals(der)).to.equal(true);
      }
      expect(thrownCode(() => readCsr(toPem('CERTIFICATE', der)))).to.equal('KAKUIN_E_PEM_MALFORMED');
      expect(thrownCode(() => readCsr(pem + pem))).to.equal('KAKUIN_E_PEM_MALFORMED');
      expect(thrownCode(() => readCsr('-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n'))).to.equal('KAKUIN_E_PEM_MALFORMED');
      expect(thrownCode(() => readCsr(Buffer.from('not a request')))).to.equal('KAKUIN_E_DER_MALFORMED');
    });
  });

  describe('policy and proof of possession', () => {
    it('refuses a tampered request (subject changed after signing) with KAKUIN_E_CSR_SIGNATURE_INVALID', () => {
      for (const file of ['csr-p256-openssl.der', 'csr-ed25519-openssl.der', 'csr-rsa2048-openssl.der']) {
        const tampered = parseCsr(tamper(readVector(file), file === 'csr-p256-openssl.der' ? 'ABC123' : file === 'csr-ed25519-openssl.der' ? 'ED25519-1' : 'RSA2048-1'));
        expect(thrownCode(() => verifyCsr(tampered)), file).to.equal('KAKUIN_E_CSR_SIGNATURE_INVALID');
      }
    });

    it('refuses a request whose signature octets were changed with KAKUIN_E_CSR_SIGNATURE_INVALID', () => {
      for (const file of ['csr-p256-openssl.der', 'csr-ed25519-openssl.der', 'csr-rsa2048-pss-openssl.der']) {
        const der = Buffer.from(readVector(file));
        der[der.length - 2] ^= 0x10;
        expect(thrownCode(() => verifyCsr(parseCsr(der))), file).to.equal('KAKUIN_E_CSR_SIGNATURE_INVALID');
      }
    });

    it('refuses P-521 and secp256k1 keys with KAKUIN_E_KEY_UNSUPPORTED, RSA-1024 with KAKUIN_E_KEY_TOO_WEAK', () => {
      const p521 = parseCsr(readVector('csr-p521-unsupported.der'));
      expect(p521.spki.curve).to.equal('P-521');
      expect(thrownCode(() => verifyCsr(p521))).to.equal('KAKUIN_E_KEY_UNSUPPORTED');
      const k1 = parseCsr(readVector('csr-secp256k1-unsupported.der'));
      expect(k1.spki.curve).to.equal('secp256k1');
      expect(thrownCode(() => verifyCsr(k1))).to.equal('KAKUIN_E_KEY_UNSUPPORTED');
      const weak = parseCsr(readVector('csr-rsa1024-weak.der'));
      expect(weak.spki.rsaBits).to.equal(1024);
      expect(thrownCode(() => verifyCsr(weak))).to.equal('KAKUIN_E_KEY_TOO_WEAK');
    });

    it('refuses ecdsa-with-SHA1 with KAKUIN_E_ALGORITHM_UNSUPPORTED, although the signature itself is valid', () => {
      const csr = parseCsr(readVector('csr-p256-sha1-refused.der'));
      expect(csr.signatureAlgorithmOid).to.equal('1.2.840.10045.4.1');
      expect(thrownCode(() => verifyCsr(csr))).to.equal('KAKUIN_E_ALGORITHM_UNSUPPORTED');
    });

    it('refuses a signature algorithm that does not fit the key with KAKUIN_E_ALGORITHM_UNSUPPORTED', () => {
      const csr = parseCsr(readVector('csr-p256-openssl.der'));
      const rsa = parseCsr(readVector('csr-rsa2048-openssl.der'));
      expect(thrownCode(() => verifyCsr({ ...csr, signatureAlgorithm: rsa.signatureAlgorithm }))).to.equal('KAKUIN_E_ALGORITHM_UNSUPPORTED');
    });
  });

  describe('Let\'s Encrypt boulder requests (../shared/vectors/boulder-csr, read in place)', function () {
    const dir = sharedVectorsDir('boulder-csr');

    before(function () {
      if (dir === undefined) {
        console.log('      (skipped: ../shared/vectors/boulder-csr is absent in this checkout)');
        this.skip();
      }
    });

    it('parses every file without crashing (any error is a KakuinError)', () => {
      const files = readdirSync(dir!).filter((f) => f.endsWith('.csr'));
      expect(files.length).to.be.greaterThan(5);
      for (const f of files) {
        try {
          verifyCsr(parseCsr(readFileSync(path.join(dir!, f))));
        } catch (e) {
          expect(isKakuinError(e), `${f}: ${String(e)}`).to.equal(true);
        }
      }
    });

    const valid = ['ecdsa', 'cn_and_san', 'no_names', 'long_cn', 'must_staple', 'unsupported_extension', 'ct_poison_extension', 'ct_poison_extension_empty'];
    for (const name of valid) {
      it(`verifies ${name}.der.csr`, () => {
        verifyCsr(parseCsr(readFileSync(path.join(dir!, `${name}.der.csr`))));
      });
    }

    const refused: [string, string][] = [
      ['bad_algorithm.der.csr', 'KAKUIN_E_ALGORITHM_UNSUPPORTED'],
      ['short_key.der.csr', 'KAKUIN_E_KEY_TOO_WEAK'],
      ['invalid_signature.der.csr', 'KAKUIN_E_CSR_SIGNATURE_INVALID'],
    ];
    for (const [file, code] of refused) {
      it(`refuses ${file} with ${code}`, () => {
        expect(thrownCode(() => verifyCsr(parseCsr(readFileSync(path.join(dir!, file)))))).to.equal(code);
      });
    }

    it('reads the names boulder put in cn_and_san.der.csr', () => {
      const csr = parseCsr(readFileSync(path.join(dir!, 'cn_and_san.der.csr')));
      expect(csr.subject.attributes.map((a) => [a.type, a.value])).to.deep.equal([['CN', 'not-example.com']]);
      const san = csr.requestedExtensions.find((e) => e.oid === '2.5.29.17');
      expect(san, 'SAN requested').to.not.equal(undefined);
      expect(parseSubjectAltName(san!.value).length).to.be.greaterThan(0);
    });
  });
});
