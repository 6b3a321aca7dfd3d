/**
 * A Signer over a private `KeyObject` held in memory. Signing is synchronous `crypto.sign` (tens of
 * microseconds for P-256, the issuance and OCSP hot path); the port is asynchronous for PKCS#11,
 * so the result is handed back as an already settled promise.
 */
import { constants, createPublicKey, privateDecrypt, randomBytes, sign, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { signatureAlgorithmFor, type KeyAlgorithm, type KeyTransportDecrypter, type Signer, type SignatureAlgorithmName } from '../port.js';

export class SoftwareSigner implements Signer, KeyTransportDecrypter {
  readonly signatureAlgorithm: SignatureAlgorithmName;
  readonly publicKeySpki: Buffer;
  readonly #digest: string | null;
  readonly #key: KeyObject | SignKeyObjectInput;
  readonly #privateKey: KeyObject;

  constructor(readonly uri: string, readonly algorithm: KeyAlgorithm, privateKey: KeyObject) {
    this.signatureAlgorithm = signatureAlgorithmFor(algorithm);
    this.publicKeySpki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    this.#digest = digestFor(algorithm);
    this.#key = signingKey(algorithm, privateKey);
    this.#privateKey = privateKey;
  }

  /**
   * RSAES-PKCS1-v1_5 decryption (RFC 8017 §7.2.2) done here on the raw RSA result: Node 20 refuses
   * RSA_PKCS1_PADDING for private decryption (CVE-2023-46809, the Marvin attack) unless its
   * OpenSSL does implicit rejection. This does the same: a bad padding yields a random key, and
   * the padding is checked over every octet without an early exit.
   */
  unwrapKeyTransport(encryptedKey: Buffer, keyLength: number): Promise<Buffer> {
    const fallback = randomBytes(keyLength);
    if (this.algorithm !== 'rsa-2048' && this.algorithm !== 'rsa-3072') {
      return Promise.reject(new KakuinError('KAKUIN_E_KEY_ALGORITHM', `${this.uri} is not an RSA key: it cannot decrypt key transport`));
    }
    let em: Buffer;
    try {
      em = privateDecrypt({ key: this.#privateKey, padding: constants.RSA_NO_PADDING }, encryptedKey);
    } catch {
      return Promise.resolve(fallback);
    }
    // EM = 0x00 || 0x02 || PS (at least 8 non-zero octets) || 0x00 || M
    let bad = em[0] | (em[1] ^ 0x02);
    let separator = 0;
    let seen = 0;
    for (let i = 2; i < em.length; i++) {
      const zero = em[i] === 0 ? 1 : 0;
      const first = zero & (seen ^ 1);
      separator = first ? i : separator;
      seen |= zero;
    }
    bad |= seen ^ 1;
    bad |= separator < 10 ? 1 : 0;
    bad |= em.length - separator - 1 !== keyLength ? 1 : 0;
    const key = em.subarray(em.length - keyLength);
    return Promise.resolve(bad === 0 ? Buffer.from(key) : fallback);
  }

  sign(data: Buffer): Promise<Buffer> {
    try {
      return Promise.resolve(sign(this.#digest, data, this.#key));
    } catch (cause) {
      return Promise.reject(new KakuinError('KAKUIN_E_SIGNING_FAILED', `signing with ${this.uri} failed`, { cause }));
    }
  }
}

/** The hash each signature algorithm of `signatureAlgorithmFor` names; Ed25519 hashes internally (RFC 8032). */
function digestFor(algorithm: KeyAlgorithm): string | null {
  switch (algorithm) {
    case 'ecdsa-p256': return 'sha256';
    case 'ecdsa-p384': return 'sha384';
    case 'ed25519': return null;
    case 'rsa-2048':
    case 'rsa-3072': return 'sha256';
  }
}

function signingKey(algorithm: KeyAlgorithm, key: KeyObject): KeyObject | SignKeyObjectInput {
  switch (algorithm) {
    // RFC 5480 §2.2.3 / RFC 3279 §2.2.3: the BIT STRING holds the DER Ecdsa-Sig-Value, not r || s.
    case 'ecdsa-p256':
    case 'ecdsa-p384': return { key, dsaEncoding: 'der' };
    // sha256WithRSAEncryption is PKCS#1 v1.5 (RFC 4055 §5); never PSS here.
    case 'rsa-2048':
    case 'rsa-3072': return { key, padding: constants.RSA_PKCS1_PADDING };
    case 'ed25519': return key;
  }
}

/** The kakuin algorithm of a private key read from a file, or undefined when kakuin does not use it. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (details.namedCurve === 'prime256v1') return 'ecdsa-p256';
      if (details.namedCurve === 'secp384r1') return 'ecdsa-p384';
      return undefined;
    case 'ed25519':
      return 'ed25519';
    case 'rsa':
      if (details.modulusLength === 2048) return 'rsa-2048';
      if (details.modulusLength === 3072) return 'rsa-3072';
      return undefined;
    default:
      return undefined;
  }
}
