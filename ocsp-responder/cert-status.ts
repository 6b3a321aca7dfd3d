/**
 * The status one SingleResponse states (RFC 6960 §2.2, §4.2.1), from the registry's records, rows
 * and feed entries. kakuin's `held` is RFC 6960's `revoked` with reason certificateHold (RFC 5280
 * §5.3.1: certificateHold is a revocation reason; a released certificate answers `good` again).
 */
import { KakuinError } from '../errors/index.js';
import type { CrlReason, OcspCertStatus } from '../pkix/index.js';
import type { CertificateRecord, CertificateStatus, FeedEntry } from '../registry/port.js';

export const STATUS_GOOD: OcspCertStatus = Object.freeze({ status: 'good' }) as OcspCertStatus;
export const STATUS_UNKNOWN: OcspCertStatus = Object.freeze({ status: 'unknown' }) as OcspCertStatus;

function inconsistent(serialHex: string, status: string): KakuinError {
  return new KakuinError('KAKUIN_E_INTERNAL', `certificate ${serialHex} is ${status} but has no revocation time`);
}

/**
 * The OCSP status for a registry status; `held` answers revoked/certificateHold (RFC 5280 §5.3.1).
 * A revocation's invalidityDate is stated as the CRL entry states it (RFC 6960 §4.4.5); a hold has
 * none (RFC 5280 §5.3.2 dates a key compromise, which a hold is not).
 */
export function statusFromParts(
  serialHex: string, status: CertificateStatus, revokedAtMs: number | undefined, reason: CrlReason | undefined,
  invalidityDateMs?: number,
): OcspCertStatus {
  if (status === 'good') return STATUS_GOOD;
  if (revokedAtMs === undefined || !Number.isFinite(revokedAtMs)) throw inconsistent(serialHex, status);
  const revokedAt = new Date(revokedAtMs);
  if (status === 'held') return { status: 'revoked', revokedAt, reason: 'certificateHold' };
  return {
    status: 'revoked', revokedAt, ...(reason !== undefined && { reason }),
    ...(invalidityDateMs !== undefined && Number.isFinite(invalidityDateMs) && { invalidityDate: new Date(invalidityDateMs) }),
  };
}

/**
 * The status of `record` as the responder for `issuerId` states it: a certificate this issuer did
 * not issue is `unknown` (RFC 6960 §2.2), even when another issuer used the same serial.
 */
export function statusFromRecord(record: CertificateRecord | undefined, issuerId: string): OcspCertStatus {
  if (record === undefined || record.issuerId !== issuerId) return STATUS_UNKNOWN;
  return statusFromParts(record.serialHex, record.status, record.revokedAt?.getTime(), record.reason, record.invalidityDate?.getTime());
}

/** A certificate feed entry's new status; undefined for device entries or entries without a serial. */
export function statusFromFeedEntry(entry: FeedEntry): OcspCertStatus | undefined {
  if (entry.kind !== 'certificate' || entry.serialHex === undefined || entry.issuerId === undefined) return undefined;
  const s = entry.status;
  if (s !== 'good' && s !== 'revoked' && s !== 'held') return undefined;
  return statusFromParts(entry.serialHex, s, entry.revokedAt?.getTime(), entry.reason, entry.invalidityDate?.getTime());
}
