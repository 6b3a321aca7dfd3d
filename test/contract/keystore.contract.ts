/**
 * The KeyStore contract: one suite, run on every key store adapter (software now, PKCS#11 later).
 * Signatures are checked twice, by node:crypto and by the `openssl` command as an independent peer.
 *
 * `open` may be called several times in one run. Every call must return a NEW store instance over
 * the SAME backing storage (the same key directory, the same token), so that a key generated
 * through one instance loads through the next; `cleanup` closes that instance only. Creating and
 * removing the storage itself is the calling test file's job. Labels are unique per run, so a
 * persistent token does not collide with keys of earlier runs.
 */
import { expect } from 'chai';
import { constants, createPublicKey, randomBytes, verify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KakuinError, type ErrorCode } from '../../errors/index.js';
import {
  signatureAlgorithmFor, type KeyAlgorithm, type KeyStore, type SignatureAlgorithmName, type Signer,
} from '../../hsm-adapters/port.js';
import { makeTempDir, openssl } from '../support/index.js';

export interface OpenedKeyStore {
  store: KeyStore;
  /** The URI of the key called `label` (letters, digits and `-`) in this store. */
  uriFor: (label: string) => string;
  cleanup: () => Promise<void>;
}

export function runKeyStoreContract(
  name: string,
  open: () => Promise<OpenedKeyStore>,
  algorithms: KeyAlgorithm[],
): void {
  describe(`KeyStore contract: ${name}`, function () {
    const run = randomBytes(4).toString('hex');
    const label = (what: string): string => `contract-${run}-${what}`;
    let subject: OpenedKeyStore;
    let scratch: { dir: string; cleanup: () => void };

    before(async function () {
      subject = await open();
      scratch = makeTempDir('kakuin-keystore-contract-');
    });

    after(async function () {
      await subject?.cleanup();
      scratch?.cleanup();
    });

    /** A second instance over the same storage, closed after `use`. */
    async function withFreshStore<T>(use: (store: KeyStore) => Promise<T>): Promise<T> {
      const fresh = await open();
      try {
        return await use(fresh.store);
      } finally {
        await fresh.cleanup();
      }
    }

    it('reports a key that was never generated as absent and refuses to load it (KAKUIN_E_KEY_NOT_FOUND)', async function () {
      const uri = subject.uriFor(label('never-generated'));
      expect(await subject.store.exists(uri)).to.equal(false);
      await rejectsWithCode(subject.store.load(uri), 'KAKUIN_E_KEY_NOT_FOUND');
    });

    for (const algorithm of algorithms) {
      describe(algorithm, function () {
        let uri: string;
        let signer: Signer;

        before(async function () {
          this.timeout(60_000);
          uri = subject.uriFor(label(algorithm));
          expect(await subject.store.exists(uri), 'exists() before generate').to.equal(false);
          signer = await subject.store.generate(uri, algorithm);
        });

        it('names its URI, key algorithm and the X.509 signature algorithm signatureAlgorithmFor gives', function () {
          expect(signer.uri).to.equal(uri);
          expect(signer.algorithm).to.equal(algorithm);
          expect(signer.signatureAlgorithm).to.equal(signatureAlgorithmFor(algorithm));
        });

        it('exposes its public key as a DER SubjectPublicKeyInfo of the right type and size', function () {
          expect(Buffer.isBuffer(signer.publicKeySpki)).to.equal(true);
          expectKeyOfAlgorithm(spkiKey(signer.publicKeySpki), algorithm);
        });

        it('signs so that node:crypto verifies the signature, and rejects it for altered data', async function () {
          const data = randomBytes(777);
          const signature = await signer.sign(data);
          expectSignatureShape(signature, algorithm);
          expect(verifiesWithNode(signer.signatureAlgorithm, signer.publicKeySpki, data, signature)).to.equal(true);
          const altered = Buffer.from(data);
          altered[0] ^= 1;
          expect(verifiesWithNode(signer.signatureAlgorithm, signer.publicKeySpki, altered, signature)).to.equal(false);
        });

        it('signs so that the openssl command verifies the signature, and rejects it for altered data', async function () {
          const data = randomBytes(1234);
          const signature = await signer.sign(data);
          const dir = path.join(scratch.dir, algorithm);
          mkdirSync(dir, { recursive: true });
          const altered = Buffer.from(data);
          altered[altered.length - 1] ^= 1;
          expect(verifyWithOpenssl(dir, signer.signatureAlgorithm, signer.publicKeySpki, data, signature).status).to.equal(0);
          expect(verifyWithOpenssl(dir, signer.signatureAlgorithm, signer.publicKeySpki, altered, signature).status).to.not.equal(0);
        });

        it('reports the generated key as present', async function () {
          expect(await subject.store.exists(uri)).to.equal(true);
        });

        it('refuses to generate a second key under the same URI (KAKUIN_E_KEY_EXISTS) and keeps the first', async function () {
          this.timeout(60_000);
          await rejectsWithCode(subject.store.generate(uri, algorithm), 'KAKUIN_E_KEY_EXISTS');
          const other = algorithm === 'ed25519' ? 'ecdsa-p256' : 'ed25519';
          await rejectsWithCode(subject.store.generate(uri, other), 'KAKUIN_E_KEY_EXISTS');
          const reloaded = await withFreshStore((store) => store.load(uri));
          expect(reloaded.publicKeySpki.equals(signer.publicKeySpki)).to.equal(true);
        });

        it('loads the same key through a fresh store instance, and its signatures verify', async function () {
          await withFreshStore(async (store) => {
            expect(await store.exists(uri)).to.equal(true);
            const loaded = await store.load(uri);
            expect(loaded.uri).to.equal(uri);
            expect(loaded.algorithm).to.equal(algorithm);
            expect(loaded.signatureAlgorithm).to.equal(signatureAlgorithmFor(algorithm));
            expect(loaded.publicKeySpki.equals(signer.publicKeySpki)).to.equal(true);
            const data = randomBytes(300);
            expect(verifiesWithNode(loaded.signatureAlgorithm, signer.publicKeySpki, data, await loaded.sign(data))).to.equal(true);
          });
        });

        it('produces valid signatures for many concurrent sign calls', async function () {
          const inputs = Array.from({ length: 64 }, (_, i) => randomBytes(100 + i));
          const signatures = await Promise.all(inputs.map((data) => signer.sign(data)));
          signatures.forEach((signature, i) => {
            expect(verifiesWithNode(signer.signatureAlgorithm, signer.publicKeySpki, inputs[i], signature), `signature ${i}`).to.equal(true);
          });
        });
      });
    }
  });
}

