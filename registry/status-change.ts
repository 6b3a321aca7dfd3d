/**
 * The rules of `Registry.applyStatusChange` that do not depend on a store: checking and normalising
 * a StatusChange before any transaction, and deciding, for one row inside the transaction, whether
 * its transition applies, changes nothing, or is refused. Every adapter uses these, so SQLite and
 * MongoDB refuse exactly the same changes.
 *
 * Beyond the caller's `from` guard the registry itself keeps the kill switch final: a revoked
 * certificate, and a revoked or retired device, never change status again (DESIGN.md "Identities":
 * `revoked` and `retired` are terminal). The rest of the lifecycle (which moves an administrator
 * may make) is the caller's policy, expressed in `from`.
 *
 * A transition to the status a row already has changes nothing (no feed entry, the row's reason
 * and dates stay as they are) when `from` admits the current status; when it does not, it is
 * refused like any other guard failure. So `from: ['good', 'held'], to: 'revoked'` on a revoked
 * certificate is refused, and `from: ['good', 'held', 'revoked']` makes the same call idempotent.
 */
import { KakuinError } from '../errors/index.js';
import { CRL_REASON_CODES } from '../pkix/index.js';
import type { CertificateStatus, CrlReason, DeviceStatus, StatusChange } from './port.js';
import { checkDecommission } from './records/jobs.js';
import type { Decommission } from './jobs.js';

export const CERTIFICATE_STATUSES: readonly CertificateStatus[] = ['good', 'revoked', 'held'];
export const DEVICE_STATUSES: readonly DeviceStatus[] = ['registered', 'active', 'suspended', 'revoked', 'retired'];

const TERMINAL_DEVICE_STATUSES: ReadonlySet<DeviceStatus> = new Set(['revoked', 'retired']);

/** A StatusChange whose fields are checked: serials uppercase, dates valid, reasons consistent. */
export interface CheckedStatusChange {
  device?: {
    id: string;
    from: ReadonlySet<DeviceStatus>;
    to: DeviceStatus;
    certificates?: CheckedTransition;
    decommission?: Decommission;
  };
  certificates: (CheckedTransition & { serialHex: string })[];
  audit: StatusChange['audit'];
  jobStep?: { jobId: string; deviceId: string };
}

export interface CheckedTransition {
  from: ReadonlySet<CertificateStatus>;
  to: CertificateStatus;
  reason?: CrlReason;
  revokedAt?: Date;
  invalidityDate?: Date;
}

export type RowOutcome = 'apply' | 'unchanged';

function invalid(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_VALIDATION', message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function statusSet<S extends string>(value: unknown, known: readonly S[], field: string): ReadonlySet<S> {
  if (!Array.isArray(value) || value.length === 0) throw invalid(`${field} must be a non-empty array of statuses`);
  for (const s of value) {
    if (!known.includes(s as S)) throw invalid(`${field} names an unknown status ${JSON.stringify(s)}`);
  }
  return new Set(value as S[]);
}

function optionalDate(value: unknown, field: string): Date | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalid(`${field} must be a valid Date`);
  return value;
}

/**
 * RFC 5280 §5.3.1: certificateHold is what a hold carries; removeFromCRL only ever appears in a
 * delta CRL for a certificate released from hold, so neither is a revocation reason.
 */
function checkTransition(t: Record<string, unknown>, field: string): CheckedTransition {
  const from = statusSet(t.from, CERTIFICATE_STATUSES, `${field}.from`);
  const to = t.to as CertificateStatus;
  if (!CERTIFICATE_STATUSES.includes(to)) throw invalid(`${field}.to must be one of ${CERTIFICATE_STATUSES.join(', ')}`);
  const reason = t.reason;
  const revokedAt = optionalDate(t.revokedAt, `${field}.revokedAt`);
  const invalidityDate = optionalDate(t.invalidityDate, `${field}.invalidityDate`);
  if (to === 'good') {
    if (reason !== undefined || revokedAt !== undefined || invalidityDate !== undefined) {
      throw invalid(`${field}: a certificate becoming good carries no reason, revokedAt or invalidityDate`);
    }
    return { from, to };
  }
  if (revokedAt === undefined) throw invalid(`${field}.revokedAt is required when the certificate becomes ${to}`);
  if (to === 'held') {
    if (reason !== 'certificateHold') throw invalid(`${field}.reason must be certificateHold when the certificate becomes held`);
  } else if (typeof reason !== 'string' || !Object.hasOwn(CRL_REASON_CODES, reason)
    || reason === 'certificateHold' || reason === 'removeFromCRL') {
    throw invalid(`${field}.reason must be a CRLReason other than certificateHold and removeFromCRL (RFC 5280 §5.3.1)`);
  }
  return { from, to, reason: reason as CrlReason, revokedAt, ...(invalidityDate !== undefined && { invalidityDate }) };
}

