import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import { fromPem, keyIdentifier, parseSpki, toPem } from '../../pkix/index.js';
import { opensslOk } from '../support/index.js';
import { readVector, testKey, thrownCode } from './fixtures.js';

describe('pkix SubjectPublicKeyInfo', () => {
  it('tells key types, curves and RSA sizes apart', () => {
    expect(parseSpki(testKey('P-256').spki)).to.include({ keyType: 'ec', curve: 'P-256', algorithmOid: '1.2.840.10045.2.1' });
    expect(parseSpki(testKey('P-384').spki)).to.include({ keyType: 'ec', curve: 'P-384' });
    expect(parseSpki(testKey('Ed25519').spki)).to.include({ keyType: 'ed25519', algorithmOid: '1.3.101.112' });
    expect(parseSpki(testKey('RSA-2048').spki)).to.include({ keyType: 'rsa', rsaBits: 2048 });
    const spkiOf = (k: { publicKey: KeyObject }): Buffer => k.publicKey.export({ type: 'spki', format: 'der' });
    expect(parseSpki(spkiOf(generateKeyPairSync('ec', { namedCurve: 'P-521' })))).to.include({ keyType: 'ec', curve: 'P-521' });
    expect(parseSpki(spkiOf(generateKeyPairSync('ec', { namedCurve: 'secp256k1' })))).to.include({ curve: 'secp256k1' });
    expect(parseSpki(spkiOf(generateKeyPairSync('x25519')))).to.include({ keyType: 'x25519' });
    expect(parseSpki(spkiOf(generateKeyPairSync('ed448')))).to.include({ keyType: 'ed448' });
    expect(parseSpki(spkiOf(generateKeyPairSync('rsa', { modulusLength: 1025 })))).to.include({ keyType: 'rsa', rsaBits: 1025 });
  });

  it('keeps the raw DER and the bare public key', () => {
    const { spki } = testKey('P-256');
    const info = parseSpki(spki);
    expect(info.rawDer.equals(spki)).to.equal(true);
    expect(info.subjectPublicKey.length).to.equal(65);
    expect(info.subjectPublicKey[0]).to.equal(0x04);
    expect(spki.subarray(spki.length - 65).equals(info.subjectPublicKey)).to.equal(true);
  });

  it('computes the RFC 5280 §4.2.1.2 method (1) key identifier as openssl does for its SKI', () => {
    const { spki } = testKey('P-384');
    expect(keyIdentifier(spki).equals(createHash('sha1').update(parseSpki(spki).subjectPublicKey).digest())).to.equal(true);
    expect(keyIdentifier(parseSpki(spki)).equals(keyIdentifier(spki))).to.equal(true);
    const text = opensslOk(['x509', '-inform', 'DER', '-noout', '-ext', 'subjectKeyIdentifier', '-pubkey'], readVector('cert-p256-openssl-ca.der'));
    const ski = /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(text)![1].replace(/:/g, '').toLowerCase();
    const pub = fromPem(text, 'PUBLIC KEY')[0];
    expect(keyIdentifier(pub).toString('hex')).to.equal(ski);
  });

  it('refuses malformed SPKIs with KAKUIN_E_DER_MALFORMED', () => {
    const { spki } = testKey('P-256');
    expect(thrownCode(() => parseSpki(spki.subarray(0, spki.length - 1)))).to.equal('KAKUIN_E_DER_MALFORMED');
    expect(thrownCode(() => parseSpki(Buffer.concat([spki, Buffer.from([0])])))).to.equal('KAKUIN_E_DER_MALFORMED');
    expect(thrownCode(() => parseSpki(Buffer.from('3000', 'hex')))).to.equal('KAKUIN_E_DER_MALFORMED');
  });
});

describe('pkix PEM', () => {
  it('writes 64-character lines and a trailing newline, exactly as openssl does', () => {
    const der = readVector('cert-p256-openssl-ca.der');
    const pem = toPem('CERTIFICATE', der);
    expect(pem).to.equal(opensslOk(['x509', '-inform', 'DER', '-outform', 'PEM'], der));
    const lines = pem.trimEnd().split('\n');
    expect(lines.slice(1, -2).every((l) => l.length === 64)).to.equal(true);
    expect(pem.endsWith('-----END CERTIFICATE-----\n')).to.equal(true);
  });

  it('reads every block, or only those of one label, ignoring text around them', () => {
    const a = Buffer.from('3003020101', 'hex');
    const b = Buffer.from('3003020102', 'hex');
    const text = `Certificate:\n  junk\n${toPem('CERTIFICATE', a)}between\n${toPem('PRIVATE KEY', b)}${toPem('CERTIFICATE', b)}`;
    expect(fromPem(text).map((x) => x.toString('hex'))).to.deep.equal(['3003020101', '3003020102', '3003020102']);
    expect(fromPem(text, 'CERTIFICATE').map((x) => x.toString('hex'))).to.deep.equal(['3003020101', '3003020102']);
  });

  it('refuses text without a block, bad base64 and mismatched labels with KAKUIN_E_PEM_MALFORMED', () => {
    expect(thrownCode(() => fromPem('nothing here'))).to.equal('KAKUIN_E_PEM_MALFORMED');
    expect(thrownCode(() => fromPem(toPem('CERTIFICATE', Buffer.from([1])), 'X509 CRL'))).to.equal('KAKUIN_E_PEM_MALFORMED');
    expect(thrownCode(() => fromPem('-----BEGIN CERTIFICATE-----\nAB$C\n-----END CERTIFICATE-----\n'))).to.equal('KAKUIN_E_PEM_MALFORMED');
    expect(thrownCode(() => fromPem('-----BEGIN CERTIFICATE-----\nABC\n-----END CERTIFICATE-----\n'))).to.equal('KAKUIN_E_PEM_MALFORMED');
    expect(thrownCode(() => fromPem('-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n'))).to.equal('KAKUIN_E_PEM_MALFORMED');
    expect(thrownCode(() => fromPem('-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----\n'))).to.equal('KAKUIN_E_PEM_MALFORMED');
  });
});
