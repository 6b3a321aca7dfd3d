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
import { ocspNoCheckExt, parseCertificate } from '../pkix/index.js';
import type { Registry } from '../registry/port.js';
import { hasCode } from '../errors/index.js';
import type { LoadedIssuer } from './issuer.js';
import { issueOwnKeyCertificate } from './own-key-certificate.js';

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
  const { der, notAfter } = await issueOwnKeyCertificate(registry, issuer, {
    key, organization: policy.organization, commonName: `${policy.organization} OCSP Responder (${issuer.id})`, validityDays: policy.validityDays,
    keyUsage: ['digitalSignature'], extKeyUsage: ['OCSPSigning'], extra: [ocspNoCheckExt()], profile: 'ocsp-signer', actor: policy.actor, now,
  });
  await registry.putIssuer({ id, kind: 'ocsp-signer', certificateDer: der, keyUri: uri, parentId: issuer.id });
  return { signer: { issuer, certificateDer: der, signer: key, notAfter }, rolled: true };
}

function generationOf(uri: string): number {
  const m = /-(\d+)$/.exec(uri);
  return m ? Number(m[1]) : 0;
}