function serialHex(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[0-9A-Fa-f]+$/.test(value)) throw invalid(`${field} must be hexadecimal without separators`);
  return value.toUpperCase();
}

/**
 * Checks a change before any transaction: bad input is refused with KAKUIN_E_VALIDATION and never
 * reaches the store. A change must name a device or at least one certificate, and a certificate at
 * most once (a second transition of the same row in one change would see the first one's result).
 */
export function checkStatusChange(change: StatusChange): CheckedStatusChange {
  if (!isObject(change)) throw invalid('a status change must be an object');
  if (!Array.isArray(change.certificates)) throw invalid('certificates must be an array (possibly empty)');
  if (!Array.isArray(change.audit)) throw invalid('audit must be an array of audit events (possibly empty)');
  const seen = new Set<string>();
  const certificates = change.certificates.map((t: unknown, i) => {
    const field = `certificates[${i}]`;
    if (!isObject(t)) throw invalid(`${field} must be an object`);
    const serial = serialHex(t.serialHex, `${field}.serialHex`);
    if (seen.has(serial)) throw invalid(`${field}: certificate ${serial} is named twice`);
    seen.add(serial);
    return { serialHex: serial, ...checkTransition(t, field) };
  });
  let device: CheckedStatusChange['device'];
  if (change.device !== undefined) {
    const d: unknown = change.device;
    if (!isObject(d)) throw invalid('device must be an object');
    if (typeof d.id !== 'string' || d.id.length === 0) throw invalid('device.id must be a non-empty string');
    const to = d.to as DeviceStatus;
    if (!DEVICE_STATUSES.includes(to)) throw invalid(`device.to must be one of ${DEVICE_STATUSES.join(', ')}`);
    if (d.certificates !== undefined && !isObject(d.certificates)) throw invalid('device.certificates must be an object');
    if (d.decommission !== undefined && to !== 'retired') throw invalid('device.decommission is kept only with a device becoming retired');
    device = {
      id: d.id,
      from: statusSet(d.from, DEVICE_STATUSES, 'device.from'),
      to,
      ...(d.certificates !== undefined && { certificates: checkTransition(d.certificates, 'device.certificates') }),
      ...(d.decommission !== undefined && { decommission: checkDecommission(d.decommission) }),
    };
  }
  if (device === undefined && certificates.length === 0) throw invalid('a status change must name a device or at least one certificate');
  let jobStep: CheckedStatusChange['jobStep'];
  if (change.jobStep !== undefined) {
    const j: unknown = change.jobStep;
    if (!isObject(j) || typeof j.jobId !== 'string' || j.jobId.length === 0 || typeof j.deviceId !== 'string' || j.deviceId.length === 0) {
      throw invalid('jobStep must be {jobId, deviceId}');
    }
    jobStep = { jobId: j.jobId, deviceId: j.deviceId };
  }
  return { ...(device !== undefined && { device }), certificates, audit: change.audit, ...(jobStep !== undefined && { jobStep }) };
}

/**
 * Inside the transaction, with the certificate's current status: `apply`, `unchanged` (already
 * there and `from` admits it), or KAKUIN_E_CERTIFICATE_STATE.
 */
export function certificateOutcome(serial: string, current: CertificateStatus, t: CheckedTransition): RowOutcome {
  if (!t.from.has(current)) {
    throw new KakuinError('KAKUIN_E_CERTIFICATE_STATE',
      `certificate ${serial} is ${current}; the change expects it to be ${[...t.from].join(' or ')}`);
  }
  if (current === t.to) return 'unchanged';
  if (current === 'revoked') {
    throw new KakuinError('KAKUIN_E_CERTIFICATE_STATE', `certificate ${serial} is revoked; a revoked certificate never comes back`);
  }
  return 'apply';
}

/** As certificateOutcome, for the device (KAKUIN_E_DEVICE_STATE). */
export function deviceOutcome(current: DeviceStatus, d: { from: ReadonlySet<DeviceStatus>; to: DeviceStatus }): RowOutcome {
  if (!d.from.has(current)) {
    throw new KakuinError('KAKUIN_E_DEVICE_STATE', `the device is ${current}; the change expects it to be ${[...d.from].join(' or ')}`);
  }
  if (current === d.to) return 'unchanged';
  if (TERMINAL_DEVICE_STATUSES.has(current)) {
    throw new KakuinError('KAKUIN_E_DEVICE_STATE', `the device is ${current}, which is final; it cannot become ${d.to}`);
  }
  return 'apply';
}

/** Device statuses a device certificate may be recorded for (a suspended, revoked or retired device gets none). */
export function deviceAcceptsCertificates(status: DeviceStatus): boolean {
  return status === 'registered' || status === 'active';
}
