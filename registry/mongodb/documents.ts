/**
 * Documents ↔ domain records for the MongoDB adapter. Everything the port hands out is built here,
 * so the rest of the adapter never sees a field name and the port never sees a BSON type:
 * - bytes (certificate and CRL DER, OCSP responses) are stored as BSON Binary (a Buffer on write;
 *   read back as Binary or Buffer, depending on `promoteBuffers`),
 * - dates as BSON Date, absent optional fields are absent (never null) so partial indexes work,
 * - CRL numbers (up to 2^159, RFC 5280 §5.2.3) as decimal strings plus a zero-padded sort key,
 * - insertion order as `ord`, an ObjectId made by the writing process (increasing within a process).
 * Inputs arrive checked (registry/records/: every adapter's checks), so both adapters accept and
 * refuse exactly the same values.
 */
import type { Decommission } from '../jobs.js';
import { Binary, type ObjectId } from 'mongodb';
import type {
  AuditChainLink,
  AdminToken, TokenRole, AuditEvent, CertificateRecord, CertificateStatus, CommonAuthId, CrlReason, CrlRecord, Device, DeviceStatus,
  FeedEntry, Issuer, IssuerKind, LegacyCredential, LegacyCredentialStatus, LegacyVerifierKind, Manufacturer, PendingSupersede,
  Station, StoredOcspResponse,
} from '../port.js';
import type { AuditEventValues, CrlRow, OcspResponseRow } from '../records/index.js';

export interface IssuerDoc { _id: string; kind: IssuerKind; certificateDer: Buffer | Binary; keyUri: string; parentId?: string; createdAt: Date }
export interface ManufacturerDoc { _id: string; name: string; createdAt: Date; ord: ObjectId; profiles?: string[]; profilesUpdatedAt?: Date }
export interface DeviceDoc {
  _id: string;
  manufacturerId: string;
  serialNumber: string;
  /** Only the identifiers a device has are present: the partial unique indexes skip the others. */
  identifiers: { mac?: string; imei?: string; hardwareId?: string };
  model?: string;
  hardwareModuleName?: { hwType: string; hwSerialHex: string };
  status: DeviceStatus;
  createdAt: Date;
  updatedAt: Date;
  ord: ObjectId;
  /** Set when the device is retired with a disposal record. */
  decommission?: Decommission;
}
export interface CertificateDoc {
  _id: string; // serialHex, uppercase
  issuerId: string;
  deviceId?: string;
  /** Station certificates only: the station it was issued to. */
  stationId?: string;
  profile: string;
  status: CertificateStatus;
  der: Buffer | Binary;
  fingerprintSha256: string;
  publicKeySha256: string;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
  revokedAt?: Date;
  reason?: CrlReason;
  invalidityDate?: Date;
  /** Feed seq of the last status change. */
  statusSeq: number;
  /** Feed seq of the last release from hold (delta CRLs list it as removeFromCRL). */
  releasedSeq?: number;
  ord: ObjectId;
}
export interface KeyBindingDoc { _id: string; deviceId: string; boundAt: Date }
export interface AdminTokenDoc { _id: string; name: string; tokenHmac: string; role: TokenRole; manufacturerId?: string; createdAt: Date; disabledAt?: Date; expiresAt?: Date; lastUsedAt?: Date; ord: ObjectId }
export interface AuditEventDoc {
  _id: number;
  at: Date;
  type: string;
  actor: string;
  deviceId?: string;
  serialHex?: string;
  /**
   * JSON text, as on SQLite: details are free-form (keys may hold `.` or start with `$`, which
   * MongoDB field names restrict), and an audit record must read back exactly as written.
   */
  details?: string;
  /** Its link in the writer's hash chain; absent on events written before chaining (the `legacy` chain). */
  chain?: AuditChainLink;
}
/** A hash chain's newest link (transaction-bodies.ts insertAudit): _id is the chain id. */
export interface AuditChainDoc { _id: string; seq: number; hash: string; eventId: number; updatedAt: Date }
export interface FeedDoc {
  _id: number; // seq
  at: Date;
  kind: FeedEntry['kind'];
  serialHex?: string;
  issuerId?: string;
  deviceId?: string;
  status: FeedEntry['status'];
  previousStatus?: FeedEntry['status'];
  generation?: number;
  reason?: CrlReason;
  revokedAt?: Date;
  invalidityDate?: Date;
}
export interface CounterDoc { _id: string; seq: number }
export interface CrlNumberDoc { _id: string; last: string }
export interface CrlDoc {
  _id: string; // `${issuerId}/${kind}`
  issuerId: string;
  kind: 'full' | 'delta';
  number: string;
  /** `number` zero-padded to 49 digits (2^159 < 10^48): compares as text like the number. */
  numberKey: string;
  baseNumber?: string;
  thisUpdate: Date;
  nextUpdate: Date;
  feedSeq: number;
  /** The DER, when it fits the document; otherwise `chunks` names it (crl-chunks.ts). */
  der?: Buffer | Binary;
  chunks?: { generation: string; count: number; bytes: number };
}
/** One piece of a large CRL's DER (crl-chunks.ts): `_id` is `${crlId}/${generation}/${index}`. */
export interface CrlChunkDoc { _id: string; crlId: string; generation: string; index: number; data: Buffer | Binary }
export interface OcspResponseDoc { _id: string; issuerId: string; serialHex: string; der: Buffer | Binary; thisUpdate: Date; nextUpdate: Date }
export interface CommonAuthIdDoc { _id: string; name: string; manufacturerId?: string; usualHoursUtc?: string; createdAt: Date }
export interface LegacyCredentialDoc {
  _id: string; // deviceId: one document per device that ever had credentials (the generation only increases)
  commonAuthId: string;
  uniqueId: string;
  verifierKind: LegacyVerifierKind;
  verifier: string;
  generation: number;
  createdAt: Date;
  lockedUntil?: Date;
  /** `enabled` or `deleted`; the unique indexes are partial on `state: 'enabled'`. */
  state: LegacyCredentialStatus;
  deletedAt?: Date;
  ord: ObjectId;
}
export interface LegacyFailureDoc { _id: string; key: string; windowStart: Date; count: number }
export interface StationDoc {
  _id: string; manufacturerId: string; name: string; keyHmac: string; createdAt: Date; keyRotatedAt?: Date; keyAgeFrom?: Date; disabledAt?: Date;
  maxIssuances?: number; ord: ObjectId;
}
export interface AllowanceDoc { _id: string; until: Date; createdAt: Date }
export interface SupersedeDoc { _id: string; at: Date; actor: string }
export interface FeedCursorDoc { _id: string; resumeToken: unknown; updatedAt: Date }
export interface MetaDoc { _id: string; version: number }

