/**
 * Device certificate issuance: the measured hot path (DESIGN.md "Hot paths").
 *
 * Two steps, as boulder does it: prepare the to-be-signed body from the device record (never from
 * the CSR: a request's names and extensions never reach a certificate), then sign once. The
 * certificate is committed to the registry before it is returned to anyone.
 */
import {
  authorityInfoAccessExt, authorityKeyIdentifierExt, basicConstraintsExt, checkKeyPolicy, crlDistributionPointsExt, encodeName,
  extKeyUsageExt, keyIdentifier, keyUsageExt, readCsr, subjectAltNameExt, subjectKeyIdentifierExt,
  type GeneralName, type NameAttribute, type ParsedCsr,
} from '../pkix/index.js';
import type { CertificateRecord, Device, Registry } from '../registry/port.js';
import { hasCode, KakuinError } from '../errors/index.js';
import { signCertificate, tbsFor, type LoadedIssuer } from './issuer.js';
import { DEVICE_PROFILE_NAME, deviceUri, validityWindow, type DeviceProfilePolicy, type DeviceProfiles } from './profiles.js';
import { issuanceCertificateFields, NO_WELL_DEFINED_EXPIRATION, publicKeySha256 } from './records.js';
import { createProofOfPossessionVerifier, type ProofOfPossessionVerifier } from './pop-verifier.js';
import { newCertificateSerial, serialToHex } from './serial.js';
import type { PublicUrls } from './urls.js';
import type { RevocationService } from './revocation.js';

const OID_SERIAL_NUMBER = '2.5.4.5';

/** Device states that may receive a certificate; suspended, revoked and retired devices may not. */
const ISSUABLE_STATES = new Set<Device['status']>(['registered', 'active']);

export interface IssueDeviceCertificateRequest {
  deviceId: string;
  /** PKCS#10 request, PEM or DER, or already parsed by the caller (it is not parsed twice). */
  csr: Buffer | string | ParsedCsr;
  /**
   * The device record as the caller has just read it, so it is not read again. Its state is checked
   * here and once more inside the transaction that records the certificate, so a record that went
   * stale meanwhile (revoked, suspended) still gets no certificate.
   */
  device?: Device;
  /** Who asked, for the audit event: `token:<name>`, `cli`, ... */
  actor: string;
  /** A named device profile (`profiles`); default `device`. Whether the caller may use it is the caller's check. */
  profile?: string;
  /** Added to the `certificate.issued` audit event, in the issuance's transaction (e.g. `keygen: true`). */
  auditDetails?: Record<string, unknown>;
  /**
   * One live identity per device (issue 13): how a new key is treated while the device has a live
   * (good or held) certificate. `allowance` (default): only while a re-enrollment allowance is pending
   * (POST /api/v1/devices/{id}/allow-reenrollment), and the live certificates are returned in
   * `supersedes` for the caller to supersede (issueSuperseding does it); `never`: refused even then
   * (the legacy migration, a first certificate only); `granted`: the caller applied the rule itself
   * (the enrollment service with its allowance, keygen and overlap rules; EST simplereenroll with the
   * current certificate), so nothing is read here.
   */
  reenrollment?: 'allowance' | 'never' | 'granted';
  /**
   * The caller checked proof of possession itself, for a request that is no PKCS#10 (a CMP CRMF
   * CertReqMsg, whose POPOSigningKey signs the CertRequest: RFC 4211 §4.1); the key policy is still
   * applied here.
   */
  proofOfPossession?: 'verified-by-caller';
}

export interface IssuedCertificate {
  record: CertificateRecord;
  der: Buffer;
  /** Issuing CA first, root last. */
  chain: Buffer[];
  /** True when the device's live certificate for the same public key was returned (nothing issued). */
  existing: boolean;
  /** Live certificates of the device this one replaces under a re-enrollment allowance (the caller supersedes them). */
  supersedes: CertificateRecord[];
}

