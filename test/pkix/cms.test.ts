/**
 * pkix/cms against OpenSSL: what kakuin writes (SignedData with SCEP attributes, EnvelopedData by
 * RSA key transport and by ECDH key agreement) `openssl cms` reads back; what `openssl cms
 * -encrypt` writes kakuin decrypts; a wrong key-transport padding yields a random key, not an error
 * that tells it apart (RFC 3218 §2.3.2).
 */
import { expect } from 'chai';
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  decryptEnvelopedData, encodeEnvelopedData, encodeScepMessage, fromPem, parseEnvelopedData, parseScepRequest, parseSignedData,
  scepReplyFields, verifySigner,
} from '../../pkix/index.js';
import { SoftwareSigner } from '../../hsm-adapters/software/software-signer.js';
import { makeTempDir, opensslBytes, opensslOk } from '../support/index.js';

describe('pkix/cms with openssl cms', function () {
  this.timeout(60_000);
  let tmp: { dir: string; cleanup: () => void };
  const pair = (name: string, keyArgs: string[]) => {
    const key = path.join(tmp.dir, `${name}.key`);
    const cert = path.join(tmp.dir, `${name}.pem`);
    opensslOk(['req', '-x509', '-new', ...keyArgs, '-nodes', '-keyout', key, '-subj', `/CN=${name}`, '-days', '1', '-out', cert]);
    return { key, cert, der: fromPem(readFileSync(cert, 'utf8'), 'CERTIFICATE')[0], keyObject: createPrivateKey(readFileSync(key)) };
  };
  let rsa: ReturnType<typeof pair>;
  let ec: ReturnType<typeof pair>;

  before(() => {
    tmp = makeTempDir('kakuin-cms-');
    rsa = pair('rsa', ['-newkey', 'rsa:2048']);
    ec = pair('ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  });
  after(() => tmp.cleanup());

  for (const which of ['rsa', 'ec'] as const) {
    it(`a SCEP pkiMessage signed with an ${which.toUpperCase()} key verifies with openssl cms -verify and reads back its attributes`, async () => {
      const p = which === 'rsa' ? rsa : ec;
      const content = randomBytes(100);
      const der = await encodeScepMessage({
        fields: { messageType: 'PKCSReq', transactionId: 'tx-1', senderNonce: Buffer.alloc(16, 1) }, envelope: content,
        signerCertificate: p.der, keyType: which, sign: async (d) => sign('sha256', d, which === 'ec' ? { key: p.keyObject, dsaEncoding: 'der' } : p.keyObject),
        signingTime: new Date(),
      });
      const file = path.join(tmp.dir, `signed-${which}.der`);
      writeFileSync(file, der);
      const out = opensslBytes(['cms', '-verify', '-inform', 'DER', '-in', file, '-noverify', '-binary']);
      expect(out.equals(content)).to.equal(true);
      const req = parseScepRequest(der);
      expect([req.messageType, req.transactionId]).to.deep.equal(['PKCSReq', 'tx-1']);
      expect(verifySigner(req.signer, req.signed.eContentType, req.envelope, req.signerCertificate!)).to.equal(true);
      // One byte of content changed: the message digest no longer matches.
      const tampered = Buffer.from(req.envelope);
      tampered[0] ^= 1;
      expect(verifySigner(req.signer, req.signed.eContentType, tampered, req.signerCertificate!)).to.equal(false);
    });

    it(`EnvelopedData to an ${which.toUpperCase()} certificate (${which === 'rsa' ? 'key transport' : 'ECDH key agreement'}) opens with openssl cms -decrypt`, () => {
      const p = which === 'rsa' ? rsa : ec;
      const content = randomBytes(333);
      const file = path.join(tmp.dir, `env-${which}.der`);
      writeFileSync(file, encodeEnvelopedData(content, { certificate: p.der }));
      expect(opensslBytes(['cms', '-decrypt', '-inform', 'DER', '-in', file, '-recip', p.cert, '-inkey', p.key, '-binary']).equals(content)).to.equal(true);
    });
  }

  it('decrypts what openssl cms -encrypt wrote (AES-128 and AES-256), with the software key store\'s key transport', async () => {
    const signer = new SoftwareSigner('file:test', 'rsa-2048', rsa.keyObject);
    for (const cipher of ['-aes128', '-aes256']) {
      const content = randomBytes(500);
      const input = path.join(tmp.dir, 'plain.bin');
      writeFileSync(input, content);
      const der = opensslBytes(['cms', '-encrypt', '-binary', cipher, '-in', input, '-outform', 'DER', '-recip', rsa.cert]);
      const plain = await decryptEnvelopedData(parseEnvelopedData(der), rsa.der, (k, n) => signer.unwrapKeyTransport(k, n));
      expect(plain.equals(content), cipher).to.equal(true);
    }
  });

  it('a corrupted encrypted key gives a random key (no padding oracle) and the content fails to decrypt: KAKUIN_E_CMS_DECRYPT', async () => {
    const signer = new SoftwareSigner('file:test', 'rsa-2048', rsa.keyObject);
    const junk = randomBytes(256);
    const a = await signer.unwrapKeyTransport(junk, 32);
    const b = await signer.unwrapKeyTransport(junk, 32);
    expect([a.length, b.length]).to.deep.equal([32, 32]);
    expect(a.equals(b), 'a fresh random key each time').to.equal(false);
    const input = path.join(tmp.dir, 'plain2.bin');
    writeFileSync(input, randomBytes(64));
    const parsed = parseEnvelopedData(opensslBytes(['cms', '-encrypt', '-binary', '-aes256', '-in', input, '-outform', 'DER', '-recip', rsa.cert]));
    const secret = readFileSync(input);
    parsed.recipients[0].encryptedKey = junk;
    // A random AES key yields a valid CBC padding about once in 256 tries: then garbage comes out
    // (which the SCEP layer refuses as no CSR); every other time the decryption fails.
    const outcome = await decryptEnvelopedData(parsed, rsa.der, (k, n) => signer.unwrapKeyTransport(k, n)).then(
      (plain) => ({ plain }), (e: { code?: string }) => ({ code: e.code }));
    if ('plain' in outcome) expect(outcome.plain.equals(secret)).to.equal(false);
    else expect(outcome.code).to.equal('KAKUIN_E_CMS_DECRYPT');
  });

  it('refuses 3DES content encryption (KAKUIN_E_ALGORITHM_UNSUPPORTED) and a message without the SCEP attributes (KAKUIN_E_DER_MALFORMED)', async () => {
    const signer = new SoftwareSigner('file:test', 'rsa-2048', rsa.keyObject);
    const input = path.join(tmp.dir, 'plain3.bin');
    writeFileSync(input, randomBytes(64));
    const des = opensslBytes(['cms', '-encrypt', '-binary', '-des3', '-in', input, '-outform', 'DER', '-recip', rsa.cert]);
    try {
      await decryptEnvelopedData(parseEnvelopedData(des), rsa.der, (k, n) => signer.unwrapKeyTransport(k, n));
      expect.fail('3DES accepted');
    } catch (e) {
      expect((e as { code?: string }).code).to.equal('KAKUIN_E_ALGORITHM_UNSUPPORTED');
    }
    // openssl cms -sign: a SignedData with signed attributes but none of SCEP's.
    const plain = opensslBytes(['cms', '-sign', '-binary', '-nodetach', '-in', input, '-signer', rsa.cert, '-inkey', rsa.key, '-outform', 'DER']);
    expect(parseSignedData(plain).signers).to.have.length(1);
    expect(() => parseScepRequest(plain)).to.throw().with.property('code', 'KAKUIN_E_DER_MALFORMED');
    expect(scepReplyFields(parseSignedData(plain).signers[0]).messageType).to.equal(undefined);
  });
});
