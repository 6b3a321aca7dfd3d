/**
 * The approval port on MongoDB (registry/approvals.ts): request and decision each in one
 * transaction with their audit event; the decision's update is filtered on `state: 'pending'`, so
 * two racing approvers produce one decision.
 */
import { randomUUID } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type { Approval, ApprovalState, ApprovalStore, NewApproval } from '../approvals.js';
import type { NewAuditEvent } from '../port.js';
import { auditEventValues, checkApprovalState, checkDecision, checkNewApproval, normalizeLimit, notPending } from '../records/index.js';
import { COLLECTIONS } from './documents.js';
import type { RegistryPlumbing } from './plumbing.js';
import { insertAudit } from './transaction-bodies.js';

interface ApprovalDoc extends Omit<Approval, 'id' | 'request' | 'result'> {
  _id: string;
  ord: ObjectId;
  /** JSON text (the act's parameters may hold keys MongoDB does not take as field names). */
  request: string;
  result?: string;
}

function approvalFromDoc(d: ApprovalDoc): Approval {
  const { _id, ord: _ord, request, result, ...rest } = d;
  const a: Approval = { ...rest, id: _id, request: JSON.parse(request) as Record<string, unknown>, ...(typeof result === 'string' && { result: JSON.parse(result) as Record<string, unknown> }) };
  for (const k of Object.keys(a) as (keyof Approval)[]) if (a[k] === null || a[k] === undefined) delete a[k];
  return a;
}

export class MongoApprovalStore implements ApprovalStore {
  constructor(private readonly p: RegistryPlumbing) {}

  private col() {
    return this.p.col<ApprovalDoc>(COLLECTIONS.approvals);
  }

  async createApproval(approval: NewApproval, audit: NewAuditEvent): Promise<Approval> {
    const now = new Date();
    const a = checkNewApproval(approval, now);
    const id = randomUUID();
    const values = auditEventValues({ ...audit, details: { ...audit.details, approvalId: id } }, now.getTime());
    const doc: ApprovalDoc = { _id: id, ord: new ObjectId(), ...a, request: JSON.stringify(a.request), state: 'pending', createdAt: now };
    await this.p.transaction('recording an approval', async (session) => {
      await this.col().insertOne(doc, { session });
      await insertAudit(this.p, session, [values]);
    });
    return approvalFromDoc(doc);
  }

  async getApproval(id: string): Promise<Approval> {
    const doc = await this.p.read('reading an approval', () => this.col().findOne({ _id: String(id) }));
    if (doc === null) throw new KakuinError('KAKUIN_E_APPROVAL_NOT_FOUND', 'no approval with that id');
    return approvalFromDoc(doc);
  }

  async listApprovals(page: { afterKey?: string; limit?: number; state?: ApprovalState } = {}): Promise<Approval[]> {
    const limit = normalizeLimit(page.limit);
    const filter: Record<string, unknown> = {};
    if (page.state !== undefined) filter.state = checkApprovalState(page.state);
    if (page.afterKey !== undefined) {
      const after = await this.p.read('reading an approval', () => this.col().findOne({ _id: page.afterKey! }));
      if (after === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no approval');
      filter.ord = { $lt: after.ord };
    }
    return this.p.read('listing approvals', async () => (await this.col().find(filter).sort({ ord: -1 }).limit(limit).toArray()).map(approvalFromDoc));
  }

  async decideApproval(id: string, decision: { state: Exclude<ApprovalState, 'pending'>; by: string; at: Date; note?: string }, audit: NewAuditEvent): Promise<Approval> {
    const d = checkDecision(decision);
    const values = auditEventValues({ ...audit, details: { ...audit.details, approvalId: id } }, d.at.getTime());
    await this.p.transaction('deciding an approval', async (session) => {
      const doc = await this.col().findOne({ _id: String(id) }, { session });
      if (doc === null) throw new KakuinError('KAKUIN_E_APPROVAL_NOT_FOUND', 'no approval with that id');
      if (doc.state !== 'pending') throw notPending(doc.state);
      const r = await this.col().updateOne({ _id: doc._id, state: 'pending' },
        { $set: { state: d.state, decidedBy: d.by, decidedAt: d.at, ...(d.note !== undefined && { note: d.note }) } }, { session });
      if (r.matchedCount !== 1) throw notPending('approved');
      await insertAudit(this.p, session, [values]);
    });
    return this.getApproval(id);
  }

  async recordApprovalResult(id: string, result: Record<string, unknown>): Promise<void> {
    const text = JSON.stringify(result);
    await this.p.write('recording an approval result', () => this.col().updateOne({ _id: id }, { $set: { result: text } }));
  }
}
