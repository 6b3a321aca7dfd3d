/**
 * Rows ↔ domain records. Everything the port hands out is built here, so the rest of the adapter
 * never sees a column name and the port never sees a NULL: absent optional fields are `undefined`.
 * Input normalisation (serials uppercase, hashes lowercase, dates to milliseconds) lives here too,
 * so writes and lookups normalise the same way.
 */
import { KakuinError } from '../../errors/index.js';
import type {
  LegacyCredentialStatus,
  AdminToken, AuditEvent, CertificateRecord, CertificateStatus, CrlReason, CrlRecord, Device, DeviceIdentifiers,
  DeviceStatus, FeedEntry, Issuer, IssuerKind, Manufacturer, NewAuditEvent, NewLegacyCredential, StoredOcspResponse,
} from '../port.js';

export interface IssuerRow {
  id: string;
  kind: IssuerKind;
  certificate_der: Buffer;
  key_uri: string;
  parent_id: string | null;
  created_at: number;
}

export interface ManufacturerRow {
  id: string;
  name: string;
  created_at: number;
}

export interface DeviceRow {
  id: string;
  manufacturer_id: string;
  serial_number: string;
  mac: string | null;
  imei: string | null;
  hardware_id: string | null;
  model: string | null;
  hw_type: string | null;
  hw_serial_hex: string | null;
  status: DeviceStatus;
  created_at: number;
  updated_at: number;
}

export interface CertificateRow {
  serial_hex: string;
  issuer_id: string;
  device_id: string | null;
  profile: string;
  status: CertificateStatus;
  der: Buffer;
  fingerprint_sha256: string;
  public_key_sha256: string;
  not_before: number;
  not_after: number;
  created_at: number;
  revoked_at: number | null;
  reason: CrlReason | null;
  invalidity_date: number | null;
  /** Feed seq of the last status change (0: before the feed existed). */
  status_seq: number;
  /** Feed seq of the last release from hold. */
  released_seq: number | null;
}

export interface FeedRow {
  seq: number;
  at: number;
  kind: 'certificate' | 'device' | 'legacy-credentials';
  serial_hex: string | null;
  issuer_id: string | null;
  device_id: string | null;
  status: CertificateStatus | DeviceStatus | LegacyCredentialStatus;
  previous_status: CertificateStatus | DeviceStatus | LegacyCredentialStatus | null;
  reason: CrlReason | null;
  revoked_at: number | null;
  invalidity_date: number | null;
  /** Legacy-credentials entries only (schema 3). */
  generation?: number | null;
}

export interface CrlRow {
  issuer_id: string;
  kind: 'full' | 'delta';
  number: string;
  base_number: string | null;
  this_update: number;
  next_update: number;
  feed_seq: number;
  der: Buffer;
}

export interface OcspResponseRow {
  issuer_id: string;
  serial_hex: string;
  der: Buffer;
  this_update: number;
  next_update: number;
}

export interface AdminTokenRow {
  id: string;
  name: string;
  token_hmac: string;
  role: 'admin';
  created_at: number;
  disabled_at: number | null;
  expires_at: number | null;
  last_used_at: number | null;
}

export interface AuditEventRow {
  id: number;
  at: number;
  type: string;
  actor: string;
  device_id: string | null;
  serial_hex: string | null;
  details: string | null;
}

// ---- rows → records ----------------------------------------------------------------------------

export function issuerFromRow(r: IssuerRow): Issuer {
  return {
    id: r.id,
    kind: r.kind,
    certificateDer: r.certificate_der,
    keyUri: r.key_uri,
    ...(r.parent_id !== null && { parentId: r.parent_id }),
    createdAt: new Date(r.created_at),
  };
}

export function manufacturerFromRow(r: ManufacturerRow): Manufacturer {
  return { id: r.id, name: r.name, createdAt: new Date(r.created_at) };
}

