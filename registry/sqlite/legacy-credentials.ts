/**
 * The legacy three-factor path's tables (schema step 3): common auth IDs, per-device legacy
 * credentials with their generation, and the failure counters of the abuse detection.
 *
 * Every write that changes which tokens are valid (set, replace, delete) appends a
 * `legacy-credentials` feed entry in the same transaction, so every process's kill switch learns of
 * it through the feed it already follows.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import type {
  CommonAuthId, DeviceStatus, FailureCount, FeedEntry, LegacyCredential, LegacyCredentialState, LegacyVerifierKind, NewLegacyCredential,
} from '../port.js';
import { feedEntryFromRow, type auditEventValues } from './records.js';
import type { AuditAppender } from './audit-appender.js';

export interface CommonAuthIdRow {
  id: string;
  name: string;
  manufacturer_id: string | null;
  usual_hours_utc: string | null;
  created_at: number;
}

interface CredentialRow {
  device_id: string;
  common_auth_id: string;
  unique_id: string;
  verifier_kind: LegacyVerifierKind;
  verifier: string;
  generation: number;
  created_at: number;
  locked_until: number | null;
  deleted_at: number | null;
}

export function commonAuthIdFromRow(r: CommonAuthIdRow): CommonAuthId {
  return {
    id: r.id, name: r.name, createdAt: new Date(r.created_at),
    ...(r.manufacturer_id !== null && { manufacturerId: r.manufacturer_id }),
    ...(r.usual_hours_utc !== null && { usualHoursUtc: r.usual_hours_utc }),
  };
}

function credentialFromRow(r: CredentialRow): LegacyCredential {
  return {
    deviceId: r.device_id, commonAuthId: r.common_auth_id, uniqueId: r.unique_id, verifierKind: r.verifier_kind, verifier: r.verifier,
    generation: r.generation, createdAt: new Date(r.created_at), ...(r.locked_until !== null && { lockedUntil: new Date(r.locked_until) }),
  };
}

const USABLE: ReadonlySet<DeviceStatus> = new Set(['registered', 'active']);
type AuditValues = ReturnType<typeof auditEventValues>;

export class LegacyCredentialStore {
  private readonly insertFeed: Database.Statement<unknown[]>;
  private readonly insertAudit: AuditAppender;
  private readonly byDevice: Database.Statement<[string], CredentialRow>;
  private readonly deviceStatus: Database.Statement<[string], { status: DeviceStatus }>;
  private readonly commonAuthIdExists: Database.Statement<[string], { id: string }>;
  private readonly upsert: Database.Statement<unknown[]>;
  private readonly markDeleted: Database.Statement<unknown[]>;
  private readonly lock: Database.Statement<unknown[]>;
  private readonly bump: Database.Statement<unknown[], { count: number }>;
  private readonly countAt: Database.Statement<unknown[], { count: number }>;
  private readonly prune: Database.Statement<unknown[]>;
  readonly putAll: Database.Transaction<(creds: NewLegacyCredential[], audit: AuditValues[], now: number) => LegacyCredential[]>;
  readonly remove: Database.Transaction<(deviceId: string, audit: AuditValues, now: number) => FeedEntry>;
  readonly lockUntil: Database.Transaction<(deviceId: string, until: number, audit: AuditValues) => void>;
  readonly count: Database.Transaction<(keys: string[], windowStart: number, windowMs: number) => FailureCount[]>;

  constructor(private readonly db: Database.Database, audit: AuditAppender) {
    this.insertFeed = db.prepare(`INSERT INTO revocation_feed (at, kind, device_id, status, previous_status, generation)
      VALUES (?, 'legacy-credentials', ?, ?, ?, ?)`);
    this.insertAudit = audit;
    this.byDevice = db.prepare('SELECT * FROM legacy_credentials WHERE device_id = ?');
    this.deviceStatus = db.prepare('SELECT status FROM devices WHERE id = ?');
    this.commonAuthIdExists = db.prepare('SELECT id FROM common_auth_ids WHERE id = ?');
    this.upsert = db.prepare(`INSERT INTO legacy_credentials
        (device_id, common_auth_id, unique_id, verifier_kind, verifier, generation, created_at, locked_until, deleted_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)
      ON CONFLICT (device_id) DO UPDATE SET common_auth_id = excluded.common_auth_id, unique_id = excluded.unique_id,
        verifier_kind = excluded.verifier_kind, verifier = excluded.verifier, generation = excluded.generation,
        created_at = excluded.created_at, locked_until = NULL, deleted_at = NULL`);
    this.markDeleted = db.prepare('UPDATE legacy_credentials SET deleted_at = ?, generation = ? WHERE device_id = ?');
    this.lock = db.prepare('UPDATE legacy_credentials SET locked_until = ? WHERE device_id = ? AND deleted_at IS NULL');
    this.bump = db.prepare(`INSERT INTO legacy_failures (key, window_start, count) VALUES (?, ?, 1)
      ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1 RETURNING count`);
    this.countAt = db.prepare('SELECT count FROM legacy_failures WHERE key = ? AND window_start = ?');
    this.prune = db.prepare('DELETE FROM legacy_failures WHERE window_start < ?');

    this.putAll = db.transaction((creds, audit, now) => {
      const out = creds.map((c) => this.putOne(c, now));
      for (const a of audit) this.insertAudit.run(a);
      return out;
    });
    this.remove = db.transaction((deviceId, audit, now) => {
      const row = this.byDevice.get(deviceId);
      if (row === undefined || row.deleted_at !== null) {
        throw new KakuinError('KAKUIN_E_LEGACY_CREDENTIALS_NOT_FOUND', 'the device has no legacy credentials');
      }
      const generation = row.generation + 1;
      this.markDeleted.run(now, generation, deviceId);
      const entry = this.appendFeed(now, deviceId, 'deleted', 'enabled', generation);
      this.insertAudit.run(audit);
      return entry;
    });
    this.lockUntil = db.transaction((deviceId, until, audit) => {
      this.lock.run(until, deviceId);
      this.insertAudit.run(audit);
    });
    this.count = db.transaction((keys, windowStart, windowMs) => {
      this.prune.run(windowStart - windowMs);
      return keys.map((k) => ({
        current: this.bump.get(k, windowStart)!.count,
        previous: this.countAt.get(k, windowStart - windowMs)?.count ?? 0,
      }));
    });
  }

  private putOne(c: NewLegacyCredential, now: number): LegacyCredential {
    const device = this.deviceStatus.get(c.deviceId);
    if (device === undefined) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', `no device with id ${c.deviceId}`);
    if (!USABLE.has(device.status)) {
      throw new KakuinError('KAKUIN_E_DEVICE_STATE', `device ${c.deviceId} is ${device.status}: it gets no legacy credentials`);
    }
    if (this.commonAuthIdExists.get(c.commonAuthId) === undefined) {
      throw new KakuinError('KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND', 'no common auth ID with that id');
    }
    const before = this.byDevice.get(c.deviceId);
    const generation = (before?.generation ?? 0) + 1;
    this.upsert.run(c.deviceId, c.commonAuthId, c.uniqueId, c.verifierKind, c.verifier, generation, now);
    this.appendFeed(now, c.deviceId, 'enabled', before === undefined ? null : before.deleted_at === null ? 'enabled' : 'deleted', generation);
    return { ...c, generation, createdAt: new Date(now) };
  }

  private appendFeed(at: number, deviceId: string, status: 'enabled' | 'deleted', previous: 'enabled' | 'deleted' | null, generation: number): FeedEntry {
    const seq = Number(this.insertFeed.run(at, deviceId, status, previous, generation).lastInsertRowid);
    return feedEntryFromRow({
      seq, at, kind: 'legacy-credentials', serial_hex: null, issuer_id: null, device_id: deviceId, status, previous_status: previous,
      reason: null, revoked_at: null, invalidity_date: null, generation,
    });
  }

  createCommonAuthId(input: { name: string; manufacturerId?: string; usualHoursUtc?: string }): CommonAuthId {
    const row: CommonAuthIdRow = {
      id: randomUUID(), name: input.name, manufacturer_id: input.manufacturerId ?? null, usual_hours_utc: input.usualHoursUtc ?? null,
      created_at: Date.now(),
    };
    this.db.prepare(`INSERT INTO common_auth_ids (id, name, manufacturer_id, usual_hours_utc, created_at)
      VALUES (:id, :name, :manufacturer_id, :usual_hours_utc, :created_at)`).run(row);
    return commonAuthIdFromRow(row);
  }

  getCommonAuthId(id: string): CommonAuthId | undefined {
    const row = this.db.prepare('SELECT * FROM common_auth_ids WHERE id = ?').get(id) as CommonAuthIdRow | undefined;
    return row === undefined ? undefined : commonAuthIdFromRow(row);
  }

  get(deviceId: string): LegacyCredential | undefined {
    const row = this.byDevice.get(deviceId);
    return row === undefined || row.deleted_at !== null ? undefined : credentialFromRow(row);
  }

  find(commonAuthId: string, uniqueId: string): LegacyCredential | undefined {
    const row = this.db.prepare('SELECT * FROM legacy_credentials WHERE common_auth_id = ? AND unique_id = ? AND deleted_at IS NULL')
      .get(commonAuthId, uniqueId) as CredentialRow | undefined;
    return row === undefined ? undefined : credentialFromRow(row);
  }

  findVerifiers(kind: LegacyVerifierKind, verifiers: string[]): { verifier: string; deviceId: string }[] {
    const stmt = this.db.prepare('SELECT device_id FROM legacy_credentials WHERE verifier_kind = ? AND verifier = ? AND deleted_at IS NULL');
    const out: { verifier: string; deviceId: string }[] = [];
    for (const v of new Set(verifiers)) {
      const row = stmt.get(kind, v) as { device_id: string } | undefined;
      if (row !== undefined) out.push({ verifier: v, deviceId: row.device_id });
    }
    return out;
  }

  states(): LegacyCredentialState[] {
    return (this.db.prepare(`SELECT l.device_id, l.generation, d.status FROM legacy_credentials l JOIN devices d ON d.id = l.device_id
      WHERE l.deleted_at IS NULL ORDER BY l.rowid`).all() as { device_id: string; generation: number; status: DeviceStatus }[])
      .map((r) => ({ deviceId: r.device_id, generation: r.generation, deviceStatus: r.status }));
  }
}
