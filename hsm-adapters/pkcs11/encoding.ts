/**
 * The byte-level conversions between what a PKCS#11 module hands out and what X.509 wants.
 */
import { createPublicKey } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import type { KeyAlgorithm } from '../port.js';

/** DER OBJECT IDENTIFIERs put in CKA_EC_PARAMS (PKCS#11 v2.40 §2.3.3: namedCurve choice of ECParameters). */
export const EC_PARAMS: Readonly<Record<'ecdsa-p256' | 'ecdsa-p384' | 'ed25519', Buffer>> = {
  'ecdsa-p256': Buffer.from('06082a8648ce3d030107', 'hex'), // prime256v1
  'ecdsa-p384': Buffer.from('06052b81040022', 'hex'), // secp384r1
  // PKCS#11 v3.0 §2.3.10 allows the RFC 8410 OID or the printable string "edwards25519"; SoftHSM2 takes the OID.
  ed25519: Buffer.from('06032b6570', 'hex'),
};

/** The kakuin algorithm of a CKA_EC_PARAMS value, or undefined. */
export function algorithmOfEcParams(params: Buffer): KeyAlgorithm | undefined {
  for (const [alg, der] of Object.entries(EC_PARAMS)) if (der.equals(params)) return alg as KeyAlgorithm;
  // The printable-string form some modules report for edwards25519.
  if (params.equals(Buffer.concat([Buffer.of(0x13, 12), Buffer.from('edwards25519')]))) return 'ed25519';
  return undefined;
}

/**
 * CKA_EC_POINT is the DER encoding of an OCTET STRING holding the point (PKCS#11 v2.40 §2.3.3,
 * "DER-encoding of ANSI X9.62 ECPoint value Q"); some modules return the bare point. Both are read.
 */
export function unwrapEcPoint(value: Buffer, expectedLength: number): Buffer {
  if (value.length === expectedLength) return value;
  if (value[0] === 0x04) {
    let offset = 1;
    let length = value[offset++];
    if (length & 0x80) {
      const n = length & 0x7f;
      length = 0;
      for (let i = 0; i < n; i++) length = (length << 8) | value[offset++];
    }
    if (offset + length === value.length && length === expectedLength) return value.subarray(offset);
  }
  throw new KakuinError('KAKUIN_E_PKCS11_MODULE', `the module returned an EC point of an unexpected form (${value.length} bytes)`);
}

const POINT_LENGTH = { 'ecdsa-p256': 65, 'ecdsa-p384': 97, ed25519: 32 } as const;
const COORDINATE = { 'ecdsa-p256': 32, 'ecdsa-p384': 48 } as const;

/** The DER SubjectPublicKeyInfo of an EC or Ed25519 key from its CKA_EC_POINT. */
export function ecSpki(algorithm: 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519', ecPoint: Buffer): Buffer {
  const point = unwrapEcPoint(ecPoint, POINT_LENGTH[algorithm]);
  if (algorithm === 'ed25519') {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url') }, format: 'jwk' })
      .export({ type: 'spki', format: 'der' });
  }
  const size = COORDINATE[algorithm];
  if (point[0] !== 0x04) throw new KakuinError('KAKUIN_E_PKCS11_MODULE', 'the module returned a compressed EC point');
  return createPublicKey({
    key: {
      kty: 'EC', crv: algorithm === 'ecdsa-p256' ? 'P-256' : 'P-384',
      x: point.subarray(1, 1 + size).toString('base64url'), y: point.subarray(1 + size).toString('base64url'),
    },
    format: 'jwk',
  }).export({ type: 'spki', format: 'der' });
}

/** The DER SubjectPublicKeyInfo of an RSA key from CKA_MODULUS and CKA_PUBLIC_EXPONENT. */
export function rsaSpki(modulus: Buffer, exponent: Buffer): Buffer {
  return createPublicKey({
    key: { kty: 'RSA', n: stripZeros(modulus).toString('base64url'), e: stripZeros(exponent).toString('base64url') },
    format: 'jwk',
  }).export({ type: 'spki', format: 'der' });
}

/**
 * CKM_ECDSA returns r ‖ s, each the size of the group order (PKCS#11 v2.40 §2.3.1); X.509 wants the
 * DER `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 §2.2.3).
 */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new KakuinError('KAKUIN_E_SIGNING_FAILED', `the module returned an ECDSA signature of odd length ${raw.length}`);
  }
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  return Buffer.concat([Buffer.of(0x30), derLength(body.length), body]);
}

function derInteger(unsigned: Buffer): Buffer {
  let v = stripZeros(unsigned);
  if (v.length === 0) v = Buffer.of(0);
  if (v[0] & 0x80) v = Buffer.concat([Buffer.of(0), v]);
  return Buffer.concat([Buffer.of(0x02), derLength(v.length), v]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.of(n);
  if (n < 0x100) return Buffer.of(0x81, n);
  return Buffer.of(0x82, n >> 8, n & 0xff);
}

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/**
 * DigestInfo prefixes for CKM_RSA_PKCS over a hash computed in Node (RFC 8017 §9.2 note 1):
 * DER `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }` up to the digest.
 */
export const SHA256_DIGEST_INFO_PREFIX = Buffer.from('3031300d060960864801650304020105000420', 'hex');
