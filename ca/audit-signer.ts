/**
 * The audit signer's certificate: it signs the audit trail's checkpoints (operations/audit). Issued
 * by the infrastructure CA like kakuin's other service certificates, never by the device CA (so a
 * device certificate can never sign for the audit trail), with id-kp-documentSigning (RFC 9336 §3:
 * "signing human-readable documents" — the nearest registered purpose; no other) and
 * digitalSignature only. A third party checks a checkpoint with kakuin's root certificate alone.
 */
import type { Signer } from '../hsm-adapters/port.js';
import { parseCertificate, parseExtKeyUsage, OID_KP_DOCUMENT_SIGNING } from '../pkix/index.js';
import type { Registry } from '../registry/port.js';
import type { LoadedIssuer } from './issuer.js';
import { issueOwnKeyCertificate } from './own-key-certificate.js';

export interface AuditSignerRequest {
  organization: string;
  validityDays: number;
  actor: string;
}

const DAY_MS = 86_400_000;

export async function issueAuditSignerCertificate(
  registry: Registry, issuer: LoadedIssuer, key: Signer, request: AuditSignerRequest, now = new Date(),
): Promise<Buffer> {
  const { der } = await issueOwnKeyCertificate(registry, issuer, {
    key, organization: request.organization, commonName: `${request.organization} Audit Signer`, validityDays: request.validityDays,
    keyUsage: ['digitalSignature'], extKeyUsage: ['documentSigning'], profile: 'audit-signer', actor: request.actor, now,
  });
  return der;
}

/** Missing, unreadable, for another key or CA, without documentSigning, or expiring within `renewWithinDays`. */
export function auditSignerNeedsRenewal(der: Buffer | undefined, key: Signer, issuer: LoadedIssuer, renewWithinDays: number, now = new Date()): boolean {
  if (!der) return true;
  try {
    const cert = parseCertificate(der);
    if (!cert.spki.rawDer.equals(key.publicKeySpki) || !cert.issuer.rawDer.equals(issuer.subjectDer)) return true;
    const eku = cert.extensions.find((e: { oid: string }) => e.oid === '2.5.29.37');
    if (!eku || !parseExtKeyUsage(eku.value).includes(OID_KP_DOCUMENT_SIGNING)) return true;
    return cert.notAfter.getTime() - now.getTime() < renewWithinDays * DAY_MS;
  } catch {
    return true;
  }
}
