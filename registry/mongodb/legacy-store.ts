/**
 * The legacy three-factor path on MongoDB: common auth IDs, per-device legacy credentials with
 * their generation (one document per device that ever had credentials, so the generation only
 * increases), and the failure counters of the abuse detection. Every write that changes which
 * tokens are valid appends a `legacy-credentials` feed entry in the same transaction.
 */
import { randomUUID } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type {
  CommonAuthId, FailureCount, FeedEntry, LegacyCredential, LegacyCredentialState, LegacyVerifierKind, NewLegacyCredential,
} from '../port.js';
import type { AuditEventValues, CheckedCommonAuthId } from '../records/index.js';
import {
  COLLECTIONS, commonAuthIdFromDoc, legacyCredentialFromDoc, type CommonAuthIdDoc, type DeviceDoc, type LegacyCredentialDoc,
  type LegacyFailureDoc,
} from './documents.js';
import { key, type RegistryPlumbing } from './plumbing.js';
import { failureId, LEGACY_STATES_PIPELINE, legacyFactorsFilter, legacyVerifiersFilter, staleFailuresFilter } from './queries.js';
import { appendFeed, insertAudit } from './transaction-bodies.js';

const USABLE_FOR_LEGACY = new Set(['registered', 'active']);

export class LegacyStore {
  constructor(private readonly p: RegistryPlumbing) {}

  async createCommonAuthId(input: CheckedCommonAuthId): Promise<CommonAuthId> {
    const { manufacturerId, usualHoursUtc } = input;
    const doc: CommonAuthIdDoc = {
      _id: randomUUID(), name: input.name, createdAt: new Date(),
      ...(manufacturerId !== undefined && { manufacturerId }), ...(usualHoursUtc !== undefined && { usualHoursUtc }),
    };
    await this.p.write('creating a common auth ID', async () => {
      if (doc.manufacturerId !== undefined) await this.p.requireManufacturer(doc.manufacturerId);
      await this.p.col<CommonAuthIdDoc>(COLLECTIONS.commonAuthIds).insertOne(doc);
    });
    return commonAuthIdFromDoc(doc);
  }

  async getCommonAuthId(id: string): Promise<CommonAuthId> {
    const doc = await this.p.read('reading a common auth ID', () => this.p.col<CommonAuthIdDoc>(COLLECTIONS.commonAuthIds).findOne({ _id: key(id) ?? '' }));
    if (doc === null) throw new KakuinError('KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND', 'no common auth ID with that id');
    return commonAuthIdFromDoc(doc);
  }

