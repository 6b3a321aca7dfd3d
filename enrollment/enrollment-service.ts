/**
 * The one enrollment core behind REST (`POST /api/v1/enroll`), bulk batches and EST (DESIGN.md
 * "Core flows" 2): find the pre-registered device within the caller's manufacturer, refuse
 * unregistered devices and clones (with an audit event each), return the existing certificate when
 * the same key asks again (idempotent retries), issue otherwise, and supersede the old identity when
 * a re-enrollment was allowed.
 *
 * A request may name a certificate profile (`device` unless it does); the manufacturer must be
 * allowed it (registry.getManufacturerProfiles; no list: `device` only). With `overlapHours` > 0 the
 * superseded certificate is a pending supersession in the registry, revoked by the sweeper
 * (supersede-sweeper.ts), which this service starts (`start()`, called by the composition root) and stops.
 */
import type { KeyObject } from 'node:crypto';
import { parseCertificate, readCsr, type ParsedCsr } from '../pkix/index.js';
import type { CertificateRecord, Device, Registry } from '../registry/port.js';
import { hasCode, isKakuinError, KakuinError } from '../errors/index.js';
import type { DeviceCertificateIssuer } from '../ca/issuance.js';
import { publicKeySha256 } from '../ca/records.js';
import type { RevocationService } from '../ca/revocation.js';
import { validateSerialNumber } from '../ca/devices.js';
import { generateDeviceKey, toEncryptedPemBundle, toPkcs12, validateKeygen } from './server-keygen.js';
import type { StationRateLimit } from './station-rate-limit.js';
import type { StationQuota } from './station-quota.js';
import { SupersedeSweeper } from './supersede-sweeper.js';
import { readOnce, type SharedReads } from './shared-reads.js';
import { DEVICE_PROFILE_NAME } from '../ca/profiles.js';

const OID_SERIAL_NUMBER = '2.5.4.5';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';

export interface EnrollmentOptions {
  /** Hours the superseded certificate stays good after a re-enrollment (0: revoked at once). */
  overlapHours: number;
  clock?: () => Date;
  /** Per-station issuance quotas (stations only). */
  stationQuota?: StationQuota;
  /** Per-station enrollment rate limit (stations only; admins are not limited). */
  stationRateLimit?: StationRateLimit;
  /** Reports failures of a delayed supersession (the request that caused it has been answered). */
  onBackgroundError?: (e: unknown) => void;
  /** How often the supersede sweeper looks for due rows (default 60 s; sooner for rows this process scheduled). */
  sweepIntervalMs?: number;
}

export interface EnrollRequest {
  /** The manufacturer whose devices the caller may enroll (a station's own). */
  manufacturerId: string;
  /** The device's serial number; for EST it comes from the CSR subject. */
  serialNumber?: unknown;
  csr: Buffer | string;
  /** `station:<id>` or `token:<name>` */
  actor: string;
  /** A certificate profile name; default `device`. */
  profile?: unknown;
}

export interface KeygenEnrollRequest {
  manufacturerId: string;
  serialNumber: unknown;
  keygen: unknown;
  actor: string;
  profile?: unknown;
}

export interface KeygenEnrollment extends Enrollment {
  /** PKCS#12 (key, certificate, chain), protected by the request's password; the key is not kept. */
  pkcs12?: Buffer;
  /** Or, with `format: "pem"`, the encrypted PKCS#8 key and the chain as PEM. */
  pem?: string;
}

export interface Enrollment {
  device: Device;
  certificate: CertificateRecord;
  der: Buffer;
  chain: Buffer[];
  /** True when an earlier certificate for the same device and key was returned (nothing issued). */
  existing: boolean;
  /** Serials of earlier certificates this one supersedes (revoked at once or after the overlap). */
  supersedes: string[];
}

export class EnrollmentService {
  /** Enrollments of one device run one after the other, so two requests cannot both pass the clone check. */
  private readonly deviceLocks = new Map<string, Promise<unknown>>();
  readonly sweeper: SupersedeSweeper;
  /** Outcomes of enrollment requests in this process since it started (GET /metrics). */
  readonly outcomes = { issued: 0, existing: 0, refused: new Map<string, number>() };

  constructor(
    private readonly registry: Registry,
    private readonly issuer: DeviceCertificateIssuer,
    private readonly revocation: RevocationService,
    private readonly options: EnrollmentOptions,
  ) {
    this.sweeper = new SupersedeSweeper(registry, revocation, {
      intervalMs: options.sweepIntervalMs ?? 60_000, clock: options.clock, onError: options.onBackgroundError,
    });
  }

