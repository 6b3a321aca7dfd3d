/**
 * The port's input checks, applied once for every adapter. Each adapter extends CheckedRegistry:
 * a port method that takes input (`putIssuer`, `recordIssuance`, `applyStatusChange`, ...) is
 * implemented here — check, normalise, refuse bad input with KAKUIN_E_VALIDATION before any
 * storage is touched — and hands the checked values to the adapter's `<method>Checked`, which only
 * stores; look-ups by serial or hash get their key normalised the same way. Reads whose arguments need no check (`getDevice`, `listIssuers`, ...) and the optional
 * capabilities (`watchFeed`) are the adapter's own. So SQLite and MongoDB (and any later adapter)
 * accept and refuse exactly the same values with the same codes, and no adapter repeats a check.
 *
 * Values that identify a new record (ids, `createdAt`) are made here too when they do not depend on
 * the store: a manufacturer's and an admin token's UUID, a device's id (registry/ids.ts).
 */
import { randomUUID } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { newDeviceId } from '../ids.js';
import type {
  AdminToken, TokenRole, AuditEvent, CertificateRecord, CertificateStatusRow, CommonAuthId, CrlRecord, Device, DeviceIdentifiers, FailureCount,
  FeedEntry, IssuanceRecord, Issuer, IssuerKind, LegacyCredential, LegacyVerifierKind, ListPage, Manufacturer, NewAuditEvent, NewDevice,
  NewLegacyCredential, PendingSupersede, Station, StatusChange, StoredOcspResponse,
} from '../port.js';
import { TOKEN_ROLES } from '../port.js';
import {
  crlRow, ocspResponseRow, prepareIssuance, prepareStatusChange, type CrlRow, type OcspResponseRow, type PreparedIssuance,
  type PreparedStatusChange,
} from './prepared.js';
import {
  auditEventValues, feedSeqValue, normalizeFeedLimit, normalizeLimit, normalizeNewLegacyCredentials, normalizeSerialHex,
  normalizeSha256Hex, optionalMillis, optionalText, requiredBytes, requiredText, requireFunction, requireObject, toMillis,
  type AuditEventValues,
} from './values.js';

const ISSUER_KINDS = new Set(['root', 'device', 'station', 'infrastructure', 'ocsp-signer']);

function invalid(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_VALIDATION', message);
}

/** A checked station change: `keyHmac` normalised, `disable` and `maxIssuances` as the caller gave them. */
export interface CheckedStationChange {
  keyHmac?: string;
  disable?: boolean;
  maxIssuances?: number | null;
}

/** A checked new common auth ID (absent optional fields undefined). */
export interface CheckedCommonAuthId {
  name: string;
  manufacturerId: string | undefined;
  usualHoursUtc: string | undefined;
}

export abstract class CheckedRegistry {
  // ---- issuers ----

  async putIssuer(issuer: Omit<Issuer, 'createdAt'> & { createdAt?: Date }): Promise<Issuer> {
    requireObject(issuer, 'an issuer');
    const id = requiredText(issuer.id, 'issuer.id');
    const kind = requiredText(issuer.kind, 'issuer.kind');
    const certificateDer = requiredBytes(issuer.certificateDer, 'issuer.certificateDer');
    const keyUri = requiredText(issuer.keyUri, 'issuer.keyUri');
    const parentId = optionalText(issuer.parentId, 'issuer.parentId');
    const createdAt = new Date(optionalMillis(issuer.createdAt, 'issuer.createdAt') ?? Date.now());
    if (!ISSUER_KINDS.has(kind)) throw invalid(`unknown issuer kind ${JSON.stringify(kind)}`);
    return this.putIssuerChecked({ id, kind: kind as IssuerKind, certificateDer, keyUri, ...(parentId !== null && { parentId }), createdAt });
  }

  protected abstract putIssuerChecked(issuer: Issuer): Promise<Issuer>;

  // ---- manufacturers ----