export class DeviceCertificateIssuer {
  /** Extensions identical in every certificate of this issuer, encoded once. */
  private readonly fixedExtensionsBefore: Buffer[];
  private readonly fixedExtensionsAfter: Buffer[];
  private readonly manufacturerNames = new Map<string, string>();
  private readonly chains = new Map<string, Promise<Buffer[]>>();
  /** Issuances of one device run one after the other, so two new keys cannot both pass the one-identity check. */
  private readonly deviceLocks = new Map<string, Promise<unknown>>();
  /** Device certificates this issuer recorded since the process started (GET /metrics). */
  issuedCount = 0;
  constructor(
    private readonly registry: Registry,
    private readonly issuer: LoadedIssuer,
    readonly chain: Buffer[],
    urls: PublicUrls,
    private readonly profile: DeviceProfilePolicy,
    private readonly verifier: ProofOfPossessionVerifier = createProofOfPossessionVerifier(0),
    private readonly clock: () => Date = () => new Date(),
    /** Named device profiles beside `device` (the composition root builds them from `ca.profiles`). */
    readonly profiles: DeviceProfiles = new Map(),
  ) {
    this.fixedExtensionsBefore = [
      basicConstraintsExt({ ca: false }),
      keyUsageExt(['digitalSignature']),
      extKeyUsageExt(['clientAuth']),
    ];
    this.fixedExtensionsAfter = [
      authorityKeyIdentifierExt(issuer.keyId),
      crlDistributionPointsExt([urls.crl(issuer.id)]),
      authorityInfoAccessExt({ ocsp: [urls.ocsp], caIssuers: [urls.caIssuers(issuer.id)] }),
    ];
  }

  get issuerId(): string {
    return this.issuer.id;
  }

  /**
   * The chain (issuing CA first, root last) of a certificate issued by `issuerId`: this issuer's
   * own chain, or, for a certificate of an earlier device CA (before a rollover), that CA's
   * certificate and its parents from the registry. Issuers never change, so chains are cached.
   */
  chainOf(issuerId: string): Promise<Buffer[]> {
    if (issuerId === this.issuer.id) return Promise.resolve(this.chain);
    let chain = this.chains.get(issuerId);
    if (chain === undefined) {
      chain = this.readChain(issuerId);
      this.chains.set(issuerId, chain);
      chain.catch(() => this.chains.delete(issuerId));
    }
    return chain;
  }

  private async readChain(issuerId: string): Promise<Buffer[]> {
    const chain: Buffer[] = [];
    const seen = new Set<string>();
    for (let id: string | undefined = issuerId; id !== undefined; ) {
      if (seen.has(id)) throw new KakuinError('KAKUIN_E_INTERNAL', `the issuer records loop at ${JSON.stringify(id)}`);
      seen.add(id);
      const record = await this.registry.getIssuer(id);
      // CAs only: an OCSP responder's record is not a CA (and changes at every responder rollover).
      if (record.kind === 'ocsp-signer') throw new KakuinError('KAKUIN_E_ISSUER_NOT_FOUND', `${JSON.stringify(id)} is not a CA`);
      chain.push(record.certificateDer);
      id = record.parentId;
    }
    return chain;
  }

  /** The names of the device profiles this issuer can shape. */
  profileNames(): string[] {
    return [DEVICE_PROFILE_NAME, ...[...this.profiles.keys()].filter((n) => n !== DEVICE_PROFILE_NAME)];
  }

  /**
   * Issue, and when a re-enrollment allowance let a new key in, supersede the device's earlier
   * certificates at once (revoked, reason superseded) and use the allowance up: the callers without
   * an overlap policy of their own (the management API, `kakuin issue`).
   */
  async issueSuperseding(request: IssueDeviceCertificateRequest, revocation: RevocationService): Promise<IssuedCertificate> {
    const issued = await this.issue(request);
    if (issued.supersedes.length === 0) return issued;
    for (const old of issued.supersedes) {
      try {
        await revocation.revokeCertificate(old.serialHex, { reason: 'superseded' }, request.actor);
      } catch (e) {
        // Revoked meanwhile by an operator: nothing left to do.
        if (!hasCode(e, 'KAKUIN_E_CERTIFICATE_STATE')) throw e;
      }
    }
    await this.registry.consumeReenrollmentAllowance(request.deviceId);
    await this.registry.appendAuditEvent({
      type: 'enrollment.reenrolled', actor: request.actor, deviceId: request.deviceId, serialHex: issued.record.serialHex,
      details: { supersedes: issued.supersedes.map((c) => c.serialHex), overlapHours: 0 },
    });
    return issued;
  }

