/**
 * Audit checkpoints (docs/audit-trail.md): a statement of every chain's head, signed by the audit
 * signer key, whose certificate the infrastructure CA issues (ca/audit-signer.ts, RFC 9336
 * id-kp-documentSigning). A checkpoint is itself an audit event of type `audit.checkpoint`, so it
 * is stored with the trail and goes out through events out (webhooks, syslog) like any other: the
 * copies kept off-host are what reveal a deleted tail.
 *
 * The signature is over the UTF-8 bytes of the RFC 8785 encoding of `statement`, with the signer's
 * algorithm (ECDSA with SHA-256/384 as a DER Ecdsa-Sig-Value, RSA PKCS#1 v1.5 with SHA-256, or
 * Ed25519): exactly what `openssl dgst -sha256 -verify pub.pem -signature sig.der statement.json` checks.
 */
import { X509Certificate, verify as cryptoVerify } from 'node:crypto';
import type { Signer } from '../../hsm-adapters/port.js';
import { OID_KP_DOCUMENT_SIGNING } from '../../pkix/index.js';
import { CHECKPOINT_EVENT_TYPE, jcs } from '../../registry/records/index.js';
import type { AuditChainHead, NewAuditEvent } from '../../registry/port.js';

export const CHECKPOINT_VERSION = 1;

/** What a checkpoint signs. */
export interface CheckpointStatement {
  version: number;
  /** When the heads were read (ISO 8601, UTC, ms). */
  at: string;
  /** Every chain's newest event at `at`, ordered by chain id; the virtual `legacy` chain among them. */
  heads: AuditChainHead[];
  /**
   * Every audit event with an id up to this one is covered: it is in a chain of `heads`, at or
   * before that chain's head. So an event slipped into the history later, even in a chain of its
   * own with correct hashes, is caught (KAKUIN_E_AUDIT_EVENT_INSERTED).
   */
  coveredThrough: number;
}

/** The details of an `audit.checkpoint` event (and of its event out). */
export interface CheckpointDetails {
  statement: CheckpointStatement;
  /** The X.509 name of the signature algorithm (hsm-adapters signatureAlgorithmFor). */
  signatureAlgorithm: string;
  /** Base64 of the signature bytes. */
  signature: string;
  /** Base64 DER: the audit signer's certificate, then the infrastructure CA's. */
  certificates: string[];
}

export interface AuditSigningIdentity {
  signer: Signer;
  /** The signer's certificate, then its issuer's (the infrastructure CA). */
  certificates: Buffer[];
}

/** Signs the heads; returns the audit event to append. */
export async function signCheckpoint(identity: AuditSigningIdentity, heads: AuditChainHead[], coveredThrough: number, at: Date, actor = 'system'): Promise<NewAuditEvent> {
  const statement: CheckpointStatement = {
    version: CHECKPOINT_VERSION, at: at.toISOString(), heads: [...heads].sort((a, b) => (a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0)), coveredThrough,
  };
  const signature = await identity.signer.sign(Buffer.from(jcs(statement), 'utf8'));
  const details: CheckpointDetails = {
    statement,
    signatureAlgorithm: identity.signer.signatureAlgorithm,
    signature: signature.toString('base64'),
    certificates: identity.certificates.map((c) => c.toString('base64')),
  };
  return { type: CHECKPOINT_EVENT_TYPE, actor, at, details: details as unknown as Record<string, unknown> };
}

const HASH_OF: Record<string, string | null> = {
  'ecdsa-with-SHA256': 'sha256', 'ecdsa-with-SHA384': 'sha384', 'sha256WithRSAEncryption': 'sha256', Ed25519: null,
};

/** Why a checkpoint's proof fails, or undefined when it holds. `roots`: the trust anchors (kakuin's root certificates). */
export function checkpointProblem(details: unknown, roots: readonly X509Certificate[]): string | undefined {
  const d = details as Partial<CheckpointDetails> | undefined;
  if (d === undefined || d === null || typeof d !== 'object' || d.statement === undefined || typeof d.signature !== 'string'
    || !Array.isArray(d.certificates) || d.certificates.length < 1 || typeof d.signatureAlgorithm !== 'string') {
    return 'the checkpoint is malformed (statement, signature, signatureAlgorithm, certificates)';
  }
  const s = d.statement;
  if (s.version !== CHECKPOINT_VERSION || typeof s.at !== 'string' || !Array.isArray(s.heads) || !Number.isSafeInteger(s.coveredThrough)
    || !s.heads.every((h) => h !== null && typeof h === 'object' && typeof h.chain === 'string' && Number.isSafeInteger(h.seq) && typeof h.hash === 'string')) {
    return 'the checkpoint statement is malformed';
  }
  let certs: X509Certificate[];
  try {
    certs = d.certificates.map((b) => new X509Certificate(Buffer.from(String(b), 'base64')));
  } catch {
    return 'a checkpoint certificate cannot be read';
  }
  const [leaf, ...intermediates] = certs;
  const at = new Date(s.at);
  if (Number.isNaN(at.getTime())) return 'the checkpoint time is malformed';
  if (!(leaf.keyUsage ?? []).includes(OID_KP_DOCUMENT_SIGNING)) return 'the signer certificate lacks extendedKeyUsage id-kp-documentSigning (RFC 9336)';
  const chainProblem = chainToRoot(leaf, intermediates, roots, at);
  if (chainProblem) return chainProblem;
  if (!Object.hasOwn(HASH_OF, d.signatureAlgorithm)) return `unknown signature algorithm ${d.signatureAlgorithm}`;
  const ok = cryptoVerify(HASH_OF[d.signatureAlgorithm], Buffer.from(jcs(s), 'utf8'), leaf.publicKey, Buffer.from(d.signature, 'base64'));
  return ok ? undefined : 'the checkpoint signature does not verify';
}

/** RFC 5280 §6 in the small: each certificate signed by the next, valid at `at`, ending at a trusted root. */
function chainToRoot(leaf: X509Certificate, intermediates: X509Certificate[], roots: readonly X509Certificate[], at: Date): string | undefined {
  const validAt = (c: X509Certificate) => new Date(c.validFrom) <= at && at <= new Date(c.validTo);
  let current = leaf;
  const pool = [...intermediates];
  for (let depth = 0; depth < 5; depth++) {
    if (!validAt(current)) return `certificate ${current.subject.replace(/\n/g, ', ')} was not valid at the checkpoint time`;
    const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (root) return validAt(root) ? undefined : 'the root was not valid at the checkpoint time';
    const next = pool.find((c) => current.checkIssued(c) && current.verify(c.publicKey) && c.ca);
    if (!next) return 'the signer certificate does not chain to a trusted root';
    current = next;
  }
  return 'the certificate chain is too long';
}
