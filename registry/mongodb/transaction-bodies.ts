/**
 * The bodies of the multi-document transactions (run by MongoRegistry.transaction inside
 * `session.withTransaction`): recording an issuance and applying a status change. Every read that
 * guards a write happens inside the same transaction with snapshot read concern, and every feed
 * entry takes its seq from the `feed` counter document $inc'ed in that transaction, so:
 * - a revocation and an issuance of the same device conflict (both write the counter), one
 *   commits first, and the other retries and sees it: no good certificate outlives its device's
 *   revocation;
 * - seqs are assigned in commit order (see queries.ts counterIncrement).
 * A refusal (KakuinError) aborts the transaction: nothing of it stays.
 */
import { ObjectId, type ClientSession, type Db } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type { CertificateRecord, CertificateStatus, DeviceStatus, FeedEntry } from '../port.js';
import { certificateOutcome, deviceAcceptsCertificates, deviceOutcome, type CheckedTransition } from '../status-change.js';
import { jobStepSettled, linkAuditEvent, type PreparedIssuance, type PreparedStatusChange } from '../records/index.js';
import {
  auditEventDoc, certificateDoc, COLLECTIONS, feedDoc, type AuditChainDoc, type AuditEventDoc, type CertificateDoc, type CounterDoc, type DeviceDoc,
  type FeedDoc, type IssuerDoc, type KeyBindingDoc,
} from './documents.js';
import {
  certificateTransitionFilter, counterIncrement, deviceStatusUpdate, deviceTransitionFilter, releaseUpdate, revokeOrHoldUpdate,
} from './queries.js';

export type AuditValues = PreparedIssuance['audit'];

/** Counter document ids. */
export const FEED_COUNTER = 'revocationFeed';
export const AUDIT_COUNTER = 'auditEvents';

/** Reserves `count` numbers of a counter in the session's transaction; returns the first. */
export async function reserve(db: Db, session: ClientSession, counter: string, count = 1): Promise<number> {
  const doc = await db.collection<CounterDoc>(COLLECTIONS.counters).findOneAndUpdate(
    { _id: counter }, counterIncrement(count), { upsert: true, returnDocument: 'after', session });
  if (doc === null) throw new KakuinError('KAKUIN_E_INTERNAL', `counter ${counter} was not returned`);
  return doc.seq - count + 1;
}

/** Appends one feed entry with the next seq; returns it as the port shows it. */
export async function appendFeed(db: Db, session: ClientSession, entry: Omit<FeedEntry, 'seq'>): Promise<FeedEntry> {
  const seq = await reserve(db, session, FEED_COUNTER);
  const doc = feedDoc(seq, entry);
  await db.collection<FeedDoc>(COLLECTIONS.feed).insertOne(doc, { session });
  return { seq, ...entry };
}

/** Where audit events are written: the database and this registry instance's chain (registry/records/audit-chain.ts). */
export interface AuditWriter { readonly db: Db; readonly auditChainId: string }

/**
 * Inserts the audit events with the next ids, linked into the writer's hash chain; returns the
 * first id (0 when there were none). The chain head is read in the same transaction (snapshot), and
 * the unique index on (chain.chain, chain.seq) makes a second writer on one chain fail rather than fork it.
 */
