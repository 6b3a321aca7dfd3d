/**
 * The Signer / KeyStore port: the only way the CA, the OCSP responder and CRL signing reach a
 * private key. A key is named by URI:
 *   - `file:<name>`   software store, an encrypted PKCS#8 PEM file under the key directory;
 *   - `pkcs11:token=...;object=...` (RFC 7512), a key that never leaves a PKCS#11 module (later issue).
 *
 * Signing is asynchronous because a PKCS#11 module signs on its own threads; the software adapter
 * signs synchronously with a `KeyObject` and returns a settled promise.
 */

export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519' | 'rsa-2048' | 'rsa-3072';

export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ecdsa-p256', 'ecdsa-p384', 'ed25519', 'rsa-2048', 'rsa-3072'];

import type { SignatureAlgorithmName } from '../pkix/algorithm.js';

export type { SignatureAlgorithmName };

/**
 * The signer picks its X.509 signature algorithm from its key:
 * P-256 → ecdsa-with-SHA256, P-384 → ecdsa-with-SHA384, Ed25519 → Ed25519, RSA → sha256WithRSAEncryption.
 */
export function signatureAlgorithmFor(alg: KeyAlgorithm): SignatureAlgorithmName {
  switch (alg) {
    case 'ecdsa-p256': return 'ecdsa-with-SHA256';
    case 'ecdsa-p384': return 'ecdsa-with-SHA384';
    case 'ed25519': return 'Ed25519';
    case 'rsa-2048':
    case 'rsa-3072': return 'sha256WithRSAEncryption';
  }
}

export interface Signer {
  /** The key's URI, as it is stored in the registry's issuer record. */
  readonly uri: string;
  readonly algorithm: KeyAlgorithm;
  readonly signatureAlgorithm: SignatureAlgorithmName;
  /** DER SubjectPublicKeyInfo of the key. */
  readonly publicKeySpki: Buffer;
  /**
   * Sign `data` (the whole to-be-signed DER; the signer hashes it as its algorithm requires).
   * Returns the signature exactly as it goes into an X.509 BIT STRING: DER `Ecdsa-Sig-Value` for
   * ECDSA, raw 64 octets for Ed25519, PKCS#1 v1.5 for RSA.
   */
  sign(data: Buffer): Promise<Buffer>;
}

export interface KeyStore {
  /** Which URI scheme this store serves (`file`, `pkcs11`). */
  readonly scheme: string;
  /**
   * Generate a new key under `uri`. Refuses (KAKUIN_E_KEY_EXISTS) when the key exists, so a
   * second `init` can never overwrite a CA key.
   */
  generate(uri: string, algorithm: KeyAlgorithm): Promise<Signer>;
  /** Load an existing key (KAKUIN_E_KEY_NOT_FOUND, KAKUIN_E_KEY_PASSPHRASE). */
  load(uri: string): Promise<Signer>;
  exists(uri: string): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * An optional capability of an RSA key: the private-key operation of CMS key transport (RFC 5652
 * §6.2.1, RSAES-PKCS1-v1_5), which SCEP's envelopes need (RFC 8894 §3.1: clients encrypt to the
 * RA certificate). Only the software store offers it; PKCS#11 keys are signing keys here.
 */
export interface KeyTransportDecrypter {
  /**
   * The content-encryption key inside `encryptedKey`, or — when the padding is not valid or the
   * key is not `keyLength` octets — a random key of that length (RFC 3218 §2.3.2: the caller's
   * decryption then fails as with any wrong key, and no padding oracle exists).
   */
  unwrapKeyTransport(encryptedKey: Buffer, keyLength: number): Promise<Buffer>;
}

export function canUnwrapKeyTransport(signer: Signer): signer is Signer & KeyTransportDecrypter {
  return typeof (signer as Partial<KeyTransportDecrypter>).unwrapKeyTransport === 'function';
}
