import type { Signer } from '../hsm-adapters/port.js';
import type { KeyRing } from '../hsm-adapters/index.js';
import {
  encodeCertificate, encodeTbsCertificate, keyIdentifier, parseCertificate,
  type ParsedCertificate, type TbsCertificateInput,
} from '../pkix/index.js';
import type { Issuer, IssuerKind, Registry } from '../registry/port.js';
import { KakuinError } from '../errors/index.js';

/** An issuing CA ready to sign: its record, its parsed certificate and its key. */
export interface LoadedIssuer {
  readonly id: string;
  readonly kind: IssuerKind;
  readonly record: Issuer;
  readonly certificate: ParsedCertificate;
  /** The CA's subject Name exactly as its certificate carries it: the issuer field of what it signs. */
  readonly subjectDer: Buffer;
  /** Goes into the AKI of everything it signs (its own SKI, or the RFC 5280 §4.2.1.2 hash). */
  readonly keyId: Buffer;
  readonly signer: Signer;
}

export function issuerFromParts(record: Issuer, signer: Signer): LoadedIssuer {
  const certificate = parseCertificate(record.certificateDer);
  if (!certificate.spki.rawDer.equals(signer.publicKeySpki)) {
    throw new KakuinError('KAKUIN_E_KEY_NOT_FOUND', `the key ${record.keyUri} does not match the certificate of issuer ${record.id}`);
  }
  return {
    id: record.id,
    kind: record.kind,
    record,
    certificate,
    subjectDer: certificate.subject.rawDer,
    keyId: certificate.subjectKeyIdentifier ?? keyIdentifier(certificate.spki),
    signer,
  };
}

export async function loadIssuer(registry: Registry, keys: KeyRing, id: string): Promise<LoadedIssuer> {
  const record = await registry.getIssuer(id);
  const signer = await keys.load(record.keyUri);
  return issuerFromParts(record, signer);
}

/**
 * Sign a prepared to-be-signed body once (boulder's two steps: prepare, then sign). The signature
 * algorithm in the TBS must be the signer's, which `tbsFor` guarantees.
 */
export async function signCertificate(issuer: LoadedIssuer, tbs: Buffer): Promise<Buffer> {
  const signature = await issuer.signer.sign(tbs);
  return encodeCertificate(tbs, issuer.signer.signatureAlgorithm, signature);
}

/** Fill the issuer-dependent fields of a TBS certificate from the issuer. */
export function tbsFor(issuer: LoadedIssuer, body: Omit<TbsCertificateInput, 'issuer' | 'signatureAlgorithm'>): Buffer {
  return encodeTbsCertificate({ ...body, issuer: issuer.subjectDer, signatureAlgorithm: issuer.signer.signatureAlgorithm });
}