export async function insertAudit(w: AuditWriter, session: ClientSession, events: AuditValues[], stationId?: string): Promise<number> {
  if (events.length === 0) return 0;
  const { db } = w;
  const first = await reserve(db, session, AUDIT_COUNTER, events.length);
  const col = db.collection<AuditEventDoc>(COLLECTIONS.auditEvents);
  const chains = db.collection<AuditChainDoc>(COLLECTIONS.auditChains);
  const stored = await chains.findOne({ _id: w.auditChainId }, { session });
  let head: { seq: number; hash: string } | undefined = stored === null ? undefined : { seq: stored.seq, hash: stored.hash };
  const docs = events.map((v, i) => {
    // The station id is assigned inside the transaction, so its audit event learns it here.
    const values = stationId === undefined ? v : { ...v, details: JSON.stringify({ ...(v.details === null ? {} : JSON.parse(v.details) as object), stationId }) };
    const link = linkAuditEvent(first + i, values, w.auditChainId, head);
    head = link;
    return { ...auditEventDoc(first + i, values), chain: link };
  });
  await col.insertMany(docs, { session });
  const last = docs[docs.length - 1];
  await chains.updateOne({ _id: w.auditChainId }, { $set: { seq: last.chain.seq, hash: last.chain.hash, eventId: last._id, updatedAt: new Date() } }, { upsert: true, session });
  return first;
}

/** recordIssuance / recordStationCertificate, inside a transaction. */
export async function writeIssuance(w: AuditWriter, session: ClientSession, p: PreparedIssuance, stationId?: string): Promise<CertificateRecord> {
  const { db } = w;
  const c = p.certificate;
  const now = c.createdAt;
  const issuer = await db.collection<IssuerDoc>(COLLECTIONS.issuers).findOne({ _id: c.issuerId }, { session, projection: { _id: 1 } });
  if (issuer === null) throw new KakuinError('KAKUIN_E_ISSUER_NOT_FOUND', `no issuer ${JSON.stringify(c.issuerId)} is recorded`);
  const devices = db.collection<DeviceDoc>(COLLECTIONS.devices);
  const bindings = db.collection<KeyBindingDoc>(COLLECTIONS.keyBindings);
  let bindKey = false;
  let activate = false;
  if (c.deviceId !== undefined) {
    const device = await devices.findOne({ _id: c.deviceId }, { session, projection: { status: 1 } });
    if (device === null) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
    if (!deviceAcceptsCertificates(device.status)) {
      throw new KakuinError('KAKUIN_E_DEVICE_STATE', `the device is ${device.status}; it cannot be given a certificate`);
    }
    const bound = await bindings.findOne({ _id: c.publicKeySha256 }, { session });
    if (bound !== null && bound.deviceId !== c.deviceId) {
      throw new KakuinError('KAKUIN_E_PUBLIC_KEY_IN_USE', 'the public key is already bound to another device');
    }
    bindKey = bound === null;
    activate = device.status === 'registered';
  }
  const existing = await db.collection<CertificateDoc>(COLLECTIONS.certificates).findOne({ _id: c.serialHex }, { session, projection: { _id: 1 } });
  if (existing !== null) throw new KakuinError('KAKUIN_E_SERIAL_EXISTS', 'a certificate with that serial number is already recorded');
  const entry = await appendFeed(db, session, {
    at: now, kind: 'certificate', serialHex: c.serialHex, issuerId: c.issuerId, ...(c.deviceId !== undefined && { deviceId: c.deviceId }), status: 'good',
  });
  await db.collection<CertificateDoc>(COLLECTIONS.certificates).insertOne(certificateDoc(c, entry.seq, new ObjectId(), stationId), { session });
  if (c.deviceId !== undefined) {
    if (bindKey) await bindings.insertOne({ _id: c.publicKeySha256, deviceId: c.deviceId, boundAt: now }, { session });
    if (activate) {
      const moved = await devices.updateOne(deviceTransitionFilter(c.deviceId, 'registered'), deviceStatusUpdate('active', now), { session });
      if (moved.modifiedCount === 1) {
        await appendFeed(db, session, { at: now, kind: 'device', deviceId: c.deviceId, status: 'active', previousStatus: 'registered' });
      }
    }
  }
  await insertAudit(w, session, [p.audit]);
  return c;
}

interface CertificateState { _id: string; issuerId: string; deviceId?: string; status: CertificateStatus }

const STATE_PROJECTION = { _id: 1, issuerId: 1, deviceId: 1, status: 1 } as const;

