/**
 * Revocation: the kill switch. Every change is one atomic registry transaction that also appends
 * to the revocation feed, which the OCSP responder, the CRL publisher and gateways follow.
 *
 * Lifecycle (DESIGN.md): registered → active ⇄ suspended; revoked and retired are terminal.
 * Certificates: good ⇄ held (certificateHold, RFC 5280 §5.3.1); revoked is final — "a revoked (not
 * held) certificate can never come back".
 */
import type { CrlReason } from '../pkix/index.js';
import type { CertificateRecord, DeviceStatus, FeedEntry, Registry } from '../registry/port.js';
import type { Decommission } from '../registry/jobs.js';
import { KakuinError } from '../errors/index.js';

/**
 * Reasons an operator may give for revocation. certificateHold is what suspend does and
 * removeFromCRL only appears in delta CRLs (RFC 5280 §5.3.1); cACompromise and aACompromise
 * concern CAs and attribute authorities, not devices.
 */
export const REVOCATION_REASONS: readonly CrlReason[] = [
  'unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn',
];

/** Called after every committed change, with the feed entries it appended (e.g. to wait for OCSP). */
export type AfterStatusChange = (entries: FeedEntry[]) => Promise<void>;

const LIVE_DEVICE_STATES: DeviceStatus[] = ['registered', 'active', 'suspended'];

/**
 * What a bulk job (operations/bulk) adds to a device change: its step, settled in the change's own
 * transaction (registry/jobs.ts), and details its audit event carries (jobId, ticket).
 */
export interface DeviceChangeOptions {
  jobStep?: { jobId: string; deviceId: string };
  details?: Record<string, unknown>;
}

