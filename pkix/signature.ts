/**
 * Checking a signature over original DER bytes (a CSR's CertificationRequestInfo, a certificate's
 * TBSCertificate) with `node:crypto`.
 *
 * RFC 5280 §4.1.1.3: "The signatureValue field contains a digital signature computed upon the
 * ASN.1 DER encoded tbsCertificate." The bytes given here must be those received, never a
 * re-encoding.
 */
import { constants, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { KakuinError } from '../errors/index.js';
import { type AlgorithmIdentifier, describeSignatureAlgorithm } from './algorithm.js';
import type { PublicKeyInfo } from './spki.js';

const EC_COORDINATE_LENGTH: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

/**
 * A KeyObject for an SPKI; KAKUIN_E_KEY_UNSUPPORTED when node:crypto cannot load it (bad point, odd curve).
 *
 * Hot path: OpenSSL 3 decodes a DER SPKI through its generic decoder framework, which costs more
 * than the ECDSA verification itself (measured: ~9,000 loads/s from DER against ~15,600/s from a
 * JWK). Uncompressed EC points and Ed25519 keys are therefore handed over as JWK coordinates;
 * node:crypto still checks that the point is on the curve. Anything else goes through DER.
 */
export function publicKeyObject(spki: PublicKeyInfo): KeyObject {
  try {
    const p = spki.subjectPublicKey;
    const n = spki.keyType === 'ec' && spki.curve ? EC_COORDINATE_LENGTH[spki.curve] : undefined;
    if (n !== undefined && p.length === 1 + 2 * n && p[0] === 0x04) {
      return createPublicKey({
        key: { kty: 'EC', crv: spki.curve, x: p.subarray(1, 1 + n).toString('base64url'), y: p.subarray(1 + n).toString('base64url') },
        format: 'jwk',
      });
    }
    if (spki.keyType === 'ed25519' && p.length === 32) {
      return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: p.toString('base64url') }, format: 'jwk' });
    }
    return createPublicKey({ key: spki.rawDer, format: 'der', type: 'spki' });
  } catch (e) {
    throw new KakuinError('KAKUIN_E_KEY_UNSUPPORTED', 'the public key cannot be loaded', { cause: e });
  }
}

/**
 * True when `signature` over `data` verifies under `spki` with `algorithm`. Throws
 * KAKUIN_E_ALGORITHM_UNSUPPORTED for refused algorithms (SHA-1, MD5, unknown) or one that does
 * not fit the key type, KAKUIN_E_KEY_UNSUPPORTED when the key cannot be loaded.
 */
export function verifySignature(data: Buffer, algorithm: AlgorithmIdentifier, signature: Buffer, spki: PublicKeyInfo): boolean {
  const how = describeSignatureAlgorithm(algorithm);
  if (how.keyType !== spki.keyType) {
    throw new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', `signature algorithm ${algorithm.oid} does not fit a ${spki.keyType} key`);
  }
  const key = publicKeyObject(spki);
  try {
    if (how.pssSaltLength !== undefined) {
      return verify(how.digest, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: how.pssSaltLength }, signature);
    }
    return verify(how.digest, data, key, signature);
  } catch {
    // node:crypto throws on signatures it cannot even decode (bad ECDSA DER, wrong length): not valid.
    return false;
  }
}