  async createManufacturer(input: { name: string }): Promise<Manufacturer> {
    requireObject(input, 'a new manufacturer');
    return this.createManufacturerChecked({ id: randomUUID(), name: requiredText(input.name, 'name'), createdAt: new Date() });
  }

  protected abstract createManufacturerChecked(manufacturer: Manufacturer): Promise<Manufacturer>;

  // ---- devices ----

  async createDevice(input: NewDevice, audit?: Omit<NewAuditEvent, 'deviceId'>): Promise<Device> {
    requireObject(input, 'a new device');
    const now = Date.now();
    const ids = input.identifiers ?? {};
    const hw = input.hardwareModuleName;
    const id = newDeviceId(now);
    const manufacturerId = requiredText(input.manufacturerId, 'manufacturerId');
    const serialNumber = requiredText(input.serialNumber, 'serialNumber');
    const identifiers: DeviceIdentifiers = {};
    const mac = optionalText(ids.mac, 'identifiers.mac');
    const imei = optionalText(ids.imei, 'identifiers.imei');
    const hardwareId = optionalText(ids.hardwareId, 'identifiers.hardwareId');
    if (mac !== null) identifiers.mac = mac;
    if (imei !== null) identifiers.imei = imei;
    if (hardwareId !== null) identifiers.hardwareId = hardwareId;
    const model = optionalText(input.model, 'model');
    const device: Device = {
      id, manufacturerId, serialNumber, identifiers,
      ...(model !== null && { model }),
      ...(hw !== undefined && {
        hardwareModuleName: { hwType: requiredText(hw.hwType, 'hardwareModuleName.hwType'), hwSerialHex: requiredText(hw.hwSerialHex, 'hardwareModuleName.hwSerialHex') },
      }),
      status: 'registered',
      createdAt: new Date(now),
      updatedAt: new Date(now),
    };
    if (audit !== undefined) requireObject(audit, 'an audit event');
    const event = audit === undefined ? undefined : auditEventValues({ ...audit, deviceId: id }, now);
    return this.createDeviceChecked(device, event);
  }

  /** The device and its audit event (when given) commit together. */
  protected abstract createDeviceChecked(device: Device, audit: AuditEventValues | undefined): Promise<Device>;

  // ---- certificates ----

  async recordIssuance(record: IssuanceRecord): Promise<CertificateRecord> {
    return this.recordIssuanceChecked(prepareIssuance(record, Date.now()));
  }

  protected abstract recordIssuanceChecked(prepared: PreparedIssuance): Promise<CertificateRecord>;

  // Look-ups by serial or hash normalise the key as writes do (serials uppercase, hashes lowercase);
  // a key that is not a string finds nothing.

  async getCertificate(serialHex: string): Promise<CertificateRecord> {
    return this.getCertificateChecked(typeof serialHex === 'string' ? serialHex.toUpperCase() : '');
  }

  /** KAKUIN_E_CERTIFICATE_NOT_FOUND when no certificate has that (uppercase) serial. */
  protected abstract getCertificateChecked(serialHex: string): Promise<CertificateRecord>;

  async findDeviceIdByPublicKey(publicKeySha256: string): Promise<string | undefined> {
    return this.findDeviceIdByPublicKeyChecked(typeof publicKeySha256 === 'string' ? publicKeySha256.toLowerCase() : '');
  }

  protected abstract findDeviceIdByPublicKeyChecked(publicKeySha256: string): Promise<string | undefined>;

  // ---- admin tokens ----

