/**
 * Encrypted PKCS#8 (RFC 5958 §3) under PBES2 (RFC 8018 §6.2) with scrypt (RFC 7914 §7) and
 * AES-256-CBC, as `openssl pkcs8 -topk8 -scrypt -v2 aes-256-cbc` writes it, and the reading of the
 * key derivation a stored file names (to decide whether `kakuin ca rewrap-keys` must rewrite it).
 * The key derivation and the cipher run in the caller (hsm-adapters/software); this is the DER.
 *
 *   EncryptedPrivateKeyInfo ::= SEQUENCE {
 *     encryptionAlgorithm  AlgorithmIdentifier {{KeyEncryptionAlgorithms}},
 *     encryptedData        OCTET STRING }
 *
 *   PBES2-params ::= SEQUENCE {
 *     keyDerivationFunc AlgorithmIdentifier {{PBES2-KDFs}},
 *     encryptionScheme  AlgorithmIdentifier {{PBES2-Encs}} }
 *
 *   scrypt-params ::= SEQUENCE {                          -- RFC 7914 §7.1
 *     salt OCTET STRING,
 *     costParameter INTEGER (1..MAX),
 *     blockSize INTEGER (1..MAX),
 *     parallelizationParameter INTEGER (1..MAX),
 *     keyLength INTEGER (1..MAX) OPTIONAL }
 *
 *   PBKDF2-params ::= SEQUENCE {                          -- RFC 8018 Appendix A.2
 *     salt CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier },
 *     iterationCount INTEGER (1..MAX),
 *     keyLength INTEGER (1..MAX) OPTIONAL,
 *     prf AlgorithmIdentifier DEFAULT algid-hmacWithSHA1 }
 */
import { KakuinError } from '../errors/index.js';
import { derInteger, derOctetString, derOid, derSequence, TAG_SEQUENCE } from './der.js';
import { derChildren, expectChildren, guardDer, readDer, readOctetString, readOid, readSmallInteger } from './der-reader.js';
import { OID_AES256_CBC } from './cms/oids.js';

export const OID_PBES2 = '1.2.840.113549.1.5.13';
export const OID_PBKDF2 = '1.2.840.113549.1.5.12';
export const OID_SCRYPT = '1.3.6.1.4.1.11591.4.11';
// OID_AES256_CBC (RFC 3565) is declared in cms/oids.ts, with the other AES identifiers.
export const OID_HMAC_SHA1 = '1.2.840.113549.2.7';
export const OID_HMAC_SHA256 = '1.2.840.113549.2.9';

export const ENCRYPTED_PRIVATE_KEY_LABEL = 'ENCRYPTED PRIVATE KEY';

export interface ScryptParameters {
  salt: Buffer;
  /** N, a power of two. */
  cost: number;
  blockSize: number;
  parallelization: number;
}

/** What a stored EncryptedPrivateKeyInfo derives its key with. */
export type KeyDerivation =
  | { kdf: 'scrypt'; cost: number; blockSize: number; parallelization: number }
  | { kdf: 'pbkdf2'; iterations: number; prf: 'hmacWithSHA1' | 'hmacWithSHA256' | string }
  | { kdf: 'other'; oid: string };

/** EncryptedPrivateKeyInfo DER for a PBES2/scrypt/AES-256-CBC ciphertext of a PKCS#8 PrivateKeyInfo. */
export function encodeScryptEncryptedPrivateKeyInfo(scrypt: ScryptParameters, iv: Buffer, encryptedData: Buffer): Buffer {
  if (!Buffer.isBuffer(iv) || iv.length !== 16) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'the AES-256-CBC IV must be 16 octets');
  const kdf = derSequence(
    derOid(OID_SCRYPT),
    // keyLength left out, as OpenSSL writes it: AES-256-CBC fixes it at 32 octets.
    derSequence(derOctetString(scrypt.salt), derInteger(scrypt.cost), derInteger(scrypt.blockSize), derInteger(scrypt.parallelization)),
  );
  const enc = derSequence(derOid(OID_AES256_CBC), derOctetString(iv));
  return derSequence(derSequence(derOid(OID_PBES2), derSequence(kdf, enc)), derOctetString(encryptedData));
}

/** The key derivation an EncryptedPrivateKeyInfo names (PBES2 only; anything else is `other`). */
export function readKeyDerivation(der: Buffer): KeyDerivation {
  return guardDer('EncryptedPrivateKeyInfo', () => {
    const [alg] = expectChildren(readDer(der), TAG_SEQUENCE, 'EncryptedPrivateKeyInfo');
    const [oidNode, params] = expectChildren(alg, TAG_SEQUENCE, 'encryptionAlgorithm');
    const oid = readOid(oidNode, 'encryptionAlgorithm');
    if (oid !== OID_PBES2) return { kdf: 'other', oid };
    const [kdf] = expectChildren(params, TAG_SEQUENCE, 'PBES2-params');
    const [kdfOidNode, kdfParams] = expectChildren(kdf, TAG_SEQUENCE, 'keyDerivationFunc');
    const kdfOid = readOid(kdfOidNode, 'keyDerivationFunc');
    if (kdfOid === OID_SCRYPT) {
      const p = expectChildren(kdfParams, TAG_SEQUENCE, 'scrypt-params');
      readOctetString(p[0], 'salt');
      return { kdf: 'scrypt', cost: readSmallInteger(p[1], 'costParameter'), blockSize: readSmallInteger(p[2], 'blockSize'), parallelization: readSmallInteger(p[3], 'parallelizationParameter') };
    }
    if (kdfOid === OID_PBKDF2) {
      const p = expectChildren(kdfParams, TAG_SEQUENCE, 'PBKDF2-params');
      const iterations = readSmallInteger(p[1], 'iterationCount');
      const last = p[p.length - 1];
      const prfNode = p.length > 2 && last.tag === TAG_SEQUENCE ? derChildren(last)[0] : undefined;
      const prfOid = prfNode === undefined ? OID_HMAC_SHA1 : readOid(prfNode, 'prf');
      const prf = prfOid === OID_HMAC_SHA1 ? 'hmacWithSHA1' : prfOid === OID_HMAC_SHA256 ? 'hmacWithSHA256' : prfOid;
      return { kdf: 'pbkdf2', iterations, prf };
    }
    return { kdf: 'other', oid: kdfOid };
  });
}
