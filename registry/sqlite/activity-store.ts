/**
 * The activity port on SQLite (schema step 8). One batch is one short BEGIN IMMEDIATE transaction:
 * a flush of a few thousand devices is a few thousand indexed upserts (milliseconds).
 *
 * `openSqliteActivityStore` is the write connection limited to activity that the gateway and legacy
 * roles use while their registry connection stays read-only: it never migrates (the schema must be
 * current, as for any read-only opening) and exposes nothing but this port.
 */
import Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import type { ActivityBatch, ActivityFilter, ActivityStore, DeviceActivity, Refusal } from '../activity.js';
import { REFUSALS_PER_DEVICE_PER_BATCH } from '../activity.js';
import { DEFAULT_BUSY_TIMEOUT_MS } from './connection.js';
import { toKakuinError } from './driver-errors.js';
import { checkSchemaForReading } from './schema.js';

interface RefusalRow { at: number; reason: string; address: string | null; front_end: string }

function refusalFromRow(r: RefusalRow): Refusal {
  return { at: new Date(r.at), reason: r.reason, ...(r.address !== null && { address: r.address }), frontEnd: r.front_end };
}

function requireDate(value: unknown, what: string): number {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a valid Date`);
  return value.getTime();
}

function requireText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 512) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a non-empty string of at most 512 characters`);
  return value;
}

