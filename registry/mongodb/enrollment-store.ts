/**
 * Production-line enrollment on MongoDB: factory stations, their certificates, re-enrollment
 * allowances, manufacturers' allowed profiles and pending supersessions. Each write an auditor
 * must see commits with its audit event in one transaction. Inputs arrive checked (CheckedRegistry,
 * registry/records/).
 */
import { randomUUID } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type { CertificateRecord, ListPage, PendingSupersede, Station } from '../port.js';
import type { AuditEventValues, CheckedStationChange, PreparedIssuance } from '../records/index.js';
import {
  certificateFromDoc, COLLECTIONS, stationFromDoc, supersedeFromDoc, type AllowanceDoc, type AuditEventDoc, type CertificateDoc,
  type DeviceDoc, type ManufacturerDoc, type StationDoc, type SupersedeDoc,
} from './documents.js';
import { key, type RegistryPlumbing } from './plumbing.js';
import { dueSupersedesFind, pageFind } from './queries.js';
import { insertAudit, writeIssuance } from './transaction-bodies.js';

export class EnrollmentStore {
  constructor(private readonly p: RegistryPlumbing) {}

  async createStation(input: { manufacturerId: string; name: string; keyHmac: string }, event: AuditEventValues, nowMs: number): Promise<Station> {
    const doc: StationDoc = {
      _id: randomUUID(), manufacturerId: input.manufacturerId, name: input.name, keyHmac: input.keyHmac, createdAt: new Date(nowMs), ord: new ObjectId(),
    };
    await this.p.transaction('creating a station', async (session) => {
      await this.p.requireManufacturer(doc.manufacturerId, session);
      await this.p.col<StationDoc>(COLLECTIONS.stations).insertOne(doc, { session });
      await insertAudit(this.p, session, [event], doc._id);
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
    const doc = await this.p.read('reading a station', () => this.p.col<StationDoc>(COLLECTIONS.stations).findOne({ keyHmac }));
    return doc === null ? undefined : stationFromDoc(doc);
  }

  async listStations(id: string, page: ListPage | undefined): Promise<Station[]> {
    return this.p.read('listing stations', async () =>
      (await pageFind(this.p.col<StationDoc>(COLLECTIONS.stations), { manufacturerId: id }, '_id', page)).map(stationFromDoc));
  }

  async updateStation(stationId: string, change: CheckedStationChange, event: AuditEventValues, nowMs: number): Promise<Station> {
    const q = change.maxIssuances;
    const keyHmac = change.keyHmac;
    const now = new Date(nowMs);
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
      await insertAudit(this.p, session, [event]);
      return stationFromDoc((await col.findOne({ _id: stationId }, { session }))!);
    });
  }

  async countStationIssuances(id: string): Promise<number> {
    return this.p.read('counting station issuances', () =>
      this.p.col<AuditEventDoc>(COLLECTIONS.auditEvents).countDocuments({ actor: `station:${id}`, type: 'certificate.issued' }));
  }

  async allowReenrollment(id: string, untilMs: number, event: AuditEventValues, nowMs: number): Promise<void> {
    const now = new Date(nowMs);
    await this.p.transaction('allowing re-enrollment', async (session) => {
      const device = await this.p.col<DeviceDoc>(COLLECTIONS.devices).findOne({ _id: id }, { session, projection: { _id: 1 } });
      if (device === null) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
      await this.p.col<AllowanceDoc>(COLLECTIONS.allowances).replaceOne({ _id: id }, { until: new Date(untilMs), createdAt: now }, { upsert: true, session });
      await insertAudit(this.p, session, [event]);
    });
  }

  async getReenrollmentAllowance(id: string): Promise<Date | undefined> {
    const doc = await this.p.read('reading a re-enrollment allowance', () => this.p.col<AllowanceDoc>(COLLECTIONS.allowances).findOne({ _id: id }));
    return doc?.until;
  }