  /**
   * Starts the supersede sweeper; the composition root calls it once the service is wired. It
   * sweeps at once too: rows that fell due while no process ran are revoked now.
   */
  start(): void {
    this.sweeper.start();
  }

  get chain(): Buffer[] {
    return this.issuer.chain;
  }

  /** The configured device profiles (`device` first). */
  profileNames(): string[] {
    return this.issuer.profileNames();
  }

  /**
   * `shared`: reads the items of one batch share (bulk batches): the manufacturer's allowed
   * profiles and the station's quota setting are read once per batch, so a change of them applies
   * from the next batch on (the count of issuances against the quota is read per item).
   */
  enroll(request: EnrollRequest, shared?: SharedReads): Promise<Enrollment> {
    return this.tracked(() => this.enrollOnce(request, shared), (r) => r);
  }

  private async enrollOnce(request: EnrollRequest, shared?: SharedReads): Promise<Enrollment> {
    this.limit(request.actor);
    const profile = await this.allowedProfile(request.manufacturerId, request.profile, shared);
    const csr = readCsr(request.csr);
    const serialNumber = request.serialNumber === undefined ? subjectSerialNumber(csr) : validateSerialNumber(request.serialNumber);
    const [device] = await this.registry.findDevices({ manufacturerId: request.manufacturerId, serialNumber, limit: 1 });
    if (!device) {
      await this.refuse(request, undefined, 'unregistered', { serialNumber });
      throw new KakuinError('KAKUIN_E_DEVICE_NOT_REGISTERED', `no device with serial number ${JSON.stringify(serialNumber)} was pre-registered by this manufacturer`);
    }
    return this.serialized(device.id, () => this.enrollDevice(device, csr, { ...request, profile }, false, shared));
  }