function requireCount(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a non-negative integer`);
  return value as number;
}

export class SqliteActivityStore implements ActivityStore {
  private readonly write: Database.Transaction<(batch: ActivityBatch) => void>;

  constructor(private readonly db: Database.Database) {
    const addHour = db.prepare(`
      INSERT INTO device_activity_hourly (device_id, hour, messages, bytes, admitted, refused, token_ok, token_failed)
      VALUES (@deviceId, @hour, @messages, @bytes, @admitted, @refused, @tokenOk, @tokenFailed)
      ON CONFLICT (device_id, hour) DO UPDATE SET
        messages = messages + excluded.messages, bytes = bytes + excluded.bytes, admitted = admitted + excluded.admitted,
        refused = refused + excluded.refused, token_ok = token_ok + excluded.token_ok, token_failed = token_failed + excluded.token_failed`);
    // Several processes flush independently: last seen only moves forward.
    const seen = db.prepare(`
      INSERT INTO device_last_seen (device_id, at, address, front_end) VALUES (?, ?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET at = excluded.at, address = excluded.address, front_end = excluded.front_end
      WHERE excluded.at >= device_last_seen.at`);
    const refusal = db.prepare('INSERT INTO device_refusals (device_id, at, reason, address, front_end) VALUES (?, ?, ?, ?, ?)');
    const firmware = db.prepare(`
      INSERT INTO device_firmware (device_id, version, first_at, last_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (device_id, version) DO UPDATE SET last_at = max(last_at, excluded.last_at)`);
    const clearSessions = db.prepare('DELETE FROM device_sessions WHERE recorder_id = ?');
    const session = db.prepare('INSERT INTO device_sessions (device_id, recorder_id, addresses, updated_at) VALUES (?, ?, ?, ?)');
    this.write = db.transaction((batch: ActivityBatch) => {
      const at = requireDate(batch.at, 'batch.at');
      const recorderId = requireText(batch.recorderId, 'batch.recorderId');
      for (const d of batch.devices) {
        const deviceId = requireText(d.deviceId, 'deviceId');
        const c = d.counts;
        addHour.run({
          deviceId, hour: requireDate(d.hour, 'hour'), messages: requireCount(c.messages, 'messages'), bytes: requireCount(c.bytes, 'bytes'),
          admitted: requireCount(c.admitted, 'admitted'), refused: requireCount(c.refused, 'refused'),
          tokenOk: requireCount(c.tokenOk, 'tokenOk'), tokenFailed: requireCount(c.tokenFailed, 'tokenFailed'),
        });
        if (d.lastSeen !== undefined) seen.run(deviceId, requireDate(d.lastSeen.at, 'lastSeen.at'), d.lastSeen.address ?? null, requireText(d.lastSeen.frontEnd, 'frontEnd'));
        for (const r of d.refusals.slice(0, REFUSALS_PER_DEVICE_PER_BATCH)) {
          refusal.run(deviceId, requireDate(r.at, 'refusal.at'), requireText(r.reason, 'reason'), r.address ?? null, requireText(r.frontEnd, 'frontEnd'));
        }
        if (d.firmwareVersion !== undefined) firmware.run(deviceId, requireText(d.firmwareVersion, 'firmwareVersion'), at, at);
      }
      clearSessions.run(recorderId);
      for (const s of batch.sessions) {
        if (s.addresses.length > 0) session.run(requireText(s.deviceId, 'deviceId'), recorderId, JSON.stringify(s.addresses), at);
      }
    });
  }

  private run<T>(operation: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof KakuinError) throw e;
      throw toKakuinError(e, { operation });
    }
  }

  async recordActivity(batch: ActivityBatch): Promise<void> {
    if (batch === null || typeof batch !== 'object' || !Array.isArray(batch.devices) || !Array.isArray(batch.sessions)) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'an activity batch must have devices and sessions arrays');
    }
    this.run('recording activity', () => this.write.immediate(batch));
  }

  async deviceActivity(deviceId: string, options: { since?: Date; sessionsFreshSince?: Date; refusalLimit?: number } = {}): Promise<DeviceActivity | undefined> {
    requireText(deviceId, 'deviceId');
    const since = options.since === undefined ? 0 : requireDate(options.since, 'since');
    const fresh = options.sessionsFreshSince === undefined ? 0 : requireDate(options.sessionsFreshSince, 'sessionsFreshSince');
    const limit = Math.min(Math.max(1, Math.trunc(options.refusalLimit ?? 50)), 1000);
    return this.run('reading activity', () => {
      const seen = this.db.prepare('SELECT at, address, front_end FROM device_last_seen WHERE device_id = ?').get(deviceId) as
        { at: number; address: string | null; front_end: string } | undefined;
      const hourly = (this.db.prepare(`SELECT hour, messages, bytes, admitted, refused, token_ok, token_failed FROM device_activity_hourly
        WHERE device_id = ? AND hour >= ? ORDER BY hour`).all(deviceId, since) as Record<string, number>[])
        .map((r) => ({ hour: new Date(r.hour), messages: r.messages, bytes: r.bytes, admitted: r.admitted, refused: r.refused, tokenOk: r.token_ok, tokenFailed: r.token_failed }));
      const refusals = (this.db.prepare('SELECT at, reason, address, front_end FROM device_refusals WHERE device_id = ? ORDER BY at DESC, id DESC LIMIT ?')
        .all(deviceId, limit) as RefusalRow[]).map(refusalFromRow);
      const sessions = (this.db.prepare('SELECT recorder_id, addresses FROM device_sessions WHERE device_id = ? AND updated_at >= ? ORDER BY recorder_id')
        .all(deviceId, fresh) as { recorder_id: string; addresses: string }[])
        .flatMap((r) => (JSON.parse(r.addresses) as string[]).map((address) => ({ address, recorderId: r.recorder_id })));
      const firmware = (this.db.prepare('SELECT version, first_at, last_at FROM device_firmware WHERE device_id = ? ORDER BY first_at, version')
        .all(deviceId) as { version: string; first_at: number; last_at: number }[]);
      if (seen === undefined && hourly.length === 0 && refusals.length === 0 && sessions.length === 0 && firmware.length === 0) return undefined;
      const latest = [...firmware].sort((a, b) => b.last_at - a.last_at || b.first_at - a.first_at)[0];
      return {
        deviceId,
        ...(seen !== undefined && { lastSeen: { at: new Date(seen.at), ...(seen.address !== null && { address: seen.address }), frontEnd: seen.front_end } }),
        openSessions: sessions,
        hourly,
        refusals,
        ...(latest !== undefined && { firmwareVersion: latest.version }),
        firmwareHistory: firmware.map((f) => ({ version: f.version, at: new Date(f.first_at) })),
      };
    });
  }

  async devicesLastSeen(filter: { before?: Date; after?: Date; limit?: number }): Promise<string[]> {
    const before = filter.before === undefined ? Number.MAX_SAFE_INTEGER : requireDate(filter.before, 'before');
    const after = filter.after === undefined ? Number.MIN_SAFE_INTEGER : requireDate(filter.after, 'after');
    const limit = Math.min(Math.max(1, Math.trunc(filter.limit ?? 1000)), 100_000);
    return this.run('reading last seen', () => (this.db.prepare('SELECT device_id FROM device_last_seen WHERE at >= ? AND at < ? ORDER BY at, device_id LIMIT ?')
      .all(after, before, limit) as { device_id: string }[]).map((r) => r.device_id));
  }

  async devicesMatchingActivity(deviceIds: readonly string[], filter: ActivityFilter): Promise<string[]> {
    if (!Array.isArray(deviceIds) || deviceIds.length > 1000) throw new KakuinError('KAKUIN_E_VALIDATION', 'deviceIds must be a list of at most 1000 ids');
    if (deviceIds.length === 0) return [];
    const before = filter.lastSeenBefore === undefined ? undefined : requireDate(filter.lastSeenBefore, 'lastSeenBefore');
    const after = filter.lastSeenAfter === undefined ? undefined : requireDate(filter.lastSeenAfter, 'lastSeenAfter');
    const firmware = filter.firmwareVersion === undefined ? undefined : requireText(filter.firmwareVersion, 'firmwareVersion');
    const ids = JSON.stringify(deviceIds);
    return this.run('filtering devices by activity', () => {
      let keep: Set<string> | undefined;
      if (before !== undefined || after !== undefined) {
        keep = new Set((this.db.prepare(`SELECT device_id FROM device_last_seen WHERE device_id IN (SELECT value FROM json_each(?))
          AND at >= ? AND at < ?`).all(ids, after ?? Number.MIN_SAFE_INTEGER, before ?? Number.MAX_SAFE_INTEGER) as { device_id: string }[]).map((r) => r.device_id));
      }
      if (firmware !== undefined) {
        // The current version is the one reported last (as deviceActivity's firmwareVersion).
        const current = new Map<string, string>();
        for (const r of this.db.prepare(`SELECT device_id, version FROM device_firmware WHERE device_id IN (SELECT value FROM json_each(?))
          ORDER BY last_at, first_at`).all(ids) as { device_id: string; version: string }[]) current.set(r.device_id, r.version);
        const withFirmware = new Set([...current].filter(([, v]) => v === firmware).map(([id]) => id));
        keep = keep === undefined ? withFirmware : new Set([...keep].filter((id) => withFirmware.has(id)));
      }
      return keep === undefined ? [...deviceIds] : deviceIds.filter((id) => keep.has(id));
    });
  }

  async pruneActivity(before: Date): Promise<number> {
    const t = requireDate(before, 'before');
    return this.run('pruning activity', () => this.db.transaction(() => {
      let n = this.db.prepare('DELETE FROM device_activity_hourly WHERE hour < ?').run(t).changes;
      n += this.db.prepare('DELETE FROM device_refusals WHERE at < ?').run(t).changes;
      n += this.db.prepare('DELETE FROM device_last_seen WHERE at < ?').run(t).changes;
      n += this.db.prepare('DELETE FROM device_sessions WHERE updated_at < ?').run(t).changes;
      n += this.db.prepare('DELETE FROM device_firmware WHERE last_at < ?').run(t).changes;
      return n;
    }).immediate());
  }

  async deleteDeviceActivity(deviceId: string): Promise<number> {
    requireText(deviceId, 'deviceId');
    return this.run('deleting activity', () => this.db.transaction(() => {
      let n = 0;
      for (const table of ['device_activity_hourly', 'device_refusals', 'device_last_seen', 'device_sessions', 'device_firmware']) {
        n += this.db.prepare(`DELETE FROM ${table} WHERE device_id = ?`).run(deviceId).changes;
      }
      return n;
    }).immediate());
  }
}

/**
 * A write connection limited to activity, for a role whose registry connection is read-only. The
 * file must exist at the current schema (the writing role migrates it).
 */
export function openSqliteActivityStore(options: { path: string; busyTimeoutMs?: number }): { store: SqliteActivityStore; close(): void } {
  let db: Database.Database;
  try {
    db = new Database(options.path, { fileMustExist: true, timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
  } catch (e) {
    throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the registry database cannot be opened for activity',
      { cause: new Error(`opening ${options.path}: ${(e as Error)?.message}`, { cause: e }) });
  }
  try {
    db.pragma('synchronous = NORMAL');
    checkSchemaForReading(db);
    return { store: new SqliteActivityStore(db), close: () => db.close() };
  } catch (e) {
    db.close();
    throw toKakuinError(e, { operation: 'opening the database for activity' });
  }
}