export class RevocationService {
  constructor(
    private readonly registry: Registry,
    private readonly afterChange: AfterStatusChange = async () => {},
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Revoke one certificate. Revoking an expired certificate is allowed and recorded. */
  async revokeCertificate(serialHex: string, input: { reason: unknown; invalidityDate?: unknown }, actor: string): Promise<CertificateRecord> {
    const reason = revocationReason(input.reason);
    const invalidityDate = this.invalidityDate(input.invalidityDate);
    const current = await this.registry.getCertificate(serialHex);
    if (current.status === 'revoked') {
      throw new KakuinError('KAKUIN_E_CERTIFICATE_STATE', `certificate ${current.serialHex} is already revoked (${current.reason ?? 'unspecified'})`);
    }
    const entries = await this.registry.applyStatusChange({
      certificates: [{ serialHex: current.serialHex, from: ['good', 'held'], to: 'revoked', reason, revokedAt: this.now(), invalidityDate }],
      audit: [{
        type: 'certificate.revoked', actor, serialHex: current.serialHex, deviceId: current.deviceId,
        details: { reason, invalidityDate: invalidityDate?.toISOString(), previousStatus: current.status },
      }],
    });
    await this.afterChange(entries);
    return this.registry.getCertificate(current.serialHex);
  }

  /** Revoke a device and every good or held certificate it has; works without certificates too. */
  async revokeDevice(deviceId: string, input: { reason: unknown }, actor: string, options: DeviceChangeOptions = {}): Promise<FeedEntry[]> {
    const reason = revocationReason(input.reason);
    return this.deviceChange(deviceId, 'revoked', LIVE_DEVICE_STATES, actor, { reason },
      { from: ['good', 'held'], to: 'revoked', reason, revokedAt: this.now() }, undefined, options);
  }

  /**
   * Suspend a device that looks suspicious but may be fine: its good certificates go on hold
   * (certificateHold), so relying parties refuse them until it is resumed. A detection rule
   * (operations/detections) suspends with its detection's id and a reason in `details`.
   */
  async suspendDevice(deviceId: string, actor: string, options: DeviceChangeOptions & { reason?: string; detectionId?: string } = {}): Promise<FeedEntry[]> {
    // `reason` and `detectionId` go into the device.suspended audit event: a rule's suspension names its detection.
    const { reason, detectionId, ...change } = options;
    return this.deviceChange(deviceId, 'suspended', ['registered', 'active'], actor,
      { ...(reason !== undefined && { reason }), ...(detectionId !== undefined && { detectionId }) },
      { from: ['good'], to: 'held', reason: 'certificateHold', revokedAt: this.now() }, undefined, change);
  }

  /** Resume a suspended device: its held certificates are released (removeFromCRL in the next delta). */
  async resumeDevice(deviceId: string, actor: string, options: DeviceChangeOptions = {}): Promise<FeedEntry[]> {
    const device = await this.registry.getDevice(deviceId);
    if (device.status !== 'suspended') {
      throw new KakuinError('KAKUIN_E_DEVICE_STATE', `device ${device.id} is ${device.status}; only a suspended device can be resumed`);
    }
    const certificates = await this.registry.listCertificatesOfDevice(deviceId);
    // A device that never had a certificate goes back to waiting for one.
    const to: DeviceStatus = certificates.some((c) => c.status === 'held' || c.status === 'good') ? 'active' : 'registered';
    return this.deviceChange(deviceId, to, ['suspended'], actor, {}, { from: ['held'], to: 'good' }, 'device.resumed', options);
  }

  /**
   * Retire a device that left service: terminal, its certificates revoked as cessationOfOperation.
   * With `decommission` (reason, ticket, evidence note), the disposal record is kept with the device
   * in the same transaction (README "Bulk actions": a retired device must be provably dead).
   */
  async retireDevice(
    deviceId: string, actor: string,
    options: DeviceChangeOptions & { decommission?: Omit<Decommission, 'at' | 'actor'> } = {},
  ): Promise<FeedEntry[]> {
    const decommission = options.decommission === undefined ? undefined : { ...options.decommission, at: this.now(), actor };
    return this.deviceChange(deviceId, 'retired', LIVE_DEVICE_STATES, actor,
      decommission === undefined ? {} : { decommission: { reason: decommission.reason, ticket: decommission.ticket } },
      { from: ['good', 'held'], to: 'revoked', reason: 'cessationOfOperation', revokedAt: this.now() }, undefined, options, decommission);
  }

  private async deviceChange(
    deviceId: string, to: DeviceStatus, from: DeviceStatus[], actor: string, details: Record<string, unknown>,
    certificates: NonNullable<NonNullable<Parameters<Registry['applyStatusChange']>[0]['device']>['certificates']>,
    auditType = `device.${to}`,
    options: DeviceChangeOptions = {},
    decommission?: Decommission,
  ): Promise<FeedEntry[]> {
    const device = await this.registry.getDevice(deviceId);
    if (!from.includes(device.status)) {
      throw new KakuinError('KAKUIN_E_DEVICE_STATE', `device ${device.id} is ${device.status}; it cannot become ${to}`);
    }
    const entries = await this.registry.applyStatusChange({
      device: { id: device.id, from, to, certificates, ...(decommission !== undefined && { decommission }) },
      certificates: [],
      audit: [{ type: auditType, actor, deviceId: device.id, details: { ...options.details, ...details, previousStatus: device.status } }],
      ...(options.jobStep !== undefined && { jobStep: options.jobStep }),
    });
    await this.afterChange(entries);
    return entries;
  }

  private now(): Date {
    return new Date(Math.floor(this.clock().getTime() / 1000) * 1000);
  }

  private invalidityDate(value: unknown): Date | undefined {
    if (value === undefined || value === null) return undefined;
    const d = typeof value === 'string' ? new Date(value) : undefined;
    if (!d || Number.isNaN(d.getTime())) throw new KakuinError('KAKUIN_E_VALIDATION', 'invalidityDate must be an ISO 8601 time');
    // RFC 5280 §5.3.2: the date on which it is known or suspected that the key was compromised —
    // a date in the future cannot be known.
    if (d.getTime() > this.clock().getTime() + 60_000) throw new KakuinError('KAKUIN_E_VALIDATION', 'invalidityDate must not be in the future');
    return new Date(Math.floor(d.getTime() / 1000) * 1000);
  }
}

export function revocationReason(value: unknown): CrlReason {
  if (value === undefined) return 'unspecified';
  if (typeof value !== 'string' || !REVOCATION_REASONS.includes(value as CrlReason)) {
    throw new KakuinError('KAKUIN_E_VALIDATION',
      `reason must be one of ${REVOCATION_REASONS.join(', ')} (suspend a device for certificateHold)`);
  }
  return value as CrlReason;
}
