/**
 * Bulk actions on cohorts of devices, and their jobs (issue 20 item 3):
 *
 *   POST /api/v1/devices/bulk {action, filter | ids, reason, ticket?, evidence?, dryRun?}   admin, operator
 *        dryRun: 200 {dryRun, action, count, sample, needsApproval}
 *        otherwise 202 {job} (running), or 202 {job, approval} (pending-approval: more than approvals.bulkThreshold devices)
 *   GET  /api/v1/jobs?state=&limit=&after=       admin, operator, auditor  → {jobs, next?} (newest first)
 *   GET  /api/v1/jobs/{id}                       admin, operator, auditor  → the job with its progress
 *
 * `filter` is the query schema of `GET /api/v1/devices` itself (the same zod object, without its
 * paging), plus `sharedKey` and `station` with `from`/`to` (operations/bulk/cohort.ts). `reason`:
 * a CRL reason for revoke, a decommission reason for retire (with `ticket` and `evidence`), a note
 * for suspend and resume.
 */
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { KakuinError } from '../errors/index.js';
import { BULK_ACTIONS, DECOMMISSION_REASONS, JOB_STATES, type BulkJob, type JobStore, type NewBulkJob } from '../registry/jobs.js';
import type { ActivityStore } from '../registry/activity.js';
import type { Registry } from '../registry/port.js';
import type { ApiRoutes } from '../api-schema/routes.js';
import { isoTime, queryText } from '../api-schema/fields.js';
import { pageJson, pageQuery, readPage } from '../api-schema/paging.js';
import { REVOCATION_REASONS } from '../ca/revocation.js';
import { BulkJobRunner, selectCohort, type CohortSelection } from '../operations/bulk/index.js';
import { requireApproval, type ApprovalGate } from './approvals.js';
import { principalOf } from '../api-schema/access.js';
import { deviceJson } from './representations.js';

export interface BulkRouteDeps {
  registry: Registry;
  activity?: Pick<ActivityStore, 'devicesMatchingActivity'>;
  jobs: JobStore;
  runner: BulkJobRunner;
  gate: ApprovalGate;
  admin: RequestHandler;
  /** The query schema of GET /api/v1/devices (management-api.ts DEVICE_QUERY): the bulk filter is that schema. */
  deviceQuery: z.ZodObject;
  /** Jobs on more devices than this wait for a second principal (approvals.bulkThreshold). */
  bulkThreshold: number;
  /** bulk.maxDevices. */
  maxDevices: number;
}

const SAMPLE = 10;

export function jobJson(j: BulkJob) {
  return {
    id: j.id, action: j.action, state: j.state, requestedBy: j.actor, selection: j.selection, reason: j.reason, ticket: j.ticket,
    decommission: j.decommission, approvalId: j.approvalId, error: j.error,
    progress: { total: j.total, acted: j.acted, skipped: j.skipped, pending: j.total - j.acted - j.skipped },
    createdAt: j.createdAt.toISOString(), updatedAt: j.updatedAt.toISOString(), startedAt: j.startedAt?.toISOString(), finishedAt: j.finishedAt?.toISOString(),
  };
}

/** The bulk act the gate runs once approved: the job, frozen at the request, starts. */
export function defineBulkApproval(gate: ApprovalGate, runner: BulkJobRunner): void {
  gate.define({
    kind: 'bulk-job',
    deciders: ['admin'],
    run: async (request) => {
      const job = await runner.start(String(request.jobId));
      return { kept: { jobId: job.id, state: job.state } };
    },
    dropped: async (request, approval) => {
      await runner.cancel(String(request.jobId), `approval ${approval.id} was ${approval.state}`);
    },
  });
}

/**
 * At start, after BulkJobRunner.resume: a job left `pending-approval` whose approval was approved
 * before a crash (the decision committed, the start did not) starts now; one whose approval expired
 * or was rejected is cancelled.
 */
