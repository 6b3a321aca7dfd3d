/**
 * Two-person approval of dangerous acts (issue 21 item 4). A route whose act needs a second person
 * calls `requireApproval(...)`: instead of acting, it records a pending approval (with its
 * `approval.requested` audit event) and answers 202 with the approval's id. A *different* principal
 * whose role decides that kind of act approves or rejects it within `approvals.ttlMinutes`
 * (`POST /api/v1/approvals/{id}/approve` or `/reject`); approving runs the act, once: the decision
 * only ever moves a pending approval (registry/approvals.ts), so a second approve is
 * KAKUIN_E_APPROVAL_DECIDED. The act is defined once, with `ApprovalGate.define`, by the component
 * that owns it (bulk jobs, tokens, station incidents, CA rollover), so the request and the later
 * run use the same code.
 *
 *   GET  /api/v1/approvals?state=&limit=&after=     admin, operator, auditor  → {approvals, next?} (newest first)
 *   GET  /api/v1/approvals/{id}                     admin, operator, auditor
 *   POST /api/v1/approvals/{id}/approve {note?}     admin (not the requester)  → {approval, result}
 *   POST /api/v1/approvals/{id}/reject  {note?}     admin (not the requester)  → {approval}
 *
 * Host-side commands on the CA host (`kakuin ca rollover`, `kakuin token create` of the first admin)
 * go through no gate: whoever runs them already holds the CA's keys. They are audited as `cli`.
 */
import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { KakuinError, hasCode } from '../errors/index.js';
import { APPROVAL_STATES, type Approval, type ApprovalStore } from '../registry/approvals.js';
import type { ApiRoutes } from '../api-schema/routes.js';
import { pageJson, pageQuery, readPage } from '../api-schema/paging.js';
import { principalOf, type Principal } from '../api-schema/access.js';
import type { Caller } from './admin-tokens.js';

export interface GatedAct {
  /** The approval's `kind`: `bulk-job`, `admin-token`, `station-revoke-issued`, `ca-rollover`. */
  kind: string;
  /** The roles whose principals may decide it (never the requester). */
  deciders: readonly Principal[];
  /**
   * Runs the approved act with the request as recorded; what it answers goes back to the approver
   * (`shown`) and into the approval (`kept`: never a secret).
   */
  run(request: Record<string, unknown>, approval: Approval): Promise<{ kept: Record<string, unknown>; shown?: Record<string, unknown> }>;
  /** A rejected or expired approval: undo what the request prepared (a bulk job is cancelled). */
  dropped?(request: Record<string, unknown>, approval: Approval): Promise<void>;
}

export interface ApprovalGateOptions {
  ttlMinutes: number;
  now?: () => Date;
}

export class ApprovalGate {
  private readonly acts = new Map<string, GatedAct>();
  private readonly now: () => Date;

  constructor(readonly store: ApprovalStore, private readonly options: ApprovalGateOptions) {
    this.now = options.now ?? (() => new Date());
  }

  define(act: GatedAct): void {
    if (this.acts.has(act.kind)) throw new KakuinError('KAKUIN_E_INTERNAL', `the gated act ${act.kind} is defined twice`);
    this.acts.set(act.kind, act);
  }

  private act(kind: string): GatedAct {
    const act = this.acts.get(kind);
    if (act === undefined) throw new KakuinError('KAKUIN_E_INTERNAL', `no gated act ${JSON.stringify(kind)} is defined in this process`);
    return act;
  }

  /** Records a pending approval of `kind` (its `approval.requested` audit event in the same transaction). */
  async request(caller: Caller, kind: string, request: Record<string, unknown>, summary: string): Promise<Approval> {
    this.act(kind);
    const expiresAt = new Date(this.now().getTime() + this.options.ttlMinutes * 60_000);
    return this.store.createApproval({ kind, request, summary, requestedBy: caller.actor, expiresAt },
      { type: 'approval.requested', actor: caller.actor, details: { kind, summary, expiresAt: expiresAt.toISOString() } });
  }

  /** The approval; a pending one past its expiry is marked expired first (and its act dropped). */
  async get(id: string): Promise<Approval> {
    return this.expireIfDue(await this.store.getApproval(id));
  }

  async expireIfDue(a: Approval): Promise<Approval> {
    if (a.state !== 'pending' || this.now().getTime() < a.expiresAt.getTime()) return a;
    try {
      const expired = await this.store.decideApproval(a.id, { state: 'expired', by: 'system', at: this.now() },
        { type: 'approval.expired', actor: 'system', details: { kind: a.kind, requestedBy: a.requestedBy } });
      await this.acts.get(a.kind)?.dropped?.(a.request, expired);
      return expired;
    } catch (e) {
      // Someone else decided or expired it a moment ago: what is stored now is the answer.
      if (hasCode(e, 'KAKUIN_E_APPROVAL_DECIDED') || hasCode(e, 'KAKUIN_E_APPROVAL_EXPIRED')) return this.store.getApproval(a.id);
      throw e;
    }
  }

