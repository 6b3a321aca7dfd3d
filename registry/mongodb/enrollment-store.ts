/**
 * Production-line enrollment on MongoDB: factory stations, their certificates, re-enrollment
 * allowances, manufacturers' allowed profiles and pending supersessions. Each write an auditor
 * must see commits with its audit event in one transaction.
 */
import { randomUUID } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type { CertificateRecord, IssuanceRecord, ListPage, NewAuditEvent, PendingSupersede, Station } from '../port.js';
import { auditEventValues, normalizeSerialHex, normalizeSha256Hex, optionalMillis, prepareIssuance, requiredText, toMillis } from '../records/index.js';
import {
  certificateFromDoc, COLLECTIONS, stationFromDoc, supersedeFromDoc, type AllowanceDoc, type AuditEventDoc, type CertificateDoc,
  type DeviceDoc, type ManufacturerDoc, type StationDoc, type SupersedeDoc,
} from './documents.js';
import { key, requireObject, type RegistryPlumbing } from './plumbing.js';
import { dueSupersedesFind, pageFind } from './queries.js';
import { insertAudit, writeIssuance } from './transaction-bodies.js';

export class EnrollmentStore {
  constructor(private readonly p: RegistryPlumbing) {}

  async createStation(input: { manufacturerId: string; name: string; keyHmac: string }, audit: NewAuditEvent): Promise<Station> {
    requireObject(input, 'a new station');
    const now = new Date();
    const doc: StationDoc = {
      _id: randomUUID(), manufacturerId: requiredText(input.manufacturerId, 'manufacturerId'), name: requiredText(input.name, 'name'),
      keyHmac: normalizeSha256Hex(input.keyHmac, 'keyHmac'), createdAt: now, ord: new ObjectId(),
    };
    const event = auditEventValues(audit, now.getTime());
    await this.p.transaction('creating a station', async (session) => {
      await this.p.requireManufacturer(doc.manufacturerId, session);
      await this.p.col<StationDoc>(COLLECTIONS.stations).insertOne(doc, { session });
      await insertAudit(this.p.db, session, [event], doc._id);
    });
    return stationFromDoc(doc);
  }

  async getStation(id: string): Promise<Station> {
    const k = key(id);
    const doc = k === undefined ? null : await this.p.read('reading a station', () => this.p.col<StationDoc>(COLLECTIONS.stations).findOne({ _id: k }));
    if (doc === null) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
    return stationFromDoc(doc);
  }

  async findStationByKeyHmac(keyHmac: string): Promise<Station | undefined> {
    if (typeof keyHmac !== 'string') return undefined;
    const doc = await this.p.read('reading a station', () => this.p.col<StationDoc>(COLLECTIONS.stations).findOne({ keyHmac: keyHmac.toLowerCase() }));
    return doc === null ? undefined : stationFromDoc(doc);
  }

  async listStations(manufacturerId: string, page?: ListPage): Promise<Station[]> {
    const id = requiredText(manufacturerId, 'manufacturerId');
    return this.p.read('listing stations', async () =>
      (await pageFind(this.p.col<StationDoc>(COLLECTIONS.stations), { manufacturerId: id }, '_id', page)).map(stationFromDoc));
  }

