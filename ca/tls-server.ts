/**
 * TLS server certificates for kakuin's own HTTPS listeners, issued by the infrastructure CA
 * (DESIGN.md: never by the device CA, so a device certificate can never pose as a server).
 * Their keys stay in the software store: Node's TLS cannot use a PKCS#11 key.
 */
import { isIP } from 'node:net';
import type { Signer } from '../hsm-adapters/port.js';
import {
  authorityInfoAccessExt, authorityKeyIdentifierExt, basicConstraintsExt, crlDistributionPointsExt, encodeName,
  extKeyUsageExt, keyIdentifier, keyUsageExt, parseCertificate, parseSpki, subjectAltNameExt,
  subjectKeyIdentifierExt, type GeneralName,
} from '../pkix/index.js';
import type { Registry } from '../registry/port.js';
import { signCertificate, tbsFor, type LoadedIssuer } from './issuer.js';
import { issuanceCertificateFields } from './records.js';
import { newCertificateSerial, serialToHex } from './serial.js';
import type { PublicUrls } from './urls.js';

export interface TlsServerRequest {
  /** Listener name, for the audit trail (`api`, `gateway`, ...). */
  listener: string;
  hostnames: string[];
  validityDays: number;
  organization: string;
  actor: string;
}

const DAY_MS = 86_400_000;

export async function issueTlsServerCertificate(
  registry: Registry, issuer: LoadedIssuer, key: Signer, urls: PublicUrls, request: TlsServerRequest, now = new Date(),
): Promise<Buffer> {
  return issueServerCertificate(registry, issuer, urls, {
    spki: key.publicKeySpki, hostnames: request.hostnames, validityDays: request.validityDays, organization: request.organization,
    actor: request.actor, profile: 'tls-server', details: { listener: request.listener },
  }, now);
}

export interface ServerCertificateRequest {
  /** The subject's public key (DER SubjectPublicKeyInfo), checked by the caller (a CSR's proof of possession). */
  spki: Buffer;
  /** DNS names and IP addresses, every one into the SAN. */
  hostnames: string[];
  validityDays: number;
  organization: string;
  actor: string;
  /** Recorded with the certificate: `tls-server` (kakuin's own listeners) or `acme` (enrollment/acme). */
  profile: 'tls-server' | 'acme';
  /** More audit details (the listener, the ACME account and order). */
  details?: Record<string, unknown>;
}

/**
 * A TLS server certificate by the infrastructure CA for any key: kakuin's own listeners and the
 * brokers and proxies that obtain theirs by ACME. Committed to the registry before it is returned.
 */
export async function issueServerCertificate(
  registry: Registry, issuer: LoadedIssuer, urls: PublicUrls, request: ServerCertificateRequest, now = new Date(),
): Promise<Buffer> {
  const names: GeneralName[] = request.hostnames.map((h) => (isIP(h) ? { ip: h } : { dns: h }));
  const spki = parseSpki(request.spki);
  const serial = newCertificateSerial();
  // Backdated by an hour for clients with slow clocks, as for devices.
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 3600_000);
  let notAfter = new Date(notBefore.getTime() + request.validityDays * DAY_MS);
  if (notAfter > issuer.certificate.notAfter) notAfter = issuer.certificate.notAfter;
  // RFC 5280 ub-common-name is 64: a longer first name stays in the SAN only (clients match the SAN anyway).
  const first = request.hostnames[0] ?? String(request.details?.listener ?? 'server');
  const tbs = tbsFor(issuer, {
    serial, notBefore, notAfter, spki: request.spki,
    subject: encodeName([{ type: 'O', value: request.organization }, ...(first.length <= 64 ? [{ type: 'CN' as const, value: first }] : [])]),
    extensions: [
      basicConstraintsExt({ ca: false }),
      keyUsageExt(spki.keyType === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature']),
      extKeyUsageExt(['serverAuth']),
      // RFC 6125: clients match the SAN, never the CN, so every name goes into the SAN.
      subjectAltNameExt(names),
      subjectKeyIdentifierExt(keyIdentifier(spki)),
      authorityKeyIdentifierExt(issuer.keyId),
      crlDistributionPointsExt([urls.crl(issuer.id)]),
      authorityInfoAccessExt({ ocsp: [urls.ocsp], caIssuers: [urls.caIssuers(issuer.id)] }),
    ],
  });
  const der = await signCertificate(issuer, tbs);
  const serialHex = serialToHex(serial);
  await registry.recordIssuance({
    certificate: issuanceCertificateFields({
      serialHex, issuerId: issuer.id, profile: request.profile, der, spkiDer: request.spki, notBefore, notAfter,
    }),
    audit: { type: 'certificate.issued', actor: request.actor, serialHex, details: { profile: request.profile, ...request.details, hostnames: request.hostnames } },
  });
  return der;
}

/**
 * Whether a stored TLS server certificate should be replaced: it is missing, expires within
 * `renewWithinDays`, was issued for another key or another set of names, or by another CA.
 */
export function tlsCertificateNeedsRenewal(
  der: Buffer | undefined, key: Signer, issuer: LoadedIssuer, hostnames: string[], renewWithinDays: number, now = new Date(),
): boolean {
  if (!der) return true;
  let cert;
  try {
    cert = parseCertificate(der);
  } catch {
    return true;
  }
  if (!cert.spki.rawDer.equals(key.publicKeySpki)) return true;
  if (!cert.issuer.rawDer.equals(issuer.subjectDer)) return true;
  if (cert.notAfter.getTime() - now.getTime() < renewWithinDays * DAY_MS) return true;
  const expected = subjectAltNameExt(hostnames.map((h) => (isIP(h) ? { ip: h } : { dns: h })));
  const san = cert.extensions.find((e: { oid: string }) => e.oid === '2.5.29.17');
  return !san || !san.rawDer.equals(expected);
}