  async issue(request: IssueDeviceCertificateRequest): Promise<IssuedCertificate> {
    if (request.reenrollment === 'granted') return this.issueOnce(request, []);
    // In-process serialization per device; the enrollment service serializes its own callers the same way.
    const before = this.deviceLocks.get(request.deviceId) ?? Promise.resolve();
    const run = before.then(() => this.issueOneIdentity(request), () => this.issueOneIdentity(request));
    const settled = run.catch(() => undefined);
    this.deviceLocks.set(request.deviceId, settled);
    try {
      return await run;
    } finally {
      if (this.deviceLocks.get(request.deviceId) === settled) this.deviceLocks.delete(request.deviceId);
    }
  }

  /**
   * The one-live-identity rule: the same public key as a live certificate of the device gets that
   * certificate back (a retry; nothing is issued); another key while one is live is a clone case
   * (KAKUIN_E_DEVICE_ALREADY_ENROLLED) unless a re-enrollment was allowed.
   */
  private async issueOneIdentity(request: IssueDeviceCertificateRequest): Promise<IssuedCertificate> {
    const csr = isParsedCsr(request.csr) ? request.csr : readCsr(request.csr);
    const live = (await this.registry.listCertificatesOfDevice(request.deviceId)).filter((c) => c.status !== 'revoked');
    const keyHash = publicKeySha256(csr.spki.rawDer);
    const same = live.find((c) => c.publicKeySha256 === keyHash);
    if (same) {
      const device = request.device?.id === request.deviceId ? request.device : await this.registry.getDevice(request.deviceId);
      if (!ISSUABLE_STATES.has(device.status)) {
        throw new KakuinError('KAKUIN_E_DEVICE_STATE', `device ${device.id} is ${device.status}; only registered or active devices get certificates`);
      }
      return { record: same, der: same.der, chain: await this.chainOf(same.issuerId), existing: true, supersedes: [] };
    }
    if (live.length > 0) {
      const until = request.reenrollment === 'never' ? undefined : await this.registry.getReenrollmentAllowance(request.deviceId);
      if (until === undefined || until.getTime() < this.clock().getTime()) {
        throw new KakuinError('KAKUIN_E_DEVICE_ALREADY_ENROLLED', request.reenrollment === 'never'
          ? `device ${request.deviceId} already has a live certificate; a new key goes through a re-enrollment (POST /api/v1/devices/{id}/allow-reenrollment, then the CA API)`
          : `device ${request.deviceId} already has a live certificate for another key; allow a re-enrollment first (POST /api/v1/devices/{id}/allow-reenrollment)`);
      }
    }
    return this.issueOnce({ ...request, csr }, live);
  }

