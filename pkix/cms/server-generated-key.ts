/**
 * EST server-side key generation with an encrypted key (RFC 7030 §4.4.1.2, §4.4.2): the CSR names
 * the key the new private key is to be encrypted to, and the reply carries the key as CMS
 * EnvelopedData of an AsymmetricKeyPackage (RFC 5958 §3):
 *
 *   AsymmetricDecryptKeyIdentifier ::= OCTET STRING       -- id-aa-asymmDecryptKeyID, a CSR attribute
 *   DecryptKeyIdentifier ::= OCTET STRING                 -- id-aa-decryptKeyID: a pre-shared symmetric key
 *   AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey   -- OneAsymmetricKey v1 = PKCS#8 PrivateKeyInfo
 */
import { KakuinError } from '../../errors/index.js';
import { derSequence } from '../der.js';
import { derContent, expectTag, guardDer, readDer } from '../der-reader.js';
import type { ParsedCsr } from '../csr.js';
import { keyIdentifier } from '../spki.js';
import { encodeEnvelopedData } from './enveloped-data.js';
import { OID_ASYMMETRIC_DECRYPT_KEY_IDENTIFIER, OID_CT_ASYMMETRIC_KEY_PACKAGE, OID_DECRYPT_KEY_IDENTIFIER } from './oids.js';

/**
 * The key a serverkeygen CSR asks the new key to be encrypted to: undefined when it asks for none
 * (the key travels inside TLS only). kakuin encrypts to the CSR's own public key, which the CSR's
 * signature proves the client holds, so the AsymmetricDecryptKeyIdentifier must name that key
 * (its RFC 5280 §4.2.1.2 method 1 identifier); a pre-shared symmetric key (DecryptKeyIdentifier)
 * is not supported.
 */
export function serverKeyRecipient(csr: ParsedCsr): { spki: Buffer; keyIdentifier: Buffer } | undefined {
  if (csr.attributes.some((a) => a.oid === OID_DECRYPT_KEY_IDENTIFIER)) {
    throw new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', 'DecryptKeyIdentifier (a pre-shared symmetric key) is not supported: name the CSR\'s own key with AsymmetricDecryptKeyIdentifier');
  }
  const attr = csr.attributes.find((a) => a.oid === OID_ASYMMETRIC_DECRYPT_KEY_IDENTIFIER);
  if (!attr) return undefined;
  if (attr.values.length !== 1) throw new KakuinError('KAKUIN_E_DER_MALFORMED', 'AsymmetricDecryptKeyIdentifier has one value');
  const id = guardDer('AsymmetricDecryptKeyIdentifier', () => Buffer.from(derContent(expectTag(readDer(attr.values[0]), 0x04, 'AsymmetricDecryptKeyIdentifier'))));
  const own = keyIdentifier(csr.spki);
  if (!id.equals(own)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `AsymmetricDecryptKeyIdentifier must name the CSR's own public key (${own.toString('hex')}), the only key kakuin encrypts to`);
  }
  return { spki: csr.spki.rawDer, keyIdentifier: id };
}

/** DER ContentInfo: EnvelopedData of an AsymmetricKeyPackage holding `pkcs8`, for `recipient`. */
export function encodeServerGeneratedKey(pkcs8: Buffer, recipient: { spki: Buffer; keyIdentifier: Buffer }): Buffer {
  return encodeEnvelopedData(derSequence(pkcs8), recipient, OID_CT_ASYMMETRIC_KEY_PACKAGE);
}
