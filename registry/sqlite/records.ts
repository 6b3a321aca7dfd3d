/**
 * Rows ↔ domain records. Everything the port hands out is built here, so the rest of the adapter
 * never sees a column name and the port never sees a NULL: absent optional fields are `undefined`.
 * Input checks and normalisation are every adapter's (registry/records/values.ts); they are
 * re-exported here for the modules that have always imported them from this one.
 */
import type { Decommission } from '../jobs.js';
import type {
  LegacyCredentialStatus,
  AdminToken, TokenRole, AuditEvent, CertificateRecord, CertificateStatus, CrlReason, CrlRecord, Device, DeviceIdentifiers,
  DeviceStatus, FeedEntry, Issuer, IssuerKind, Manufacturer, StoredOcspResponse,
} from '../port.js';
import type { CrlRow, OcspResponseRow } from '../records/prepared.js';

export type { CrlRow, OcspResponseRow };
export {
  auditEventValues, DEFAULT_FEED_LIMIT, DEFAULT_LIMIT, feedSeqValue, MAX_FEED_LIMIT, MAX_LIMIT, normalizeFeedLimit, normalizeLimit,
  normalizeNewLegacyCredentials, normalizeSerialHex, normalizeSha256Hex, optionalMillis, optionalText, requiredBytes, requiredText,
  toMillis, type AuditEventValues,
} from '../records/values.js';

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
  /** Schema step 15: JSON, retired devices only. */
  decommission?: string | null;
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

export interface AdminTokenRow {
  id: string;
  name: string;
  token_hmac: string;
  role: TokenRole;
  manufacturer_id?: string | null;
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
  /** Migration 13: NULL on events recorded before it (the virtual `legacy` chain). */
  chain_id?: string | null;
  chain_seq?: number | null;
  prev_hash?: string | null;
  hash?: string | null;
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
    ...(typeof r.decommission === 'string' && { decommission: decommissionFromJson(r.decommission) }),
  };
}

/** A decommission record as stored (JSON with `at` in milliseconds). */
export function decommissionJson(d: Decommission): string {
  return JSON.stringify({ ...d, at: d.at.getTime() });
}

function decommissionFromJson(text: string): Decommission {
  const v = JSON.parse(text) as Omit<Decommission, 'at'> & { at: number };
  return { ...v, at: new Date(v.at) };
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
    ...(r.manufacturer_id !== null && r.manufacturer_id !== undefined && { manufacturerId: r.manufacturer_id }),
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
    ...(typeof r.chain_id === 'string' && { chain: { chain: r.chain_id, seq: r.chain_seq!, prev: r.prev_hash!, hash: r.hash! } }),
  };
}
