/**
 * The production/cluster registry on MongoDB (official driver 6.x). See DESIGN.md "Storage" and
 * docs/mongodb.md. This class only calls the driver: filters, updates and index specifications are
 * in queries.ts and indexes.ts, documents in documents.ts, transaction bodies in
 * transaction-bodies.ts, the legacy path and production-line enrollment in legacy-store.ts and
 * enrollment-store.ts, shared plumbing (error translation, transactions, close) in plumbing.ts.
 * Input checks are every adapter's (registry/records/), so both adapters accept and refuse the
 * same values with the same codes.
 *
 * Every write that touches more than one document runs in `session.withTransaction` (snapshot
 * reads, majority writes; transient conflicts are retried by the driver). Listings come back in
 * insertion order (`ord`); audit events in increasing id order.
 */
import { MongoActivityStore } from './activity-store.js';
import { MongoUserStore } from './user-store.js';
import { MongoDetectionStore } from './detections.js';
import { MongoJobStore } from './jobs.js';
import { MongoApprovalStore } from './approvals.js';
import { MongoCmpStore } from './cmp-store.js';
import { MongoScepStore } from './scep-store.js';
import { MongoAcmeStore } from './acme-store.js';
import { randomUUID } from 'node:crypto';
import { ObjectId, type ChangeStream, type ClientSession, type Db, type MongoClient } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type {
  AdminToken, AuditChainHead, AuditEvent, AuditQuery, ListPage, CertificateRecord, CertificateStatusRow, CommonAuthId, CrlRecord, Device, DeviceQuery,
  FailureCount, FeedEntry, Issuer, LegacyCredential, LegacyCredentialState, LegacyVerifierKind, Manufacturer,
  NewLegacyCredential, PendingSupersede, Registry, Station, StoredOcspResponse,
} from '../port.js';
import {
  CheckedRegistry, requiredText, type AuditEventValues, type CheckedCommonAuthId, type CheckedStationChange, type CrlRow,
  type OcspResponseRow, type PreparedIssuance, type PreparedStatusChange,
} from '../records/index.js';
import { connect, type MongoRegistryOptions } from './connection.js';
import {
  adminTokenFromDoc, auditEventDoc, auditEventFromDoc, certificateFromDoc, COLLECTIONS, crlDoc, crlFromDoc, deviceFromDoc, feedEntryFromDoc,
  issuerFromDoc, manufacturerFromDoc, ocspResponseDoc, ocspResponseFromDoc, ocspResponseId, type AdminTokenDoc, type AuditChainDoc, type AuditEventDoc,
  type CertificateDoc, type CrlDoc, type CrlNumberDoc, type DeviceDoc, type FeedDoc, type IssuerDoc, type KeyBindingDoc,
  type ManufacturerDoc, type OcspResponseDoc,
} from './documents.js';
import { getCrlDocument, putCrlDocument } from './crl-chunks.js';
import { isDuplicateKey } from './driver-errors.js';
import { EnrollmentStore } from './enrollment-store.js';
import { LegacyStore } from './legacy-store.js';
import { key, RegistryPlumbing } from './plumbing.js';
import {
  auditEventsFind, crlReplaceFilter, deltaChangedFilter, deltaReleasedFilter, devicesFind, feedFind, fullCrlFilter, STREAM_OPTIONS,
  pageFind,
} from './queries.js';
import { insertAudit, writeIssuance, writeStatusChange } from './transaction-bodies.js';

/** Open (creating collections and indexes unless read-only) the registry database. */
export async function openMongoRegistry(options: MongoRegistryOptions): Promise<MongoRegistry> {
  const { client, db, schemaVersion } = await connect(options);
  return new MongoRegistry(client, db, schemaVersion, options.readonly === true);
}

