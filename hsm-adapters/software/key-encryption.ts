/**
 * How the software key store encrypts a private key at rest: PKCS#8 under PBES2 with scrypt
 * (RFC 7914) and AES-256-CBC, the form `openssl pkcs8 -topk8 -scrypt` writes, so
 * `openssl pkey -in FILE -passin ...` still opens every key file. Node's own export
 * (`KeyObject.export({cipher, passphrase})`) derives with PBKDF2 at 2,048 iterations, far below
 * what a reviewer expects for a CA key; scrypt at N = 2^14 costs an attacker 16 MiB per guess.
 *
 * The cost is log2(N), r = 8, p = 1. 14 is `openssl pkcs8 -scrypt`'s default and the most OpenSSL's
 * readers take: they decode scrypt within 32 MiB (`128 · r · N` octets), so N = 2^15 would write
 * files neither Node's `tls` nor `openssl pkey` can open. Lower costs are for tests (`keys.kdfCost`).
 */
import { createCipheriv, createPrivateKey, type KeyObject, randomBytes, scrypt as scryptCallback, type ScryptOptions } from 'node:crypto';
import {
  ENCRYPTED_PRIVATE_KEY_LABEL, encodeScryptEncryptedPrivateKeyInfo, fromPem, readKeyDerivation, toPem, type KeyDerivation,
} from '../../pkix/index.js';
import { KakuinError } from '../../errors/index.js';

export const DEFAULT_KDF_COST = 14;
export const MIN_KDF_COST = 10;
export const MAX_KDF_COST = 14;
const BLOCK_SIZE = 8;
const PARALLELIZATION = 1;
/** Node's scrypt refuses above maxmem (default 32 MiB, which 128 · r · N = 16 MiB at cost 14 nears): set it explicitly. */
const SCRYPT_MAXMEM = 64 * 1024 * 1024;

function scrypt(passphrase: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(passphrase, salt, 32, options, (e, key) => (e ? reject(e) : resolve(key))));
}

export function checkKdfCost(cost: number): number {
  if (!Number.isInteger(cost) || cost < MIN_KDF_COST || cost > MAX_KDF_COST) {
    throw new KakuinError('KAKUIN_E_CONFIG', `keys.kdfCost must be an integer from ${MIN_KDF_COST} to ${MAX_KDF_COST} (log2 of scrypt's N)`);
  }
  return cost;
}

/** The encrypted PKCS#8 PEM of `key` (scrypt N = 2^cost, r = 8, p = 1; AES-256-CBC). */
export async function encryptPrivateKey(key: KeyObject, passphrase: string, cost: number = DEFAULT_KDF_COST): Promise<string> {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const N = 2 ** checkKdfCost(cost);
  const derived = await scrypt(passphrase, salt, { N, r: BLOCK_SIZE, p: PARALLELIZATION, maxmem: SCRYPT_MAXMEM });
  const plain = key.export({ type: 'pkcs8', format: 'der' });
  try {
    const cipher = createCipheriv('aes-256-cbc', derived, iv);
    const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
    return toPem(ENCRYPTED_PRIVATE_KEY_LABEL, encodeScryptEncryptedPrivateKeyInfo({ salt, cost: N, blockSize: BLOCK_SIZE, parallelization: PARALLELIZATION }, iv, encrypted));
  } finally {
    plain.fill(0);
    derived.fill(0);
  }
}

/** The key derivation of an encrypted PKCS#8 PEM. */
export function keyDerivationOf(pem: string): KeyDerivation {
  const [der] = fromPem(pem, ENCRYPTED_PRIVATE_KEY_LABEL);
  if (der === undefined) throw new KakuinError('KAKUIN_E_KEY_PASSPHRASE', 'not an encrypted PKCS#8 PEM');
  return readKeyDerivation(der);
}

/** True when the file is weaker than scrypt at `cost` (a PBKDF2 file from an earlier kakuin, a lower cost). */
export function needsRewrap(pem: string, cost: number): boolean {
  const d = keyDerivationOf(pem);
  return !(d.kdf === 'scrypt' && d.cost >= 2 ** cost && d.blockSize >= BLOCK_SIZE);
}

/** Decrypts with OpenSSL's reader, as `tls` and `openssl pkey` will: proves a written file opens. */
export function decryptPrivateKey(pem: string, passphrase: string): KeyObject {
  return createPrivateKey({ key: pem, format: 'pem', passphrase });
}
