/**
 * The activity port on MongoDB (registry/activity.ts): one batch is one transaction, so a flush is
 * all or nothing as on SQLite. Documents are keyed so that every write is an upsert on `_id`:
 * an hourly rollup `<deviceId>|<hour ms>` ($inc), last seen `<deviceId>` (replaced only by a later
 * time), firmware `<deviceId>|<version>` (first report kept, last report $max), a recorder's open
 * sessions `<recorderId>|<deviceId>` (replaced whole at each flush). Refusals are inserted, each
 * with `order` (batch time × 1000 + position) to keep "newest first" stable within a batch.
 */
import type { ClientSession } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type { ActivityBatch, ActivityFilter, ActivityStore, DeviceActivity, Refusal } from '../activity.js';
import { REFUSALS_PER_DEVICE_PER_BATCH } from '../activity.js';
import { COLLECTIONS } from './documents.js';
import type { RegistryPlumbing } from './plumbing.js';

interface HourlyDoc { _id: string; deviceId: string; hour: Date; messages: number; bytes: number; admitted: number; refused: number; tokenOk: number; tokenFailed: number }
interface LastSeenDoc { _id: string; at: Date; address?: string; frontEnd: string }
interface RefusalDoc { _id: string; deviceId: string; at: Date; order: number; reason: string; address?: string; frontEnd: string }
interface SessionDoc { _id: string; deviceId: string; recorderId: string; addresses: string[]; updatedAt: Date }
interface FirmwareDoc { _id: string; deviceId: string; version: string; firstAt: Date; lastAt: Date }

function requireDate(value: unknown, what: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a valid Date`);
  return value;
}

function requireText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a non-empty string of at most 512 characters`);
  return value;
}

