/**
 * Delegated OCSP responder certificates: one per issuing CA, issued by that CA (RFC 6960 §4.2.2.2:
 * the responder certificate must be "issued directly by the CA that is identified in the request"),
 * with id-kp-OCSPSigning and id-pkix-ocsp-nocheck (§4.2.2.2.1: relying parties need not check the
 * responder's own revocation, so its lifetime is kept short and it is rolled over well before expiry).
 *
 * Stored as issuer records of kind `ocsp-signer` with id `ocsp-<issuerId>`, so the key URI lives
 * with the certificate and a rollover is one record replaced.
 */
import type { KeyAlgorithm, Signer } from '../hsm-adapters/port.js';
import type { KeyRing } from '../hsm-adapters/index.js';
import {
  authorityKeyIdentifierExt, basicConstraintsExt, encodeName, extKeyUsageExt, keyIdentifier, keyUsageExt,
  ocspNoCheckExt, parseCertificate, parseSpki, subjectKeyIdentifierExt,
} from '../pkix/index.js';
import type { Registry } from '../registry/port.js';
import { hasCode } from '../errors/index.js';
import { signCertificate, tbsFor, type LoadedIssuer } from './issuer.js';
import { issuanceCertificateFields } from './records.js';
import { newCertificateSerial, serialToHex } from './serial.js';

export interface OcspSignerPolicy {
  organization: string;
  /** Lifetime of a responder certificate. */
  validityDays: number;
  /** Roll over when less than this is left. */
  renewWithinDays: number;
  keyAlgorithm: KeyAlgorithm;
  /** Key URI for a new responder key of `issuerId`, e.g. `file:ocsp-device-<n>`. */
  keyUriFor(issuerId: string, generation: number): string;
  actor: string;
}

export interface OcspSigner {
  issuer: LoadedIssuer;
  certificateDer: Buffer;
  signer: Signer;
  notAfter: Date;
}

const DAY_MS = 86_400_000;

export function ocspSignerId(issuerId: string): string {
  return `ocsp-${issuerId}`;
}

/**
 * The current responder of `issuer`, created or rolled over when missing or due. Returns
 * `rolled: true` when a new certificate was made (every stored response must then be re-signed).
 */
export async function ensureOcspSigner(
  registry: Registry, keys: KeyRing, issuer: LoadedIssuer, policy: OcspSignerPolicy, now = new Date(),
): Promise<{ signer: OcspSigner; rolled: boolean }> {
  const id = ocspSignerId(issuer.id);
  let generation = 0;
  try {
    const record = await registry.getIssuer(id);
    const cert = parseCertificate(record.certificateDer);
    generation = generationOf(record.keyUri);
    const fresh = cert.notAfter.getTime() - now.getTime() > policy.renewWithinDays * DAY_MS;
    if (fresh && cert.issuer.rawDer.equals(issuer.subjectDer)) {
      return { signer: { issuer, certificateDer: record.certificateDer, signer: await keys.load(record.keyUri), notAfter: cert.notAfter }, rolled: false };
    }
  } catch (e) {
    if (!hasCode(e, 'KAKUIN_E_ISSUER_NOT_FOUND')) throw e;
  }
  // A new key with every certificate: a responder key is cheap and short-lived.
  const uri = policy.keyUriFor(issuer.id, generation + 1);
  const key = (await keys.exists(uri)) ? await keys.load(uri) : await keys.generate(uri, policy.keyAlgorithm);
  const serial = newCertificateSerial();
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3600_000);
  let notAfter = new Date(notBefore.getTime() + policy.validityDays * DAY_MS);
  if (notAfter > issuer.certificate.notAfter) notAfter = issuer.certificate.notAfter;
  const tbs = tbsFor(issuer, {
    serial, notBefore, notAfter, spki: key.publicKeySpki,
    subject: encodeName([{ type: 'O', value: policy.organization }, { type: 'CN', value: `${policy.organization} OCSP Responder (${issuer.id})` }]),
    extensions: [
      basicConstraintsExt({ ca: false }),
      keyUsageExt(['digitalSignature']),
      extKeyUsageExt(['OCSPSigning']),
      ocspNoCheckExt(),
      subjectKeyIdentifierExt(keyIdentifier(parseSpki(key.publicKeySpki))),
      authorityKeyIdentifierExt(issuer.keyId),
    ],
  });
  const der = await signCertificate(issuer, tbs);
  const serialHex = serialToHex(serial);
  await registry.recordIssuance({
    certificate: issuanceCertificateFields({ serialHex, issuerId: issuer.id, profile: 'ocsp-signer', der, spkiDer: key.publicKeySpki, notBefore, notAfter }),
    audit: { type: 'certificate.issued', actor: policy.actor, serialHex, details: { profile: 'ocsp-signer', issuerId: issuer.id } },
  });
  await registry.putIssuer({ id, kind: 'ocsp-signer', certificateDer: der, keyUri: uri, parentId: issuer.id });
  return { signer: { issuer, certificateDer: der, signer: key, notAfter }, rolled: true };
}

function generationOf(uri: string): number {
  const m = /-(\d+)$/.exec(uri);
  return m ? Number(m[1]) : 0;
}
