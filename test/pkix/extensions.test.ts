import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import * as asn1js from 'asn1js';
import {
  authorityInfoAccessExt, authorityKeyIdentifierExt, basicConstraintsExt, crlDistributionPointsExt, extKeyUsageExt,
  keyIdentifier, keyUsageExt, ocspNoCheckExt, parseAuthorityInfoAccess, parseAuthorityKeyIdentifier, parseBasicConstraints,
  parseCertificate, parseCrlDistributionPoints, parseExtKeyUsage, parseKeyUsage, parseSubjectAltName, parseSubjectKeyIdentifier,
  subjectAltNameExt, subjectKeyIdentifierExt, type KeyUsageName,
} from '../../pkix/index.js';
import { opensslOk } from '../support/index.js';
import { pkijs, readVector, thrownCode, withFiles } from './fixtures.js';

/** One Extension as asn1js reads it. */
function extParts(ext: Buffer): { oid: string; critical: boolean; value: Buffer } {
  const parsed = asn1js.fromBER(new Uint8Array(ext));
  expect(parsed.offset).to.equal(ext.length);
  const parts = (parsed.result as asn1js.Sequence).valueBlock.value;
  const oid = (parts[0] as asn1js.ObjectIdentifier).valueBlock.toString();
  const critical = parts.length === 3 ? (parts[1] as asn1js.Boolean).valueBlock.value : false;
  const value = Buffer.from((parts[parts.length - 1] as asn1js.OctetString).valueBlock.valueHexView);
  return { oid, critical, value };
}

/** A self-signed certificate made by `openssl req -x509` with the given extension config lines. */
function opensslCertWith(extLines: string[], extraSections = ''): { der: Buffer; spki: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const config = [
    '[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no',
    '[dn]', 'CN = extension oracle', '[ext]', ...extLines, extraSections,
  ].join('\n');
  const der = withFiles({ 'key.pem': privateKey.export({ type: 'pkcs8', format: 'pem' }), 'req.cnf': config }, (p) => {
    opensslOk(['req', '-x509', '-new', '-key', p('key.pem'), '-config', p('req.cnf'), '-days', '30', '-outform', 'DER', '-out', p('cert.der')]);
    return readFileSync(p('cert.der'));
  });
  return { der, spki: publicKey.export({ type: 'spki', format: 'der' }) };
}

/** The single extension openssl wrote for `line`, checked to be byte-identical to `ours`. */
function expectSameAsOpenssl(line: string, ours: Buffer | ((spki: Buffer) => Buffer), extraSections = ''): void {
  const { der, spki } = opensslCertWith([line], extraSections);
  const mine = typeof ours === 'function' ? ours(spki) : ours;
  const cert = pkijs.Certificate.fromBER(new Uint8Array(der));
  const p = extParts(mine);
  // openssl 3 adds subjectKeyIdentifier/authorityKeyIdentifier on its own; pick the one under test.
  const theirs = (cert.extensions ?? []).filter((e) => e.extnID === p.oid);
  expect(theirs, `openssl wrote ${p.oid} once`).to.have.length(1);
  expect(p.critical).to.equal(theirs[0].critical);
  expect(p.value.toString('hex')).to.equal(Buffer.from(theirs[0].extnValue.valueBlock.valueHexView).toString('hex'));
  expect(der.includes(mine), 'the whole Extension DER appears in the openssl certificate').to.equal(true);
}

