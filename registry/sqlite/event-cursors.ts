/**
 * The event-cursor port on SQLite (schema step 10): one row per destination, a single-row upsert
 * per save, so a sender that saves after every few deliveries costs one short write.
 */
import type Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import type { EventCursorStore } from '../event-cursors.js';
import { toKakuinError } from './driver-errors.js';

function requireDestination(destination: unknown): string {
  if (typeof destination !== 'string' || destination.length === 0 || destination.length > 2048) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'an event destination must be a non-empty string of at most 2048 characters');
  }
  return destination;
}

export class SqliteEventCursorStore implements EventCursorStore {
  private readonly read: Database.Statement;
  private readonly save: Database.Statement;
  private readonly latest: Database.Statement;

  constructor(db: Database.Database) {
    this.read = db.prepare('SELECT after_audit_id AS id FROM event_cursors WHERE destination = ?');
    this.save = db.prepare(`
      INSERT INTO event_cursors (destination, after_audit_id, updated_at) VALUES (?, ?, ?)
      ON CONFLICT (destination) DO UPDATE SET after_audit_id = excluded.after_audit_id, updated_at = excluded.updated_at
      WHERE excluded.after_audit_id > event_cursors.after_audit_id`);
    this.latest = db.prepare('SELECT coalesce(max(id), 0) AS id FROM audit_events');
  }

  async readEventCursor(destination: string): Promise<number | undefined> {
    requireDestination(destination);
    try {
      return (this.read.get(destination) as { id: number } | undefined)?.id;
    } catch (e) {
      throw toKakuinError(e, { operation: 'reading an event cursor' });
    }
  }

  async saveEventCursor(destination: string, afterAuditId: number): Promise<void> {
    requireDestination(destination);
    if (!Number.isSafeInteger(afterAuditId) || afterAuditId < 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'an event cursor must be a non-negative integer');
    try {
      this.save.run(destination, afterAuditId, Date.now());
    } catch (e) {
      throw toKakuinError(e, { operation: 'saving an event cursor' });
    }
  }

  async latestAuditEventId(): Promise<number> {
    try {
      return (this.latest.get() as { id: number }).id;
    } catch (e) {
      throw toKakuinError(e, { operation: 'reading the latest audit event id' });
    }
  }
}