  async updateStation(id: string, change: { keyHmac?: string; disable?: boolean; maxIssuances?: number | null }, audit: NewAuditEvent): Promise<Station> {
    requireObject(change, 'a station change');
    const q = change.maxIssuances;
    if (q !== undefined && q !== null && (!Number.isSafeInteger(q) || q < 0)) throw new KakuinError('KAKUIN_E_VALIDATION', 'maxIssuances must be a non-negative integer or null');
    const keyHmac = change.keyHmac === undefined ? undefined : normalizeSha256Hex(change.keyHmac, 'keyHmac');
    const stationId = requiredText(id, 'id');
    const now = new Date();
    const event = auditEventValues(audit, now.getTime());
    return this.p.transaction('updating a station', async (session) => {
      const col = this.p.col<StationDoc>(COLLECTIONS.stations);
      const before = await col.findOne({ _id: stationId }, { session });
      if (before === null) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
      const set: Partial<StationDoc> = {};
      if (keyHmac !== undefined) Object.assign(set, { keyHmac, keyRotatedAt: now });
      if (change.disable === true && before.disabledAt === undefined) set.disabledAt = now;
      if (q !== undefined && q !== null) set.maxIssuances = q;
      const unset: Record<string, ''> = {};
      if (q === null) unset.maxIssuances = '';
      if (change.disable === false && before.disabledAt !== undefined) unset.disabledAt = '';
      const update = { ...(Object.keys(set).length > 0 && { $set: set }), ...(Object.keys(unset).length > 0 && { $unset: unset }) };
      if (Object.keys(update).length > 0) await col.updateOne({ _id: stationId }, update, { session });
      await insertAudit(this.p.db, session, [event]);
      return stationFromDoc((await col.findOne({ _id: stationId }, { session }))!);
    });
  }

  async countStationIssuances(stationId: string): Promise<number> {
    const id = requiredText(stationId, 'stationId');
    return this.p.read('counting station issuances', () =>
      this.p.col<AuditEventDoc>(COLLECTIONS.auditEvents).countDocuments({ actor: `station:${id}`, type: 'certificate.issued' }));
  }

  async allowReenrollment(deviceId: string, until: Date, audit: NewAuditEvent): Promise<void> {
    const id = requiredText(deviceId, 'deviceId');
    const untilMs = optionalMillis(until, 'until');
    if (untilMs === undefined || untilMs === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'until is required');
    const now = new Date();
    const event = auditEventValues(audit, now.getTime());
    await this.p.transaction('allowing re-enrollment', async (session) => {
      const device = await this.p.col<DeviceDoc>(COLLECTIONS.devices).findOne({ _id: id }, { session, projection: { _id: 1 } });
      if (device === null) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
      await this.p.col<AllowanceDoc>(COLLECTIONS.allowances).replaceOne({ _id: id }, { until: new Date(untilMs), createdAt: now }, { upsert: true, session });
      await insertAudit(this.p.db, session, [event]);
    });
  }

  async getReenrollmentAllowance(deviceId: string): Promise<Date | undefined> {
    const id = requiredText(deviceId, 'deviceId');
    const doc = await this.p.read('reading a re-enrollment allowance', () => this.p.col<AllowanceDoc>(COLLECTIONS.allowances).findOne({ _id: id }));
    return doc?.until;
  }

  async consumeReenrollmentAllowance(deviceId: string): Promise<boolean> {
    const id = requiredText(deviceId, 'deviceId');
    const result = await this.p.write('consuming a re-enrollment allowance', () => this.p.col<AllowanceDoc>(COLLECTIONS.allowances).deleteOne({ _id: id }));
    return result.deletedCount > 0;
  }

  async recordStationCertificate(stationId: string, record: IssuanceRecord): Promise<CertificateRecord> {
    const id = requiredText(stationId, 'stationId');
    const prepared = prepareIssuance(record, Date.now());
    return this.p.transaction('recording a station certificate', async (session) => {
      const station = await this.p.col<StationDoc>(COLLECTIONS.stations).findOne({ _id: id }, { session, projection: { _id: 1 } });
      if (station === null) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
      if (prepared.certificate.deviceId !== undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'a station certificate identifies no device');
      return writeIssuance(this.p.db, session, prepared, id);
    });
  }

  async findStationOfCertificate(serialHex: string): Promise<string | undefined> {
    if (typeof serialHex !== 'string') return undefined;
    const doc = await this.p.read('reading a station certificate', () =>
      this.p.col<CertificateDoc>(COLLECTIONS.certificates).findOne({ _id: serialHex.toUpperCase() }, { projection: { stationId: 1 } }));
    return doc?.stationId ?? undefined;
  }