/**
 * applyStatusChange, inside a transaction. Order of the work, and so of the feed entries, as on
 * SQLite: the listed certificates as given, then the device, then the device's certificates
 * (oldest first) still in the sweep's `from`.
 */
export async function writeStatusChange(w: AuditWriter, session: ClientSession, change: PreparedStatusChange, now: Date): Promise<FeedEntry[]> {
  const { db } = w;
  const certificates = db.collection<CertificateDoc>(COLLECTIONS.certificates);
  const entries: FeedEntry[] = [];
  const transition = async (row: CertificateState, t: CheckedTransition): Promise<void> => {
    if (certificateOutcome(row._id, row.status, t) === 'unchanged') return;
    const entry = await appendFeed(db, session, {
      at: now, kind: 'certificate', serialHex: row._id, issuerId: row.issuerId, ...(row.deviceId !== undefined && { deviceId: row.deviceId }),
      status: t.to, previousStatus: row.status,
      ...(t.reason !== undefined && { reason: t.reason }), ...(t.revokedAt !== undefined && { revokedAt: t.revokedAt }),
      ...(t.invalidityDate !== undefined && { invalidityDate: t.invalidityDate }),
    });
    const update = t.to === 'good' ? releaseUpdate(entry.seq) : revokeOrHoldUpdate(t.to, t.reason!, t.revokedAt!, t.invalidityDate, entry.seq);
    const result = await certificates.updateOne(certificateTransitionFilter(row._id, row.status), update, { session });
    if (result.matchedCount !== 1) throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the certificate changed during the transaction; retry');
    entries.push(entry);
  };
  for (const t of change.certificates) {
    const row = await certificates.findOne({ _id: t.serialHex }, { session, projection: STATE_PROJECTION }) as CertificateState | null;
    if (row === null) throw new KakuinError('KAKUIN_E_CERTIFICATE_NOT_FOUND', `no certificate with serial number ${t.serialHex}`);
    await transition(row, t);
  }
  const d = change.device;
  if (d !== undefined) {
    const devices = db.collection<DeviceDoc>(COLLECTIONS.devices);
    const device = await devices.findOne({ _id: d.id }, { session, projection: { status: 1 } });
    if (device === null) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
    if (deviceOutcome(device.status, d) === 'apply') {
      await devices.updateOne(deviceTransitionFilter(d.id, device.status), deviceStatusUpdate(d.to, now), { session });
      if (d.decommission !== undefined) await devices.updateOne({ _id: d.id }, { $set: { decommission: d.decommission } }, { session });
      entries.push(await appendFeed(db, session, { at: now, kind: 'device', deviceId: d.id, status: d.to, previousStatus: device.status as DeviceStatus }));
    }
    const sweep = d.certificates;
    if (sweep !== undefined) {
      // Read in the transaction: a certificate committed a moment ago is in this list; one
      // committing concurrently conflicts on the feed counter and is retried after this commit.
      const rows = await certificates.find({ deviceId: d.id }, { session, projection: STATE_PROJECTION, sort: { ord: 1 } }).toArray() as CertificateState[];
      for (const row of rows) {
        if (sweep.from.has(row.status)) await transition(row, sweep);
      }
    }
  }
  const step = change.jobStep;
  if (step !== undefined) {
    // Only a pending step moves: one settled before (a crashed run's commit) refuses the change.
    const settled = await db.collection(COLLECTIONS.bulkJobDevices).updateOne(
      { _id: `${step.jobId}|${step.deviceId}` as never, outcome: 'pending' }, { $set: { outcome: 'acted', settledAt: now } }, { session });
    if (settled.matchedCount !== 1) throw jobStepSettled();
    await db.collection(COLLECTIONS.bulkJobs).updateOne({ _id: step.jobId as never }, { $inc: { acted: 1 }, $set: { updatedAt: now } }, { session });
  }
  await insertAudit(w, session, change.audit);
  return entries;
}