export class MongoRegistry extends CheckedRegistry implements Registry {
  private readonly p: RegistryPlumbing;
  private readonly legacy: LegacyStore;
  private readonly enrollment: EnrollmentStore;
  /** The activity port (registry/activity.ts) on this registry's connection; it writes only when the registry does. */
  readonly activity: MongoActivityStore;
  /** The users port (registry/users.ts): people's logins and sessions, for the management API's process. */
  readonly users: MongoUserStore;
  /** The detections port (registry/detections.ts) on this registry's connection. */
  readonly detections: MongoDetectionStore;
  /** The bulk-job port (registry/jobs.ts). */
  readonly jobs: MongoJobStore;
  /** The approval port (registry/approvals.ts). */
  readonly approvals: MongoApprovalStore;
  /** The CMP store port (registry/cmp.ts): enrollment/cmp's secrets and transactions. */
  readonly cmp: MongoCmpStore;
  /** The SCEP store (registry/scep.ts): challenges, transactions, the RA certificate. */
  readonly scep: MongoScepStore;
  /** The ACME store port (registry/acme.ts): enrollment/acme's accounts, orders and EAB keys. */
  readonly acme: MongoAcmeStore;

  /** Use openMongoRegistry: it checks the deployment and prepares the collections this class relies on. */
  constructor(client: MongoClient, db: Db, private readonly version: number, readonly: boolean) {
    super();
    this.p = new RegistryPlumbing(client, db, readonly);
    this.legacy = new LegacyStore(this.p);
    this.enrollment = new EnrollmentStore(this.p);
    this.activity = new MongoActivityStore(this.p);
    this.users = new MongoUserStore(this.p);
    this.detections = new MongoDetectionStore(this.p);
    this.jobs = new MongoJobStore(this.p);
    this.approvals = new MongoApprovalStore(this.p);
    this.cmp = new MongoCmpStore(this.p);
    this.scep = new MongoScepStore(this.p);
    this.acme = new MongoAcmeStore(this.p);
    this.opened = { readonly };
  }

  private readonly opened: { readonly: boolean };

  /** Whether this connection was opened read-only (a gateway or OCSP role). */
  get isReadonly(): boolean {
    return this.opened.readonly;
  }

  async schemaVersion(): Promise<number> {
    this.p.assertOpen();
    return this.version;
  }

  // ---- issuers ----

  protected async putIssuerChecked(issuer: Issuer): Promise<Issuer> {
    const doc: IssuerDoc = {
      _id: issuer.id, kind: issuer.kind, certificateDer: issuer.certificateDer, keyUri: issuer.keyUri, createdAt: issuer.createdAt,
    };
    if (issuer.parentId !== undefined) doc.parentId = issuer.parentId;
    await this.p.write('recording an issuer', () => this.p.col<IssuerDoc>(COLLECTIONS.issuers).replaceOne({ _id: doc._id }, doc, { upsert: true }));
    return issuerFromDoc(doc);
  }

  async getIssuer(id: string): Promise<Issuer> {
    const doc = await this.p.read('reading an issuer', () => this.p.col<IssuerDoc>(COLLECTIONS.issuers).findOne({ _id: key(id) ?? '' }));
    if (doc === null) throw new KakuinError('KAKUIN_E_ISSUER_NOT_FOUND', `no issuer ${JSON.stringify(id)} is recorded`);
    return issuerFromDoc(doc);
  }

  async listIssuers(): Promise<Issuer[]> {
    // Issuers have no insertion order of their own: createdAt, then id, is stable.
    return this.p.read('listing issuers', async () =>
      (await this.p.col<IssuerDoc>(COLLECTIONS.issuers).find({}).sort({ createdAt: 1, _id: 1 }).toArray()).map(issuerFromDoc));
  }

  // ---- manufacturers ----

  protected async createManufacturerChecked(m: Manufacturer): Promise<Manufacturer> {
    const doc: ManufacturerDoc = { _id: m.id, name: m.name, createdAt: m.createdAt, ord: new ObjectId() };
    await this.p.write('creating a manufacturer', () => this.p.col<ManufacturerDoc>(COLLECTIONS.manufacturers).insertOne(doc));
    return manufacturerFromDoc(doc);
  }

  async getManufacturer(id: string): Promise<Manufacturer> {
    const doc = await this.p.read('reading a manufacturer', () => this.p.col<ManufacturerDoc>(COLLECTIONS.manufacturers).findOne({ _id: key(id) ?? '' }));
    if (doc === null) throw new KakuinError('KAKUIN_E_MANUFACTURER_NOT_FOUND', 'no manufacturer with that id');
    return manufacturerFromDoc(doc);
  }