/** The collection names, in one place (documented in docs/mongodb.md). */
export const COLLECTIONS = {
  meta: 'meta',
  counters: 'counters',
  issuers: 'issuers',
  manufacturers: 'manufacturers',
  devices: 'devices',
  certificates: 'certificates',
  keyBindings: 'publicKeyBindings',
  adminTokens: 'adminTokens',
  // People's logins (user-store.ts).
  users: 'users',
  userSessions: 'userSessions',
  loginFailures: 'loginFailures',
  auditEvents: 'auditEvents',
  auditChains: 'auditChains',
  feed: 'revocationFeed',
  crlNumbers: 'crlNumbers',
  crls: 'crls',
  crlChunks: 'crlChunks',
  ocspResponses: 'ocspResponses',
  commonAuthIds: 'commonAuthIds',
  legacyCredentials: 'legacyCredentials',
  legacyFailures: 'legacyFailures',
  stations: 'stations',
  allowances: 'reenrollmentAllowances',
  supersedes: 'pendingSupersedes',
  feedCursors: 'feedCursors',
  // Device activity (activity-store.ts).
  activityHourly: 'activityHourly',
  activityLastSeen: 'activityLastSeen',
  activityRefusals: 'activityRefusals',
  activitySessions: 'activitySessions',
  activityFirmware: 'activityFirmware',
  // Detections (detections.ts).
  detectionTemplates: 'detectionTemplates',
  detections: 'detections',
  // Bulk jobs and approvals (jobs.ts, approvals.ts).
  bulkJobs: 'bulkJobs',
  bulkJobDevices: 'bulkJobDevices',
  approvals: 'approvals',
  // CMP secrets and transactions (cmp-store.ts).
  cmpSecrets: 'cmpSecrets',
  cmpTransactions: 'cmpTransactions',
  // SCEP (scep-store.ts).
  scepChallenges: 'scepChallenges',
  scepTransactions: 'scepTransactions',
  scepRa: 'scepRa',
  // ACME for infrastructure certificates (acme-store.ts).
  acmeEabKeys: 'acmeEabKeys',
  acmeAccounts: 'acmeAccounts',
  acmeOrders: 'acmeOrders',
  acmeAuthorizations: 'acmeAuthorizations',
} as const;

export type CollectionName = (typeof COLLECTIONS)[keyof typeof COLLECTIONS];