function requireCount(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a non-negative integer`);
  return value as number;
}

const COUNTS = ['messages', 'bytes', 'admitted', 'refused', 'tokenOk', 'tokenFailed'] as const;

/** Checks the whole batch before anything is written (a bad entry changes nothing). */
function validated(batch: ActivityBatch): ActivityBatch {
  if (batch === null || typeof batch !== 'object' || !Array.isArray(batch.devices) || !Array.isArray(batch.sessions)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'an activity batch must have devices and sessions arrays');
  }
  requireDate(batch.at, 'batch.at');
  requireText(batch.recorderId, 'batch.recorderId');
  for (const d of batch.devices) {
    requireText(d.deviceId, 'deviceId');
    requireDate(d.hour, 'hour');
    for (const k of COUNTS) requireCount(d.counts?.[k], k);
    if (d.lastSeen !== undefined) {
      requireDate(d.lastSeen.at, 'lastSeen.at');
      requireText(d.lastSeen.frontEnd, 'frontEnd');
    }
    for (const r of d.refusals) {
      requireDate(r.at, 'refusal.at');
      requireText(r.reason, 'reason');
      requireText(r.frontEnd, 'frontEnd');
    }
    if (d.firmwareVersion !== undefined) requireText(d.firmwareVersion, 'firmwareVersion');
  }
  for (const s of batch.sessions) requireText(s.deviceId, 'deviceId');
  return batch;
}

export class MongoActivityStore implements ActivityStore {
  constructor(private readonly p: RegistryPlumbing) {}

  private col<T extends object>(name: string) {
    return this.p.col<T>(name);
  }

  async recordActivity(batch: ActivityBatch): Promise<void> {
    const b = validated(batch);
    await this.p.transaction('recording activity', async (session: ClientSession) => {
      const at = b.at;
      let order = at.getTime() * 1000;
      for (const d of b.devices) {
        const hour = d.hour;
        await this.col<HourlyDoc>(COLLECTIONS.activityHourly).updateOne(
          { _id: `${d.deviceId}|${hour.getTime()}` },
          { $setOnInsert: { deviceId: d.deviceId, hour }, $inc: Object.fromEntries(COUNTS.map((k) => [k, d.counts[k]])) as Record<string, number> },
          { upsert: true, session });
        if (d.lastSeen !== undefined) {
          // Several processes flush independently: last seen only moves forward.
          const current = await this.col<LastSeenDoc>(COLLECTIONS.activityLastSeen).findOne({ _id: d.deviceId }, { session });
          if (current === null || current.at.getTime() <= d.lastSeen.at.getTime()) {
            await this.col<LastSeenDoc>(COLLECTIONS.activityLastSeen).replaceOne({ _id: d.deviceId }, {
              at: d.lastSeen.at, frontEnd: d.lastSeen.frontEnd, ...(d.lastSeen.address !== undefined && { address: d.lastSeen.address }),
            }, { upsert: true, session });
          }
        }
        const refusals = d.refusals.slice(0, REFUSALS_PER_DEVICE_PER_BATCH).map((r): RefusalDoc => ({
          _id: `${d.deviceId}|${order}`, deviceId: d.deviceId, at: r.at, order: order++, reason: r.reason, frontEnd: r.frontEnd,
          ...(r.address !== undefined && { address: r.address }),
        }));
        if (refusals.length > 0) await this.col<RefusalDoc>(COLLECTIONS.activityRefusals).insertMany(refusals, { session });
        if (d.firmwareVersion !== undefined) {
          await this.col<FirmwareDoc>(COLLECTIONS.activityFirmware).updateOne(
            { _id: `${d.deviceId}|${d.firmwareVersion}` },
            { $setOnInsert: { deviceId: d.deviceId, version: d.firmwareVersion, firstAt: at }, $max: { lastAt: at } },
            { upsert: true, session });
        }
      }
      await this.col<SessionDoc>(COLLECTIONS.activitySessions).deleteMany({ recorderId: b.recorderId }, { session });
      const sessions = b.sessions.filter((s) => s.addresses.length > 0).map((s): SessionDoc => ({
        _id: `${b.recorderId}|${s.deviceId}`, deviceId: s.deviceId, recorderId: b.recorderId, addresses: [...s.addresses], updatedAt: at,
      }));
      if (sessions.length > 0) await this.col<SessionDoc>(COLLECTIONS.activitySessions).insertMany(sessions, { session });
    });
  }

  async deviceActivity(deviceId: string, options: { since?: Date; sessionsFreshSince?: Date; refusalLimit?: number } = {}): Promise<DeviceActivity | undefined> {
    requireText(deviceId, 'deviceId');
    const since = options.since === undefined ? new Date(0) : requireDate(options.since, 'since');
    const fresh = options.sessionsFreshSince === undefined ? new Date(0) : requireDate(options.sessionsFreshSince, 'sessionsFreshSince');
    const limit = Math.min(Math.max(1, Math.trunc(options.refusalLimit ?? 50)), 1000);
    return this.p.read('reading activity', async () => {
      const seen = await this.col<LastSeenDoc>(COLLECTIONS.activityLastSeen).findOne({ _id: deviceId });
      const hourly = (await this.col<HourlyDoc>(COLLECTIONS.activityHourly).find({ deviceId, hour: { $gte: since } }).sort({ hour: 1 }).toArray())
        .map((h) => ({ hour: h.hour, messages: h.messages, bytes: h.bytes, admitted: h.admitted, refused: h.refused, tokenOk: h.tokenOk, tokenFailed: h.tokenFailed }));
      const refusals = (await this.col<RefusalDoc>(COLLECTIONS.activityRefusals).find({ deviceId }).sort({ at: -1, order: -1 }).limit(limit).toArray())
        .map((r): Refusal => ({ at: r.at, reason: r.reason, ...(r.address !== undefined && { address: r.address }), frontEnd: r.frontEnd }));
      const sessions = (await this.col<SessionDoc>(COLLECTIONS.activitySessions).find({ deviceId, updatedAt: { $gte: fresh } }).sort({ recorderId: 1 }).toArray())
        .flatMap((s) => s.addresses.map((address) => ({ address, recorderId: s.recorderId })));
      const firmware = await this.col<FirmwareDoc>(COLLECTIONS.activityFirmware).find({ deviceId }).sort({ firstAt: 1, version: 1 }).toArray();
      if (seen === null && hourly.length === 0 && refusals.length === 0 && sessions.length === 0 && firmware.length === 0) return undefined;
      const latest = [...firmware].sort((a, b) => b.lastAt.getTime() - a.lastAt.getTime() || b.firstAt.getTime() - a.firstAt.getTime())[0];
      return {
        deviceId,
        ...(seen !== null && { lastSeen: { at: seen.at, ...(seen.address !== undefined && { address: seen.address }), frontEnd: seen.frontEnd } }),
        openSessions: sessions,
        hourly,
        refusals,
        ...(latest !== undefined && { firmwareVersion: latest.version }),
        firmwareHistory: firmware.map((f) => ({ version: f.version, at: f.firstAt })),
      };
    });
  }

  async devicesLastSeen(filter: { before?: Date; after?: Date; limit?: number }): Promise<string[]> {
    const at: Record<string, Date> = {};
    if (filter.before !== undefined) at.$lt = requireDate(filter.before, 'before');
    if (filter.after !== undefined) at.$gte = requireDate(filter.after, 'after');
    const limit = Math.min(Math.max(1, Math.trunc(filter.limit ?? 1000)), 100_000);
    return this.p.read('reading last seen', async () => (await this.col<LastSeenDoc>(COLLECTIONS.activityLastSeen)
      .find(Object.keys(at).length === 0 ? {} : { at }).sort({ at: 1, _id: 1 }).limit(limit).toArray()).map((d) => d._id));
  }

  async devicesMatchingActivity(deviceIds: readonly string[], filter: ActivityFilter): Promise<string[]> {
    if (!Array.isArray(deviceIds) || deviceIds.length > 1000) throw new KakuinError('KAKUIN_E_VALIDATION', 'deviceIds must be a list of at most 1000 ids');
    const before = filter.lastSeenBefore === undefined ? undefined : requireDate(filter.lastSeenBefore, 'lastSeenBefore');
    const after = filter.lastSeenAfter === undefined ? undefined : requireDate(filter.lastSeenAfter, 'lastSeenAfter');
    const firmware = filter.firmwareVersion === undefined ? undefined : requireText(filter.firmwareVersion, 'firmwareVersion');
    if (deviceIds.length === 0) return [];
    return this.p.read('filtering devices by activity', async () => {
      let keep: Set<string> | undefined;
      if (before !== undefined || after !== undefined) {
        const at: Record<string, Date> = {};
        if (before !== undefined) at.$lt = before;
        if (after !== undefined) at.$gte = after;
        keep = new Set((await this.col<LastSeenDoc>(COLLECTIONS.activityLastSeen).find({ _id: { $in: [...deviceIds] }, at }).toArray()).map((d) => d._id));
      }
      if (firmware !== undefined) {
        const current = new Map<string, string>();
        for (const f of await this.col<FirmwareDoc>(COLLECTIONS.activityFirmware).find({ deviceId: { $in: [...deviceIds] } }).sort({ lastAt: 1, firstAt: 1 }).toArray()) current.set(f.deviceId, f.version);
        const withFirmware = new Set([...current].filter(([, v]) => v === firmware).map(([id]) => id));
        keep = keep === undefined ? withFirmware : new Set([...keep].filter((id) => withFirmware.has(id)));
      }
      return keep === undefined ? [...deviceIds] : deviceIds.filter((id) => keep.has(id));
    });
  }

  async pruneActivity(before: Date): Promise<number> {
    const t = requireDate(before, 'before');
    return this.p.transaction('pruning activity', async (session) => {
      let n = (await this.col(COLLECTIONS.activityHourly).deleteMany({ hour: { $lt: t } }, { session })).deletedCount ?? 0;
      n += (await this.col(COLLECTIONS.activityRefusals).deleteMany({ at: { $lt: t } }, { session })).deletedCount ?? 0;
      n += (await this.col(COLLECTIONS.activityLastSeen).deleteMany({ at: { $lt: t } }, { session })).deletedCount ?? 0;
      n += (await this.col(COLLECTIONS.activitySessions).deleteMany({ updatedAt: { $lt: t } }, { session })).deletedCount ?? 0;
      n += (await this.col(COLLECTIONS.activityFirmware).deleteMany({ lastAt: { $lt: t } }, { session })).deletedCount ?? 0;
      return n;
    });
  }

  async deleteDeviceActivity(deviceId: string): Promise<number> {
    requireText(deviceId, 'deviceId');
    return this.p.transaction('deleting activity', async (session) => {
      let n = (await this.col<LastSeenDoc>(COLLECTIONS.activityLastSeen).deleteMany({ _id: deviceId }, { session })).deletedCount ?? 0;
      for (const name of [COLLECTIONS.activityHourly, COLLECTIONS.activityRefusals, COLLECTIONS.activitySessions, COLLECTIONS.activityFirmware]) {
        n += (await this.col(name).deleteMany({ deviceId }, { session })).deletedCount ?? 0;
      }
      return n;
    });
  }
}