  private async issueOnce(request: IssueDeviceCertificateRequest, supersedes: CertificateRecord[]): Promise<IssuedCertificate> {
    const profileName = request.profile ?? DEVICE_PROFILE_NAME;
    const policy = profileName === DEVICE_PROFILE_NAME ? this.profile : this.profiles.get(profileName);
    if (policy === undefined) throw new KakuinError('KAKUIN_E_PROFILE_UNKNOWN', `no certificate profile named ${JSON.stringify(profileName)} is configured`);
    // Parse, then proof of possession and key policy (in the verifier pool) while the device
    // record is read: together they refuse most bad input before anything is built.
    const csr = isParsedCsr(request.csr) ? request.csr : readCsr(request.csr);
    const known = request.device !== undefined && request.device.id === request.deviceId ? request.device : undefined;
    const pop = request.proofOfPossession === 'verified-by-caller' ? Promise.resolve(checkKeyPolicy(csr.spki)) : this.verifier.verify(csr.rawDer);
    const [device] = await Promise.all([known ?? this.registry.getDevice(request.deviceId), pop]);
    if (!ISSUABLE_STATES.has(device.status)) {
      throw new KakuinError('KAKUIN_E_DEVICE_STATE', `device ${device.id} is ${device.status}; only registered or active devices get certificates`);
    }
    checkSubjectAgainstDevice(csr, device);
    // A public key bound to another device is refused (KAKUIN_E_PUBLIC_KEY_IN_USE) by the
    // transaction that records the certificate, against the binding's primary key: a read here
    // first would only repeat that check, once per issuance, and could not replace it.
    const subjectAttrs: NameAttribute[] = [
      { type: 'O', value: await this.manufacturerName(device.manufacturerId) },
      { type: 'serialNumber', value: device.serialNumber },
    ];
    if (policy.commonName === 'serialNumber') subjectAttrs.push({ type: 'CN', value: device.serialNumber });
    else if (policy.commonName === 'deviceId') subjectAttrs.push({ type: 'CN', value: device.id });
    const subject = encodeName(subjectAttrs);
    const names: GeneralName[] = [{ uri: deviceUri(device.id) }];
    if (device.hardwareModuleName) {
      names.push({ hardwareModuleName: { hwType: device.hardwareModuleName.hwType, hwSerial: Buffer.from(device.hardwareModuleName.hwSerialHex, 'hex') } });
    }
    const variable = [subjectAltNameExt(names), subjectKeyIdentifierExt(keyIdentifier(csr.spki))];
    const extensions = [...this.fixedExtensionsBefore, ...variable, ...this.fixedExtensionsAfter];
    const { notBefore, notAfter } = validityWindow(policy, this.clock());

    // A serial collision (127 × 2^120 values) is all but impossible; one retry with a new serial
    // covers it without a special path.
    for (let attempt = 0; ; attempt++) {
      const serial = newCertificateSerial();
      const tbs = tbsFor(this.issuer, { serial, subject, notBefore, notAfter, spki: csr.spki.rawDer, extensions });
      const der = await signCertificate(this.issuer, tbs);
      const serialHex = serialToHex(serial);
      try {
        const record = await this.registry.recordIssuance({
          certificate: issuanceCertificateFields({
            serialHex, issuerId: this.issuer.id, deviceId: device.id, profile: profileName, der, spkiDer: csr.spki.rawDer,
            notBefore, notAfter: notAfter === 'no-well-defined-expiration' ? NO_WELL_DEFINED_EXPIRATION : notAfter,
          }),
          audit: { type: 'certificate.issued', actor: request.actor, deviceId: device.id, serialHex, details: { ...request.auditDetails, profile: profileName, issuerId: this.issuer.id } },
        });
        this.issuedCount++;
        return { record, der, chain: this.chain, existing: false, supersedes };
      } catch (e) {
        if (attempt === 0 && hasCode(e, 'KAKUIN_E_SERIAL_EXISTS')) continue;
        throw e;
      }
    }
  }

  private async manufacturerName(id: string): Promise<string> {
    let name = this.manufacturerNames.get(id);
    if (name === undefined) {
      name = (await this.registry.getManufacturer(id)).name;
      this.manufacturerNames.set(id, name);
    }
    return name;
  }
}

function isParsedCsr(csr: Buffer | string | ParsedCsr): csr is ParsedCsr {
  return typeof csr === 'object' && !Buffer.isBuffer(csr) && Buffer.isBuffer((csr as ParsedCsr).rawDer);
}

/**
 * The subject comes from the device record, but a CSR that names a different device is a sign of
 * a mix-up at the station (or worse), so it is refused rather than silently corrected.
 */
function checkSubjectAgainstDevice(csr: ParsedCsr, device: Device): void {
  for (const attr of csr.subject.attributes) {
    if (attr.oid === OID_SERIAL_NUMBER && attr.value !== device.serialNumber) {
      throw new KakuinError('KAKUIN_E_CSR_SUBJECT_MISMATCH',
        `the CSR subject names serialNumber ${JSON.stringify(attr.value)} but the device's serial number is ${JSON.stringify(device.serialNumber)}`);
    }
  }
}