export function deviceFromRow(r: DeviceRow): Device {
  const identifiers: DeviceIdentifiers = {};
  if (r.mac !== null) identifiers.mac = r.mac;
  if (r.imei !== null) identifiers.imei = r.imei;
  if (r.hardware_id !== null) identifiers.hardwareId = r.hardware_id;
  return {
    id: r.id,
    manufacturerId: r.manufacturer_id,
    serialNumber: r.serial_number,
    identifiers,
    ...(r.model !== null && { model: r.model }),
    ...(r.hw_type !== null && r.hw_serial_hex !== null && { hardwareModuleName: { hwType: r.hw_type, hwSerialHex: r.hw_serial_hex } }),
    status: r.status,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  };
}

export function certificateFromRow(r: CertificateRow): CertificateRecord {
  return {
    serialHex: r.serial_hex,
    issuerId: r.issuer_id,
    ...(r.device_id !== null && { deviceId: r.device_id }),
    profile: r.profile,
    status: r.status,
    der: r.der,
    fingerprintSha256: r.fingerprint_sha256,
    publicKeySha256: r.public_key_sha256,
    notBefore: new Date(r.not_before),
    notAfter: new Date(r.not_after),
    createdAt: new Date(r.created_at),
    ...(r.revoked_at !== null && { revokedAt: new Date(r.revoked_at) }),
    ...(r.reason !== null && { reason: r.reason }),
    ...(r.invalidity_date !== null && { invalidityDate: new Date(r.invalidity_date) }),
  };
}

export function feedEntryFromRow(r: FeedRow): FeedEntry {
  return {
    seq: r.seq,
    at: new Date(r.at),
    kind: r.kind,
    ...(r.serial_hex !== null && { serialHex: r.serial_hex }),
    ...(r.issuer_id !== null && { issuerId: r.issuer_id }),
    ...(r.device_id !== null && { deviceId: r.device_id }),
    status: r.status,
    ...(r.previous_status !== null && { previousStatus: r.previous_status }),
    ...(r.reason !== null && { reason: r.reason }),
    ...(r.revoked_at !== null && { revokedAt: new Date(r.revoked_at) }),
    ...(r.invalidity_date !== null && { invalidityDate: new Date(r.invalidity_date) }),
    ...(r.generation !== undefined && r.generation !== null && { generation: r.generation }),
    ...(r.generation !== undefined && r.generation !== null && { generation: r.generation }),
  };
}

export function crlFromRow(r: CrlRow): CrlRecord {
  return {
    issuerId: r.issuer_id,
    kind: r.kind,
    number: BigInt(r.number),
    ...(r.base_number !== null && { baseNumber: BigInt(r.base_number) }),
    thisUpdate: new Date(r.this_update),
    nextUpdate: new Date(r.next_update),
    feedSeq: r.feed_seq,
    der: r.der,
  };
}

export function ocspResponseFromRow(r: OcspResponseRow): StoredOcspResponse {
  return {
    issuerId: r.issuer_id,
    serialHex: r.serial_hex,
    der: r.der,
    thisUpdate: new Date(r.this_update),
    nextUpdate: new Date(r.next_update),
  };
}

export function adminTokenFromRow(r: AdminTokenRow): AdminToken {
  return {
    id: r.id,
    name: r.name,
    tokenHmac: r.token_hmac,
    role: r.role,
    createdAt: new Date(r.created_at),
    ...(r.disabled_at !== null && { disabledAt: new Date(r.disabled_at) }),
    ...(r.expires_at !== null && r.expires_at !== undefined && { expiresAt: new Date(r.expires_at) }),
    ...(r.last_used_at !== null && r.last_used_at !== undefined && { lastUsedAt: new Date(r.last_used_at) }),
  };
}

export function auditEventFromRow(r: AuditEventRow): AuditEvent {
  return {
    id: r.id,
    at: new Date(r.at),
    type: r.type,
    actor: r.actor,
    ...(r.device_id !== null && { deviceId: r.device_id }),
    ...(r.serial_hex !== null && { serialHex: r.serial_hex }),
    ...(r.details !== null && { details: JSON.parse(r.details) as Record<string, unknown> }),
  };
}

// ---- records → column values -------------------------------------------------------------------

function invalid(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_VALIDATION', message);
}

/** A valid Date as integer milliseconds. */
export function toMillis(value: Date, field: string): number {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalid(`${field} must be a valid Date`);
  return value.getTime();
}

