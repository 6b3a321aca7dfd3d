/**
 * A Signer over a private `KeyObject` held in memory. Signing is synchronous `crypto.sign` (tens of
 * microseconds for P-256, the issuance and OCSP hot path); the port is asynchronous for PKCS#11,
 * so the result is handed back as an already settled promise.
 */
import { constants, createPublicKey, sign, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { signatureAlgorithmFor, type KeyAlgorithm, type Signer, type SignatureAlgorithmName } from '../port.js';

export class SoftwareSigner implements Signer {
  readonly signatureAlgorithm: SignatureAlgorithmName;
  readonly publicKeySpki: Buffer;
  readonly #digest: string | null;
  readonly #key: KeyObject | SignKeyObjectInput;

  constructor(readonly uri: string, readonly algorithm: KeyAlgorithm, privateKey: KeyObject) {
    this.signatureAlgorithm = signatureAlgorithmFor(algorithm);
    this.publicKeySpki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    this.#digest = digestFor(algorithm);
    this.#key = signingKey(algorithm, privateKey);
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
