/**
 * Appending to the revocation feed. Only ever called inside the transaction that makes the change
 * it reports (an issuance's savepoint, a status change's BEGIN IMMEDIATE), so an entry exists if
 * and only if its change committed, and SQLite's single writer assigns seq in commit order.
 */
import type Database from 'better-sqlite3';
import type { FeedEntry } from '../port.js';
import { feedEntryFromRow, type FeedRow } from './records.js';

export class FeedAppender {
  private readonly insert: Database.Statement<unknown[]>;

  constructor(db: Database.Database) {
    this.insert = db.prepare(`INSERT INTO revocation_feed
      (at, kind, serial_hex, issuer_id, device_id, status, previous_status, reason, revoked_at, invalidity_date)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  /** Appends one entry from column values (the issuance hot path builds no entry object); returns its seq. */
  appendRow(row: Omit<FeedRow, 'seq'>): number {
    return Number(this.insert.run(row.at, row.kind, row.serial_hex, row.issuer_id, row.device_id, row.status, row.previous_status,
      row.reason, row.revoked_at, row.invalidity_date).lastInsertRowid);
  }

  /** Appends one entry and returns it as the port shows it. */
  append(row: Omit<FeedRow, 'seq'>): FeedEntry {
    return feedEntryFromRow({ seq: this.appendRow(row), ...row });
  }
}