  async listManufacturers(page?: ListPage): Promise<Manufacturer[]> {
    return this.p.read('listing manufacturers', async () =>
      (await pageFind(this.p.col<ManufacturerDoc>(COLLECTIONS.manufacturers), {}, '_id', page)).map(manufacturerFromDoc));
  }

  // ---- devices ----

  protected async createDeviceChecked(device: Device, values: AuditEventValues | undefined): Promise<Device> {
    const { id, ...fields } = device;
    const doc: DeviceDoc = { _id: id, ...fields, identifiers: { ...device.identifiers }, ord: new ObjectId() };
    if (values === undefined) {
      // Manufacturers are never deleted: checking first and inserting after needs no transaction.
      await this.p.write('creating a device', async () => {
        await this.p.requireManufacturer(doc.manufacturerId);
        await this.p.col<DeviceDoc>(COLLECTIONS.devices).insertOne(doc);
      });
    } else {
      // The device and its audit event commit together.
      await this.p.transaction('creating a device', async (session) => {
        await this.p.requireManufacturer(doc.manufacturerId, session);
        await this.p.col<DeviceDoc>(COLLECTIONS.devices).insertOne(doc, { session });
        await insertAudit(this.p, session, [values]);
      });
    }
    return deviceFromDoc(doc);
  }

  async getDevice(id: string): Promise<Device> {
    const doc = await this.p.read('reading a device', () => this.p.col<DeviceDoc>(COLLECTIONS.devices).findOne({ _id: key(id) ?? '' }));
    if (doc === null) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
    return deviceFromDoc(doc);
  }

