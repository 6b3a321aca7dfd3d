/**
 * The approval port (DESIGN.md "registry/": small consumer-named ports): two-person approval of
 * dangerous acts (management-api/approvals.ts decides what needs one and who may decide it). The
 * request and the decision are each written in one transaction with their audit event, and a
 * decision only ever moves a `pending` approval, so an act is approved at most once.
 */
import type { NewAuditEvent } from './port.js';

export const APPROVAL_STATES = ['pending', 'approved', 'rejected', 'expired'] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

export interface NewApproval {
  /** What is to be done: `bulk-job`, `station-revoke-issued`, `admin-token`, `ca-rollover`, ... */
  kind: string;
  /** The act's parameters, as the route checked them (JSON). */
  request: Record<string, unknown>;
  /** One line for a person deciding. */
  summary: string;
  /** The requesting principal, in audit actor form (`token:<name>`). */
  requestedBy: string;
  expiresAt: Date;
}

export interface Approval extends NewApproval {
  id: string;
  state: ApprovalState;
  createdAt: Date;
  decidedBy?: string;
  decidedAt?: Date;
  note?: string;
  /** What the act answered once it ran (JSON), or its error code. */
  result?: Record<string, unknown>;
}

export interface ApprovalStore {
  /** Records a pending approval and its audit event, in one transaction. */
  createApproval(approval: NewApproval, audit: NewAuditEvent): Promise<Approval>;
  getApproval(id: string): Promise<Approval>;
  /** Newest first. */
  listApprovals(page?: { afterKey?: string; limit?: number; state?: ApprovalState }): Promise<Approval[]>;
  /**
   * Moves a `pending` approval to `state` with its audit event, in one transaction; an approval
   * that is no longer pending is KAKUIN_E_APPROVAL_DECIDED (or KAKUIN_E_APPROVAL_EXPIRED when it expired).
   */
  decideApproval(id: string, decision: { state: Exclude<ApprovalState, 'pending'>; by: string; at: Date; note?: string }, audit: NewAuditEvent): Promise<Approval>;
  /** Keeps what the approved act answered. */
  recordApprovalResult(id: string, result: Record<string, unknown>): Promise<void>;
}