describe('pkix extensions match what openssl writes, byte for byte', () => {
  it('basicConstraints (critical; CA with and without pathLen, end entity)', () => {
    expectSameAsOpenssl('basicConstraints = critical,CA:TRUE,pathlen:0', basicConstraintsExt({ ca: true, pathLen: 0 }));
    expectSameAsOpenssl('basicConstraints = critical,CA:TRUE,pathlen:300', basicConstraintsExt({ ca: true, pathLen: 300 }));
    expectSameAsOpenssl('basicConstraints = critical,CA:TRUE', basicConstraintsExt({ ca: true }));
    expectSameAsOpenssl('basicConstraints = critical,CA:FALSE', basicConstraintsExt({ ca: false }));
  });

  const keyUsages: [string, KeyUsageName[]][] = [
    ['digitalSignature', ['digitalSignature']],
    ['keyCertSign,cRLSign', ['keyCertSign', 'cRLSign']],
    ['digitalSignature,keyEncipherment', ['digitalSignature', 'keyEncipherment']],
    ['keyAgreement', ['keyAgreement']],
    ['digitalSignature,decipherOnly', ['decipherOnly', 'digitalSignature']],
    ['nonRepudiation,dataEncipherment,encipherOnly', ['nonRepudiation', 'dataEncipherment', 'encipherOnly']],
  ];
  for (const [text, usages] of keyUsages) {
    it(`keyUsage ${text} (critical, minimal BIT STRING)`, () => {
      expectSameAsOpenssl(`keyUsage = critical,${text}`, keyUsageExt(usages));
      expect(parseKeyUsage(extParts(keyUsageExt(usages)).value).sort()).to.deep.equal([...usages].sort());
    });
  }

  it('keyUsage BIT STRING unused-bits counts (digitalSignature → 07 80, decipherOnly → 07 00 80)', () => {
    expect(extParts(keyUsageExt(['digitalSignature'])).value.toString('hex')).to.equal('03020780');
    expect(extParts(keyUsageExt(['keyCertSign', 'cRLSign'])).value.toString('hex')).to.equal('03020106');
    expect(extParts(keyUsageExt(['decipherOnly'])).value.toString('hex')).to.equal('0303070080');
    expect(thrownCode(() => keyUsageExt([]))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => keyUsageExt(['signing' as KeyUsageName]))).to.equal('KAKUIN_E_ENCODING_INPUT');
  });

  it('extKeyUsage with names and dotted OIDs (not critical)', () => {
    expectSameAsOpenssl('extendedKeyUsage = clientAuth', extKeyUsageExt(['clientAuth']));
    expectSameAsOpenssl('extendedKeyUsage = serverAuth,clientAuth', extKeyUsageExt(['serverAuth', 'clientAuth']));
    expectSameAsOpenssl('extendedKeyUsage = OCSPSigning', extKeyUsageExt(['OCSPSigning']));
    expectSameAsOpenssl('extendedKeyUsage = codeSigning,emailProtection,timeStamping,1.3.6.1.4.1.59999.3.1',
      extKeyUsageExt(['codeSigning', 'emailProtection', 'timeStamping', '1.3.6.1.4.1.59999.3.1']));
    expect(parseExtKeyUsage(extParts(extKeyUsageExt(['clientAuth', '1.2.3.4'])).value)).to.deep.equal(['1.3.6.1.5.5.7.3.2', '1.2.3.4']);
    expect(thrownCode(() => extKeyUsageExt(['tlsClient']))).to.equal('KAKUIN_E_ENCODING_INPUT');
    // a cached result for ['serverAuth', 'clientAuth'] must not answer for one malformed string
    expect(thrownCode(() => extKeyUsageExt(['serverAuth,clientAuth']))).to.equal('KAKUIN_E_ENCODING_INPUT');
  });

  it('subjectKeyIdentifier = hash is RFC 5280 method (1), as openssl computes it', () => {
    expectSameAsOpenssl('subjectKeyIdentifier = hash', (spki) => subjectKeyIdentifierExt(keyIdentifier(spki)));
  });

  it('authorityKeyIdentifier carries keyIdentifier only', () => {
    expectSameAsOpenssl('authorityKeyIdentifier = keyid:always', (spki) => authorityKeyIdentifierExt(keyIdentifier(spki)));
    const aki = parseAuthorityKeyIdentifier(extParts(authorityKeyIdentifierExt(Buffer.from('0102', 'hex'))).value);
    expect(aki.keyIdentifier?.toString('hex')).to.equal('0102');
  });

  it('subjectAltName with URI, DNS, IPv4 and IPv6 names, plain and critical', () => {
    const names = [{ uri: 'urn:kakuin:device:42' }, { dns: 'device42.example' }, { ip: '192.0.2.7' }, { ip: '2001:db8::7' }];
    expectSameAsOpenssl('subjectAltName = URI:urn:kakuin:device:42,DNS:device42.example,IP:192.0.2.7,IP:2001:db8::7', subjectAltNameExt(names));
    expectSameAsOpenssl('subjectAltName = critical,URI:urn:kakuin:device:42', subjectAltNameExt([names[0]], true));
    expect(parseSubjectAltName(extParts(subjectAltNameExt(names)).value)).to.deep.equal(names);
    expectSameAsOpenssl('subjectAltName = IP:::ffff:192.0.2.1', subjectAltNameExt([{ ip: '::ffff:192.0.2.1' }]));
    expectSameAsOpenssl('subjectAltName = IP:fe80::1:2', subjectAltNameExt([{ ip: 'fe80::1:2' }]));
  });

  it('subjectAltName hardwareModuleName (RFC 4108 §5 otherName) as openssl writes it from a SEQUENCE section', () => {
    const hwSerial = Buffer.from('SN-000042');
    const ext = subjectAltNameExt([{ hardwareModuleName: { hwType: '1.3.6.1.4.1.59999.1.1', hwSerial } }]);
    expectSameAsOpenssl('subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hmn', ext,
      `\n[hmn]\nhwType = OID:1.3.6.1.4.1.59999.1.1\nhwSerialNum = FORMAT:HEX,OCTETSTRING:${hwSerial.toString('hex')}\n`);
    expect(parseSubjectAltName(extParts(ext).value)).to.deep.equal([{ hardwareModuleName: { hwType: '1.3.6.1.4.1.59999.1.1', hwSerial } }]);
    // pkijs sees an otherName whose type-id is id-on-hardwareModuleName
    const pk = pkijs.Extension.fromBER(new Uint8Array(ext));
    const altNames = (pk.parsedValue as pkijs.AltName).altNames;
    expect(altNames[0].type).to.equal(0);
  });

  it('refuses empty or non-ASCII names and bad IP addresses', () => {
    expect(thrownCode(() => subjectAltNameExt([]))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => subjectAltNameExt([{ uri: 'urn:kakuin:gerät' }]))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => subjectAltNameExt([{ ip: '300.1.1.1' }]))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => subjectAltNameExt([{ hardwareModuleName: { hwType: 'x', hwSerial: Buffer.from('1') } }]))).to.equal('KAKUIN_E_ENCODING_INPUT');
  });

  it('cRLDistributionPoints with one URL', () => {
    expectSameAsOpenssl('crlDistributionPoints = URI:http://pki.kakuin.test/crl/device.crl', crlDistributionPointsExt(['http://pki.kakuin.test/crl/device.crl']));
  });

  it('cRLDistributionPoints with two URLs: one DistributionPoint, fullName with both (RFC 5280 §4.2.1.13)', () => {
    const ext = crlDistributionPointsExt(['http://a.test/x.crl', 'ldap://b.test/x']);
    const { value } = extParts(ext);
    expect(parseCrlDistributionPoints(value)).to.deep.equal(['http://a.test/x.crl', 'ldap://b.test/x']);
    const pk = pkijs.Extension.fromBER(new Uint8Array(ext)).parsedValue as pkijs.CRLDistributionPoints;
    expect(pk.distributionPoints).to.have.length(1);
    expect((pk.distributionPoints[0].distributionPoint as pkijs.GeneralName[]).map((g) => g.value)).to.deep.equal(['http://a.test/x.crl', 'ldap://b.test/x']);
  });

  it('authorityInfoAccess with OCSP and CA issuers', () => {
    expectSameAsOpenssl('authorityInfoAccess = OCSP;URI:http://pki.kakuin.test/ocsp,caIssuers;URI:http://pki.kakuin.test/ca/device.cer',
      authorityInfoAccessExt({ ocsp: ['http://pki.kakuin.test/ocsp'], caIssuers: ['http://pki.kakuin.test/ca/device.cer'] }));
    expect(parseAuthorityInfoAccess(extParts(authorityInfoAccessExt({ caIssuers: ['http://x/ca.cer'] })).value))
      .to.deep.equal({ ocsp: [], caIssuers: ['http://x/ca.cer'] });
    expect(thrownCode(() => authorityInfoAccessExt({}))).to.equal('KAKUIN_E_ENCODING_INPUT');
  });

  it('id-pkix-ocsp-nocheck with a NULL value (RFC 6960 §4.2.2.2.1)', () => {
    expectSameAsOpenssl('noCheck = ignored', ocspNoCheckExt());
    expect(extParts(ocspNoCheckExt())).to.deep.equal({ oid: '1.3.6.1.5.5.7.48.1.5', critical: false, value: Buffer.from('0500', 'hex') });
  });

  it('refuses pathLen without cA', () => {
    expect(thrownCode(() => basicConstraintsExt({ ca: false, pathLen: 0 }))).to.equal('KAKUIN_E_ENCODING_INPUT');
    expect(thrownCode(() => basicConstraintsExt({ ca: true, pathLen: -1 }))).to.equal('KAKUIN_E_ENCODING_INPUT');
  });

  it('reads back extensions openssl wrote in a CA certificate (vector cert-p256-openssl-ca.der)', () => {
    const cert = parseCertificate(readVector('cert-p256-openssl-ca.der'));
    const byOid = new Map(cert.extensions.map((e) => [e.oid, e]));
    expect(parseBasicConstraints(byOid.get('2.5.29.19')!.value)).to.deep.equal({ ca: true, pathLen: 1 });
    expect(byOid.get('2.5.29.19')!.critical).to.equal(true);
    expect(parseKeyUsage(byOid.get('2.5.29.15')!.value)).to.deep.equal(['keyCertSign', 'cRLSign']);
    expect(parseSubjectAltName(byOid.get('2.5.29.17')!.value)).to.deep.equal([{ uri: 'urn:kakuin:test' }, { ip: '192.0.2.1' }, { ip: '2001:db8::1' }]);
    expect(parseCrlDistributionPoints(byOid.get('2.5.29.31')!.value)).to.deep.equal(['http://crl.example/ca.crl']);
    expect(parseAuthorityInfoAccess(byOid.get('1.3.6.1.5.5.7.1.1')!.value)).to.deep.equal({ ocsp: ['http://ocsp.example/'], caIssuers: ['http://ca.example/ca.cer'] });
    expect(parseSubjectKeyIdentifier(byOid.get('2.5.29.14')!.value).equals(keyIdentifier(cert.spki))).to.equal(true);
  });
});