export function optionalMillis(value: Date | undefined, field: string): number | null {
  return value === undefined ? null : toMillis(value, field);
}

export function requiredText(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${field} must be a non-empty string`);
  return value;
}

export function optionalText(value: unknown, field: string): string | null {
  return value === undefined || value === null ? null : requiredText(value, field);
}

export function requiredBytes(value: unknown, field: string): Buffer {
  if (!Buffer.isBuffer(value) || value.length === 0) throw invalid(`${field} must be a non-empty Buffer`);
  return value;
}

/** Serial numbers are stored and looked up in uppercase, as `openssl x509 -serial` prints them. */
export function normalizeSerialHex(value: unknown, field = 'serialHex'): string {
  const s = requiredText(value, field).toUpperCase();
  if (!/^[0-9A-F]+$/.test(s)) throw invalid(`${field} must be hexadecimal without separators`);
  return s;
}

/** SHA-256 values (fingerprints, key hashes, token HMACs) are lowercase hex. */
export function normalizeSha256Hex(value: unknown, field: string): string {
  const s = requiredText(value, field).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) throw invalid(`${field} must be 64 hex digits (SHA-256)`);
  return s;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** Query limits: default 100; above 1000 is capped (a listing never blocks the loop for long). */
export function normalizeLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
  return Math.min(limit, MAX_LIMIT);
}

export const DEFAULT_FEED_LIMIT = 1000;
export const MAX_FEED_LIMIT = 10_000;

/** readFeed limits: default 1000; above 10000 is capped, like listing limits. */
export function normalizeFeedLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_FEED_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
  return Math.min(limit, MAX_FEED_LIMIT);
}

/** A feed sequence number given by a caller (0 means "from the start"). */
export function feedSeqValue(value: unknown, field: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw invalid(`${field} must be a non-negative integer`);
  return value as number;
}

/** Column values of one audit event; `details` must survive a JSON round trip. */
export function auditEventValues(event: NewAuditEvent, now: number): {
  at: number; type: string; actor: string; device_id: string | null; serial_hex: string | null; details: string | null;
} {
  let details: string | null = null;
  if (event.details !== undefined) {
    if (event.details === null || typeof event.details !== 'object' || Array.isArray(event.details)) {
      throw invalid('audit details must be an object');
    }
    try {
      details = JSON.stringify(event.details);
    } catch (e) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'audit details must be JSON-serialisable', { cause: e });
    }
  }
  return {
    at: event.at === undefined ? now : toMillis(event.at, 'audit.at'),
    type: requiredText(event.type, 'audit.type'),
    actor: requiredText(event.actor, 'audit.actor'),
    device_id: optionalText(event.deviceId, 'audit.deviceId'),
    // Uppercase like stored serials, but not checked: an event may record a malformed serial someone sent.
    serial_hex: event.serialHex === undefined ? null : requiredText(event.serialHex, 'audit.serialHex').toUpperCase(),
    details,
  };
}

/**
 * The checked, normalised input of putLegacyCredentials (every adapter): KAKUIN_E_VALIDATION for
 * anything that is not an array of well-formed credentials with an array of audit events.
 */
export function normalizeNewLegacyCredentials(credentials: unknown, audit: unknown): NewLegacyCredential[] {
  if (!Array.isArray(credentials) || !Array.isArray(audit)) throw new KakuinError('KAKUIN_E_VALIDATION', 'credentials and audit must be arrays');
  return credentials.map((c: NewLegacyCredential, i): NewLegacyCredential => {
    if (c === null || typeof c !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', `credentials[${i}] must be an object`);
    if (c.verifierKind !== 'hmac' && c.verifierKind !== 'scrypt') throw new KakuinError('KAKUIN_E_VALIDATION', `credentials[${i}].verifierKind must be hmac or scrypt`);
    return {
      deviceId: requiredText(c.deviceId, `credentials[${i}].deviceId`), commonAuthId: requiredText(c.commonAuthId, `credentials[${i}].commonAuthId`),
      uniqueId: requiredText(c.uniqueId, `credentials[${i}].uniqueId`), verifierKind: c.verifierKind, verifier: requiredText(c.verifier, `credentials[${i}].verifier`),
    };
  });
}
