/**
 * An end-entity certificate for one of kakuin's own service keys (OCSP responder, audit signer, SCEP
 * RA): valid from an hour ago (clocks of relying parties drift) for `validityDays`, never past its
 * issuer, subject `O=<organization>, CN=<commonName>`, recorded with its `certificate.issued` audit
 * event before it is returned. The purpose is in `keyUsage`, `extKeyUsage` and `extra` extensions.
 */
import type { Signer } from '../hsm-adapters/port.js';
import {
  authorityKeyIdentifierExt, basicConstraintsExt, encodeName, extKeyUsageExt, keyIdentifier, keyUsageExt, parseSpki, subjectKeyIdentifierExt,
  type KeyPurposeName, type KeyUsageName,
} from '../pkix/index.js';
import type { Registry } from '../registry/port.js';
import { signCertificate, tbsFor, type LoadedIssuer } from './issuer.js';
import { issuanceCertificateFields } from './records.js';
import { newCertificateSerial, serialToHex } from './serial.js';

const DAY_MS = 86_400_000;

export interface OwnKeyCertificateRequest {
  key: Signer;
  organization: string;
  commonName: string;
  validityDays: number;
  keyUsage: KeyUsageName[];
  extKeyUsage?: (KeyPurposeName | string)[];
  /** Further extensions, after the key usages (e.g. id-pkix-ocsp-nocheck). */
  extra?: Buffer[];
  /** The profile recorded with the certificate and its audit event. */
  profile: string;
  actor: string;
  now?: Date;
}

export async function issueOwnKeyCertificate(registry: Registry, issuer: LoadedIssuer, r: OwnKeyCertificateRequest): Promise<{ der: Buffer; serialHex: string; notAfter: Date }> {
  const now = r.now ?? new Date();
  const serial = newCertificateSerial();
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3600_000);
  let notAfter = new Date(notBefore.getTime() + r.validityDays * DAY_MS);
  if (notAfter > issuer.certificate.notAfter) notAfter = issuer.certificate.notAfter;
  const tbs = tbsFor(issuer, {
    serial, notBefore, notAfter, spki: r.key.publicKeySpki,
    subject: encodeName([{ type: 'O', value: r.organization }, { type: 'CN', value: r.commonName }]),
    extensions: [
      basicConstraintsExt({ ca: false }),
      keyUsageExt(r.keyUsage),
      ...(r.extKeyUsage !== undefined ? [extKeyUsageExt(r.extKeyUsage)] : []),
      ...(r.extra ?? []),
      subjectKeyIdentifierExt(keyIdentifier(parseSpki(r.key.publicKeySpki))),
      authorityKeyIdentifierExt(issuer.keyId),
    ],
  });
  const der = await signCertificate(issuer, tbs);
  const serialHex = serialToHex(serial);
  await registry.recordIssuance({
    certificate: issuanceCertificateFields({ serialHex, issuerId: issuer.id, profile: r.profile, der, spkiDer: r.key.publicKeySpki, notBefore, notAfter }),
    audit: { type: 'certificate.issued', actor: r.actor, serialHex, details: { profile: r.profile, issuerId: issuer.id } },
  });
  return { der, serialHex, notAfter };
}