  async findDevices(query: DeviceQuery): Promise<Device[]> {
    const { filter, sort, limit } = devicesFind(query ?? {});
    return this.p.read('finding devices', async () => {
      const devices = this.p.col<DeviceDoc>(COLLECTIONS.devices);
      if (query?.afterId !== undefined) {
        // Paging in `ord` order, after the device the cursor names.
        const anchor = await devices.findOne({ _id: requiredText(query.afterId, 'afterId') }, { projection: { ord: 1 } });
        if (anchor === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no device (a cursor from another list, or a typo?)');
        (filter as Record<string, unknown>).ord = { $gt: anchor.ord };
      }
      return (await devices.find(filter).sort(sort).limit(limit).toArray()).map(deviceFromDoc);
    });
  }

  // ---- certificates ----

  protected async recordIssuanceChecked(prepared: PreparedIssuance): Promise<CertificateRecord> {
    return this.p.transaction('recording an issuance', (session) => writeIssuance(this.p, session, prepared));
  }

  protected async getCertificateChecked(serial: string): Promise<CertificateRecord> {
    const doc = await this.p.read('reading a certificate', () => this.p.col<CertificateDoc>(COLLECTIONS.certificates).findOne({ _id: serial }));
    if (doc === null) throw new KakuinError('KAKUIN_E_CERTIFICATE_NOT_FOUND', 'no certificate with that serial number');
    return certificateFromDoc(doc);
  }

  async listCertificatesOfDevice(deviceId: string): Promise<CertificateRecord[]> {
    const id = key(deviceId);
    if (id === undefined) return [];
    return this.p.read('listing certificates', async () =>
      (await this.p.col<CertificateDoc>(COLLECTIONS.certificates).find({ deviceId: id }).sort({ ord: 1 }).toArray()).map(certificateFromDoc));
  }

  protected async findDeviceIdByPublicKeyChecked(k: string): Promise<string | undefined> {
    const doc = await this.p.read('reading a key binding', () => this.p.col<KeyBindingDoc>(COLLECTIONS.keyBindings).findOne({ _id: k }));
    return doc?.deviceId;
  }

  // ---- admin tokens ----

  protected async createAdminTokenChecked(token: AdminToken, event: AuditEventValues | undefined): Promise<AdminToken> {
    const doc: AdminTokenDoc = {
      _id: token.id, name: token.name, tokenHmac: token.tokenHmac, role: token.role, createdAt: token.createdAt,
      ...(token.manufacturerId !== undefined && { manufacturerId: token.manufacturerId }),
      ...(token.expiresAt !== undefined && { expiresAt: token.expiresAt }), ord: new ObjectId(),
    };
    await this.p.transaction('creating an admin token', async (session) => {
      await this.p.col<AdminTokenDoc>(COLLECTIONS.adminTokens).insertOne(doc, { session });
      if (event) await insertAudit(this.p, session, [event]);
    });
    return adminTokenFromDoc(doc);
  }

  protected async findAdminTokenByHmacChecked(hmac: string): Promise<AdminToken | undefined> {
    const doc = await this.p.read('reading an admin token', () => this.p.col<AdminTokenDoc>(COLLECTIONS.adminTokens).findOne({ tokenHmac: hmac }));
    return doc === null ? undefined : adminTokenFromDoc(doc);
  }

  async listAdminTokens(page?: ListPage): Promise<AdminToken[]> {
    return this.p.read('listing admin tokens', async () =>
      (await pageFind(this.p.col<AdminTokenDoc>(COLLECTIONS.adminTokens), {}, 'name', page)).map(adminTokenFromDoc));
  }

  protected async revokeAdminTokenChecked(n: string, atMs: number, event: AuditEventValues): Promise<AdminToken> {
    const atDate = new Date(atMs);
    return this.p.transaction('revoking an admin token', async (session) => {
      const col = this.p.col<AdminTokenDoc>(COLLECTIONS.adminTokens);
      const doc = await col.findOne({ name: n }, { session });
      if (doc === null) throw new KakuinError('KAKUIN_E_TOKEN_NOT_FOUND', 'no admin token with that name');
      if (doc.disabledAt !== undefined && doc.disabledAt !== null) throw new KakuinError('KAKUIN_E_TOKEN_STATE', `the token ${n} was revoked at ${doc.disabledAt.toISOString()}`);
      await col.updateOne({ _id: doc._id }, { $set: { disabledAt: atDate } }, { session });
      await insertAudit(this.p, session, [event]);
      return adminTokenFromDoc({ ...doc, disabledAt: atDate });
    });
  }

  protected async touchAdminTokenChecked(name: string, atMs: number): Promise<void> {
    const atDate = new Date(atMs);
    await this.p.write('recording an admin token use', () =>
      this.p.col<AdminTokenDoc>(COLLECTIONS.adminTokens).updateOne({ name: requiredText(name, 'name') }, { $max: { lastUsedAt: atDate } }));
  }

  // ---- audit ----

  protected async appendAuditEventChecked(values: AuditEventValues): Promise<AuditEvent> {
    // In a transaction, so ids commit in increasing order like feed seqs (afterId paging skips nothing).
    const id = await this.p.transaction('appending an audit event', (session) => insertAudit(this.p, session, [values]));
    // Read back for its chain link (assigned in the transaction).
    const doc = await this.p.read('reading an audit event', () => this.p.col<AuditEventDoc>(COLLECTIONS.auditEvents).findOne({ _id: id }));
    return auditEventFromDoc(doc ?? auditEventDoc(id, values));
  }

  async auditChainHeads(): Promise<AuditChainHead[]> {
    return this.p.read('reading the audit chain heads', async () =>
      (await this.p.col<AuditChainDoc>(COLLECTIONS.auditChains).find({}).sort({ _id: 1 }).toArray())
        .map((d) => ({ chain: d._id, seq: d.seq, hash: d.hash, eventId: d.eventId })));
  }

  async listAuditEvents(query: AuditQuery): Promise<AuditEvent[]> {
    const { filter, sort, limit } = auditEventsFind(query ?? {});
    return this.p.read('listing audit events', async () =>
      (await this.p.col<AuditEventDoc>(COLLECTIONS.auditEvents).find(filter).sort(sort).limit(limit).toArray()).map(auditEventFromDoc));
  }

  // ---- revocation ----

  protected async applyStatusChangeChecked(prepared: PreparedStatusChange, now: number): Promise<FeedEntry[]> {
    return this.p.transaction('applying a status change', (session) => writeStatusChange(this.p, session, prepared, new Date(now)));
  }

  protected async readFeedChecked(after: number, limit: number): Promise<FeedEntry[]> {
    const { filter, sort, limit: n } = feedFind(after, limit);
    return this.p.read('reading the revocation feed', async () =>
      (await this.p.col<FeedDoc>(COLLECTIONS.feed).find(filter).sort(sort).limit(n).toArray()).map(feedEntryFromDoc));
  }

  async latestFeedSeq(): Promise<number> {
    return this.p.read('reading the revocation feed', async () => {
      const last = await this.p.col<FeedDoc>(COLLECTIONS.feed).find({}, { projection: { _id: 1 } }).sort({ _id: -1 }).limit(1).next();
      return last?._id ?? 0;
    });
  }

  protected async forEachCrlEntryChecked(issuerId: string, after: number | undefined, row: CertificateStatusRow): Promise<void> {
    if (after === undefined) {
      await this.p.stream('reading CRL entries', row, (guarded) => this.emitStatusRows(fullCrlFilter(issuerId), guarded));
      return;
    }
    // Both halves of a delta read one snapshot: a release committed between them cannot be missed.
    await this.p.stream('reading CRL entries', row, async (guarded) => {
      const session = this.p.client.startSession({ snapshot: true });
      try {
        await this.emitStatusRows(deltaChangedFilter(issuerId, after), guarded, session);
        await this.emitStatusRows(deltaReleasedFilter(issuerId, after), guarded, session);
      } finally {
        await session.endSession();
      }
    });
  }

  protected async forEachCertificateStatusChecked(issuerId: string, row: CertificateStatusRow): Promise<void> {
    await this.p.stream('reading certificate statuses', row, (guarded) => this.emitStatusRows({ issuerId }, guarded));
  }

  protected async nextCrlNumberChecked(id: string): Promise<bigint> {
    return this.p.transaction('reserving a CRL number', async (session) => {
      await this.p.requireIssuer(id, session);
      const doc = await this.p.col<CrlNumberDoc & { last: number }>(COLLECTIONS.crlNumbers).findOneAndUpdate(
        { _id: id }, { $inc: { last: 1 } }, { upsert: true, returnDocument: 'after', session });
      return BigInt(doc!.last);
    });
  }

  protected async putCrlChecked(crl: CrlRow): Promise<void> {
    const doc = crlDoc(crl);
    await this.p.requireIssuer(doc.issuerId);
    // Large CRLs (over 8 MiB; a document holds at most 16 MiB) are stored in chunks (crl-chunks.ts).
    await this.p.write('storing a CRL', () => putCrlDocument(this.p.db, doc as CrlDoc & { der: Buffer }));
  }

  async getLatestCrl(issuerId: string, kind: 'full' | 'delta'): Promise<CrlRecord | undefined> {
    if (key(issuerId) === undefined || key(kind) === undefined) return undefined;
    const doc = await this.p.read('reading a CRL', () => getCrlDocument(this.p.db, `${issuerId}/${kind}`));
    return doc === null ? undefined : crlFromDoc(doc);
  }

  protected async putOcspResponsesChecked(responses: OcspResponseRow[]): Promise<void> {
    const docs = responses.map(ocspResponseDoc);
    await this.p.transaction('storing OCSP responses', async (session) => {
      for (const issuerId of new Set(docs.map((d) => d.issuerId))) await this.p.requireIssuer(issuerId, session);
      await this.p.col<OcspResponseDoc>(COLLECTIONS.ocspResponses).bulkWrite(
        docs.map((d) => ({ replaceOne: { filter: { _id: d._id }, replacement: d, upsert: true } })), { session, ordered: true });
    });
  }

  async getOcspResponse(issuerId: string, serialHex: string): Promise<StoredOcspResponse | undefined> {
    if (key(issuerId) === undefined || key(serialHex) === undefined) return undefined;
    const doc = await this.p.read('reading an OCSP response', () =>
      this.p.col<OcspResponseDoc>(COLLECTIONS.ocspResponses).findOne({ _id: ocspResponseId(issuerId, serialHex.toUpperCase()) }));
    return doc === null ? undefined : ocspResponseFromDoc(doc);
  }

  protected async forEachOcspResponseChecked(issuerId: string | undefined, row: (r: StoredOcspResponse) => void): Promise<void> {
    await this.p.stream('reading OCSP responses', row, async (guarded) => {
      const cursor = this.p.col<OcspResponseDoc>(COLLECTIONS.ocspResponses).find(issuerId === undefined ? {} : { issuerId }, { batchSize: STREAM_OPTIONS.batchSize });
      for await (const doc of cursor) guarded(ocspResponseFromDoc(doc));
    });
  }

  // ---- legacy three-factor path (legacy-store.ts) ----

  protected createCommonAuthIdChecked(input: CheckedCommonAuthId): Promise<CommonAuthId> {
    return this.legacy.createCommonAuthId(input);
  }
  getCommonAuthId(id: string): Promise<CommonAuthId> {
    return this.legacy.getCommonAuthId(id);
  }
  protected putLegacyCredentialsChecked(credentials: NewLegacyCredential[], audit: AuditEventValues[], now: number): Promise<LegacyCredential[]> {
    return this.legacy.putLegacyCredentials(credentials, audit, now);
  }
  getLegacyCredentials(deviceId: string): Promise<LegacyCredential | undefined> {
    return this.legacy.getLegacyCredentials(deviceId);
  }
  findLegacyCredentials(commonAuthId: string, uniqueId: string): Promise<LegacyCredential | undefined> {
    return this.legacy.findLegacyCredentials(commonAuthId, uniqueId);
  }
  protected findLegacyVerifiersChecked(kind: LegacyVerifierKind, verifiers: string[]): Promise<{ verifier: string; deviceId: string }[]> {
    return this.legacy.findLegacyVerifiers(kind, verifiers);
  }
  protected deleteLegacyCredentialsChecked(deviceId: string, audit: AuditEventValues, now: number): Promise<FeedEntry> {
    return this.legacy.deleteLegacyCredentials(deviceId, audit, now);
  }
  protected lockLegacyCredentialsChecked(deviceId: string, untilMs: number, audit: AuditEventValues): Promise<void> {
    return this.legacy.lockLegacyCredentials(deviceId, untilMs, audit);
  }
  protected countLegacyFailuresChecked(keys: string[], windowStartMs: number, windowMs: number): Promise<FailureCount[]> {
    return this.legacy.countLegacyFailures(keys, windowStartMs, windowMs);
  }
  listLegacyCredentialStates(): Promise<LegacyCredentialState[]> {
    return this.legacy.listLegacyCredentialStates();
  }

  // ---- production-line enrollment (enrollment-store.ts) ----

  protected createStationChecked(input: { manufacturerId: string; name: string; keyHmac: string }, audit: AuditEventValues, now: number): Promise<Station> {
    return this.enrollment.createStation(input, audit, now);
  }
  getStation(id: string): Promise<Station> {
    return this.enrollment.getStation(id);
  }
  protected findStationByKeyHmacChecked(keyHmac: string): Promise<Station | undefined> {
    return this.enrollment.findStationByKeyHmac(keyHmac);
  }
  protected listStationsChecked(manufacturerId: string, page: ListPage | undefined): Promise<Station[]> {
    return this.enrollment.listStations(manufacturerId, page);
  }
  protected updateStationChecked(id: string, change: CheckedStationChange, audit: AuditEventValues, now: number): Promise<Station> {
    return this.enrollment.updateStation(id, change, audit, now);
  }
  protected countStationIssuancesChecked(stationId: string): Promise<number> {
    return this.enrollment.countStationIssuances(stationId);
  }
  protected allowReenrollmentChecked(deviceId: string, untilMs: number, audit: AuditEventValues, now: number): Promise<void> {
    return this.enrollment.allowReenrollment(deviceId, untilMs, audit, now);
  }
  protected getReenrollmentAllowanceChecked(deviceId: string): Promise<Date | undefined> {
    return this.enrollment.getReenrollmentAllowance(deviceId);
  }
  protected consumeReenrollmentAllowanceChecked(deviceId: string): Promise<boolean> {
    return this.enrollment.consumeReenrollmentAllowance(deviceId);
  }
  protected recordStationCertificateChecked(stationId: string, prepared: PreparedIssuance): Promise<CertificateRecord> {
    return this.enrollment.recordStationCertificate(stationId, prepared);
  }
  protected findStationOfCertificateChecked(serialHex: string): Promise<string | undefined> {
    return this.enrollment.findStationOfCertificate(serialHex);
  }
  protected listStationCertificatesChecked(stationId: string, page: ListPage | undefined): Promise<CertificateRecord[]> {
    return this.enrollment.listStationCertificates(stationId, page);
  }
  protected setManufacturerProfilesChecked(manufacturerId: string, profiles: string[], audit: AuditEventValues, now: number): Promise<void> {
    return this.enrollment.setManufacturerProfiles(manufacturerId, profiles, audit, now);
  }
  protected getManufacturerProfilesChecked(manufacturerId: string): Promise<string[] | undefined> {
    return this.enrollment.getManufacturerProfiles(manufacturerId);
  }
  protected scheduleSupersedeChecked(entries: PendingSupersede[]): Promise<void> {
    return this.enrollment.scheduleSupersede(entries);
  }
  protected listDueSupersedesChecked(nowMs: number, limit: number): Promise<PendingSupersede[]> {
    return this.enrollment.listDueSupersedes(nowMs, limit);
  }
  protected clearSupersedesChecked(serialHexes: string[]): Promise<void> {
    return this.enrollment.clearSupersedes(serialHexes);
  }

  /**
   * One change stream on the feed collection per registry, shared by every follower of this
   * process: each committed feed entry (any process) wakes them. Nothing is resumed or saved — a
   * follower's own seq covers what happened while the stream was down (MongoChangeFeed in
   * change-feed.ts is the resumable stream, with saved tokens, for consumers that need one).
   */
  watchFeed(wake: () => void): () => void {
    this.wakers.add(wake);
    if (this.wakeStream === undefined) this.openWakeStream();
    return () => {
      this.wakers.delete(wake);
      if (this.wakers.size === 0) this.closeWakeStream();
    };
  }

  private readonly wakers = new Set<() => void>();
  private wakeStream: ChangeStream | undefined;
  private wakeRetry: NodeJS.Timeout | undefined;

  private openWakeStream(): void {
    let stream: ChangeStream;
    try {
      stream = this.p.db.collection(COLLECTIONS.feed).watch([{ $match: { operationType: 'insert' } }]);
    } catch {
      this.retryWakeStream();
      return;
    }
    this.wakeStream = stream;
    stream.on('change', () => {
      for (const wake of this.wakers) wake();
    });
    stream.on('error', () => {
      // The followers' polls carry on; the stream is reopened after a second.
      if (this.wakeStream === stream) this.wakeStream = undefined;
      stream.close().catch(() => undefined);
      this.retryWakeStream();
    });
  }

  private retryWakeStream(): void {
    if (this.wakeRetry !== undefined || this.wakers.size === 0) return;
    this.wakeRetry = setTimeout(() => {
      this.wakeRetry = undefined;
      if (this.wakers.size > 0 && this.wakeStream === undefined) this.openWakeStream();
    }, 1000);
    this.wakeRetry.unref();
  }

  private closeWakeStream(): void {
    if (this.wakeRetry !== undefined) clearTimeout(this.wakeRetry);
    this.wakeRetry = undefined;
    const stream = this.wakeStream;
    this.wakeStream = undefined;
    stream?.close().catch(() => undefined);
  }

  close(): Promise<void> {
    this.wakers.clear();
    this.closeWakeStream();
    return this.p.close();
  }

  /** The database (the change feed, registry/mongodb/change-feed.ts, watches its revocation feed collection). */
  database(): Db {
    this.p.assertOpen();
    return this.p.db;
  }

  private async emitStatusRows(filter: object, row: CertificateStatusRow, session?: ClientSession): Promise<void> {
    const cursor = this.p.col<CertificateDoc>(COLLECTIONS.certificates).find(filter, { ...STREAM_OPTIONS, ...(session !== undefined && { session }) });
    for await (const d of cursor) {
      row(d._id, d.status, d.revokedAt?.getTime(), d.reason ?? undefined, d.invalidityDate?.getTime(), d.notAfter.getTime());
    }
  }
}