  async createAdminToken(input: { name: string; tokenHmac: string; role: TokenRole; manufacturerId?: string; expiresAt?: Date }, audit?: NewAuditEvent): Promise<AdminToken> {
    requireObject(input, 'an admin token');
    if (!(TOKEN_ROLES as readonly unknown[]).includes(input.role)) throw invalid(`role must be one of ${TOKEN_ROLES.join(', ')}`);
    // Exactly the manufacturer role is bound to one manufacturer (README "Roles").
    if ((input.role === 'manufacturer') !== (input.manufacturerId !== undefined)) throw invalid('manufacturerId is given exactly for the manufacturer role');
    const manufacturerId = input.manufacturerId === undefined ? undefined : requiredText(input.manufacturerId, 'manufacturerId');
    const now = Date.now();
    const expires = optionalMillis(input.expiresAt, 'expiresAt');
    const token: AdminToken = {
      id: randomUUID(), name: requiredText(input.name, 'name'), tokenHmac: normalizeSha256Hex(input.tokenHmac, 'tokenHmac'),
      role: input.role, ...(manufacturerId !== undefined && { manufacturerId }), createdAt: new Date(now), ...(expires !== null && { expiresAt: new Date(expires) }),
    };
    const event = audit === undefined ? undefined : auditEventValues(audit, now);
    return this.createAdminTokenChecked(token, event);
  }

  protected abstract createAdminTokenChecked(token: AdminToken, audit: AuditEventValues | undefined): Promise<AdminToken>;

  async findAdminTokenByHmac(tokenHmac: string): Promise<AdminToken | undefined> {
    return this.findAdminTokenByHmacChecked(typeof tokenHmac === 'string' ? tokenHmac.toLowerCase() : '');
  }

  protected abstract findAdminTokenByHmacChecked(tokenHmac: string): Promise<AdminToken | undefined>;

  async revokeAdminToken(name: string, at: Date, audit: NewAuditEvent): Promise<AdminToken> {
    const n = requiredText(name, 'name');
    const atMs = toMillis(at, 'at');
    return this.revokeAdminTokenChecked(n, atMs, auditEventValues(audit, Date.now()));
  }

  protected abstract revokeAdminTokenChecked(name: string, atMs: number, audit: AuditEventValues): Promise<AdminToken>;

  async touchAdminToken(name: string, at: Date): Promise<void> {
    return this.touchAdminTokenChecked(name, toMillis(at, 'at'));
  }

  protected abstract touchAdminTokenChecked(name: string, atMs: number): Promise<void>;

  // ---- audit ----

  async appendAuditEvent(event: NewAuditEvent): Promise<AuditEvent> {
    requireObject(event, 'an audit event');
    return this.appendAuditEventChecked(auditEventValues(event, Date.now()));
  }

  protected abstract appendAuditEventChecked(event: AuditEventValues): Promise<AuditEvent>;

  // ---- revocation ----

  async applyStatusChange(change: StatusChange): Promise<FeedEntry[]> {
    const now = Date.now();
    return this.applyStatusChangeChecked(prepareStatusChange(change, now), now);
  }

  protected abstract applyStatusChangeChecked(change: PreparedStatusChange, now: number): Promise<FeedEntry[]>;

  async readFeed(afterSeq: number, limit?: number): Promise<FeedEntry[]> {
    const after = feedSeqValue(afterSeq, 'afterSeq');
    return this.readFeedChecked(after, normalizeFeedLimit(limit));
  }

  protected abstract readFeedChecked(afterSeq: number, limit: number): Promise<FeedEntry[]>;

  async forEachCrlEntry(issuerId: string, options: { changedAfterSeq?: number }, row: CertificateStatusRow): Promise<void> {
    requiredText(issuerId, 'issuerId');
    requireObject(options, 'options');
    requireFunction(row, 'row');
    const after = options.changedAfterSeq === undefined ? undefined : feedSeqValue(options.changedAfterSeq, 'changedAfterSeq');
    return this.forEachCrlEntryChecked(issuerId, after, row);
  }

  /** `changedAfterSeq` undefined: a full CRL's entries. */
  protected abstract forEachCrlEntryChecked(issuerId: string, changedAfterSeq: number | undefined, row: CertificateStatusRow): Promise<void>;

  async forEachCertificateStatus(issuerId: string, row: CertificateStatusRow): Promise<void> {
    requiredText(issuerId, 'issuerId');
    requireFunction(row, 'row');
    return this.forEachCertificateStatusChecked(issuerId, row);
  }