export async function reconcileBulkApprovals(jobs: JobStore, gate: ApprovalGate, runner: BulkJobRunner): Promise<void> {
  for (const job of await jobs.jobsInState('pending-approval')) {
    if (job.approvalId === undefined) continue;
    const approval = await gate.get(job.approvalId);
    if (approval.state === 'approved') await runner.start(job.id);
    else if (approval.state !== 'pending' && (await jobs.getJob(job.id)).state === 'pending-approval') await runner.cancel(job.id, `approval ${approval.id} was ${approval.state}`);
  }
}

export function mountBulkRoutes(routes: ApiRoutes, deps: BulkRouteDeps): void {
  const { registry, jobs, runner, gate, admin } = deps;
  // The filter of GET /api/v1/devices, without its paging, and the cohort-only filters.
  const filter = deps.deviceQuery.omit({ limit: true, after: true }).extend({
    sharedKey: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be the SHA-256 of a SubjectPublicKeyInfo, 64 hex digits').optional()
      .describe('the devices whose certificates carry this public key'),
    station: queryText.optional().describe('the devices this station enrolled between from and to'),
    from: isoTime.optional().describe('with station: inclusive'),
    to: isoTime.optional().describe('with station: exclusive'),
  });
  const body = z.strictObject({
    action: z.enum(BULK_ACTIONS),
    filter: filter.optional(),
    ids: z.array(z.string().min(1).max(64)).min(1).max(deps.maxDevices).optional(),
    reason: z.string().min(1).max(1024).describe('revoke: a CRL reason; retire: wiped, destroyed, returned, lost, recycled or resold; suspend, resume: a note'),
    ticket: z.string().min(1).max(256).optional(),
    evidence: z.string().min(1).max(4096).optional().describe('retire: the evidence note kept with each device'),
    dryRun: z.boolean().optional(),
  });

  routes.add({
    method: 'post', path: '/api/v1/devices/bulk', summary: 'act on a cohort of devices: a job (dryRun: count and sample)', callers: ['admin'], use: [admin],
    body: { json: body }, response: { status: 202, description: '{job, approval?}; dryRun: 200 {count, sample, needsApproval}' },
    handler: async ({ req, res, body: b }) => {
      if ((b.filter === undefined) === (b.ids === undefined)) throw new KakuinError('KAKUIN_E_VALIDATION', 'give filter or ids, exactly one', { field: 'filter' });
      // Retiring is an admin's act one device at a time (access.ts), so it is in bulk too.
      if (b.action === 'retire' && principalOf(req.caller!) !== 'admin') throw new KakuinError('KAKUIN_E_FORBIDDEN', 'retiring devices is for admins');
      const job = checkedJob(b, req.caller!.actor);
      const selection = cohortOf(b.filter, b.ids);
      const ids = await selectCohort({ registry, ...(deps.activity !== undefined && { activity: deps.activity }) }, selection, deps.maxDevices);
      const needsApproval = ids.length > deps.bulkThreshold;
      if (b.dryRun === true) {
        const sample = await Promise.all(ids.slice(0, SAMPLE).map((id) => registry.getDevice(id)));
        res.json({ dryRun: true, action: b.action, count: ids.length, sample: sample.map(deviceJson), needsApproval });
        return;
      }
      const frozen = await runner.freeze(job, ids);
      await registry.appendAuditEvent({ type: 'bulk.requested', actor: req.caller!.actor, details: { jobId: frozen.id, action: frozen.action, total: frozen.total, ...(frozen.ticket !== undefined && { ticket: frozen.ticket }) } });
      let held: BulkJob | undefined;
      const gated = await requireApproval(gate, req, res, {
        kind: 'bulk-job', when: needsApproval, request: { jobId: frozen.id, action: frozen.action, total: frozen.total },
        summary: `${frozen.action} ${frozen.total} devices${frozen.ticket !== undefined ? ` (ticket ${frozen.ticket})` : ''}`,
        before: async (approval) => { held = await runner.hold(frozen.id, approval.id); },
        answer: () => ({ job: jobJson(held!) }),
      });
      if (gated) return;
      const started = await runner.start(frozen.id);
      res.status(202).location(`/api/v1/jobs/${started.id}`).json({ job: jobJson(started) });
    },
  });

  // A job waiting for an approval that has expired is cancelled when it is looked at (ApprovalGate.get expires it).
  const current = async (job: BulkJob): Promise<BulkJob> => {
    if (job.state !== 'pending-approval' || job.approvalId === undefined) return job;
    await gate.get(job.approvalId);
    return jobs.getJob(job.id);
  };

  routes.add({
    method: 'get', path: '/api/v1/jobs', summary: 'bulk jobs, newest first', callers: ['admin'], use: [admin],
    query: z.strictObject({ state: z.enum(JOB_STATES).optional(), ...pageQuery }), response: { status: 200, description: '{jobs, next?}' },
    handler: async ({ res, query }) => {
      const page = await readPage((afterKey, limit) => jobs.listJobs({ afterKey, limit, ...(query.state !== undefined && { state: query.state }) }), (j) => j.id, query);
      res.json(pageJson('jobs', { ...page, items: await Promise.all(page.items.map(current)) }, jobJson));
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/jobs/{id}', summary: 'one bulk job: its state and progress', callers: ['admin'], use: [admin],
    handler: async ({ res, params }) => {
      res.json(jobJson(await current(await jobs.getJob(params.id))));
    },
  });
}

type BulkBody = { action: NewBulkJob['action']; reason: string; ticket?: string; evidence?: string; filter?: Record<string, unknown>; ids?: string[] };

/** The job as the store keeps it, with each action's own rules on reason, ticket and evidence. */
function checkedJob(b: BulkBody, actor: string): NewBulkJob {
  if (b.action === 'revoke' && !(REVOCATION_REASONS as readonly string[]).includes(b.reason)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `a bulk revoke's reason is one of ${REVOCATION_REASONS.join(', ')}`, { field: 'reason' });
  }
  if (b.action === 'retire') {
    if (!(DECOMMISSION_REASONS as readonly string[]).includes(b.reason)) {
      throw new KakuinError('KAKUIN_E_VALIDATION', `a retire's reason is a decommission reason: one of ${DECOMMISSION_REASONS.join(', ')}`, { field: 'reason' });
    }
    if (b.ticket === undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'a retire names its ticket', { field: 'ticket' });
    if (b.evidence === undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'a retire carries an evidence note (how the device was wiped, destroyed or returned)', { field: 'evidence' });
  } else if (b.evidence !== undefined) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'evidence is kept with retired devices only', { field: 'evidence' });
  }
  return {
    action: b.action, actor, reason: b.reason,
    selection: b.ids !== undefined ? { ids: b.ids.length } : { filter: b.filter ?? {} },
    ...(b.ticket !== undefined && { ticket: b.ticket }),
    ...(b.action === 'retire' && { decommission: { reason: b.reason as (typeof DECOMMISSION_REASONS)[number], evidence: b.evidence! } }),
  };
}