/** A Binary (or Buffer, with promoteBuffers) as a Buffer. */
export function toBuffer(value: Buffer | Binary | Uint8Array): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Binary) return Buffer.from(value.buffer.buffer, value.buffer.byteOffset, value.position);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** 2^159 - 1 has 48 decimal digits; one more keeps the key length fixed for any valid number. */
export const CRL_NUMBER_KEY_DIGITS = 49;

export function crlNumberKey(n: bigint): string {
  return n.toString().padStart(CRL_NUMBER_KEY_DIGITS, '0');
}

function present<K extends string, V>(key: K, value: V | undefined | null): { [P in K]?: V } {
  return (value === undefined || value === null ? {} : { [key]: value }) as { [P in K]?: V };
}

export function issuerFromDoc(d: IssuerDoc): Issuer {
  return { id: d._id, kind: d.kind, certificateDer: toBuffer(d.certificateDer), keyUri: d.keyUri, ...present('parentId', d.parentId), createdAt: d.createdAt };
}

export function manufacturerFromDoc(d: ManufacturerDoc): Manufacturer {
  return { id: d._id, name: d.name, createdAt: d.createdAt };
}

export function deviceFromDoc(d: DeviceDoc): Device {
  const ids = d.identifiers ?? {};
  return {
    id: d._id,
    manufacturerId: d.manufacturerId,
    serialNumber: d.serialNumber,
    identifiers: { ...present('mac', ids.mac), ...present('imei', ids.imei), ...present('hardwareId', ids.hardwareId) },
    ...present('model', d.model),
    ...(d.hardwareModuleName !== undefined && d.hardwareModuleName !== null
      && { hardwareModuleName: { hwType: d.hardwareModuleName.hwType, hwSerialHex: d.hardwareModuleName.hwSerialHex } }),
    status: d.status,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    ...(d.decommission !== undefined && d.decommission !== null && { decommission: decommissionFromDoc(d.decommission) }),
  };
}

function decommissionFromDoc(d: Decommission): Decommission {
  return {
    reason: d.reason, ticket: d.ticket, evidence: d.evidence, at: d.at, actor: d.actor,
    ...(typeof d.jobId === 'string' && { jobId: d.jobId }),
  };
}

export function certificateFromDoc(d: CertificateDoc): CertificateRecord {
  return {
    serialHex: d._id,
    issuerId: d.issuerId,
    ...present('deviceId', d.deviceId),
    profile: d.profile,
    status: d.status,
    der: toBuffer(d.der),
    fingerprintSha256: d.fingerprintSha256,
    publicKeySha256: d.publicKeySha256,
    notBefore: d.notBefore,
    notAfter: d.notAfter,
    createdAt: d.createdAt,
    ...present('revokedAt', d.revokedAt),
    ...present('reason', d.reason),
    ...present('invalidityDate', d.invalidityDate),
  };
}

/** The certificate document of a prepared (validated) record, as issued: good. */
export function certificateDoc(c: CertificateRecord, statusSeq: number, ord: ObjectId, stationId?: string): CertificateDoc {
  return {
    _id: c.serialHex,
    issuerId: c.issuerId,
    ...present('deviceId', c.deviceId),
    ...present('stationId', stationId),
    profile: c.profile,
    status: 'good',
    der: c.der,
    fingerprintSha256: c.fingerprintSha256,
    publicKeySha256: c.publicKeySha256,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    createdAt: c.createdAt,
    statusSeq,
    ord,
  };
}

export function adminTokenFromDoc(d: AdminTokenDoc): AdminToken {
  return {
    id: d._id, name: d.name, tokenHmac: d.tokenHmac, role: d.role ?? 'admin', ...present('manufacturerId', d.manufacturerId), createdAt: d.createdAt,
    ...present('disabledAt', d.disabledAt), ...present('expiresAt', d.expiresAt), ...present('lastUsedAt', d.lastUsedAt),
  };
}

export function auditEventFromDoc(d: AuditEventDoc): AuditEvent {
  return {
    id: d._id, at: d.at, type: d.type, actor: d.actor,
    ...present('deviceId', d.deviceId), ...present('serialHex', d.serialHex),
    ...(typeof d.details === 'string' && { details: JSON.parse(d.details) as Record<string, unknown> }),
    ...(d.chain != null && { chain: { chain: d.chain.chain, seq: d.chain.seq, prev: d.chain.prev, hash: d.chain.hash } }),
  };
}