  /**
   * A second principal's decision. Refused, changing nothing: by the requester (KAKUIN_E_APPROVAL_SELF),
   * by a role that does not decide this act (KAKUIN_E_APPROVAL_ROLE), past the expiry
   * (KAKUIN_E_APPROVAL_EXPIRED), or once decided (KAKUIN_E_APPROVAL_DECIDED).
   */
  async decide(id: string, caller: Caller, verdict: 'approve' | 'reject', note?: string): Promise<{ approval: Approval; shown?: Record<string, unknown> }> {
    const current = await this.get(id);
    const act = this.act(current.kind);
    if (current.state === 'expired') throw new KakuinError('KAKUIN_E_APPROVAL_EXPIRED', `the approval expired at ${current.expiresAt.toISOString()}; its act will never run`);
    if (current.state !== 'pending') throw new KakuinError('KAKUIN_E_APPROVAL_DECIDED', `the approval is already ${current.state}; an act runs at most once`);
    if (caller.actor === current.requestedBy) {
      throw new KakuinError('KAKUIN_E_APPROVAL_SELF', 'the principal that requested an act cannot decide it: another principal must');
    }
    if (!act.deciders.includes(principalOf(caller))) {
      throw new KakuinError('KAKUIN_E_APPROVAL_ROLE', `a ${current.kind} approval is decided by ${act.deciders.join(' or ')} principals`);
    }
    const state = verdict === 'approve' ? 'approved' : 'rejected';
    const decided = await this.store.decideApproval(id, { state, by: caller.actor, at: this.now(), ...(note !== undefined && { note }) },
      { type: `approval.${state}`, actor: caller.actor, details: { kind: current.kind, requestedBy: current.requestedBy, ...(note !== undefined && { note }) } });
    if (state === 'rejected') {
      await act.dropped?.(decided.request, decided);
      return { approval: decided };
    }
    let outcome: { kept: Record<string, unknown>; shown?: Record<string, unknown> };
    try {
      outcome = await act.run(decided.request, decided);
    } catch (e) {
      // Approved, and the act refused (a name taken since, a station deleted): kept with the approval.
      const failure = e instanceof KakuinError ? { error: e.code, message: e.message } : { error: 'KAKUIN_E_INTERNAL' };
      await this.store.recordApprovalResult(id, failure);
      throw e;
    }
    await this.store.recordApprovalResult(id, outcome.kept);
    return { approval: await this.store.getApproval(id), ...(outcome.shown !== undefined && { shown: outcome.shown }) };
  }
}

export interface ApprovalRequirement {
  kind: string;
  /** The act's parameters, as the route checked them; the approved run gets exactly these. */
  request: Record<string, unknown>;
  summary: string;
  /** Whether this call needs a second person (default true); false: the route acts at once. */
  when?: boolean;
  /** Runs once the approval is recorded, before the answer (a bulk job is parked on it). */
  before?: (approval: Approval) => Promise<void>;
  /** The 202 body beside `approval` (a bulk job's id, say). */
  answer?: (approval: Approval) => Record<string, unknown>;
}

/**
 * The one gate routes call before a dangerous act. Returns true when it answered the request
 * (202 with the pending approval): the route must then stop. False: act now.
 *
 *   if (await requireApproval(gate, req, res, { kind: 'admin-token', request: body, summary, when: body.role === 'admin' })) return;
 */
export async function requireApproval(gate: ApprovalGate, req: Request, res: Response, need: ApprovalRequirement): Promise<boolean> {
  if (need.when === false) return false;
  const approval = await gate.request(req.caller!, need.kind, need.request, need.summary);
  await need.before?.(approval);
  res.status(202).location(`/api/v1/approvals/${approval.id}`).json({ ...need.answer?.(approval), approval: approvalJson(approval) });
  return true;
}

export function approvalJson(a: Approval) {
  return {
    id: a.id, kind: a.kind, state: a.state, summary: a.summary, request: a.request, requestedBy: a.requestedBy,
    createdAt: a.createdAt.toISOString(), expiresAt: a.expiresAt.toISOString(),
    decidedBy: a.decidedBy, decidedAt: a.decidedAt?.toISOString(), note: a.note, result: a.result,
  };
}

const decisionBody = z.strictObject({ note: z.string().min(1).max(1024).optional() });

export function mountApprovalRoutes(routes: ApiRoutes, deps: { gate: ApprovalGate; admin: RequestHandler }): void {
  const { gate, admin } = deps;

  routes.add({
    method: 'get', path: '/api/v1/approvals', summary: 'approvals, newest first (pending ones past their expiry shown expired)', callers: ['admin'], use: [admin],
    query: z.strictObject({ state: z.enum(APPROVAL_STATES).optional(), ...pageQuery }), response: { status: 200, description: '{approvals, next?}' },
    handler: async ({ res, query }) => {
      const page = await readPage((afterKey, limit) => gate.store.listApprovals({ afterKey, limit, ...(query.state !== undefined && { state: query.state }) }), (a) => a.id, query);
      const items = await Promise.all(page.items.map((a) => gate.expireIfDue(a)));
      res.json(pageJson('approvals', { ...page, items }, approvalJson));
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/approvals/{id}', summary: 'one approval: what was asked, by whom, until when, and how it was decided', callers: ['admin'], use: [admin],
    handler: async ({ res, params }) => {
      res.json(approvalJson(await gate.get(params.id)));
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/approvals/{id}/approve', summary: 'approve (a principal other than the requester): the act runs, once', callers: ['admin'], use: [admin],
    body: { json: decisionBody, optional: true }, response: { status: 200, description: '{approval, result}' },
    handler: async ({ req, res, body, params }) => {
      const { approval, shown } = await gate.decide(params.id, req.caller!, 'approve', body.note);
      res.json({ approval: approvalJson(approval), result: shown ?? approval.result ?? null });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/approvals/{id}/reject', summary: 'reject (a principal other than the requester): the act never runs', callers: ['admin'], use: [admin],
    body: { json: decisionBody, optional: true }, response: { status: 200, description: '{approval}' },
    handler: async ({ req, res, body, params }) => {
      const { approval } = await gate.decide(params.id, req.caller!, 'reject', body.note);
      res.json({ approval: approvalJson(approval) });
    },
  });
}