  protected abstract forEachCertificateStatusChecked(issuerId: string, row: CertificateStatusRow): Promise<void>;

  async nextCrlNumber(issuerId: string): Promise<bigint> {
    return this.nextCrlNumberChecked(requiredText(issuerId, 'issuerId'));
  }

  protected abstract nextCrlNumberChecked(issuerId: string): Promise<bigint>;

  async putCrl(crl: CrlRecord): Promise<void> {
    return this.putCrlChecked(crlRow(crl));
  }

  protected abstract putCrlChecked(crl: CrlRow): Promise<void>;

  async putOcspResponses(responses: StoredOcspResponse[]): Promise<void> {
    if (!Array.isArray(responses)) throw invalid('responses must be an array');
    const rows = responses.map((r, i) => ocspResponseRow(r, `responses[${i}]`));
    if (rows.length === 0) return;
    return this.putOcspResponsesChecked(rows);
  }

  /** At least one response. */
  protected abstract putOcspResponsesChecked(responses: OcspResponseRow[]): Promise<void>;

  async forEachOcspResponse(issuerId: string | undefined, row: (r: StoredOcspResponse) => void): Promise<void> {
    if (issuerId !== undefined) requiredText(issuerId, 'issuerId');
    requireFunction(row, 'row');
    return this.forEachOcspResponseChecked(issuerId, row);
  }

  protected abstract forEachOcspResponseChecked(issuerId: string | undefined, row: (r: StoredOcspResponse) => void): Promise<void>;

  // ---- legacy three-factor path ----

  async createCommonAuthId(input: { name: string; manufacturerId?: string; usualHoursUtc?: string }): Promise<CommonAuthId> {
    requireObject(input, 'a new common auth ID');
    return this.createCommonAuthIdChecked({
      name: requiredText(input.name, 'name'),
      manufacturerId: optionalText(input.manufacturerId, 'manufacturerId') ?? undefined,
      usualHoursUtc: optionalText(input.usualHoursUtc, 'usualHoursUtc') ?? undefined,
    });
  }

  protected abstract createCommonAuthIdChecked(input: CheckedCommonAuthId): Promise<CommonAuthId>;

  async putLegacyCredentials(credentials: NewLegacyCredential[], audit: NewAuditEvent[]): Promise<LegacyCredential[]> {
    const creds = normalizeNewLegacyCredentials(credentials, audit);
    const now = Date.now();
    return this.putLegacyCredentialsChecked(creds, audit.map((a) => auditEventValues(a, now)), now);
  }

  protected abstract putLegacyCredentialsChecked(credentials: NewLegacyCredential[], audit: AuditEventValues[], now: number): Promise<LegacyCredential[]>;

  async findLegacyVerifiers(kind: LegacyVerifierKind, verifiers: string[]): Promise<{ verifier: string; deviceId: string }[]> {
    if (!Array.isArray(verifiers)) throw invalid('verifiers must be an array');
    return this.findLegacyVerifiersChecked(kind, verifiers);
  }

  protected abstract findLegacyVerifiersChecked(kind: LegacyVerifierKind, verifiers: string[]): Promise<{ verifier: string; deviceId: string }[]>;

  async deleteLegacyCredentials(deviceId: string, audit: NewAuditEvent): Promise<FeedEntry> {
    const id = requiredText(deviceId, 'deviceId');
    const now = Date.now();
    return this.deleteLegacyCredentialsChecked(id, auditEventValues(audit, now), now);
  }

  protected abstract deleteLegacyCredentialsChecked(deviceId: string, audit: AuditEventValues, now: number): Promise<FeedEntry>;

  async lockLegacyCredentials(deviceId: string, until: Date, audit: NewAuditEvent): Promise<void> {
    const id = requiredText(deviceId, 'deviceId');
    const untilMs = optionalMillis(until, 'until');
    if (untilMs === undefined || untilMs === null) throw invalid('until is required');
    return this.lockLegacyCredentialsChecked(id, untilMs, auditEventValues(audit, Date.now()));
  }

