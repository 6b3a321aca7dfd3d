/**
 * A CMS "certs-only" message (RFC 5652 §5, RFC 7030 §4.1.3 and §4.2.3): SignedData with no
 * signers, carrying certificates only. EST returns CA certificates and issued certificates this way.
 *
 *   ContentInfo ::= SEQUENCE { contentType ContentType, content [0] EXPLICIT ANY DEFINED BY contentType }
 *   SignedData ::= SEQUENCE {
 *     version CMSVersion,
 *     digestAlgorithms DigestAlgorithmIdentifiers,      -- SET OF, empty: nothing is signed
 *     encapContentInfo EncapsulatedContentInfo,         -- id-data, eContent absent
 *     certificates [0] IMPLICIT CertificateSet OPTIONAL,
 *     crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
 *     signerInfos SignerInfos }                         -- SET OF, empty
 */
import { derExplicit, derImplicit, derInteger, derOid, derSequence, derSet } from './der.js';
import { KakuinError } from '../errors/index.js';

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_DATA = '1.2.840.113549.1.7.1';

/** DER of a certs-only ContentInfo holding `certificates` (each a DER Certificate). */
export function encodeCertsOnly(certificates: Buffer[]): Buffer {
  if (certificates.length === 0) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'a certs-only message needs at least one certificate');
  // RFC 5652 §5.1: version is 1 when only X.509 certificates are present and eContentType is id-data.
  // X.690 §11.6: the elements of a DER SET OF are in ascending order of their encodings.
  const sorted = certificates.slice().sort(Buffer.compare);
  const signedData = derSequence(
    derInteger(1),
    derSet(),
    derSequence(derOid(OID_DATA)),
    derImplicit(0, Buffer.concat(sorted), true),
    derSet(),
  );
  return derSequence(derOid(OID_SIGNED_DATA), derExplicit(0, signedData));
}
