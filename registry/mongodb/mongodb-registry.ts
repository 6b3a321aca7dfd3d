/**
 * The production/cluster registry on MongoDB (official driver 6.x). See DESIGN.md "Storage" and
 * docs/mongodb.md. This class only calls the driver: filters, updates and index specifications are
 * in queries.ts and indexes.ts, documents in documents.ts, transaction bodies in
 * transaction-bodies.ts, and input checks are the SQLite adapter's own (registry/sqlite/records.ts),
 * so both adapters accept and refuse the same values with the same codes.
 *
 * Every write that touches more than one document runs in `session.withTransaction` (snapshot
 * reads, majority writes; transient conflicts are retried by the driver). Listings come back in
 * insertion order (`ord`); audit events in increasing id order.
 */
import { randomUUID } from 'node:crypto';
import { ObjectId, type ClientSession, type Db, type MongoClient } from 'mongodb';
import { KakuinError, type ErrorCode } from '../../errors/index.js';
import type {
  AdminToken, AuditEvent, AuditQuery, CertificateRecord, CertificateStatusRow, CommonAuthId, CrlRecord, Device, DeviceQuery,
  FailureCount, FeedEntry, IssuanceRecord, Issuer, LegacyCredential, LegacyCredentialState, LegacyVerifierKind, Manufacturer,
  NewAuditEvent, NewDevice, NewLegacyCredential, PendingSupersede, Registry, Station, StatusChange, StoredOcspResponse,
} from '../port.js';
import { checkStatusChange } from '../status-change.js';
import { prepareIssuance } from '../sqlite/issuance.js';
import {
  auditEventValues, feedSeqValue, normalizeLimit, normalizeSerialHex, normalizeSha256Hex, optionalMillis, optionalText, requiredBytes,
  requiredText, toMillis,
} from '../sqlite/records.js';
import { crlRow, ocspResponseRow } from '../sqlite/signed-objects.js';
import { connect, type MongoRegistryOptions } from './connection.js';
import {
  adminTokenFromDoc, auditEventDoc, auditEventFromDoc, certificateFromDoc, COLLECTIONS, commonAuthIdFromDoc, crlDoc, crlFromDoc, deviceFromDoc,
  feedEntryFromDoc, issuerFromDoc, legacyCredentialFromDoc, manufacturerFromDoc, ocspResponseDoc, ocspResponseFromDoc, ocspResponseId,
  stationFromDoc, supersedeFromDoc, type AdminTokenDoc, type AllowanceDoc, type AuditEventDoc, type CertificateDoc, type CommonAuthIdDoc,
  type CrlDoc, type CrlNumberDoc, type DeviceDoc, type FeedDoc, type IssuerDoc, type KeyBindingDoc, type LegacyCredentialDoc,
  type LegacyFailureDoc, type ManufacturerDoc, type OcspResponseDoc, type StationDoc, type SupersedeDoc,
} from './documents.js';
import { isDuplicateKey, toKakuinError } from './driver-errors.js';
import {
  auditEventsFind, crlReplaceFilter, deltaChangedFilter, deltaReleasedFilter, devicesFind, dueSupersedesFind, failureId, feedFind,
  fullCrlFilter, legacyFactorsFilter, legacyVerifiersFilter, LEGACY_STATES_PIPELINE, staleFailuresFilter, STREAM_OPTIONS,
} from './queries.js';
import { InFlight, WriteQueue } from './write-queue.js';
import { appendFeed, FEED_COUNTER, insertAudit, writeIssuance, writeStatusChange, type AuditValues } from './transaction-bodies.js';

const ISSUER_KINDS = new Set(['root', 'device', 'station', 'infrastructure', 'ocsp-signer']);
const USABLE_FOR_LEGACY = new Set(['registered', 'active']);

/** Open (creating collections and indexes unless read-only) the registry database. */
export async function openMongoRegistry(options: MongoRegistryOptions): Promise<MongoRegistry> {
  const { client, db, schemaVersion } = await connect(options);
  return new MongoRegistry(client, db, schemaVersion, options.readonly === true);
}

function requireObject(value: unknown, what: string): void {
  if (value === null || typeof value !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be an object`);
}

function requireFunction(value: unknown, what: string): void {
  if (typeof value !== 'function') throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a function`);
}

function notFound(code: ErrorCode, message: string): KakuinError {
  return new KakuinError(code, message);
}

