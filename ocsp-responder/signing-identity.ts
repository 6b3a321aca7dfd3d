/**
 * Who signs the answers for one issuer: a delegated OCSP responder certificate issued by that
 * issuer (RFC 6960 §4.2.2.2: "the issuing CA ... explicitly designates ... by including a value of
 * id-kp-OCSPSigning in an extended key usage extension in the OCSP response signer's
 * certificate. This certificate MUST be issued directly by the CA that is identified in the
 * request"), and its key. The CA side makes them; the responder only checks they fit together.
 */
import { createHash } from 'node:crypto';
import { KakuinError } from '../errors/index.js';
import {
  OID_CE_EXT_KEY_USAGE, OID_KP_OCSP_SIGNING, type OcspHashAlgorithm, parseCertificate, type ParsedCertificate, parseExtKeyUsage,
  verifyCertificateSignature,
} from '../pkix/index.js';
import type { Signer } from '../hsm-adapters/port.js';

export interface OcspSigningIdentity {
  /** The registry's issuer id (`device`, `station`, ...). */
  issuerId: string;
  /** The issuing CA's certificate (DER). */
  issuerCertificateDer: Buffer;
  /** The delegated responder's certificate (DER): issued by that issuer, id-kp-OCSPSigning + ocsp-nocheck. */
  responderCertificateDer: Buffer;
  /** The responder certificate's key. */
  signer: Signer;
}

export interface CertIdHashes {
  hashAlgorithm: OcspHashAlgorithm;
  /** RFC 6960 §4.1.1: over the DER of the issuer's Name, raw bytes as its certificate carries them. */
  issuerNameHash: Buffer;
  /** RFC 6960 §4.1.1: over the issuer's subjectPublicKey BIT STRING value (no tag, length or unused-bits octet). */
  issuerKeyHash: Buffer;
}

/** An identity checked once, with everything the hot path derives from it. */
export interface PreparedIdentity extends Readonly<OcspSigningIdentity> {
  issuerNameDer: Buffer;
  issuerSubjectPublicKey: Buffer;
  /** RFC 6960 §4.2.1 ResponderID byKey: SHA-1 of the responder's subjectPublicKey BIT STRING value. */
  responderKeyHash: Buffer;
  responderNotAfterMs: number;
  responderSerialHex: string;
  hashes: readonly CertIdHashes[];
  /** Changes with every new responder certificate (mod 256): cached responses of an older epoch get re-signed. */
  epoch: number;
}

export const CERT_ID_HASHES: readonly OcspHashAlgorithm[] = ['sha1', 'sha256', 'sha384', 'sha512'];

function invalid(issuerId: string, message: string, cause?: unknown): KakuinError {
  return new KakuinError('KAKUIN_E_CONFIG', `OCSP signing identity ${JSON.stringify(issuerId)}: ${message}`, { cause });
}

function parse(der: Buffer, issuerId: string, what: string): ParsedCertificate {
  if (!Buffer.isBuffer(der)) throw invalid(issuerId, `${what} must be DER bytes`);
  try {
    return parseCertificate(der);
  } catch (e) {
    throw invalid(issuerId, `${what} cannot be parsed`, e);
  }
}

function digest(alg: OcspHashAlgorithm, data: Buffer): Buffer {
  return createHash(alg).update(data).digest();
}

/**
 * Checks that the identity hangs together and derives the CertID hashes. KAKUIN_E_CONFIG when the
 * responder certificate was not issued by the issuer, lacks id-kp-OCSPSigning, or does not hold the
 * signer's key.
 */
export function prepareIdentity(identity: OcspSigningIdentity, epoch: number): PreparedIdentity {
  const issuerId = identity?.issuerId;
  if (typeof issuerId !== 'string' || issuerId.length === 0) throw invalid(String(issuerId), 'issuerId must be a non-empty string');
  const issuer = parse(identity.issuerCertificateDer, issuerId, 'the issuer certificate');
  const responder = parse(identity.responderCertificateDer, issuerId, 'the responder certificate');
  if (!responder.issuer.rawDer.equals(issuer.subject.rawDer)) throw invalid(issuerId, 'the responder certificate was not issued by this issuer (RFC 6960 §4.2.2.2)');
  let signedByIssuer = false;
  try {
    signedByIssuer = verifyCertificateSignature(responder, issuer.spki);
  } catch (e) {
    throw invalid(issuerId, 'the responder certificate signature cannot be checked', e);
  }
  if (!signedByIssuer) throw invalid(issuerId, 'the responder certificate is not signed by the issuer key (RFC 6960 §4.2.2.2)');
  const eku = responder.extensions.find((e) => e.oid === OID_CE_EXT_KEY_USAGE);
  if (eku === undefined || !parseExtKeyUsage(eku.value).includes(OID_KP_OCSP_SIGNING)) {
    throw invalid(issuerId, 'the responder certificate lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)');
  }
  const signer = identity.signer;
  if (signer === null || typeof signer !== 'object' || typeof signer.sign !== 'function') throw invalid(issuerId, 'signer must be a Signer');
  if (!Buffer.isBuffer(signer.publicKeySpki) || !signer.publicKeySpki.equals(responder.spki.rawDer)) {
    throw invalid(issuerId, 'the signer key is not the responder certificate key');
  }
  const issuerNameDer = issuer.subject.rawDer;
  const issuerSubjectPublicKey = issuer.spki.subjectPublicKey;
  return Object.freeze({
    issuerId,
    issuerCertificateDer: issuer.rawDer,
    responderCertificateDer: responder.rawDer,
    signer,
    issuerNameDer,
    issuerSubjectPublicKey,
    responderKeyHash: digest('sha1', responder.spki.subjectPublicKey),
    responderNotAfterMs: responder.notAfter.getTime(),
    responderSerialHex: responder.serialHex,
    hashes: Object.freeze(CERT_ID_HASHES.map((hashAlgorithm) => Object.freeze({
      hashAlgorithm, issuerNameHash: digest(hashAlgorithm, issuerNameDer), issuerKeyHash: digest(hashAlgorithm, issuerSubjectPublicKey),
    }))),
    epoch: epoch & 0xff,
  });
}

/** True when two identities sign alike (same responder certificate and key): no re-signing needed. */
export function sameResponder(a: PreparedIdentity, b: PreparedIdentity): boolean {
  return a.responderCertificateDer.equals(b.responderCertificateDer) && a.signer === b.signer
    && a.issuerCertificateDer.equals(b.issuerCertificateDer);
}
