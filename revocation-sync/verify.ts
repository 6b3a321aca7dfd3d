/**
 * What the sidecar checks before it uses anything it fetched (everything a relying party acts on
 * is signed, DESIGN.md): a CA certificate must be the trust anchor or be signed by it (a CA,
 * RFC 5280 §4.2.1.9); a CRL must be a complete CRL (no DeltaCRLIndicator: the servers here read
 * no deltas), name its CA as issuer (§5.1.2.3), carry that CA's key identifier when it has one
 * (§5.2.1), verify under the CA's key, and carry a CRL number (§5.2.3) higher than or equal to
 * the one in use — never a lower one.
 */
import { KakuinError } from '../errors/index.js';
import { parseCertificate, parseCrl, verifyCertificateSignature, verifyCrlSignature, type ParsedCertificate, type ParsedCrl } from '../pkix/index.js';

function unverified(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_CRL_UNVERIFIED', message);
}

/** The CA certificate `der` if it is `anchor` itself or a CA certificate signed by it. */
export function verifyCaCertificate(der: Buffer, anchor: ParsedCertificate, what: string): ParsedCertificate {
  const cert = parseCertificate(der);
  if (cert.rawDer.equals(anchor.rawDer)) return anchor;
  if (!cert.basicConstraints?.ca) throw unverified(`${what} is not a CA certificate`);
  if (!cert.issuer.rawDer.equals(anchor.subject.rawDer)) throw unverified(`${what} is not issued by the trust anchor`);
  if (!verifyCertificateSignature(cert, anchor.spki)) throw unverified(`${what} does not verify under the trust anchor's key`);
  const now = Date.now();
  if (now < cert.notBefore.getTime() || now > cert.notAfter.getTime()) throw unverified(`${what} is outside its validity`);
  return cert;
}

/** The CRL `der`, verified as a complete CRL of `ca`, with a number not below `floor`. */
export function verifyCrl(der: Buffer, ca: ParsedCertificate, floor: bigint | undefined, what: string): ParsedCrl & { crlNumber: bigint } {
  const crl = parseCrl(der);
  if (crl.deltaCrlIndicator !== undefined) throw unverified(`${what} is a delta CRL`);
  if (!crl.issuer.rawDer.equals(ca.subject.rawDer)) throw unverified(`${what} names another issuer`);
  if (ca.subjectKeyIdentifier && crl.authorityKeyIdentifier && !crl.authorityKeyIdentifier.equals(ca.subjectKeyIdentifier)) {
    throw unverified(`${what} is signed by another key of its issuer`);
  }
  if (!verifyCrlSignature(crl, ca.spki)) throw unverified(`${what}: the signature does not verify`);
  if (crl.crlNumber === undefined) throw unverified(`${what} has no CRL number`);
  if (floor !== undefined && crl.crlNumber < floor) throw unverified(`${what} has CRL number ${crl.crlNumber}, lower than ${floor} in use`);
  return crl as ParsedCrl & { crlNumber: bigint };
}
