/**
 * PKCS#10 encoding (RFC 2986 §4): used by `kakuin ca csr` (an issuing CA signed by an offline
 * root), by benchmarks and by tests that need many requests without the `openssl` command.
 *
 *   CertificationRequestInfo ::= SEQUENCE {
 *        version       INTEGER { v1(0) } (v1,...),
 *        subject       Name,
 *        subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
 *        attributes    [0] Attributes{{ CRIAttributes }}
 *   }
 *   CertificationRequest ::= SEQUENCE {
 *        certificationRequestInfo CertificationRequestInfo,
 *        signatureAlgorithm AlgorithmIdentifier{{ SignatureAlgorithms }},
 *        signature          BIT STRING
 *   }
 */
import { encodeSignatureAlgorithm, type SignatureAlgorithmName } from './algorithm.js';
import { derBitString, derImplicit, derInteger, derSequence } from './der.js';

/** The to-be-signed part; `attributes` are complete Attribute DERs (none by default). */
export function encodeCertificationRequestInfo(subject: Buffer, spki: Buffer, attributes: Buffer[] = []): Buffer {
  // `attributes` is not OPTIONAL: an empty [0] IMPLICIT SET is still written (RFC 2986 §4.1).
  return derSequence(derInteger(0), subject, spki, derImplicit(0, Buffer.concat(attributes), true));
}

export function encodeCertificationRequest(info: Buffer, alg: SignatureAlgorithmName, signature: Buffer): Buffer {
  return derSequence(info, encodeSignatureAlgorithm(alg), derBitString(signature));
}
