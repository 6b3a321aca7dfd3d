/**
 * The approval port on SQLite (schema step 15): a request and a decision are each one
 * BEGIN IMMEDIATE transaction with their audit event; the decision's guard (still pending) is read
 * under the write lock, so two approvers racing produce one decision and one KAKUIN_E_APPROVAL_DECIDED.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { AuditAppender } from './audit-appender.js';
import { KakuinError } from '../../errors/index.js';
import type { Approval, ApprovalState, ApprovalStore, NewApproval } from '../approvals.js';
import type { NewAuditEvent } from '../port.js';
import { auditEventValues, checkApprovalState, checkDecision, checkNewApproval, normalizeLimit, notPending, type AuditEventValues } from '../records/index.js';
import { toKakuinError } from './driver-errors.js';

interface ApprovalRow {
  id: string; kind: string; request: string; summary: string; requested_by: string; state: ApprovalState; created_at: number; expires_at: number;
  decided_by: string | null; decided_at: number | null; note: string | null; result: string | null;
}

function approvalFromRow(r: ApprovalRow): Approval {
  return {
    id: r.id, kind: r.kind, request: JSON.parse(r.request) as Record<string, unknown>, summary: r.summary, requestedBy: r.requested_by,
    state: r.state, createdAt: new Date(r.created_at), expiresAt: new Date(r.expires_at),
    ...(r.decided_by !== null && { decidedBy: r.decided_by }), ...(r.decided_at !== null && { decidedAt: new Date(r.decided_at) }),
    ...(r.note !== null && { note: r.note }), ...(r.result !== null && { result: JSON.parse(r.result) as Record<string, unknown> }),
  };
}

export class SqliteApprovalStore implements ApprovalStore {
  private readonly select: Database.Statement<[string], ApprovalRow>;
  private readonly create: Database.Transaction<(id: string, a: NewApproval, audit: AuditEventValues, now: number) => void>;
  private readonly decide: Database.Transaction<(id: string, d: ReturnType<typeof checkDecision>, audit: AuditEventValues) => void>;
  private readonly setResult: Database.Statement<unknown[]>;

  /** `insertAudit` is the registry's chain appender: the request and the decision go onto this instance's hash chain. */
  constructor(private readonly db: Database.Database, insertAudit: AuditAppender) {
    this.select = db.prepare('SELECT * FROM approvals WHERE id = ?');
    const insert = db.prepare(`INSERT INTO approvals (id, kind, request, summary, requested_by, state, created_at, expires_at)
      VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`);
    this.create = db.transaction((id: string, a: NewApproval, audit: AuditEventValues, now: number) => {
      insert.run(id, a.kind, JSON.stringify(a.request), a.summary, a.requestedBy, now, a.expiresAt.getTime());
      insertAudit.run(audit);
    });
    const update = db.prepare(`UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, note = ? WHERE id = ? AND state = 'pending'`);
    this.decide = db.transaction((id: string, d: ReturnType<typeof checkDecision>, audit: AuditEventValues) => {
      const row = this.select.get(id);
      if (row === undefined) throw new KakuinError('KAKUIN_E_APPROVAL_NOT_FOUND', 'no approval with that id');
      if (row.state !== 'pending') throw notPending(row.state);
      update.run(d.state, d.by, d.at.getTime(), d.note ?? null, id);
      insertAudit.run(audit);
    });
    this.setResult = db.prepare('UPDATE approvals SET result = ? WHERE id = ?');
  }

  private run<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw toKakuinError(e, { operation });
    }
  }

  async createApproval(approval: NewApproval, audit: NewAuditEvent): Promise<Approval> {
    const now = Date.now();
    const a = checkNewApproval(approval, new Date(now));
    const id = randomUUID();
    const values = auditEventValues({ ...audit, details: { ...audit.details, approvalId: id } }, now);
    this.run('recording an approval', () => this.create.immediate(id, a, values, now));
    return this.getApproval(id);
  }

  async getApproval(id: string): Promise<Approval> {
    const row = this.run('reading an approval', () => this.select.get(String(id)));
    if (row === undefined) throw new KakuinError('KAKUIN_E_APPROVAL_NOT_FOUND', 'no approval with that id');
    return approvalFromRow(row);
  }

  async listApprovals(page: { afterKey?: string; limit?: number; state?: ApprovalState } = {}): Promise<Approval[]> {
    const limit = normalizeLimit(page.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    if (page.state !== undefined) {
      where.push('state = ?');
      params.push(checkApprovalState(page.state));
    }
    if (page.afterKey !== undefined) {
      if (this.run('reading an approval', () => this.select.get(page.afterKey!)) === undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no approval');
      where.push('rowid < (SELECT rowid FROM approvals WHERE id = ?)');
      params.push(page.afterKey);
    }
    const sql = `SELECT * FROM approvals${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY rowid DESC LIMIT ?`;
    return this.run('listing approvals', () => (this.db.prepare(sql).all(...params, limit) as ApprovalRow[]).map(approvalFromRow));
  }

  async decideApproval(id: string, decision: { state: Exclude<ApprovalState, 'pending'>; by: string; at: Date; note?: string }, audit: NewAuditEvent): Promise<Approval> {
    const d = checkDecision(decision);
    const values = auditEventValues({ ...audit, details: { ...audit.details, approvalId: id } }, d.at.getTime());
    this.run('deciding an approval', () => this.decide.immediate(String(id), d, values));
    return this.getApproval(id);
  }

  async recordApprovalResult(id: string, result: Record<string, unknown>): Promise<void> {
    const text = JSON.stringify(result);
    this.run('recording an approval result', () => this.setResult.run(text, id));
  }
}