  async listStationCertificates(stationId: string, page?: ListPage): Promise<CertificateRecord[]> {
    const id = requiredText(stationId, 'stationId');
    await this.getStation(id);
    return this.p.read('listing station certificates', async () =>
      (await pageFind(this.p.col<CertificateDoc>(COLLECTIONS.certificates), { stationId: id }, '_id', page)).map(certificateFromDoc));
  }

  async setManufacturerProfiles(manufacturerId: string, profiles: string[], audit: NewAuditEvent): Promise<void> {
    if (!Array.isArray(profiles) || profiles.length === 0 || profiles.length > 32
      || !profiles.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 64)) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'profiles must be a list of 1 to 32 profile names');
    }
    const id = requiredText(manufacturerId, 'manufacturerId');
    const now = new Date();
    const event = auditEventValues(audit, now.getTime());
    await this.p.transaction('setting manufacturer profiles', async (session) => {
      const result = await this.p.col<ManufacturerDoc>(COLLECTIONS.manufacturers).updateOne(
        { _id: id }, { $set: { profiles: [...new Set(profiles)], profilesUpdatedAt: now } }, { session });
      if (result.matchedCount === 0) throw new KakuinError('KAKUIN_E_MANUFACTURER_NOT_FOUND', 'no manufacturer with that id');
      await insertAudit(this.p.db, session, [event]);
    });
  }

  async getManufacturerProfiles(manufacturerId: string): Promise<string[] | undefined> {
    const id = requiredText(manufacturerId, 'manufacturerId');
    const doc = await this.p.read('reading manufacturer profiles', () =>
      this.p.col<ManufacturerDoc>(COLLECTIONS.manufacturers).findOne({ _id: id }, { projection: { profiles: 1 } }));
    return doc?.profiles ?? undefined;
  }

  async scheduleSupersede(entries: PendingSupersede[]): Promise<void> {
    if (!Array.isArray(entries)) throw new KakuinError('KAKUIN_E_VALIDATION', 'entries must be a list');
    const docs = entries.map((e): SupersedeDoc => {
      requireObject(e, 'a pending supersession');
      return { _id: normalizeSerialHex(e.serialHex), at: new Date(toMillis(e.at, 'at')), actor: requiredText(e.actor, 'actor') };
    });
    if (docs.length === 0) return;
    await this.p.transaction('scheduling supersessions', async (session) => {
      for (const d of docs) {
        const exists = await this.p.col<CertificateDoc>(COLLECTIONS.certificates).findOne({ _id: d._id }, { session, projection: { _id: 1 } });
        if (exists === null) throw new KakuinError('KAKUIN_E_CERTIFICATE_NOT_FOUND', `no certificate with serial number ${d._id}`);
        await this.p.col<SupersedeDoc>(COLLECTIONS.supersedes).replaceOne({ _id: d._id }, d, { upsert: true, session });
      }
    });
  }

  async listDueSupersedes(now: Date, limit?: number): Promise<PendingSupersede[]> {
    const at = new Date(toMillis(now, 'now'));
    const { filter, sort, limit: n } = dueSupersedesFind(at, limit);
    return this.p.read('listing due supersessions', async () =>
      (await this.p.col<SupersedeDoc>(COLLECTIONS.supersedes).find(filter).sort(sort).limit(n).toArray()).map(supersedeFromDoc));
  }

  async clearSupersedes(serialHexes: string[]): Promise<void> {
    if (!Array.isArray(serialHexes)) throw new KakuinError('KAKUIN_E_VALIDATION', 'serialHexes must be a list');
    const serials = serialHexes.map((s) => normalizeSerialHex(s));
    if (serials.length === 0) return;
    await this.p.write('clearing supersessions', () => this.p.col<SupersedeDoc>(COLLECTIONS.supersedes).deleteMany({ _id: { $in: serials } }));
  }
}
