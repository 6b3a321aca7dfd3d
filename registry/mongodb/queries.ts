/**
 * Every filter, sort, projection and update document the MongoDB adapter sends, as pure functions
 * of their inputs (unit-tested in test/registry/mongodb.test.ts). Values are always values: a
 * caller's string never becomes an operator, because each filter names the field and uses `$eq`
 * semantics through a typed scalar (objects are refused before they get here).
 */
import type { Collection, Document, Filter, FindOptions, ObjectId, Sort, UpdateFilter } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type { AuditQuery, CertificateStatus, CrlReason, DeviceQuery, DeviceStatus, ListPage } from '../port.js';
import { normalizeFeedLimit, normalizeLimit, toMillis } from '../records/index.js';
import type {
  AuditEventDoc, CertificateDoc, DeviceDoc, FeedDoc, LegacyCredentialDoc, LegacyFailureDoc,
} from './documents.js';

const DEVICE_STATUSES = new Set<DeviceStatus>(['registered', 'active', 'suspended', 'revoked', 'retired']);

/** DeviceQuery field → document field, each matched exactly. */
const DEVICE_FILTERS = [
  ['manufacturerId', 'manufacturerId'],
  ['serialNumber', 'serialNumber'],
  ['mac', 'identifiers.mac'],
  ['imei', 'identifiers.imei'],
  ['hardwareId', 'identifiers.hardwareId'],
  ['status', 'status'],
  ['model', 'model'],
] as const;

export interface BuiltFind<T> {
  filter: Filter<T>;
  sort: Sort;
  limit: number;
}

/** findDevices: every present filter ANDed, insertion order, limit 100 by default (at most 1000). */
export function devicesFind(query: DeviceQuery): BuiltFind<DeviceDoc> {
  if (query.status !== undefined && !DEVICE_STATUSES.has(query.status)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `unknown device status ${JSON.stringify(query.status)}`);
  }
  const filter: Record<string, string> = {};
  for (const [field, path] of DEVICE_FILTERS) {
    const value = query[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new KakuinError('KAKUIN_E_VALIDATION', `${field} must be a string`);
    filter[path] = value;
  }
  return { filter: filter as Filter<DeviceDoc>, sort: { ord: 1 }, limit: normalizeLimit(query.limit) };
}

/** listAuditEvents: oldest first (increasing id); `since` inclusive, `until` exclusive. */
export function auditEventsFind(query: AuditQuery): BuiltFind<AuditEventDoc> {
  const filter: Record<string, unknown> = {};
  const text = (value: unknown, field: string): string => {
    if (typeof value !== 'string') throw new KakuinError('KAKUIN_E_VALIDATION', `${field} must be a string`);
    return value;
  };
  if (query.deviceId !== undefined) filter.deviceId = text(query.deviceId, 'deviceId');
  if (query.type !== undefined) filter.type = text(query.type, 'type');
  if (query.actor !== undefined) filter.actor = String(query.actor);
  const at: Record<string, Date> = {};
  if (query.since !== undefined) at.$gte = new Date(toMillis(query.since, 'since'));
  if (query.until !== undefined) at.$lt = new Date(toMillis(query.until, 'until'));
  if (Object.keys(at).length > 0) filter.at = at;
  if (query.afterId !== undefined) {
    if (!Number.isSafeInteger(query.afterId) || query.afterId < 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'afterId must be a non-negative integer');
    filter._id = { $gt: query.afterId };
  }
  return { filter: filter as Filter<AuditEventDoc>, sort: { _id: 1 }, limit: normalizeLimit(query.limit) };
}

/**
 * A page of a short list (ListPage) in `ord` order: the documents matching `filter` after the one
 * whose `keyField` is `page.afterKey`; without a page, all of them.
 */