/** Awaits `promise`, expecting it to reject with a KakuinError of `code`; returns that error. */
export async function rejectsWithCode(promise: Promise<unknown>, code: ErrorCode): Promise<KakuinError> {
  let outcome: unknown;
  try {
    outcome = await promise;
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(KakuinError);
    expect((e as KakuinError).code, (e as Error).message).to.equal(code);
    return e as KakuinError;
  }
  return expect.fail(`expected a rejection with ${code}, got ${String(outcome)}`);
}

export function spkiKey(spki: Buffer): KeyObject {
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

export function spkiToPem(spki: Buffer): string {
  const lines = spki.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join('\n')}\n-----END PUBLIC KEY-----\n`;
}

function expectKeyOfAlgorithm(key: KeyObject, algorithm: KeyAlgorithm): void {
  const details = key.asymmetricKeyDetails ?? {};
  switch (algorithm) {
    case 'ecdsa-p256': expect([key.asymmetricKeyType, details.namedCurve]).to.deep.equal(['ec', 'prime256v1']); break;
    case 'ecdsa-p384': expect([key.asymmetricKeyType, details.namedCurve]).to.deep.equal(['ec', 'secp384r1']); break;
    case 'ed25519': expect(key.asymmetricKeyType).to.equal('ed25519'); break;
    case 'rsa-2048': expect([key.asymmetricKeyType, details.modulusLength]).to.deep.equal(['rsa', 2048]); break;
    case 'rsa-3072': expect([key.asymmetricKeyType, details.modulusLength]).to.deep.equal(['rsa', 3072]); break;
  }
}

/** The form each signature takes in an X.509 BIT STRING (see `Signer.sign`). */
function expectSignatureShape(signature: Buffer, algorithm: KeyAlgorithm): void {
  switch (algorithm) {
    case 'ecdsa-p256':
    case 'ecdsa-p384':
      // Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3), short-form length.
      expect(signature[0]).to.equal(0x30);
      expect(signature[1]).to.equal(signature.length - 2);
      expect(signature[2]).to.equal(0x02);
      break;
    case 'ed25519': expect(signature.length).to.equal(64); break;
    case 'rsa-2048': expect(signature.length).to.equal(256); break;
    case 'rsa-3072': expect(signature.length).to.equal(384); break;
  }
}

function hashOf(signatureAlgorithm: SignatureAlgorithmName): 'sha256' | 'sha384' | null {
  switch (signatureAlgorithm) {
    case 'ecdsa-with-SHA256':
    case 'sha256WithRSAEncryption': return 'sha256';
    case 'ecdsa-with-SHA384': return 'sha384';
    case 'Ed25519': return null;
  }
}

export function verifiesWithNode(signatureAlgorithm: SignatureAlgorithmName, spki: Buffer, data: Buffer, signature: Buffer): boolean {
  const key = spkiKey(spki);
  const input: KeyObject | VerifyKeyObjectInput =
    signatureAlgorithm.startsWith('ecdsa') ? { key, dsaEncoding: 'der' }
      : signatureAlgorithm === 'sha256WithRSAEncryption' ? { key, padding: constants.RSA_PKCS1_PADDING }
        : key;
  return verify(hashOf(signatureAlgorithm), data, input, signature);
}

function verifyWithOpenssl(dir: string, signatureAlgorithm: SignatureAlgorithmName, spki: Buffer, data: Buffer, signature: Buffer) {
  const pub = path.join(dir, 'pub.pem');
  const dataFile = path.join(dir, 'data');
  const sigFile = path.join(dir, 'sig');
  writeFileSync(pub, spkiToPem(spki));
  writeFileSync(dataFile, data);
  writeFileSync(sigFile, signature);
  const hash = hashOf(signatureAlgorithm);
  // Ed25519 signs the message itself (RFC 8032 PureEdDSA): pkeyutl with -rawin, no digest.
  const r = hash === null
    ? openssl(['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', dataFile, '-sigfile', sigFile])
    : openssl(['dgst', `-${hash}`, '-verify', pub, '-signature', sigFile, dataFile]);
  if (r.status === 0) expect(r.stdout).to.match(/Verified OK|Signature Verified Successfully/);
  return r;
}
