/**
 * Appends audit events to this registry instance's hash chain (registry/records/audit-chain.ts).
 * Must run inside the caller's write transaction (every caller's is): the next id and the chain
 * head are read under SQLite's write lock, so the link commits, or rolls back, with the event.
 *
 * The id is assigned here rather than by AUTOINCREMENT because it is part of the hashed event:
 * max(sqlite_sequence, max(id)) + 1 is exactly what AUTOINCREMENT would give (sqlite.org/autoinc.html),
 * and inserting it explicitly advances sqlite_sequence the same way, so ids are still never reused.
 */
import type Database from 'better-sqlite3';
import { linkAuditEvent, type AuditEventValues } from '../records/index.js';
import type { AuditChainHead, AuditChainLink } from '../port.js';

interface NextRow { next_id: number; seq: number | null; hash: string | null }
interface HeadRow { chain_id: string; seq: number; hash: string; event_id: number }

export class AuditAppender {
  private readonly next: Database.Statement<[string], NextRow>;
  private readonly insert: Database.Statement<[Record<string, unknown>]>;
  private readonly setHead: Database.Statement<[string, number, string, number, number]>;
  private readonly heads: Database.Statement<[], HeadRow>;

  constructor(db: Database.Database, readonly chainId: string) {
    this.next = db.prepare(`SELECT
        max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'), 0), coalesce((SELECT max(id) FROM audit_events), 0)) + 1 AS next_id,
        h.chain_seq AS seq, h.hash AS hash
      FROM (SELECT 1) LEFT JOIN (SELECT seq AS chain_seq, hash FROM audit_chain_heads WHERE chain_id = ?) h`) as Database.Statement<[string], NextRow>;
    this.insert = db.prepare(`INSERT INTO audit_events (id, at, type, actor, device_id, serial_hex, details, chain_id, chain_seq, prev_hash, hash)
      VALUES (:id, :at, :type, :actor, :device_id, :serial_hex, :details, :chain_id, :chain_seq, :prev_hash, :hash)`);
    this.setHead = db.prepare(`INSERT INTO audit_chain_heads (chain_id, seq, hash, event_id, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (chain_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, event_id = excluded.event_id, updated_at = excluded.updated_at`);
    this.heads = db.prepare('SELECT chain_id, seq, hash, event_id FROM audit_chain_heads ORDER BY chain_id');
  }

  /** Every chain's newest link (the stored heads table; see schema step 13). */
  chainHeads(): AuditChainHead[] {
    return this.heads.all().map((r) => ({ chain: r.chain_id, seq: r.seq, hash: r.hash, eventId: r.event_id }));
  }

  /** Inserts one event, linked; returns its id and link. */
  append(v: AuditEventValues): { id: number; link: AuditChainLink } {
    const row = this.next.get(this.chainId)!;
    const id = row.next_id;
    const link = linkAuditEvent(id, v, this.chainId, row.seq === null ? undefined : { seq: row.seq, hash: row.hash! });
    this.insert.run({ ...v, id, chain_id: link.chain, chain_seq: link.seq, prev_hash: link.prev, hash: link.hash });
    this.setHead.run(link.chain, link.seq, link.hash, id, Date.now());
    return { id, link };
  }

  /** Same shape as the INSERT statements it replaces (`run(values)`). */
  run(v: AuditEventValues): { lastInsertRowid: number } {
    return { lastInsertRowid: this.append(v).id };
  }
}
