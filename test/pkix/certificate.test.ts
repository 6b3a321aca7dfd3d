import { verify as nodeVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import {
  basicConstraintsExt, encodeCertificate, encodeName, encodeSignatureAlgorithm, encodeTbsCertificate, keyIdentifier,
  nameToString, parseCertificate, parseSpki, type SignatureAlgorithmName, subjectKeyIdentifierExt, toPem, verifyCertificateSignature,
} from '../../pkix/index.js';
import { openssl, opensslOk } from '../support/index.js';
import {
  asn1parse, buildCert, caName, certPem, DEVICE_NAME_ATTRS, hex, KEY_KINDS, opensslCertText, pkijs, readVector, signWith,
  testKey, thrownCode, URLS, withFiles,
} from './fixtures.js';

const OPENSSL_ALG_TEXT: Record<SignatureAlgorithmName, string> = {
  'ecdsa-with-SHA256': 'ecdsa-with-SHA256', 'ecdsa-with-SHA384': 'ecdsa-with-SHA384', Ed25519: 'ED25519', sha256WithRSAEncryption: 'sha256WithRSAEncryption',
};

function second(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

describe('pkix certificates', function () {
  this.timeout(60_000);

  for (const kind of KEY_KINDS) {
    describe(`a device certificate signed by a ${kind} issuer`, () => {
      const issuerKey = testKey(kind, 'root');
      const deviceKey = testKey('P-256', 'device');
      const issuerName = caName(`Kakuin ${kind} Device CA`);
      const deviceName = encodeName(DEVICE_NAME_ATTRS);
      const notBefore = second(new Date(Date.now() - 3_600_000));
      const notAfter = second(new Date(Date.now() + 30 * 86_400_000));
      const serial = Buffer.from('0a1b2c3d4e5f60718293a4b5c6d7e8f9', 'hex');
      const rootDer = buildCert({ issuerKey, issuerName, subjectKey: issuerKey, subjectName: issuerName, ca: { pathLen: 0 }, serial: Buffer.from([1]) });
      const leafDer = buildCert({ issuerKey, issuerName, subjectKey: deviceKey, subjectName: deviceName, serial, notBefore, notAfter });

      it('parses identically in pkijs: serial, names, validity, every extension', () => {
        const pk = pkijs.Certificate.fromBER(new Uint8Array(leafDer));
        const ours = parseCertificate(leafDer);
        expect(pk.version).to.equal(2);
        expect(hex(pk.serialNumber.valueBlock.valueHexView)).to.equal(serial.toString('hex'));
        expect(ours.serial.equals(serial)).to.equal(true);
        expect(pk.signatureAlgorithm.algorithmId).to.equal(ours.signatureAlgorithmOid);
        expect(pk.issuer.typesAndValues.map((t) => [t.type, t.value.valueBlock.value])).to.deep.equal([
          ['2.5.4.6', 'JP'], ['2.5.4.10', 'Kakuin Test'], ['2.5.4.3', `Kakuin ${kind} Device CA`],
        ]);
        expect(pk.subject.typesAndValues.map((t) => [t.type, t.value.idBlock.tagNumber, t.value.valueBlock.value])).to.deep.equal([
          ['2.5.4.10', 12, 'Kakuin Test Devices'], ['2.5.4.5', 19, 'SN-000042'], ['2.5.4.3', 12, 'device SN-000042'],
        ]);
        expect(ours.subject.attributes.map((a) => [a.oid, a.stringTag, a.value])).to.deep.equal(
          pk.subject.typesAndValues.map((t) => [t.type, t.value.idBlock.tagNumber, t.value.valueBlock.value]));
        expect(pk.notBefore.value.toISOString()).to.equal(notBefore.toISOString());
        expect(pk.notAfter.value.toISOString()).to.equal(notAfter.toISOString());
        expect(ours.notBefore.toISOString()).to.equal(notBefore.toISOString());
        expect(ours.notAfter.toISOString()).to.equal(notAfter.toISOString());
        expect(hex(pk.subjectPublicKeyInfo.toSchema().toBER())).to.equal(deviceKey.spki.toString('hex'));

        const exts = pk.extensions ?? [];
        expect(exts.map((e) => [e.extnID, e.critical, hex(e.extnValue.valueBlock.valueHexView)])).to.deep.equal(
          ours.extensions.map((e) => [e.oid, e.critical, e.value.toString('hex')]));
        const byOid = new Map(exts.map((e) => [e.extnID, e.parsedValue]));
        expect((byOid.get('2.5.29.19') as pkijs.BasicConstraints).cA).to.equal(false);
        expect(hex((byOid.get('2.5.29.15') as { valueBlock: { valueHexView: Uint8Array } }).valueBlock.valueHexView)).to.equal('80');
        expect((byOid.get('2.5.29.37') as pkijs.ExtKeyUsage).keyPurposes).to.deep.equal(['1.3.6.1.5.5.7.3.2']);
        const san = (byOid.get('2.5.29.17') as pkijs.AltName).altNames;
        expect(san.map((g) => g.type)).to.deep.equal([6, 0]);
        expect(san[0].value).to.equal('urn:kakuin:device:0f3c9a52-7d1e-4a8b-9c21-6b5e3f1d2a90');
        expect(hex((byOid.get('2.5.29.14') as { valueBlock: { valueHexView: Uint8Array } }).valueBlock.valueHexView))
          .to.equal(keyIdentifier(deviceKey.spki).toString('hex'));
        expect(hex((byOid.get('2.5.29.35') as pkijs.AuthorityKeyIdentifier).keyIdentifier!.valueBlock.valueHexView))
          .to.equal(keyIdentifier(issuerKey.spki).toString('hex'));
        const crldp = (byOid.get('2.5.29.31') as pkijs.CRLDistributionPoints).distributionPoints;
        expect((crldp[0].distributionPoint as pkijs.GeneralName[])[0].value).to.equal(URLS.crl);
        const aia = (byOid.get('1.3.6.1.5.5.7.1.1') as pkijs.InfoAccess).accessDescriptions;
        expect(aia.map((a) => [a.accessMethod, a.accessLocation.value])).to.deep.equal([
          ['1.3.6.1.5.5.7.48.1', URLS.ocsp], ['1.3.6.1.5.5.7.48.2', URLS.caIssuers],
        ]);
        expect(ours.subjectKeyIdentifier?.equals(keyIdentifier(deviceKey.spki))).to.equal(true);
        expect(ours.authorityKeyIdentifier?.equals(keyIdentifier(issuerKey.spki))).to.equal(true);
        expect(ours.basicConstraints).to.deep.equal({ ca: false });
        expect(parseCertificate(rootDer).basicConstraints).to.deep.equal({ ca: true, pathLen: 0 });
      });

      it('carries a signature that verifies (pkijs for ECDSA/RSA, node:crypto over pkijs-extracted bytes, and pkix)', async () => {
        const pkLeaf = pkijs.Certificate.fromBER(new Uint8Array(leafDer));
        const pkRoot = pkijs.Certificate.fromBER(new Uint8Array(rootDer));
        if (kind !== 'Ed25519') {
          // pkijs 4 has no Ed25519 support; for it the bytes pkijs extracts are checked with node:crypto below.
          expect(await pkLeaf.verify(pkRoot)).to.equal(true);
          expect(await pkRoot.verify()).to.equal(true);
        }
        const digest = kind === 'P-384' ? 'sha384' : kind === 'Ed25519' ? null : 'sha256';
        expect(nodeVerify(digest, Buffer.from(pkLeaf.tbsView), issuerKey.publicKey, Buffer.from(pkLeaf.signatureValue.valueBlock.valueHexView))).to.equal(true);
        expect(verifyCertificateSignature(parseCertificate(leafDer), parseSpki(issuerKey.spki))).to.equal(true);
        expect(verifyCertificateSignature(parseCertificate(leafDer), parseSpki(testKey(kind, 'other').spki))).to.equal(false);
      });

      it('prints the expected extension text in openssl', () => {
        const text = opensslCertText(leafDer);
        expect(text).to.contain('Version: 3 (0x2)');
        expect(text).to.contain(`Signature Algorithm: ${OPENSSL_ALG_TEXT[issuerKey.algorithm]}`);
        expect(text).to.match(/Subject: O = Kakuin Test Devices, serialNumber = SN-000042, CN = device SN-000042/);
        expect(text).to.match(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
        expect(text).to.match(/X509v3 Key Usage: critical\s+Digital Signature\n/);
        expect(text).to.match(/X509v3 Extended Key Usage: \s*\n\s+TLS Web Client Authentication\n/);
        expect(text).to.contain('URI:urn:kakuin:device:0f3c9a52-7d1e-4a8b-9c21-6b5e3f1d2a90');
        expect(text).to.contain('othername:');
        expect(text).to.contain(`OCSP - URI:${URLS.ocsp}`);
        expect(text).to.contain(`CA Issuers - URI:${URLS.caIssuers}`);
        expect(text).to.match(new RegExp(`Full Name:\\s+URI:${URLS.crl.replace(/\./g, '\\.')}`));
        expect(text).to.contain(`X509v3 Subject Key Identifier: \n                ${keyIdentifier(deviceKey.spki).toString('hex').toUpperCase().match(/../g)!.join(':')}`);
        expect(opensslOk(['x509', '-inform', 'DER', '-noout', '-serial'], leafDer).trim()).to.equal(`serial=${parseCertificate(leafDer).serialHex}`);
      });

      it('builds a chain root → intermediate → leaf that `openssl verify -x509_strict` accepts', () => {
        const interKey = testKey(kind, 'intermediate');
        const interName = caName(`Kakuin ${kind} Intermediate`);
        const root = buildCert({ issuerKey, issuerName, subjectKey: issuerKey, subjectName: issuerName, ca: {}, serial: Buffer.from([0x10]) });
        const inter = buildCert({ issuerKey, issuerName, subjectKey: interKey, subjectName: interName, ca: { pathLen: 0 }, serial: Buffer.from([0x11]) });
        const leaf = buildCert({ issuerKey: interKey, issuerName: interName, subjectKey: deviceKey, subjectName: deviceName, serial: Buffer.from([0x12]) });
        const forged = Buffer.from(leaf);
        forged[forged.length - 1] ^= 0x01; // the last octet belongs to the signature
        withFiles({ 'root.pem': certPem(root), 'inter.pem': certPem(inter), 'leaf.pem': certPem(leaf), 'forged.pem': certPem(forged) }, (p) => {
          const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', p('root.pem'), '-untrusted', p('inter.pem')];
          const ok = openssl([...args, p('leaf.pem')]);
          expect(ok.stdout + ok.stderr).to.contain(`${p('leaf.pem')}: OK`);
          expect(ok.status).to.equal(0);
          const bad = openssl([...args, p('forged.pem')]);
          expect(bad.status).to.not.equal(0);
          expect(bad.stdout + bad.stderr).to.match(/signature failure|certificate signature failure/);
        });
      });
    });
  }

  describe('validity encoding (RFC 5280 §4.1.2.5)', () => {
    const key = testKey('P-256', 'validity');
    const name = caName('validity');

    it('writes 2049-12-31 as UTCTime and 2050-01-01 as GeneralizedTime; pkijs, openssl and pkix read the same instants', () => {
      const der = buildCert({ issuerKey: key, issuerName: name, subjectKey: key, subjectName: name, notBefore: new Date('2049-12-31T23:59:59Z'), notAfter: new Date('2050-01-01T00:00:00Z') });
      const text = asn1parse(der);
      expect(text).to.match(/UTCTIME\s+:491231235959Z/);
      expect(text).to.match(/GENERALIZEDTIME\s+:20500101000000Z/);
      const pk = pkijs.Certificate.fromBER(new Uint8Array(der));
      expect([pk.notBefore.type, pk.notAfter.type]).to.deep.equal([0, 1]);
      expect(pk.notAfter.value.toISOString()).to.equal('2050-01-01T00:00:00.000Z');
      const dates = opensslOk(['x509', '-inform', 'DER', '-noout', '-dates'], der);
      expect(dates).to.contain('notBefore=Dec 31 23:59:59 2049 GMT');
      expect(dates).to.contain('notAfter=Jan  1 00:00:00 2050 GMT');
      const ours = parseCertificate(der);
      expect(ours.notBefore.toISOString()).to.equal('2049-12-31T23:59:59.000Z');
      expect(ours.notAfter.toISOString()).to.equal('2050-01-01T00:00:00.000Z');
    });

    it("writes 'no-well-defined-expiration' as GeneralizedTime 99991231235959Z", () => {
      const der = buildCert({ issuerKey: key, issuerName: name, subjectKey: key, subjectName: name, notAfter: 'no-well-defined-expiration' });
      expect(asn1parse(der)).to.match(/GENERALIZEDTIME\s+:99991231235959Z/);
      expect(opensslOk(['x509', '-inform', 'DER', '-noout', '-enddate'], der).trim()).to.equal('notAfter=Dec 31 23:59:59 9999 GMT');
      const pk = pkijs.Certificate.fromBER(new Uint8Array(der));
      expect(pk.notAfter.type).to.equal(1);
      expect(parseCertificate(der).notAfter.toISOString()).to.equal('9999-12-31T23:59:59.000Z');
    });

    it('refuses notAfter before notBefore', () => {
      expect(thrownCode(() => buildCert({ issuerKey: key, issuerName: name, subjectKey: key, subjectName: name, notBefore: new Date('2030-01-01Z'), notAfter: new Date('2029-01-01Z') })))
        .to.equal('KAKUIN_E_ENCODING_INPUT');
    });
  });

  describe('serial numbers (RFC 5280 §4.1.2.2)', () => {
    const key = testKey('P-256', 'serial');
    const name = caName('serial');
    const make = (serial: Buffer): Buffer => buildCert({ issuerKey: key, issuerName: name, subjectKey: key, subjectName: name, serial });

    it('pads a serial whose high bit is set with 0x00, and prints it as openssl does', () => {
      const serial = Buffer.from('80f1e2d3c4b5a6978877665544332211', 'hex');
      const der = make(serial);
      const pk = pkijs.Certificate.fromBER(new Uint8Array(der));
      expect(hex(pk.serialNumber.valueBlock.valueHexView)).to.equal(`00${serial.toString('hex')}`);
      const ours = parseCertificate(der);
      expect(ours.serial.equals(serial)).to.equal(true);
      expect(opensslOk(['x509', '-inform', 'DER', '-noout', '-serial'], der).trim()).to.equal(`serial=${ours.serialHex}`);
      expect(ours.serialHex).to.equal('80F1E2D3C4B5A6978877665544332211');
    });

    it('drops leading zero octets, takes 20 octets, refuses 21 and zero', () => {
      expect(parseCertificate(make(Buffer.from('000001', 'hex'))).serialHex).to.equal('01');
      expect(parseCertificate(make(Buffer.alloc(20, 0x7f))).serial.length).to.equal(20);
      expect(thrownCode(() => make(Buffer.alloc(20, 0x80)))).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => make(Buffer.alloc(21, 0x01)))).to.equal('KAKUIN_E_ENCODING_INPUT');
      expect(thrownCode(() => make(Buffer.from([0, 0])))).to.equal('KAKUIN_E_ENCODING_INPUT');
    });
  });

  describe('structure', () => {
    const key = testKey('P-256', 'structure');
    const name = caName('structure');

    it('writes v3 without an extensions field when there are none', () => {
      const tbs = encodeTbsCertificate({ serial: Buffer.from([5]), signatureAlgorithm: key.algorithm, issuer: name, subject: name, spki: key.spki, notBefore: new Date('2026-01-01Z'), notAfter: new Date('2027-01-01Z'), extensions: [] });
      const der = encodeCertificate(tbs, key.algorithm, signWith(key, tbs));
      expect(opensslCertText(der)).to.contain('Version: 3 (0x2)');
      expect(opensslCertText(der)).to.not.contain('X509v3 extensions');
      const ours = parseCertificate(der);
      expect([ours.version, ours.extensions.length, ours.tbsDer.equals(tbs)]).to.deep.equal([3, 0, true]);
    });

    it('writes the AlgorithmIdentifiers openssl writes (no parameters for ECDSA and Ed25519, NULL for RSA)', () => {
      expect(encodeSignatureAlgorithm('ecdsa-with-SHA256').toString('hex')).to.equal('300a06082a8648ce3d040302');
      expect(encodeSignatureAlgorithm('ecdsa-with-SHA384').toString('hex')).to.equal('300a06082a8648ce3d040303');
      expect(encodeSignatureAlgorithm('Ed25519').toString('hex')).to.equal('300506032b6570');
      expect(encodeSignatureAlgorithm('sha256WithRSAEncryption').toString('hex')).to.equal('300d06092a864886f70d01010b0500');
      for (const kind of KEY_KINDS) {
        const k = testKey(kind, 'root');
        const der = withFiles({ 'k.pem': k.privateKey.export({ type: 'pkcs8', format: 'pem' }) }, (p) => {
          opensslOk(['req', '-x509', '-new', '-key', p('k.pem'), '-subj', '/CN=alg', ...(kind === 'P-384' ? ['-sha384'] : []), '-outform', 'DER', '-out', p('c.der')]);
          return readFileSync(p('c.der'));
        });
        expect(parseCertificate(der).signatureAlgorithm.rawDer.toString('hex'), kind).to.equal(encodeSignatureAlgorithm(k.algorithm).toString('hex'));
      }
    });

    it('parses a certificate openssl made (vector cert-p256-openssl-ca.der) as openssl reads it', () => {
      const der = readVector('cert-p256-openssl-ca.der');
      const c = parseCertificate(der);
      expect(opensslOk(['x509', '-inform', 'DER', '-noout', '-serial'], der).trim()).to.equal(`serial=${c.serialHex}`);
      expect(c.serialHex).to.equal('F1E2D3C4B5A69788');
      expect(nameToString(c.subject)).to.equal('C=JP, O=Kakuin Test, CN=OpenSSL Test CA');
      expect(c.issuer.rawDer.equals(c.subject.rawDer)).to.equal(true);
      const dates = opensslOk(['x509', '-inform', 'DER', '-noout', '-dates'], der);
      const fmt = (d: Date): string => d.toUTCString().replace(/^\w+, (\d+) (\w+) (\d+) ([\d:]+) GMT$/, (_m, day: string, mon: string, y: string, t: string) => `${mon} ${day.replace(/^0/, ' ')} ${t} ${y} GMT`);
      expect(dates).to.contain(`notBefore=${fmt(c.notBefore)}`);
      expect(dates).to.contain(`notAfter=${fmt(c.notAfter)}`);
      expect(c.spki.curve).to.equal('P-256');
      expect(c.basicConstraints).to.deep.equal({ ca: true, pathLen: 1 });
      expect(c.authorityKeyIdentifier?.equals(c.subjectKeyIdentifier!)).to.equal(true);
      expect(verifyCertificateSignature(c, c.spki)).to.equal(true);
    });

    it('refuses a TBS signature algorithm that differs from the outer one, duplicate extensions, trailing bytes', () => {
      const tbs = encodeTbsCertificate({ serial: Buffer.from([5]), signatureAlgorithm: 'ecdsa-with-SHA384', issuer: name, subject: name, spki: key.spki, notBefore: new Date('2026-01-01Z'), notAfter: new Date('2027-01-01Z'), extensions: [] });
      expect(thrownCode(() => parseCertificate(encodeCertificate(tbs, 'ecdsa-with-SHA256', signWith(key, tbs))))).to.equal('KAKUIN_E_DER_MALFORMED');
      const dup = encodeTbsCertificate({ serial: Buffer.from([5]), signatureAlgorithm: key.algorithm, issuer: name, subject: name, spki: key.spki, notBefore: new Date('2026-01-01Z'), notAfter: new Date('2027-01-01Z'), extensions: [basicConstraintsExt({ ca: false }), basicConstraintsExt({ ca: false })] });
      expect(thrownCode(() => parseCertificate(encodeCertificate(dup, key.algorithm, signWith(key, dup))))).to.equal('KAKUIN_E_DER_MALFORMED');
      const good = encodeCertificate(dup, key.algorithm, Buffer.from([1]));
      expect(thrownCode(() => parseCertificate(Buffer.concat([good, Buffer.from([0])])))).to.equal('KAKUIN_E_DER_MALFORMED');
    });

    it('round-trips through PEM as openssl reads it', () => {
      const der = buildCert({ issuerKey: key, issuerName: name, subjectKey: key, subjectName: name, extensions: [subjectKeyIdentifierExt(keyIdentifier(key.spki))] });
      const pem = toPem('CERTIFICATE', der);
      expect(opensslOk(['x509', '-outform', 'PEM'], pem)).to.equal(pem);
    });
  });
});