  protected abstract lockLegacyCredentialsChecked(deviceId: string, untilMs: number, audit: AuditEventValues): Promise<void>;

  async countLegacyFailures(keys: string[], windowStart: Date, windowMs: number): Promise<FailureCount[]> {
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw invalid('keys must be strings');
    const start = optionalMillis(windowStart, 'windowStart');
    if (start === undefined || start === null || !Number.isSafeInteger(windowMs) || windowMs < 1) throw invalid('windowStart and windowMs are required');
    return this.countLegacyFailuresChecked(keys, start, windowMs);
  }

  protected abstract countLegacyFailuresChecked(keys: string[], windowStartMs: number, windowMs: number): Promise<FailureCount[]>;

  // ---- production-line enrollment ----

  async createStation(input: { manufacturerId: string; name: string; keyHmac: string }, audit: NewAuditEvent): Promise<Station> {
    requireObject(input, 'a new station');
    const values = {
      manufacturerId: requiredText(input.manufacturerId, 'manufacturerId'), name: requiredText(input.name, 'name'),
      keyHmac: normalizeSha256Hex(input.keyHmac, 'keyHmac'),
    };
    const now = Date.now();
    return this.createStationChecked(values, auditEventValues(audit, now), now);
  }

  protected abstract createStationChecked(input: { manufacturerId: string; name: string; keyHmac: string }, audit: AuditEventValues, now: number): Promise<Station>;

  async findStationByKeyHmac(keyHmac: string): Promise<Station | undefined> {
    if (typeof keyHmac !== 'string') return undefined;
    return this.findStationByKeyHmacChecked(keyHmac.toLowerCase());
  }

  protected abstract findStationByKeyHmacChecked(keyHmac: string): Promise<Station | undefined>;

  async listStations(manufacturerId: string, page?: ListPage): Promise<Station[]> {
    return this.listStationsChecked(requiredText(manufacturerId, 'manufacturerId'), page);
  }

  protected abstract listStationsChecked(manufacturerId: string, page: ListPage | undefined): Promise<Station[]>;

  async updateStation(id: string, change: { keyHmac?: string; disable?: boolean; maxIssuances?: number | null }, audit: NewAuditEvent): Promise<Station> {
    requireObject(change, 'a station change');
    const q = change.maxIssuances;
    if (q !== undefined && q !== null && (!Number.isSafeInteger(q) || q < 0)) throw invalid('maxIssuances must be a non-negative integer or null');
    const checked: CheckedStationChange = {
      ...(change.keyHmac !== undefined && { keyHmac: normalizeSha256Hex(change.keyHmac, 'keyHmac') }),
      ...(change.disable !== undefined && { disable: change.disable }),
      ...(q !== undefined && { maxIssuances: q }),
    };
    const now = Date.now();
    const event = auditEventValues(audit, now);
    return this.updateStationChecked(requiredText(id, 'id'), checked, event, now);
  }

  protected abstract updateStationChecked(id: string, change: CheckedStationChange, audit: AuditEventValues, now: number): Promise<Station>;

  async countStationIssuances(stationId: string): Promise<number> {
    return this.countStationIssuancesChecked(requiredText(stationId, 'stationId'));
  }

  protected abstract countStationIssuancesChecked(stationId: string): Promise<number>;

  async allowReenrollment(deviceId: string, until: Date, audit: NewAuditEvent): Promise<void> {
    const untilMs = optionalMillis(until, 'until');
    if (untilMs === undefined || untilMs === null) throw invalid('until is required');
    const now = Date.now();
    const event = auditEventValues(audit, now);
    return this.allowReenrollmentChecked(requiredText(deviceId, 'deviceId'), untilMs, event, now);
  }

  protected abstract allowReenrollmentChecked(deviceId: string, untilMs: number, audit: AuditEventValues, now: number): Promise<void>;