function cohortOf(filter: Record<string, unknown> | undefined, ids: string[] | undefined): CohortSelection {
  if (ids !== undefined) return { ids };
  const { sharedKey, station, from, to, lastSeenBefore, lastSeenAfter, firmwareVersion, ...named } = filter as Record<string, string | undefined>;
  if ((station === undefined) !== (from === undefined && to === undefined) || (station !== undefined && (from === undefined || to === undefined))) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'station takes a window: station, from and to together', { field: 'station' });
  }
  if (station !== undefined && new Date(to!).getTime() <= new Date(from!).getTime()) throw new KakuinError('KAKUIN_E_VALIDATION', 'to must be after from', { field: 'to' });
  const registry = Object.fromEntries(Object.entries(named).filter(([, v]) => v !== undefined));
  return {
    filter: {
      registry,
      activity: {
        ...(lastSeenBefore !== undefined && { lastSeenBefore: new Date(lastSeenBefore) }),
        ...(lastSeenAfter !== undefined && { lastSeenAfter: new Date(lastSeenAfter) }),
        ...(firmwareVersion !== undefined && { firmwareVersion }),
      },
      ...(sharedKey !== undefined && { sharedKey: sharedKey.toLowerCase() }),
      ...(station !== undefined && { station: { id: station, from: new Date(from!), to: new Date(to!) } }),
    },
  };
}