/** A lookup key from a caller: only a string is ever put into a filter (an object could be an operator). */
function key(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export class MongoRegistry implements Registry {
  private closed = false;
  private readonly writes = new WriteQueue();
  private readonly inFlight = new InFlight();

  /** Use openMongoRegistry: it checks the deployment and prepares the collections this class relies on. */
  constructor(private readonly client: MongoClient, private readonly db: Db, private readonly version: number, private readonly readonly: boolean) {}

  async schemaVersion(): Promise<number> {
    this.assertOpen();
    return this.version;
  }

  // ---- issuers ----

  async putIssuer(issuer: Omit<Issuer, 'createdAt'> & { createdAt?: Date }): Promise<Issuer> {
    requireObject(issuer, 'an issuer');
    const doc: IssuerDoc = {
      _id: requiredText(issuer.id, 'issuer.id'),
      kind: requiredText(issuer.kind, 'issuer.kind') as Issuer['kind'],
      certificateDer: requiredBytes(issuer.certificateDer, 'issuer.certificateDer'),
      keyUri: requiredText(issuer.keyUri, 'issuer.keyUri'),
      createdAt: new Date(optionalMillis(issuer.createdAt, 'issuer.createdAt') ?? Date.now()),
    };
    const parentId = optionalText(issuer.parentId, 'issuer.parentId');
    if (parentId !== null) doc.parentId = parentId;
    if (!ISSUER_KINDS.has(doc.kind)) throw new KakuinError('KAKUIN_E_VALIDATION', `unknown issuer kind ${JSON.stringify(doc.kind)}`);
    await this.write('recording an issuer', () => this.col<IssuerDoc>(COLLECTIONS.issuers).replaceOne({ _id: doc._id }, doc, { upsert: true }));
    return issuerFromDoc(doc);
  }

  async getIssuer(id: string): Promise<Issuer> {
    const doc = await this.read('reading an issuer', () => this.col<IssuerDoc>(COLLECTIONS.issuers).findOne({ _id: key(id) ?? '' }));
    if (doc === null) throw notFound('KAKUIN_E_ISSUER_NOT_FOUND', `no issuer ${JSON.stringify(id)} is recorded`);
    return issuerFromDoc(doc);
  }

  async listIssuers(): Promise<Issuer[]> {
    // Issuers have no insertion order of their own: createdAt, then id, is stable.
    return this.read('listing issuers', async () =>
      (await this.col<IssuerDoc>(COLLECTIONS.issuers).find({}).sort({ createdAt: 1, _id: 1 }).toArray()).map(issuerFromDoc));
  }

  // ---- manufacturers ----

  async createManufacturer(input: { name: string }): Promise<Manufacturer> {
    requireObject(input, 'a new manufacturer');
    const doc: ManufacturerDoc = { _id: randomUUID(), name: requiredText(input.name, 'name'), createdAt: new Date(), ord: new ObjectId() };
    await this.write('creating a manufacturer', () => this.col<ManufacturerDoc>(COLLECTIONS.manufacturers).insertOne(doc));
    return manufacturerFromDoc(doc);
  }

  async getManufacturer(id: string): Promise<Manufacturer> {
    const doc = await this.read('reading a manufacturer', () => this.col<ManufacturerDoc>(COLLECTIONS.manufacturers).findOne({ _id: key(id) ?? '' }));
    if (doc === null) throw notFound('KAKUIN_E_MANUFACTURER_NOT_FOUND', 'no manufacturer with that id');
    return manufacturerFromDoc(doc);
  }

  async listManufacturers(): Promise<Manufacturer[]> {
    return this.read('listing manufacturers', async () =>
      (await this.col<ManufacturerDoc>(COLLECTIONS.manufacturers).find({}).sort({ ord: 1 }).toArray()).map(manufacturerFromDoc));
  }

  // ---- devices ----

  async createDevice(input: NewDevice): Promise<Device> {
    requireObject(input, 'a new device');
    const now = new Date();
    const ids = input.identifiers ?? {};
    const hw = input.hardwareModuleName;
    const identifiers: DeviceDoc['identifiers'] = {};
    const mac = optionalText(ids.mac, 'identifiers.mac');
    const imei = optionalText(ids.imei, 'identifiers.imei');
    const hardwareId = optionalText(ids.hardwareId, 'identifiers.hardwareId');
    if (mac !== null) identifiers.mac = mac;
    if (imei !== null) identifiers.imei = imei;
    if (hardwareId !== null) identifiers.hardwareId = hardwareId;
    const model = optionalText(input.model, 'model');
    const doc: DeviceDoc = {
      _id: randomUUID(),
      manufacturerId: requiredText(input.manufacturerId, 'manufacturerId'),
      serialNumber: requiredText(input.serialNumber, 'serialNumber'),
      identifiers,
      ...(model !== null && { model }),
      ...(hw !== undefined && {
        hardwareModuleName: { hwType: requiredText(hw.hwType, 'hardwareModuleName.hwType'), hwSerialHex: requiredText(hw.hwSerialHex, 'hardwareModuleName.hwSerialHex') },
      }),
      status: 'registered',
      createdAt: now,
      updatedAt: now,
      ord: new ObjectId(),
    };
    // Manufacturers are never deleted: checking first and inserting after needs no transaction.
    await this.write('creating a device', async () => {
      await this.requireManufacturer(doc.manufacturerId);
      await this.col<DeviceDoc>(COLLECTIONS.devices).insertOne(doc);
    });
    return deviceFromDoc(doc);
  }

  async getDevice(id: string): Promise<Device> {
    const doc = await this.read('reading a device', () => this.col<DeviceDoc>(COLLECTIONS.devices).findOne({ _id: key(id) ?? '' }));
    if (doc === null) throw notFound('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
    return deviceFromDoc(doc);
  }

  async findDevices(query: DeviceQuery): Promise<Device[]> {
    const { filter, sort, limit } = devicesFind(query ?? {});
    return this.read('finding devices', async () =>
      (await this.col<DeviceDoc>(COLLECTIONS.devices).find(filter).sort(sort).limit(limit).toArray()).map(deviceFromDoc));
  }

  // ---- certificates ----

  async recordIssuance(record: IssuanceRecord): Promise<CertificateRecord> {
    const prepared = prepareIssuance(record, Date.now());
    return this.transaction('recording an issuance', (session) => writeIssuance(this.db, session, prepared));
  }

  async getCertificate(serialHex: string): Promise<CertificateRecord> {
    const serial = typeof serialHex === 'string' ? serialHex.toUpperCase() : '';
    const doc = await this.read('reading a certificate', () => this.col<CertificateDoc>(COLLECTIONS.certificates).findOne({ _id: serial }));
    if (doc === null) throw notFound('KAKUIN_E_CERTIFICATE_NOT_FOUND', 'no certificate with that serial number');
    return certificateFromDoc(doc);
  }

  async listCertificatesOfDevice(deviceId: string): Promise<CertificateRecord[]> {
    const id = key(deviceId);
    if (id === undefined) return [];
    return this.read('listing certificates', async () =>
      (await this.col<CertificateDoc>(COLLECTIONS.certificates).find({ deviceId: id }).sort({ ord: 1 }).toArray()).map(certificateFromDoc));
  }

  async findDeviceIdByPublicKey(publicKeySha256: string): Promise<string | undefined> {
    const k = typeof publicKeySha256 === 'string' ? publicKeySha256.toLowerCase() : '';
    const doc = await this.read('reading a key binding', () => this.col<KeyBindingDoc>(COLLECTIONS.keyBindings).findOne({ _id: k }));
    return doc?.deviceId;
  }

  // ---- admin tokens ----

  async createAdminToken(input: { name: string; tokenHmac: string; role: 'admin' }): Promise<AdminToken> {
    requireObject(input, 'an admin token');
    if (input.role !== 'admin') throw new KakuinError('KAKUIN_E_VALIDATION', 'role must be admin');
    const doc: AdminTokenDoc = {
      _id: randomUUID(), name: requiredText(input.name, 'name'), tokenHmac: normalizeSha256Hex(input.tokenHmac, 'tokenHmac'),
      role: 'admin', createdAt: new Date(), ord: new ObjectId(),
    };
    await this.write('creating an admin token', () => this.col<AdminTokenDoc>(COLLECTIONS.adminTokens).insertOne(doc));
    return adminTokenFromDoc(doc);
  }

  async findAdminTokenByHmac(tokenHmac: string): Promise<AdminToken | undefined> {
    const hmac = typeof tokenHmac === 'string' ? tokenHmac.toLowerCase() : '';
    const doc = await this.read('reading an admin token', () => this.col<AdminTokenDoc>(COLLECTIONS.adminTokens).findOne({ tokenHmac: hmac }));
    return doc === null ? undefined : adminTokenFromDoc(doc);
  }

  async listAdminTokens(): Promise<AdminToken[]> {
    return this.read('listing admin tokens', async () =>
      (await this.col<AdminTokenDoc>(COLLECTIONS.adminTokens).find({}).sort({ ord: 1 }).toArray()).map(adminTokenFromDoc));
  }

  // ---- audit ----

  async appendAuditEvent(event: NewAuditEvent): Promise<AuditEvent> {
    requireObject(event, 'an audit event');
    const values = auditEventValues(event, Date.now());
    // In a transaction, so ids commit in increasing order like feed seqs (afterId paging skips nothing).
    const id = await this.transaction('appending an audit event', (session) => insertAudit(this.db, session, [values]));
    return auditEventFromDoc(auditEventDoc(id, values));
  }

  async listAuditEvents(query: AuditQuery): Promise<AuditEvent[]> {
    const { filter, sort, limit } = auditEventsFind(query ?? {});
    return this.read('listing audit events', async () =>
      (await this.col<AuditEventDoc>(COLLECTIONS.auditEvents).find(filter).sort(sort).limit(limit).toArray()).map(auditEventFromDoc));
  }

  // ---- revocation ----

  async applyStatusChange(change: StatusChange): Promise<FeedEntry[]> {
    const checked = checkStatusChange(change);
    const now = Date.now();
    const prepared = { ...checked, audit: checked.audit.map((a) => auditEventValues(a, now)) };
    return this.transaction('applying a status change', (session) => writeStatusChange(this.db, session, prepared, new Date(now)));
  }

  async readFeed(afterSeq: number, limit?: number): Promise<FeedEntry[]> {
    const after = feedSeqValue(afterSeq, 'afterSeq');
    const { filter, sort, limit: n } = feedFind(after, limit);
    return this.read('reading the revocation feed', async () =>
      (await this.col<FeedDoc>(COLLECTIONS.feed).find(filter).sort(sort).limit(n).toArray()).map(feedEntryFromDoc));
  }

  async latestFeedSeq(): Promise<number> {
    return this.read('reading the revocation feed', async () => {
      const last = await this.col<FeedDoc>(COLLECTIONS.feed).find({}, { projection: { _id: 1 } }).sort({ _id: -1 }).limit(1).next();
      return last?._id ?? 0;
    });
  }

  async forEachCrlEntry(issuerId: string, options: { changedAfterSeq?: number }, row: CertificateStatusRow): Promise<void> {
    requiredText(issuerId, 'issuerId');
    requireObject(options, 'options');
    requireFunction(row, 'row');
    const after = options.changedAfterSeq === undefined ? undefined : feedSeqValue(options.changedAfterSeq, 'changedAfterSeq');
    if (after === undefined) {
      await this.stream('reading CRL entries', row, (guarded) => this.emitStatusRows(fullCrlFilter(issuerId), guarded));
      return;
    }
    // Both halves of a delta read one snapshot: a release committed between them cannot be missed.
    await this.stream('reading CRL entries', row, async (guarded) => {
      const session = this.client.startSession({ snapshot: true });
      try {
        await this.emitStatusRows(deltaChangedFilter(issuerId, after), guarded, session);
        await this.emitStatusRows(deltaReleasedFilter(issuerId, after), guarded, session);
      } finally {
        await session.endSession();
      }
    });
  }

  async forEachCertificateStatus(issuerId: string, row: CertificateStatusRow): Promise<void> {
    requiredText(issuerId, 'issuerId');
    requireFunction(row, 'row');
    await this.stream('reading certificate statuses', row, (guarded) => this.emitStatusRows({ issuerId }, guarded));
  }

  async nextCrlNumber(issuerId: string): Promise<bigint> {
    const id = requiredText(issuerId, 'issuerId');
    return this.transaction('reserving a CRL number', async (session) => {
      await this.requireIssuer(id, session);
      const doc = await this.col<CrlNumberDoc & { last: number }>(COLLECTIONS.crlNumbers).findOneAndUpdate(
        { _id: id }, { $inc: { last: 1 } }, { upsert: true, returnDocument: 'after', session });
      return BigInt(doc!.last);
    });
  }

  async putCrl(crl: CrlRecord): Promise<void> {
    const doc = crlDoc(crlRow(crl));
    await this.requireIssuer(doc.issuerId);
    await this.write('storing a CRL', async () => {
      try {
        await this.col<CrlDoc>(COLLECTIONS.crls).replaceOne(crlReplaceFilter(doc._id, doc.numberKey), doc, { upsert: true });
      } catch (e) {
        // The upsert found a CRL with a higher number and tried to insert beside it: keep the newer one.
        if (!isDuplicateKey(e)) throw e;
      }
    });
  }

  async getLatestCrl(issuerId: string, kind: 'full' | 'delta'): Promise<CrlRecord | undefined> {
    if (key(issuerId) === undefined || key(kind) === undefined) return undefined;
    const doc = await this.read('reading a CRL', () => this.col<CrlDoc>(COLLECTIONS.crls).findOne({ _id: `${issuerId}/${kind}` }));
    return doc === null ? undefined : crlFromDoc(doc);
  }

  async putOcspResponses(responses: StoredOcspResponse[]): Promise<void> {
    if (!Array.isArray(responses)) throw new KakuinError('KAKUIN_E_VALIDATION', 'responses must be an array');
    const docs = responses.map((r, i) => ocspResponseDoc(ocspResponseRow(r, `responses[${i}]`)));
    if (docs.length === 0) return;
    await this.transaction('storing OCSP responses', async (session) => {
      for (const issuerId of new Set(docs.map((d) => d.issuerId))) await this.requireIssuer(issuerId, session);
      await this.col<OcspResponseDoc>(COLLECTIONS.ocspResponses).bulkWrite(
        docs.map((d) => ({ replaceOne: { filter: { _id: d._id }, replacement: d, upsert: true } })), { session, ordered: true });
    });
  }

  async getOcspResponse(issuerId: string, serialHex: string): Promise<StoredOcspResponse | undefined> {
    if (key(issuerId) === undefined || key(serialHex) === undefined) return undefined;
    const doc = await this.read('reading an OCSP response', () =>
      this.col<OcspResponseDoc>(COLLECTIONS.ocspResponses).findOne({ _id: ocspResponseId(issuerId, serialHex.toUpperCase()) }));
    return doc === null ? undefined : ocspResponseFromDoc(doc);
  }

  async forEachOcspResponse(issuerId: string | undefined, row: (r: StoredOcspResponse) => void): Promise<void> {
    if (issuerId !== undefined) requiredText(issuerId, 'issuerId');
    requireFunction(row, 'row');
    await this.stream('reading OCSP responses', row, async (guarded) => {
      const cursor = this.col<OcspResponseDoc>(COLLECTIONS.ocspResponses).find(issuerId === undefined ? {} : { issuerId }, { batchSize: STREAM_OPTIONS.batchSize });
      for await (const doc of cursor) guarded(ocspResponseFromDoc(doc));
    });
  }

  // ---- legacy three-factor path ----

  async createCommonAuthId(input: { name: string; manufacturerId?: string; usualHoursUtc?: string }): Promise<CommonAuthId> {
    requireObject(input, 'a new common auth ID');
    const manufacturerId = optionalText(input.manufacturerId, 'manufacturerId');
    const usualHoursUtc = optionalText(input.usualHoursUtc, 'usualHoursUtc');
    const doc: CommonAuthIdDoc = {
      _id: randomUUID(), name: requiredText(input.name, 'name'), createdAt: new Date(),
      ...(manufacturerId !== null && { manufacturerId }), ...(usualHoursUtc !== null && { usualHoursUtc }),
    };
    await this.write('creating a common auth ID', async () => {
      if (doc.manufacturerId !== undefined) await this.requireManufacturer(doc.manufacturerId);
      await this.col<CommonAuthIdDoc>(COLLECTIONS.commonAuthIds).insertOne(doc);
    });
    return commonAuthIdFromDoc(doc);
  }

  async getCommonAuthId(id: string): Promise<CommonAuthId> {
    const doc = await this.read('reading a common auth ID', () => this.col<CommonAuthIdDoc>(COLLECTIONS.commonAuthIds).findOne({ _id: key(id) ?? '' }));
    if (doc === null) throw notFound('KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND', 'no common auth ID with that id');
    return commonAuthIdFromDoc(doc);
  }

  async putLegacyCredentials(credentials: NewLegacyCredential[], audit: NewAuditEvent[]): Promise<LegacyCredential[]> {
    if (!Array.isArray(credentials) || !Array.isArray(audit)) throw new KakuinError('KAKUIN_E_VALIDATION', 'credentials and audit must be arrays');
    const creds = credentials.map((c, i): NewLegacyCredential => {
      requireObject(c, `credentials[${i}]`);
      if (c.verifierKind !== 'hmac' && c.verifierKind !== 'scrypt') throw new KakuinError('KAKUIN_E_VALIDATION', `credentials[${i}].verifierKind must be hmac or scrypt`);
      return {
        deviceId: requiredText(c.deviceId, `credentials[${i}].deviceId`), commonAuthId: requiredText(c.commonAuthId, `credentials[${i}].commonAuthId`),
        uniqueId: requiredText(c.uniqueId, `credentials[${i}].uniqueId`), verifierKind: c.verifierKind, verifier: requiredText(c.verifier, `credentials[${i}].verifier`),
      };
    });
    const now = Date.now();
    const events = audit.map((a) => auditEventValues(a, now));
    return this.transaction('setting legacy credentials', async (session) => {
      const out: LegacyCredential[] = [];
      const col = this.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials);
      for (const c of creds) {
        const device = await this.col<DeviceDoc>(COLLECTIONS.devices).findOne({ _id: c.deviceId }, { session, projection: { status: 1 } });
        if (device === null) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', `no device with id ${c.deviceId}`);
        if (!USABLE_FOR_LEGACY.has(device.status)) {
          throw new KakuinError('KAKUIN_E_DEVICE_STATE', `device ${c.deviceId} is ${device.status}: it gets no legacy credentials`);
        }
        const common = await this.col<CommonAuthIdDoc>(COLLECTIONS.commonAuthIds).findOne({ _id: c.commonAuthId }, { session, projection: { _id: 1 } });
        if (common === null) throw new KakuinError('KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND', 'no common auth ID with that id');
        const before = await col.findOne({ _id: c.deviceId }, { session });
        const generation = (before?.generation ?? 0) + 1;
        const doc: LegacyCredentialDoc = {
          _id: c.deviceId, commonAuthId: c.commonAuthId, uniqueId: c.uniqueId, verifierKind: c.verifierKind, verifier: c.verifier,
          generation, createdAt: new Date(now), state: 'enabled', ord: before?.ord ?? new ObjectId(),
        };
        await col.replaceOne({ _id: c.deviceId }, doc, { upsert: true, session });
        await appendFeed(this.db, session, {
          at: new Date(now), kind: 'legacy-credentials', deviceId: c.deviceId, status: 'enabled',
          ...(before !== null && { previousStatus: before.state }), generation,
        });
        out.push({ ...c, generation, createdAt: new Date(now) });
      }
      await insertAudit(this.db, session, events);
      return out;
    });
  }

  async getLegacyCredentials(deviceId: string): Promise<LegacyCredential | undefined> {
    const id = key(deviceId);
    if (id === undefined) return undefined;
    const doc = await this.read('reading legacy credentials', () =>
      this.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials).findOne({ _id: id, state: 'enabled' }));
    return doc === null ? undefined : legacyCredentialFromDoc(doc);
  }

  async findLegacyCredentials(commonAuthId: string, uniqueId: string): Promise<LegacyCredential | undefined> {
    if (typeof commonAuthId !== 'string' || typeof uniqueId !== 'string') return undefined;
    const doc = await this.read('reading legacy credentials', () =>
      this.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials).findOne(legacyFactorsFilter(commonAuthId, uniqueId)));
    return doc === null ? undefined : legacyCredentialFromDoc(doc);
  }

  async findLegacyVerifiers(kind: LegacyVerifierKind, verifiers: string[]): Promise<{ verifier: string; deviceId: string }[]> {
    if (!Array.isArray(verifiers)) throw new KakuinError('KAKUIN_E_VALIDATION', 'verifiers must be an array');
    const wanted = verifiers.filter((v): v is string => typeof v === 'string');
    if (typeof kind !== 'string' || wanted.length === 0) return [];
    const docs = await this.read('reading legacy verifiers', () => this.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials)
      .find(legacyVerifiersFilter(kind, wanted), { projection: { _id: 1, verifier: 1 } }).toArray());
    const byVerifier = new Map(docs.map((d) => [d.verifier, d._id]));
    // In the order asked, each verifier once (as on SQLite).
    return [...new Set(wanted)].filter((v) => byVerifier.has(v)).map((v) => ({ verifier: v, deviceId: byVerifier.get(v)! }));
  }

  async deleteLegacyCredentials(deviceId: string, audit: NewAuditEvent): Promise<FeedEntry> {
    const id = requiredText(deviceId, 'deviceId');
    const now = new Date();
    const event = auditEventValues(audit, now.getTime());
    return this.transaction('deleting legacy credentials', async (session) => {
      const col = this.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials);
      const doc = await col.findOne({ _id: id }, { session });
      if (doc === null || doc.state !== 'enabled') throw new KakuinError('KAKUIN_E_LEGACY_CREDENTIALS_NOT_FOUND', 'the device has no legacy credentials');
      const generation = doc.generation + 1;
      await col.updateOne({ _id: id, state: 'enabled' }, { $set: { state: 'deleted', deletedAt: now, generation } }, { session });
      const entry = await appendFeed(this.db, session, {
        at: now, kind: 'legacy-credentials', deviceId: id, status: 'deleted', previousStatus: 'enabled', generation,
      });
      await insertAudit(this.db, session, [event]);
      return entry;
    });
  }

  async lockLegacyCredentials(deviceId: string, until: Date, audit: NewAuditEvent): Promise<void> {
    const id = requiredText(deviceId, 'deviceId');
    const untilMs = optionalMillis(until, 'until');
    if (untilMs === undefined || untilMs === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'until is required');
    const event = auditEventValues(audit, Date.now());
    await this.transaction('locking legacy credentials', async (session) => {
      await this.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials).updateOne(
        { _id: id, state: 'enabled' }, { $set: { lockedUntil: new Date(untilMs) } }, { session });
      await insertAudit(this.db, session, [event]);
    });
  }

  async countLegacyFailures(keys: string[], windowStart: Date, windowMs: number): Promise<FailureCount[]> {
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw new KakuinError('KAKUIN_E_VALIDATION', 'keys must be strings');
    const start = optionalMillis(windowStart, 'windowStart');
    if (start === undefined || start === null || !Number.isSafeInteger(windowMs) || windowMs < 1) throw new KakuinError('KAKUIN_E_VALIDATION', 'windowStart and windowMs are required');
    const current = new Date(start);
    const previous = new Date(start - windowMs);
    return this.transaction('counting failed legacy authentications', async (session) => {
      const col = this.col<LegacyFailureDoc>(COLLECTIONS.legacyFailures);
      await col.deleteMany(staleFailuresFilter(current, windowMs), { session });
      const out: FailureCount[] = [];
      for (const k of keys) {
        const now = await col.findOneAndUpdate({ _id: failureId(k, current) }, { $inc: { count: 1 }, $setOnInsert: { key: k, windowStart: current } },
          { upsert: true, returnDocument: 'after', session });
        const before = await col.findOne({ _id: failureId(k, previous) }, { session });
        out.push({ current: now!.count, previous: before?.count ?? 0 });
      }
      return out;
    });
  }

  async listLegacyCredentialStates(): Promise<LegacyCredentialState[]> {
    return this.read('listing legacy credentials', async () =>
      (await this.col(COLLECTIONS.legacyCredentials).aggregate<LegacyCredentialState>([...LEGACY_STATES_PIPELINE]).toArray()));
  }

  // ---- production-line enrollment ----

  async createStation(input: { manufacturerId: string; name: string; keyHmac: string }, audit: NewAuditEvent): Promise<Station> {
    requireObject(input, 'a new station');
    const now = new Date();
    const doc: StationDoc = {
      _id: randomUUID(), manufacturerId: requiredText(input.manufacturerId, 'manufacturerId'), name: requiredText(input.name, 'name'),
      keyHmac: normalizeSha256Hex(input.keyHmac, 'keyHmac'), createdAt: now, ord: new ObjectId(),
    };
    const event = auditEventValues(audit, now.getTime());
    await this.transaction('creating a station', async (session) => {
      await this.requireManufacturer(doc.manufacturerId, session);
      await this.col<StationDoc>(COLLECTIONS.stations).insertOne(doc, { session });
      await insertAudit(this.db, session, [event], doc._id);
    });
    return stationFromDoc(doc);
  }

  async getStation(id: string): Promise<Station> {
    const k = key(id);
    const doc = k === undefined ? null : await this.read('reading a station', () => this.col<StationDoc>(COLLECTIONS.stations).findOne({ _id: k }));
    if (doc === null) throw notFound('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
    return stationFromDoc(doc);
  }

  async findStationByKeyHmac(keyHmac: string): Promise<Station | undefined> {
    if (typeof keyHmac !== 'string') return undefined;
    const doc = await this.read('reading a station', () => this.col<StationDoc>(COLLECTIONS.stations).findOne({ keyHmac: keyHmac.toLowerCase() }));
    return doc === null ? undefined : stationFromDoc(doc);
  }

  async listStations(manufacturerId: string): Promise<Station[]> {
    const id = requiredText(manufacturerId, 'manufacturerId');
    return this.read('listing stations', async () =>
      (await this.col<StationDoc>(COLLECTIONS.stations).find({ manufacturerId: id }).sort({ ord: 1 }).toArray()).map(stationFromDoc));
  }

  async updateStation(id: string, change: { keyHmac?: string; disable?: boolean; maxIssuances?: number | null }, audit: NewAuditEvent): Promise<Station> {
    requireObject(change, 'a station change');
    const q = change.maxIssuances;
    if (q !== undefined && q !== null && (!Number.isSafeInteger(q) || q < 0)) throw new KakuinError('KAKUIN_E_VALIDATION', 'maxIssuances must be a non-negative integer or null');
    const keyHmac = change.keyHmac === undefined ? undefined : normalizeSha256Hex(change.keyHmac, 'keyHmac');
    const stationId = requiredText(id, 'id');
    const now = new Date();
    const event = auditEventValues(audit, now.getTime());
    return this.transaction('updating a station', async (session) => {
      const col = this.col<StationDoc>(COLLECTIONS.stations);
      const before = await col.findOne({ _id: stationId }, { session });
      if (before === null) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
      const set: Partial<StationDoc> = {};
      if (keyHmac !== undefined) Object.assign(set, { keyHmac, keyRotatedAt: now });
      if (change.disable === true && before.disabledAt === undefined) set.disabledAt = now;
      if (q !== undefined && q !== null) set.maxIssuances = q;
      const update = { ...(Object.keys(set).length > 0 && { $set: set }), ...(q === null && { $unset: { maxIssuances: '' as const } }) };
      if (Object.keys(update).length > 0) await col.updateOne({ _id: stationId }, update, { session });
      await insertAudit(this.db, session, [event]);
      return stationFromDoc((await col.findOne({ _id: stationId }, { session }))!);
    });
  }

  async countStationIssuances(stationId: string): Promise<number> {
    const id = requiredText(stationId, 'stationId');
    return this.read('counting station issuances', () =>
      this.col<AuditEventDoc>(COLLECTIONS.auditEvents).countDocuments({ actor: `station:${id}`, type: 'certificate.issued' }));
  }

  async allowReenrollment(deviceId: string, until: Date, audit: NewAuditEvent): Promise<void> {
    const id = requiredText(deviceId, 'deviceId');
    const untilMs = optionalMillis(until, 'until');
    if (untilMs === undefined || untilMs === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'until is required');
    const now = new Date();
    const event = auditEventValues(audit, now.getTime());
    await this.transaction('allowing re-enrollment', async (session) => {
      const device = await this.col<DeviceDoc>(COLLECTIONS.devices).findOne({ _id: id }, { session, projection: { _id: 1 } });
      if (device === null) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
      await this.col<AllowanceDoc>(COLLECTIONS.allowances).replaceOne({ _id: id }, { until: new Date(untilMs), createdAt: now }, { upsert: true, session });
      await insertAudit(this.db, session, [event]);
    });
  }

  async getReenrollmentAllowance(deviceId: string): Promise<Date | undefined> {
    const id = requiredText(deviceId, 'deviceId');
    const doc = await this.read('reading a re-enrollment allowance', () => this.col<AllowanceDoc>(COLLECTIONS.allowances).findOne({ _id: id }));
    return doc?.until;
  }

  async consumeReenrollmentAllowance(deviceId: string): Promise<boolean> {
    const id = requiredText(deviceId, 'deviceId');
    const result = await this.write('consuming a re-enrollment allowance', () => this.col<AllowanceDoc>(COLLECTIONS.allowances).deleteOne({ _id: id }));
    return result.deletedCount > 0;
  }

  async recordStationCertificate(stationId: string, record: IssuanceRecord): Promise<CertificateRecord> {
    const id = requiredText(stationId, 'stationId');
    const prepared = prepareIssuance(record, Date.now());
    return this.transaction('recording a station certificate', async (session) => {
      const station = await this.col<StationDoc>(COLLECTIONS.stations).findOne({ _id: id }, { session, projection: { _id: 1 } });
      if (station === null) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
      if (prepared.certificate.deviceId !== undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'a station certificate identifies no device');
      return writeIssuance(this.db, session, prepared, id);
    });
  }

  async findStationOfCertificate(serialHex: string): Promise<string | undefined> {
    if (typeof serialHex !== 'string') return undefined;
    const doc = await this.read('reading a station certificate', () =>
      this.col<CertificateDoc>(COLLECTIONS.certificates).findOne({ _id: serialHex.toUpperCase() }, { projection: { stationId: 1 } }));
    return doc?.stationId ?? undefined;
  }

  async listStationCertificates(stationId: string): Promise<CertificateRecord[]> {
    const id = requiredText(stationId, 'stationId');
    await this.getStation(id);
    return this.read('listing station certificates', async () =>
      (await this.col<CertificateDoc>(COLLECTIONS.certificates).find({ stationId: id }).sort({ ord: 1 }).toArray()).map(certificateFromDoc));
  }

  async setManufacturerProfiles(manufacturerId: string, profiles: string[], audit: NewAuditEvent): Promise<void> {
    if (!Array.isArray(profiles) || profiles.length === 0 || profiles.length > 32
      || !profiles.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 64)) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'profiles must be a list of 1 to 32 profile names');
    }
    const id = requiredText(manufacturerId, 'manufacturerId');
    const now = new Date();
    const event = auditEventValues(audit, now.getTime());
    await this.transaction('setting manufacturer profiles', async (session) => {
      const result = await this.col<ManufacturerDoc>(COLLECTIONS.manufacturers).updateOne(
        { _id: id }, { $set: { profiles: [...new Set(profiles)], profilesUpdatedAt: now } }, { session });
      if (result.matchedCount === 0) throw new KakuinError('KAKUIN_E_MANUFACTURER_NOT_FOUND', 'no manufacturer with that id');
      await insertAudit(this.db, session, [event]);
    });
  }

  async getManufacturerProfiles(manufacturerId: string): Promise<string[] | undefined> {
    const id = requiredText(manufacturerId, 'manufacturerId');
    const doc = await this.read('reading manufacturer profiles', () =>
      this.col<ManufacturerDoc>(COLLECTIONS.manufacturers).findOne({ _id: id }, { projection: { profiles: 1 } }));
    return doc?.profiles ?? undefined;
  }

  async scheduleSupersede(entries: PendingSupersede[]): Promise<void> {
    if (!Array.isArray(entries)) throw new KakuinError('KAKUIN_E_VALIDATION', 'entries must be a list');
    const docs = entries.map((e): SupersedeDoc => {
      requireObject(e, 'a pending supersession');
      return { _id: normalizeSerialHex(e.serialHex), at: new Date(toMillis(e.at, 'at')), actor: requiredText(e.actor, 'actor') };
    });
    if (docs.length === 0) return;
    await this.transaction('scheduling supersessions', async (session) => {
      for (const d of docs) {
        const exists = await this.col<CertificateDoc>(COLLECTIONS.certificates).findOne({ _id: d._id }, { session, projection: { _id: 1 } });
        if (exists === null) throw new KakuinError('KAKUIN_E_CERTIFICATE_NOT_FOUND', `no certificate with serial number ${d._id}`);
        await this.col<SupersedeDoc>(COLLECTIONS.supersedes).replaceOne({ _id: d._id }, d, { upsert: true, session });
      }
    });
  }

  async listDueSupersedes(now: Date, limit?: number): Promise<PendingSupersede[]> {
    const at = new Date(toMillis(now, 'now'));
    normalizeLimit(limit);
    const { filter, sort, limit: n } = dueSupersedesFind(at, limit);
    return this.read('listing due supersessions', async () =>
      (await this.col<SupersedeDoc>(COLLECTIONS.supersedes).find(filter).sort(sort).limit(n).toArray()).map(supersedeFromDoc));
  }

  async clearSupersedes(serialHexes: string[]): Promise<void> {
    if (!Array.isArray(serialHexes)) throw new KakuinError('KAKUIN_E_VALIDATION', 'serialHexes must be a list');
    const serials = serialHexes.map((s) => normalizeSerialHex(s));
    if (serials.length === 0) return;
    await this.write('clearing supersessions', () => this.col<SupersedeDoc>(COLLECTIONS.supersedes).deleteMany({ _id: { $in: serials } }));
  }

  /** Closes the client. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    // New calls are refused from here on; the ones already made (a queued issuance) finish first.
    this.closed = true;
    await this.inFlight.settled();
    try {
      await this.client.close();
    } catch (e) {
      throw toKakuinError(e, { operation: 'closing the connection' });
    }
  }

  // ---- for the change-stream follower and tests ----

  /** The database (the change feed watches its revocation feed collection). */
  database(): Db {
    this.assertOpen();
    return this.db;
  }

  /** The counter document id of feed seqs (for diagnostics). */
  static readonly feedCounter = FEED_COUNTER;

  // ---- plumbing ----

  private col<T extends object = Record<string, unknown>>(name: string) {
    return this.db.collection<T>(name);
  }

  private async requireManufacturer(id: string, session?: ClientSession): Promise<void> {
    const doc = await this.col<ManufacturerDoc>(COLLECTIONS.manufacturers).findOne({ _id: id }, { session, projection: { _id: 1 } });
    if (doc === null) throw new KakuinError('KAKUIN_E_MANUFACTURER_NOT_FOUND', 'no manufacturer with that id');
  }

  private async requireIssuer(id: string, session?: ClientSession): Promise<void> {
    this.assertOpen();
    let doc: unknown;
    try {
      doc = await this.col<IssuerDoc>(COLLECTIONS.issuers).findOne({ _id: id }, { session, projection: { _id: 1 } });
    } catch (e) {
      throw toKakuinError(e, { operation: 'reading an issuer' });
    }
    if (doc === null) throw new KakuinError('KAKUIN_E_ISSUER_NOT_FOUND', `no issuer ${JSON.stringify(id)} is recorded`);
  }

  private async emitStatusRows(filter: object, row: CertificateStatusRow, session?: ClientSession): Promise<void> {
    const cursor = this.col<CertificateDoc>(COLLECTIONS.certificates).find(filter, { ...STREAM_OPTIONS, ...(session !== undefined && { session }) });
    for await (const d of cursor) {
      row(d._id, d.status, d.revokedAt?.getTime(), d.reason ?? undefined, d.invalidityDate?.getTime(), d.notAfter.getTime());
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the registry has been closed');
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readonly) throw new KakuinError('KAKUIN_E_INTERNAL', 'this registry was opened read-only and cannot write');
  }

  private read<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.inFlight.track(translated(operation, fn));
  }

  private write<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    this.assertWritable();
    return this.inFlight.track(translated(operation, fn));
  }

  /**
   * Runs `body` in one multi-document transaction (retried by the driver on transient conflicts,
   * so `body` must not keep state across attempts). A KakuinError thrown by `body` aborts it.
   */
  private transaction<T>(operation: string, body: (session: ClientSession) => Promise<T>): Promise<T> {
    this.assertWritable();
    return this.inFlight.track(this.writes.run(() => this.runTransaction(operation, body)));
  }

  private async runTransaction<T>(operation: string, body: (session: ClientSession) => Promise<T>): Promise<T> {
    const session = this.client.startSession();
    try {
      let result: { value: T } | undefined;
      await session.withTransaction(async (s) => {
        result = { value: await body(s) };
      }, { readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' }, readPreference: 'primary' });
      if (result === undefined) throw new KakuinError('KAKUIN_E_INTERNAL', `the transaction ${operation} ended without a result`);
      return result.value;
    } catch (e) {
      throw toKakuinError(e, { operation });
    } finally {
      await session.endSession().catch(() => undefined);
    }
  }

  /**
   * Runs a streaming read. An exception thrown by the caller's callback ends the walk and reaches
   * the caller as it was thrown (it is the caller's, not the driver's); anything else is mapped.
   */
  private stream<F extends (...args: never[]) => void>(operation: string, callback: F, walk: (guarded: F) => Promise<void>): Promise<void> {
    this.assertOpen();
    return this.inFlight.track(this.walk(operation, callback, walk));
  }

  private async walk<F extends (...args: never[]) => void>(operation: string, callback: F, walk: (guarded: F) => Promise<void>): Promise<void> {
    let thrown: { error: unknown } | undefined;
    const guarded = ((...args: Parameters<F>) => {
      try {
        callback(...args);
      } catch (e) {
        thrown = { error: e };
        throw e;
      }
    }) as F;
    try {
      await walk(guarded);
    } catch (e) {
      if (thrown !== undefined && thrown.error === e) throw e;
      throw toKakuinError(e, { operation });
    }
  }
}

async function translated<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toKakuinError(e, { operation });
  }
}

export type { AuditValues };