  async consumeReenrollmentAllowance(id: string): Promise<boolean> {
    const result = await this.p.write('consuming a re-enrollment allowance', () => this.p.col<AllowanceDoc>(COLLECTIONS.allowances).deleteOne({ _id: id }));
    return result.deletedCount > 0;
  }

  async recordStationCertificate(id: string, prepared: PreparedIssuance): Promise<CertificateRecord> {
    return this.p.transaction('recording a station certificate', async (session) => {
      const station = await this.p.col<StationDoc>(COLLECTIONS.stations).findOne({ _id: id }, { session, projection: { _id: 1 } });
      if (station === null) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
      if (prepared.certificate.deviceId !== undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'a station certificate identifies no device');
      return writeIssuance(this.p, session, prepared, id);
    });
  }

  async findStationOfCertificate(serialHex: string): Promise<string | undefined> {
    const doc = await this.p.read('reading a station certificate', () =>
      this.p.col<CertificateDoc>(COLLECTIONS.certificates).findOne({ _id: serialHex }, { projection: { stationId: 1 } }));
    return doc?.stationId ?? undefined;
  }

  async listStationCertificates(id: string, page: ListPage | undefined): Promise<CertificateRecord[]> {
    await this.getStation(id);
    return this.p.read('listing station certificates', async () =>
      (await pageFind(this.p.col<CertificateDoc>(COLLECTIONS.certificates), { stationId: id }, '_id', page)).map(certificateFromDoc));
  }

  async setManufacturerProfiles(id: string, profiles: string[], event: AuditEventValues, nowMs: number): Promise<void> {
    const now = new Date(nowMs);
    await this.p.transaction('setting manufacturer profiles', async (session) => {
      const result = await this.p.col<ManufacturerDoc>(COLLECTIONS.manufacturers).updateOne(
        { _id: id }, { $set: { profiles, profilesUpdatedAt: now } }, { session });
      if (result.matchedCount === 0) throw new KakuinError('KAKUIN_E_MANUFACTURER_NOT_FOUND', 'no manufacturer with that id');
      await insertAudit(this.p, session, [event]);
    });
  }

  async getManufacturerProfiles(id: string): Promise<string[] | undefined> {
    const doc = await this.p.read('reading manufacturer profiles', () =>
      this.p.col<ManufacturerDoc>(COLLECTIONS.manufacturers).findOne({ _id: id }, { projection: { profiles: 1 } }));
    return doc?.profiles ?? undefined;
  }

  async scheduleSupersede(entries: PendingSupersede[]): Promise<void> {
    const docs = entries.map((e): SupersedeDoc => ({ _id: e.serialHex, at: e.at, actor: e.actor }));
    if (docs.length === 0) return;
    await this.p.transaction('scheduling supersessions', async (session) => {
      for (const d of docs) {
        const exists = await this.p.col<CertificateDoc>(COLLECTIONS.certificates).findOne({ _id: d._id }, { session, projection: { _id: 1 } });
        if (exists === null) throw new KakuinError('KAKUIN_E_CERTIFICATE_NOT_FOUND', `no certificate with serial number ${d._id}`);
        await this.p.col<SupersedeDoc>(COLLECTIONS.supersedes).replaceOne({ _id: d._id }, d, { upsert: true, session });
      }
    });
  }

  async listDueSupersedes(nowMs: number, limit: number): Promise<PendingSupersede[]> {
    const at = new Date(nowMs);
    const { filter, sort, limit: n } = dueSupersedesFind(at, limit);
    return this.p.read('listing due supersessions', async () =>
      (await this.p.col<SupersedeDoc>(COLLECTIONS.supersedes).find(filter).sort(sort).limit(n).toArray()).map(supersedeFromDoc));
  }

  async clearSupersedes(serials: string[]): Promise<void> {
    if (serials.length === 0) return;
    await this.p.write('clearing supersessions', () => this.p.col<SupersedeDoc>(COLLECTIONS.supersedes).deleteMany({ _id: { $in: serials } }));
  }
}