export async function pageFind<T extends Document & { ord: ObjectId }>(col: Collection<T>, filter: Filter<T>, keyField: string, page: ListPage | undefined): Promise<T[]> {
  const f: Record<string, unknown> = { ...(filter as Record<string, unknown>) };
  if (page?.afterKey !== undefined) {
    const anchor = await col.findOne({ ...f, [keyField]: page.afterKey } as Filter<T>, { projection: { ord: 1 } });
    if (anchor === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no item of this list (a cursor from another list, or a typo?)');
    f.ord = { $gt: anchor.ord };
  }
  const cursor = col.find(f as Filter<T>).sort({ ord: 1 });
  if (page?.limit !== undefined) cursor.limit(normalizeLimit(page.limit));
  return (await cursor.toArray()) as T[];
}

/** readFeed: seq > afterSeq, ascending. Seqs commit in order (see counterIncrement), so this never skips one. */
export function feedFind(afterSeq: number, limit: number | undefined): BuiltFind<FeedDoc> {
  return { filter: { _id: { $gt: afterSeq } }, sort: { _id: 1 }, limit: normalizeFeedLimit(limit) };
}

/**
 * The counter update that reserves `count` feed seqs (or audit ids) inside the writing transaction:
 * `findOneAndUpdate({_id: name}, {$inc: {seq: count}}, {upsert, returnDocument: 'after'})`; the
 * reserved seqs are `seq - count + 1 .. seq`. Two transactions that both $inc the same counter
 * document conflict (WriteConflict, retried by withTransaction), so the second one reserves only
 * after the first committed: seq order is commit order, and "everything after N" is a prefix.
 */
export function counterIncrement(count: number): UpdateFilter<{ _id: string; seq: number }> {
  if (!Number.isSafeInteger(count) || count < 1) throw new KakuinError('KAKUIN_E_INTERNAL', 'a counter moves by a positive integer');
  return { $inc: { seq: count } };
}

/** Projection of the six fields a CertificateStatusRow needs (forEachCrlEntry, forEachCertificateStatus). */
export const STATUS_ROW_PROJECTION = {
  _id: 1, status: 1, revokedAt: 1, reason: 1, invalidityDate: 1, notAfter: 1,
} as const;

/** Documents per round trip for the streaming reads (a CRL may have millions of entries). */
export const STREAM_BATCH_SIZE = 5000;

export const STREAM_OPTIONS: FindOptions = { projection: STATUS_ROW_PROJECTION, batchSize: STREAM_BATCH_SIZE };

/** The full CRL: every revoked or held certificate of the issuer (uses `certificates_on_crl`). */
export function fullCrlFilter(issuerId: string): Filter<CertificateDoc> {
  return { issuerId, status: { $in: ['revoked', 'held'] } };
}

/** A delta CRL, first half: revoked or held after the base's feed seq. */
export function deltaChangedFilter(issuerId: string, afterSeq: number): Filter<CertificateDoc> {
  return { issuerId, status: { $in: ['revoked', 'held'] }, statusSeq: { $gt: afterSeq } };
}

/** A delta CRL, second half: released from hold after the base's feed seq (listed as removeFromCRL). */
export function deltaReleasedFilter(issuerId: string, afterSeq: number): Filter<CertificateDoc> {
  return { issuerId, status: 'good', releasedSeq: { $gt: afterSeq } };
}

/**
 * A guarded certificate transition: matches only while the status is still the one read in the
 * transaction (a compare-and-set; inside a transaction the read already guards it, the filter
 * makes a lost race visible as matchedCount 0 rather than a silent overwrite).
 */
export function certificateTransitionFilter(serialHex: string, current: CertificateStatus): Filter<CertificateDoc> {
  return { _id: serialHex, status: current };
}

/** Revoked or held: status, reason, dates and the seq of the feed entry that reports it. */
export function revokeOrHoldUpdate(to: 'revoked' | 'held', reason: CrlReason, revokedAt: Date, invalidityDate: Date | undefined, seq: number): UpdateFilter<CertificateDoc> {
  return {
    $set: { status: to, reason, revokedAt, statusSeq: seq, ...(invalidityDate !== undefined && { invalidityDate }) },
    ...(invalidityDate === undefined && { $unset: { invalidityDate: '' } }),
  };
}

/** Released from hold: good again, the CRL-entry fields cleared, releasedSeq puts it on the next delta. */
export function releaseUpdate(seq: number): UpdateFilter<CertificateDoc> {
  return { $set: { status: 'good', statusSeq: seq, releasedSeq: seq }, $unset: { reason: '', revokedAt: '', invalidityDate: '' } };
}

export function deviceTransitionFilter(id: string, current: DeviceStatus): Filter<DeviceDoc> {
  return { _id: id, status: current };
}

export function deviceStatusUpdate(to: DeviceStatus, now: Date): UpdateFilter<DeviceDoc> {
  return { $set: { status: to, updatedAt: now } };
}

/** An issuance moves only a `registered` device to `active` (a renewal leaves an active one as it is). */
export const ACTIVATE_FILTER_STATUS: DeviceStatus = 'registered';

/** Enabled legacy credentials by factors. */
export function legacyFactorsFilter(commonAuthId: string, uniqueId: string): Filter<LegacyCredentialDoc> {
  return { commonAuthId, uniqueId, state: 'enabled' };
}

export function legacyVerifiersFilter(kind: string, verifiers: string[]): Filter<LegacyCredentialDoc> {
  return { verifierKind: kind as LegacyCredentialDoc['verifierKind'], verifier: { $in: [...new Set(verifiers)] }, state: 'enabled' };
}

/** Pending supersessions due at `now`, earliest first. */
export function dueSupersedesFind(now: Date, limit: number | undefined): BuiltFind<{ _id: string; at: Date }> {
  return { filter: { at: { $lte: now } }, sort: { at: 1, _id: 1 }, limit: normalizeLimit(limit) };
}

/** putCrl keeps the CRL with the higher number: the replace matches only an older or equal one. */
export function crlReplaceFilter(id: string, numberKey: string): Filter<{ _id: string; numberKey: string }> {
  return { _id: id, numberKey: { $lte: numberKey } };
}

/** countLegacyFailures: windows older than the previous one are dropped. */
export function staleFailuresFilter(windowStart: Date, windowMs: number): Filter<LegacyFailureDoc> {
  return { windowStart: { $lt: new Date(windowStart.getTime() - windowMs) } };
}

export function failureId(key: string, windowStart: Date): string {
  return `${windowStart.getTime()}/${key}`;
}

/**
 * listLegacyCredentialStates: every device with enabled credentials, with its device status, in
 * the order the credentials were first set (the kill switch loads this at start).
 */
export const LEGACY_STATES_PIPELINE = [
  { $match: { state: 'enabled' } },
  { $sort: { ord: 1 } },
  { $lookup: { from: 'devices', localField: '_id', foreignField: '_id', as: 'device', pipeline: [{ $project: { status: 1 } }] } },
  { $unwind: '$device' },
  { $project: { _id: 0, deviceId: '$_id', generation: 1, deviceStatus: '$device.status' } },
] as const;