  async putLegacyCredentials(creds: NewLegacyCredential[], events: AuditEventValues[], now: number): Promise<LegacyCredential[]> {
    return this.p.transaction('setting legacy credentials', async (session) => {
      const out: LegacyCredential[] = [];
      const col = this.p.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials);
      for (const c of creds) {
        const device = await this.p.col<DeviceDoc>(COLLECTIONS.devices).findOne({ _id: c.deviceId }, { session, projection: { status: 1 } });
        if (device === null) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', `no device with id ${c.deviceId}`);
        if (!USABLE_FOR_LEGACY.has(device.status)) {
          throw new KakuinError('KAKUIN_E_DEVICE_STATE', `device ${c.deviceId} is ${device.status}: it gets no legacy credentials`);
        }
        const common = await this.p.col<CommonAuthIdDoc>(COLLECTIONS.commonAuthIds).findOne({ _id: c.commonAuthId }, { session, projection: { _id: 1 } });
        if (common === null) throw new KakuinError('KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND', 'no common auth ID with that id');
        const before = await col.findOne({ _id: c.deviceId }, { session });
        const generation = (before?.generation ?? 0) + 1;
        const doc: LegacyCredentialDoc = {
          _id: c.deviceId, commonAuthId: c.commonAuthId, uniqueId: c.uniqueId, verifierKind: c.verifierKind, verifier: c.verifier,
          generation, createdAt: new Date(now), state: 'enabled', ord: before?.ord ?? new ObjectId(),
        };
        await col.replaceOne({ _id: c.deviceId }, doc, { upsert: true, session });
        await appendFeed(this.p.db, session, {
          at: new Date(now), kind: 'legacy-credentials', deviceId: c.deviceId, status: 'enabled',
          ...(before !== null && { previousStatus: before.state }), generation,
        });
        out.push({ ...c, generation, createdAt: new Date(now) });
      }
      await insertAudit(this.p, session, events);
      return out;
    });
  }

  async getLegacyCredentials(deviceId: string): Promise<LegacyCredential | undefined> {
    const id = key(deviceId);
    if (id === undefined) return undefined;
    const doc = await this.p.read('reading legacy credentials', () =>
      this.p.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials).findOne({ _id: id, state: 'enabled' }));
    return doc === null ? undefined : legacyCredentialFromDoc(doc);
  }

  async findLegacyCredentials(commonAuthId: string, uniqueId: string): Promise<LegacyCredential | undefined> {
    if (typeof commonAuthId !== 'string' || typeof uniqueId !== 'string') return undefined;
    const doc = await this.p.read('reading legacy credentials', () =>
      this.p.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials).findOne(legacyFactorsFilter(commonAuthId, uniqueId)));
    return doc === null ? undefined : legacyCredentialFromDoc(doc);
  }

  async findLegacyVerifiers(kind: LegacyVerifierKind, verifiers: string[]): Promise<{ verifier: string; deviceId: string }[]> {
    const wanted = verifiers.filter((v): v is string => typeof v === 'string');
    if (typeof kind !== 'string' || wanted.length === 0) return [];
    const docs = await this.p.read('reading legacy verifiers', () => this.p.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials)
      .find(legacyVerifiersFilter(kind, wanted), { projection: { _id: 1, verifier: 1 } }).toArray());
    const byVerifier = new Map(docs.map((d) => [d.verifier, d._id]));
    // In the order asked, each verifier once (as on SQLite).
    return [...new Set(wanted)].filter((v) => byVerifier.has(v)).map((v) => ({ verifier: v, deviceId: byVerifier.get(v)! }));
  }

  async deleteLegacyCredentials(id: string, event: AuditEventValues, nowMs: number): Promise<FeedEntry> {
    const now = new Date(nowMs);
    return this.p.transaction('deleting legacy credentials', async (session) => {
      const col = this.p.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials);
      const doc = await col.findOne({ _id: id }, { session });
      if (doc === null || doc.state !== 'enabled') throw new KakuinError('KAKUIN_E_LEGACY_CREDENTIALS_NOT_FOUND', 'the device has no legacy credentials');
      const generation = doc.generation + 1;
      await col.updateOne({ _id: id, state: 'enabled' }, { $set: { state: 'deleted', deletedAt: now, generation } }, { session });
      const entry = await appendFeed(this.p.db, session, {
        at: now, kind: 'legacy-credentials', deviceId: id, status: 'deleted', previousStatus: 'enabled', generation,
      });
      await insertAudit(this.p, session, [event]);
      return entry;
    });
  }

  async lockLegacyCredentials(id: string, untilMs: number, event: AuditEventValues): Promise<void> {
    await this.p.transaction('locking legacy credentials', async (session) => {
      await this.p.col<LegacyCredentialDoc>(COLLECTIONS.legacyCredentials).updateOne(
        { _id: id, state: 'enabled' }, { $set: { lockedUntil: new Date(untilMs) } }, { session });
      await insertAudit(this.p, session, [event]);
    });
  }

  async countLegacyFailures(keys: string[], start: number, windowMs: number): Promise<FailureCount[]> {
    const current = new Date(start);
    const previous = new Date(start - windowMs);
    return this.p.transaction('counting failed legacy authentications', async (session) => {
      const col = this.p.col<LegacyFailureDoc>(COLLECTIONS.legacyFailures);
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
    return this.p.read('listing legacy credentials', async () =>
      (await this.p.col(COLLECTIONS.legacyCredentials).aggregate<LegacyCredentialState>([...LEGACY_STATES_PIPELINE]).toArray()));
  }
}