  async getReenrollmentAllowance(deviceId: string): Promise<Date | undefined> {
    return this.getReenrollmentAllowanceChecked(requiredText(deviceId, 'deviceId'));
  }

  protected abstract getReenrollmentAllowanceChecked(deviceId: string): Promise<Date | undefined>;

  async consumeReenrollmentAllowance(deviceId: string): Promise<boolean> {
    return this.consumeReenrollmentAllowanceChecked(requiredText(deviceId, 'deviceId'));
  }

  protected abstract consumeReenrollmentAllowanceChecked(deviceId: string): Promise<boolean>;

  async recordStationCertificate(stationId: string, record: IssuanceRecord): Promise<CertificateRecord> {
    const id = requiredText(stationId, 'stationId');
    return this.recordStationCertificateChecked(id, prepareIssuance(record, Date.now()));
  }

  protected abstract recordStationCertificateChecked(stationId: string, prepared: PreparedIssuance): Promise<CertificateRecord>;

  async findStationOfCertificate(serialHex: string): Promise<string | undefined> {
    if (typeof serialHex !== 'string') return undefined;
    return this.findStationOfCertificateChecked(serialHex.toUpperCase());
  }

  protected abstract findStationOfCertificateChecked(serialHex: string): Promise<string | undefined>;

  async listStationCertificates(stationId: string, page?: ListPage): Promise<CertificateRecord[]> {
    return this.listStationCertificatesChecked(requiredText(stationId, 'stationId'), page);
  }

  protected abstract listStationCertificatesChecked(stationId: string, page: ListPage | undefined): Promise<CertificateRecord[]>;

  async setManufacturerProfiles(manufacturerId: string, profiles: string[], audit: NewAuditEvent): Promise<void> {
    if (!Array.isArray(profiles) || profiles.length === 0 || profiles.length > 32
      || !profiles.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 64)) {
      throw invalid('profiles must be a list of 1 to 32 profile names');
    }
    const now = Date.now();
    const event = auditEventValues(audit, now);
    return this.setManufacturerProfilesChecked(requiredText(manufacturerId, 'manufacturerId'), [...new Set(profiles)], event, now);
  }

  /** `profiles` without duplicates. */
  protected abstract setManufacturerProfilesChecked(manufacturerId: string, profiles: string[], audit: AuditEventValues, now: number): Promise<void>;

  async getManufacturerProfiles(manufacturerId: string): Promise<string[] | undefined> {
    return this.getManufacturerProfilesChecked(requiredText(manufacturerId, 'manufacturerId'));
  }

  protected abstract getManufacturerProfilesChecked(manufacturerId: string): Promise<string[] | undefined>;

  async scheduleSupersede(entries: PendingSupersede[]): Promise<void> {
    if (!Array.isArray(entries)) throw invalid('entries must be a list');
    return this.scheduleSupersedeChecked(entries.map((e) => {
      requireObject(e, 'a pending supersession');
      return { serialHex: normalizeSerialHex(e.serialHex), at: new Date(toMillis(e.at, 'at')), actor: requiredText(e.actor, 'actor') };
    }));
  }

  protected abstract scheduleSupersedeChecked(entries: PendingSupersede[]): Promise<void>;

  async listDueSupersedes(now: Date, limit?: number): Promise<PendingSupersede[]> {
    const nowMs = toMillis(now, 'now');
    return this.listDueSupersedesChecked(nowMs, normalizeLimit(limit));
  }

  protected abstract listDueSupersedesChecked(nowMs: number, limit: number): Promise<PendingSupersede[]>;

  async clearSupersedes(serialHexes: string[]): Promise<void> {
    if (!Array.isArray(serialHexes)) throw invalid('serialHexes must be a list');
    return this.clearSupersedesChecked(serialHexes.map((s) => normalizeSerialHex(s)));
  }

  protected abstract clearSupersedesChecked(serialHexes: string[]): Promise<void>;
}
