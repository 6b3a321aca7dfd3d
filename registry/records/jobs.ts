/**
 * Input checks of the bulk-job and approval ports (registry/jobs.ts, registry/approvals.ts), shared
 * by every adapter so that SQLite and MongoDB accept and refuse the same values with the same codes.
 */
import { KakuinError } from '../../errors/index.js';
import { APPROVAL_STATES, type ApprovalState, type NewApproval } from '../approvals.js';
import { BULK_ACTIONS, DECOMMISSION_REASONS, JOB_STATES, type Decommission, type JobState, type NewBulkJob } from '../jobs.js';

function invalid(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_VALIDATION', message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function text(value: unknown, field: string, max = 2048): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) throw invalid(`${field} must be a non-empty string of at most ${max} characters`);
  return value;
}

function date(value: unknown, field: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalid(`${field} must be a valid Date`);
  return value;
}

function json(value: unknown, field: string): Record<string, unknown> {
  if (!isObject(value)) throw invalid(`${field} must be an object`);
  try {
    return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  } catch (e) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `${field} must be JSON-serialisable`, { cause: e });
  }
}

export function checkDecommission(value: unknown): Decommission {
  if (!isObject(value)) throw invalid('decommission must be an object');
  if (!(DECOMMISSION_REASONS as readonly unknown[]).includes(value.reason)) throw invalid(`decommission.reason must be one of ${DECOMMISSION_REASONS.join(', ')}`);
  return {
    reason: value.reason as Decommission['reason'],
    ticket: text(value.ticket, 'decommission.ticket', 256),
    evidence: text(value.evidence, 'decommission.evidence', 4096),
    at: date(value.at, 'decommission.at'),
    actor: text(value.actor, 'decommission.actor', 256),
    ...(value.jobId !== undefined && { jobId: text(value.jobId, 'decommission.jobId', 64) }),
  };
}

export function checkNewJob(job: NewBulkJob): NewBulkJob {
  if (!isObject(job)) throw invalid('a bulk job must be an object');
  if (!(BULK_ACTIONS as readonly unknown[]).includes(job.action)) throw invalid(`action must be one of ${BULK_ACTIONS.join(', ')}`);
  const decommission = job.decommission;
  if ((job.action === 'retire') !== (decommission !== undefined)) throw invalid('a retire job, and only a retire job, carries a decommission reason and evidence');
  if (decommission !== undefined) {
    if (!(DECOMMISSION_REASONS as readonly unknown[]).includes(decommission.reason)) throw invalid(`decommission.reason must be one of ${DECOMMISSION_REASONS.join(', ')}`);
    text(decommission.evidence, 'decommission.evidence', 4096);
    if (job.ticket === undefined) throw invalid('a retire job names its ticket');
  }
  return {
    action: job.action, actor: text(job.actor, 'actor', 256), selection: json(job.selection, 'selection'),
    ...(job.reason !== undefined && { reason: text(job.reason, 'reason', 1024) }),
    ...(job.ticket !== undefined && { ticket: text(job.ticket, 'ticket', 256) }),
    ...(decommission !== undefined && { decommission: { reason: decommission.reason, evidence: decommission.evidence } }),
  };
}

export const MAX_JOB_DEVICES_PER_CALL = 1000;

export function checkJobDeviceIds(ids: readonly string[]): string[] {
  if (!Array.isArray(ids) || ids.length > MAX_JOB_DEVICES_PER_CALL) throw invalid(`device ids must be an array of at most ${MAX_JOB_DEVICES_PER_CALL}`);
  return ids.map((id, i) => text(id, `deviceIds[${i}]`, 64));
}

export function checkJobState(state: unknown, field = 'state'): JobState {
  if (!(JOB_STATES as readonly unknown[]).includes(state)) throw invalid(`${field} must be one of ${JOB_STATES.join(', ')}`);
  return state as JobState;
}

export function checkJobStates(states: readonly JobState[]): JobState[] {
  if (!Array.isArray(states) || states.length === 0) throw invalid('from must be a non-empty array of job states');
  return states.map((s) => checkJobState(s, 'from'));
}

export function checkNewApproval(a: NewApproval, now: Date): NewApproval {
  if (!isObject(a)) throw invalid('an approval must be an object');
  const expiresAt = date(a.expiresAt, 'expiresAt');
  if (expiresAt.getTime() <= now.getTime()) throw invalid('expiresAt must lie in the future');
  return {
    kind: text(a.kind, 'kind', 64), request: json(a.request, 'request'), summary: text(a.summary, 'summary', 1024),
    requestedBy: text(a.requestedBy, 'requestedBy', 256), expiresAt,
  };
}

export function checkApprovalState(state: unknown): ApprovalState {
  if (!(APPROVAL_STATES as readonly unknown[]).includes(state)) throw invalid(`state must be one of ${APPROVAL_STATES.join(', ')}`);
  return state as ApprovalState;
}

export function checkDecision(d: { state: unknown; by: unknown; at: unknown; note?: unknown }) {
  if (!isObject(d)) throw invalid('a decision must be an object');
  const state = checkApprovalState(d.state);
  if (state === 'pending') throw invalid('a decision moves an approval out of pending');
  return {
    state: state as Exclude<ApprovalState, 'pending'>, by: text(d.by, 'by', 256), at: date(d.at, 'at'),
    ...(d.note !== undefined && { note: text(d.note, 'note', 1024) }),
  };
}

/** Why a decision found the approval no longer pending. */
export function notPending(state: ApprovalState): KakuinError {
  return state === 'expired'
    ? new KakuinError('KAKUIN_E_APPROVAL_EXPIRED', 'the approval expired before it was decided; its act will never run')
    : new KakuinError('KAKUIN_E_APPROVAL_DECIDED', `the approval is already ${state}; an act runs at most once`);
}

export function jobStepSettled(): KakuinError {
  return new KakuinError('KAKUIN_E_JOB_STEP_SETTLED', 'this bulk job already settled the device; nothing was changed');
}