  /**
   * The profile a request may use: a configured one (KAKUIN_E_PROFILE_UNKNOWN) that the
   * manufacturer is allowed (KAKUIN_E_PROFILE_NOT_ALLOWED); `device` when none is named.
   */
  async allowedProfile(manufacturerId: string, requested: unknown, shared?: SharedReads): Promise<string> {
    if (requested === undefined || requested === null) requested = DEVICE_PROFILE_NAME;
    if (typeof requested !== 'string' || requested.length === 0 || requested.length > 64) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'profile must be a profile name');
    }
    if (!this.issuer.profileNames().includes(requested)) {
      throw new KakuinError('KAKUIN_E_PROFILE_UNKNOWN', `no certificate profile named ${JSON.stringify(requested)} is configured`);
    }
    const allowed = (await this.manufacturerProfiles(manufacturerId, shared)) ?? [DEVICE_PROFILE_NAME];
    if (!allowed.includes(requested)) {
      throw new KakuinError('KAKUIN_E_PROFILE_NOT_ALLOWED', `the manufacturer is not allowed the ${JSON.stringify(requested)} profile`);
    }
    return requested;
  }

  private manufacturerProfiles(manufacturerId: string, shared: SharedReads | undefined): Promise<string[] | undefined> {
    return readOnce(shared?.profiles, manufacturerId, () => this.registry.getManufacturerProfiles(manufacturerId));
  }

  /**
   * Server-side key generation. The key of an earlier keygen enrollment was not kept, so a retried
   * keygen item cannot get "the same" answer: it gets a new key pair, and the earlier keygen
   * certificate is superseded. A device whose live certificate came from its own CSR is still a clone case.
   */
  async enrollWithKeygen(request: KeygenEnrollRequest): Promise<KeygenEnrollment> {
    let keygen: ReturnType<typeof validateKeygen>;
    let serialNumber: string;
    try {
      keygen = validateKeygen(request.keygen);
      serialNumber = validateSerialNumber(request.serialNumber);
    } catch (e) {
      this.countRefusal(e);
      throw e;
    }
    const { enrollment, privateKey } = await this.enrollWithServerKey({ ...request, serialNumber, profile: request.profile });
    const certificates = [enrollment.der, ...enrollment.chain];
    return keygen.format === 'pem'
      ? { ...enrollment, pem: toEncryptedPemBundle(privateKey, certificates, keygen.password) }
      : { ...enrollment, pkcs12: toPkcs12(privateKey, certificates, keygen.password, enrollment.device.serialNumber, keygen.legacy) };
  }

  /** The core of server-side key generation; the caller packages the key (PKCS#12, or PKCS#8 for EST serverkeygen). */
  enrollWithServerKey(request: { manufacturerId: string; serialNumber: string; actor: string; profile?: unknown }): Promise<{ enrollment: Enrollment; privateKey: KeyObject }> {
    return this.tracked(() => this.enrollWithServerKeyOnce(request), (r) => r.enrollment);
  }

  private async enrollWithServerKeyOnce(request: { manufacturerId: string; serialNumber: string; actor: string; profile?: unknown }): Promise<{ enrollment: Enrollment; privateKey: KeyObject }> {
    this.limit(request.actor);
    const profile = await this.allowedProfile(request.manufacturerId, request.profile);
    const serialNumber = request.serialNumber;
    const [device] = await this.registry.findDevices({ manufacturerId: request.manufacturerId, serialNumber, limit: 1 });
    if (!device) {
      await this.refuse(request, undefined, 'unregistered', { serialNumber });
      throw new KakuinError('KAKUIN_E_DEVICE_NOT_REGISTERED', `no device with serial number ${JSON.stringify(serialNumber)} was pre-registered by this manufacturer`);
    }
    const generated = await generateDeviceKey(device.serialNumber);
    // The keygen marker is in the certificate.issued event, committed with the certificate: a crash
    // between issuing and marking cannot make a retried keygen item look like a clone.
    const result = await this.serialized(device.id, () => this.enrollDevice(device, readCsr(generated.csrDer), { ...request, profile }, true));
    return { enrollment: result, privateKey: generated.privateKey };
  }

  /**
   * EST simplereenroll (RFC 7030 §4.2.2): a device renews with its current certificate (mTLS). The
   * certificate must be kakuin's record of it, still good, of a live device; the CSR must carry the
   * same subject (and, if it has one, the same subjectAltName). The new certificate supersedes the old.
   */
  reenrollWithCertificate(currentDer: Buffer, csrDer: Buffer, via: 'est-simplereenroll' | 'scep-renewalreq' = 'est-simplereenroll'): Promise<Enrollment> {
    return this.tracked(() => this.reenrollOnce(currentDer, csrDer, via), (r) => r);
  }

  private async reenrollOnce(currentDer: Buffer, csrDer: Buffer, via: string): Promise<Enrollment> {
    const current = parseCertificate(currentDer);
    let record: CertificateRecord;
    try {
      record = await this.registry.getCertificate(current.serialHex);
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_CERTIFICATE_NOT_FOUND')) throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'the client certificate is not one kakuin issued');
      throw e;
    }
    if (!record.der.equals(currentDer) || record.deviceId === undefined) throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'the client certificate is not a device certificate kakuin issued');
    if (record.status !== 'good') throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', `the client certificate is ${record.status}`);
    const csr = readCsr(csrDer);
    const sameSubject = JSON.stringify(csr.subject.attributes.map((a) => [a.oid, a.value])) === JSON.stringify(current.subject.attributes.map((a) => [a.oid, a.value]));
    if (!sameSubject) throw new KakuinError('KAKUIN_E_CSR_SUBJECT_MISMATCH', 'RFC 7030 §4.2.2: the CSR subject must be identical to the current certificate\'s');
    const csrSan = csr.requestedExtensions.find((x) => x.oid === OID_SUBJECT_ALT_NAME);
    const certSan = current.extensions.find((x) => x.oid === OID_SUBJECT_ALT_NAME);
    if (csrSan && (!certSan || !csrSan.value.equals(certSan.value))) {
      throw new KakuinError('KAKUIN_E_CSR_SUBJECT_MISMATCH', 'RFC 7030 §4.2.2: the CSR subjectAltName must be identical to the current certificate\'s');
    }
    const deviceId = record.deviceId;
    const actor = `device:${deviceId}`;
    return this.serialized(deviceId, async () => {
      // A retry after a crash between issuing and superseding (the current certificate is still
      // good): the certificate issued then, for this key, after the current one, is the answer.
      // Nothing is issued twice.
      const keyHash = publicKeySha256(csr.spki.rawDer);
      const certificates = await this.registry.listCertificatesOfDevice(deviceId);
      const newer = certificates.slice(certificates.findIndex((c) => c.serialHex === record.serialHex) + 1);
      const answered = newer.find((c) => c.status === 'good' && c.publicKeySha256 === keyHash);
      const issued = answered === undefined
        ? await this.issuer.issue({ deviceId, csr: csr.rawDer, actor, reenrollment: 'granted' })
        : { record: answered, der: answered.der, chain: await this.issuer.chainOf(answered.issuerId) };
      const device = await this.registry.getDevice(deviceId);
      const supersedes = issued.record.serialHex === record.serialHex ? [] : [record];
      await this.registry.appendAuditEvent({
        type: 'enrollment.reenrolled', actor, deviceId, serialHex: issued.record.serialHex,
        details: { supersedes: supersedes.map((c) => c.serialHex), overlapHours: this.options.overlapHours, via, ...(answered && { retried: true }) },
      });
      // The overlap counts from the new certificate's issuance: a retry must not extend it.
      await this.supersede(supersedes, actor, issued.record.createdAt);
      return { device, certificate: issued.record, der: issued.der, chain: issued.chain, existing: answered !== undefined, supersedes: supersedes.map((c) => c.serialHex) };
    });
  }

  /** Counts the outcome of one enrollment request (issued, an earlier certificate returned, or refused by code). */
  private async tracked<T>(run: () => Promise<T>, enrollmentOf: (result: T) => Enrollment): Promise<T> {
    try {
      const result = await run();
      if (enrollmentOf(result).existing) this.outcomes.existing++;
      else this.outcomes.issued++;
      return result;
    } catch (e) {
      this.countRefusal(e);
      throw e;
    }
  }

  private countRefusal(e: unknown): void {
    const code = isKakuinError(e) ? e.code : 'KAKUIN_E_INTERNAL';
    this.outcomes.refused.set(code, (this.outcomes.refused.get(code) ?? 0) + 1);
  }

  /** Stops the supersede sweeper (pending supersessions stay in the registry for the next start). */
  close(): void {
    this.sweeper.close();
  }

  private async enrollDevice(
    device: Device, csr: ParsedCsr, request: { manufacturerId: string; actor: string; profile: string }, keygen = false, shared?: SharedReads,
  ): Promise<Enrollment> {
    const keyHash = publicKeySha256(csr.spki.rawDer);
    const certificates = await this.registry.listCertificatesOfDevice(device.id);
    const live = certificates.filter((c) => c.status !== 'revoked');
    // A retry (dropped connection, crashed server) of the same key for the same device gets the same
    // certificate: nothing new is issued.
    const same = live.find((c) => c.publicKeySha256 === keyHash);
    if (same) {
      // Issued under an allowance but interrupted (a crash) before superseding the older ones: the
      // retry finishes it. The `enrollment.reenrolled` event is written last, as the mark of a finished one.
      const older = live.slice(0, live.indexOf(same));
      const finish = older.length > 0
        && (await this.registry.getReenrollmentAllowance(device.id)) !== undefined
        && !(await this.reenrollmentFinished(device.id, same.serialHex));
      if (finish) await this.finishReenrollment(device, same, older, request.actor, false);
      return { device, certificate: same, der: same.der, chain: await this.issuer.chainOf(same.issuerId), existing: true, supersedes: finish ? older.map((c) => c.serialHex) : [] };
    }
    let supersedes: CertificateRecord[] = [];
    if (live.length > 0) {
      const until = await this.registry.getReenrollmentAllowance(device.id);
      const allowed = (until !== undefined && until.getTime() >= this.now().getTime()) || (keygen && await this.allFromKeygen(device.id, live));
      if (!allowed) {
        await this.refuse(request, device, 'already-enrolled', { serialNumber: device.serialNumber, activeSerials: live.map((c) => c.serialHex) });
        throw new KakuinError('KAKUIN_E_DEVICE_ALREADY_ENROLLED',
          `device ${device.serialNumber} already has an active identity; a re-enrollment must be allowed first (POST /api/v1/devices/{id}/allow-reenrollment)`);
      }
      supersedes = live;
    }
    let issued;
    const release = request.actor.startsWith('station:') && this.options.stationQuota
      ? await this.options.stationQuota.reserve(request.actor.slice('station:'.length), shared?.stations) : undefined;
    try {
      issued = await this.issuer.issue({
        deviceId: device.id, device, csr, actor: request.actor, profile: request.profile, reenrollment: 'granted', ...(keygen && { auditDetails: { keygen: true } }),
      });
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_PUBLIC_KEY_IN_USE')) {
        await this.refuse(request, device, 'public-key-in-use', { serialNumber: device.serialNumber, publicKeySha256: keyHash });
      }
      throw e;
    } finally {
      release?.();
    }
    if (supersedes.length > 0) await this.finishReenrollment(device, issued.record, supersedes, request.actor, keygen);
    return {
      device, certificate: issued.record, der: issued.der, chain: issued.chain, existing: false, supersedes: supersedes.map((c) => c.serialHex),
    };
  }

  /**
   * Supersede (revoke now, or record the pending revocation), then use up the allowance, then the
   * `enrollment.reenrolled` event: in that order, so that a crash before the supersession leaves the
   * allowance and no mark, and the retry of the same CSR finishes the job.
   */
  private async finishReenrollment(device: Device, issued: CertificateRecord, supersedes: CertificateRecord[], actor: string, keygen: boolean): Promise<void> {
    const newSerialHex = issued.serialHex;
    await this.supersede(supersedes, actor, issued.createdAt);
    if (!keygen || !(await this.allFromKeygen(device.id, supersedes))) await this.registry.consumeReenrollmentAllowance(device.id);
    await this.registry.appendAuditEvent({
      type: 'enrollment.reenrolled', actor, deviceId: device.id, serialHex: newSerialHex,
      details: { supersedes: supersedes.map((c) => c.serialHex), overlapHours: this.options.overlapHours },
    });
  }

  private async reenrollmentFinished(deviceId: string, serialHex: string): Promise<boolean> {
    const events = await this.registry.listAuditEvents({ deviceId, type: 'enrollment.reenrolled', limit: 1000 });
    return events.some((e) => e.serialHex === serialHex);
  }

  /** Revoke `old` as superseded now, or `enrollment.overlapHours` after `since` (the new certificate's issuance). */
  private async supersede(old: CertificateRecord[], actor: string, since: Date): Promise<void> {
    const revokeAll = async () => {
      for (const c of old) {
        try {
          await this.revocation.revokeCertificate(c.serialHex, { reason: 'superseded' }, actor);
        } catch (e) {
          // Revoked meanwhile by an operator: nothing left to do.
          if (!hasCode(e, 'KAKUIN_E_CERTIFICATE_STATE')) throw e;
        }
      }
    };
    const at = new Date(since.getTime() + this.options.overlapHours * 3_600_000);
    if (this.options.overlapHours <= 0 || at.getTime() <= this.now().getTime()) {
      await revokeAll();
      return;
    }
    await this.registry.scheduleSupersede(old.map((c) => ({ serialHex: c.serialHex, at, actor })));
    this.sweeper.wakeAt(at);
  }

  private limit(actor: string): void {
    if (actor.startsWith('station:')) this.options.stationRateLimit?.take(actor.slice('station:'.length));
  }

  /** Whether each certificate was made by server-side keygen: its certificate.issued event says `keygen: true`. */
  private async allFromKeygen(deviceId: string, certificates: CertificateRecord[]): Promise<boolean> {
    const [issued, older] = await Promise.all([
      this.registry.listAuditEvents({ deviceId, type: 'certificate.issued', limit: 1000 }),
      // Certificates issued before the marker moved into the issuance transaction.
      this.registry.listAuditEvents({ deviceId, type: 'enrollment.server-keygen', limit: 1000 }),
    ]);
    const fromKeygen = new Set([...issued.filter((e) => e.details?.keygen === true), ...older].map((e) => e.serialHex));
    return certificates.every((c) => fromKeygen.has(c.serialHex));
  }

  private async refuse(request: { manufacturerId: string; actor: string }, device: Device | undefined, reason: string, details: Record<string, unknown>): Promise<void> {
    await this.registry.appendAuditEvent({
      type: 'enrollment.refused', actor: request.actor, deviceId: device?.id,
      details: { reason, manufacturerId: request.manufacturerId, ...details },
    });
  }

  private async serialized<T>(deviceId: string, fn: () => Promise<T>): Promise<T> {
    const before = this.deviceLocks.get(deviceId) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.deviceLocks.set(deviceId, settled);
    try {
      return await run;
    } finally {
      if (this.deviceLocks.get(deviceId) === settled) this.deviceLocks.delete(deviceId);
    }
  }

  private now(): Date {
    return (this.options.clock ?? (() => new Date()))();
  }
}

/** EST finds the device by the CSR subject's serialNumber (RFC 7030 leaves the mapping to the server). */
export function subjectSerialNumber(csr: ParsedCsr): string {
  const attr = csr.subject.attributes.find((a) => a.oid === OID_SERIAL_NUMBER);
  if (!attr) throw new KakuinError('KAKUIN_E_VALIDATION', 'the CSR subject has no serialNumber attribute naming the device');
  return validateSerialNumber(attr.value);
}

/** `{code, message}` of an item's failure; unexpected errors are not described to the client. */
export function itemError(e: unknown): { code: string; message: string } {
  if (isKakuinError(e)) return e.toJSON();
  return { code: 'KAKUIN_E_INTERNAL', message: 'internal error' };
}