/** An audit event's checked values (registry/records/values.ts auditEventValues) as a document with its id. */
export function auditEventDoc(id: number, v: AuditEventValues): AuditEventDoc {
  return {
    _id: id, at: new Date(v.at), type: v.type, actor: v.actor,
    ...present('deviceId', v.device_id), ...present('serialHex', v.serial_hex),
    ...present('details', v.details),
  };
}

export function feedEntryFromDoc(d: FeedDoc): FeedEntry {
  return {
    seq: d._id,
    at: d.at,
    kind: d.kind,
    ...present('serialHex', d.serialHex),
    ...present('issuerId', d.issuerId),
    ...present('deviceId', d.deviceId),
    status: d.status,
    ...present('previousStatus', d.previousStatus),
    ...present('generation', d.generation),
    ...present('reason', d.reason),
    ...present('revokedAt', d.revokedAt),
    ...present('invalidityDate', d.invalidityDate),
  };
}

/** A feed document from an entry's fields (without seq), dropping absent ones. */
export function feedDoc(seq: number, e: Omit<FeedEntry, 'seq'>): FeedDoc {
  return {
    _id: seq, at: e.at, kind: e.kind,
    ...present('serialHex', e.serialHex), ...present('issuerId', e.issuerId), ...present('deviceId', e.deviceId),
    status: e.status, ...present('previousStatus', e.previousStatus), ...present('generation', e.generation),
    ...present('reason', e.reason), ...present('revokedAt', e.revokedAt), ...present('invalidityDate', e.invalidityDate),
  };
}

export function crlFromDoc(d: CrlDoc): CrlRecord {
  return {
    issuerId: d.issuerId,
    kind: d.kind,
    number: BigInt(d.number),
    ...(d.baseNumber !== undefined && d.baseNumber !== null && { baseNumber: BigInt(d.baseNumber) }),
    thisUpdate: d.thisUpdate,
    nextUpdate: d.nextUpdate,
    feedSeq: d.feedSeq,
    der: toBuffer(d.der!),
  };
}

/** From the checked CRL (registry/records/prepared.ts crlRow). */
export function crlDoc(r: CrlRow): CrlDoc {
  return {
    _id: `${r.issuer_id}/${r.kind}`,
    issuerId: r.issuer_id,
    kind: r.kind,
    number: r.number,
    numberKey: crlNumberKey(BigInt(r.number)),
    ...present('baseNumber', r.base_number),
    thisUpdate: new Date(r.this_update),
    nextUpdate: new Date(r.next_update),
    feedSeq: r.feed_seq,
    der: r.der,
  };
}

export function ocspResponseId(issuerId: string, serialHex: string): string {
  return `${issuerId}/${serialHex}`;
}

export function ocspResponseFromDoc(d: OcspResponseDoc): StoredOcspResponse {
  return { issuerId: d.issuerId, serialHex: d.serialHex, der: toBuffer(d.der), thisUpdate: d.thisUpdate, nextUpdate: d.nextUpdate };
}

/** From the checked response (registry/records/prepared.ts ocspResponseRow). */
export function ocspResponseDoc(r: OcspResponseRow): OcspResponseDoc {
  return {
    _id: ocspResponseId(r.issuer_id, r.serial_hex), issuerId: r.issuer_id, serialHex: r.serial_hex, der: r.der,
    thisUpdate: new Date(r.this_update), nextUpdate: new Date(r.next_update),
  };
}

export function commonAuthIdFromDoc(d: CommonAuthIdDoc): CommonAuthId {
  return { id: d._id, name: d.name, createdAt: d.createdAt, ...present('manufacturerId', d.manufacturerId), ...present('usualHoursUtc', d.usualHoursUtc) };
}

export function legacyCredentialFromDoc(d: LegacyCredentialDoc): LegacyCredential {
  return {
    deviceId: d._id, commonAuthId: d.commonAuthId, uniqueId: d.uniqueId, verifierKind: d.verifierKind, verifier: d.verifier,
    generation: d.generation, createdAt: d.createdAt, ...present('lockedUntil', d.lockedUntil),
  };
}

export function stationFromDoc(d: StationDoc): Station {
  return {
    id: d._id, manufacturerId: d.manufacturerId, name: d.name, keyHmac: d.keyHmac, createdAt: d.createdAt,
    ...present('keyRotatedAt', d.keyRotatedAt), ...present('keyAgeFrom', d.keyAgeFrom), ...present('disabledAt', d.disabledAt),
    ...present('maxIssuances', d.maxIssuances),
  };
}

export function supersedeFromDoc(d: SupersedeDoc): PendingSupersede {
  return { serialHex: d._id, at: d.at, actor: d.actor };
}
