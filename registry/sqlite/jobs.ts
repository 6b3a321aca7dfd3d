/**
 * The bulk-job port on SQLite (schema step 15). The frozen device set is written in calls of at
 * most 1000 ids, each one short transaction (DESIGN.md "The event loop": hundreds of rows, not
 * millions); the step a status change settles is settled inside that change's transaction
 * (status-change-writer.ts), so this store only ever marks skips.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import type { BulkJob, JobState, JobStep, JobStore, NewBulkJob, StepOutcome } from '../jobs.js';
import { checkJobDeviceIds, checkJobState, checkJobStates, checkNewJob, jobStepSettled, normalizeLimit } from '../records/index.js';
import { toKakuinError } from './driver-errors.js';

interface JobRow {
  id: string; action: BulkJob['action']; state: JobState; actor: string; selection: string; reason: string | null; ticket: string | null;
  decommission: string | null; total: number; acted: number; skipped: number; approval_id: string | null; error: string | null;
  created_at: number; updated_at: number; started_at: number | null; finished_at: number | null;
}

function jobFromRow(r: JobRow): BulkJob {
  return {
    id: r.id, action: r.action, state: r.state, actor: r.actor, selection: JSON.parse(r.selection) as Record<string, unknown>,
    ...(r.reason !== null && { reason: r.reason }), ...(r.ticket !== null && { ticket: r.ticket }),
    ...(r.decommission !== null && { decommission: JSON.parse(r.decommission) as BulkJob['decommission'] }),
    total: r.total, acted: r.acted, skipped: r.skipped,
    ...(r.approval_id !== null && { approvalId: r.approval_id }), ...(r.error !== null && { error: r.error }),
    createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at),
    ...(r.started_at !== null && { startedAt: new Date(r.started_at) }), ...(r.finished_at !== null && { finishedAt: new Date(r.finished_at) }),
  };
}

const FINISHED: ReadonlySet<JobState> = new Set(['done', 'failed', 'cancelled']);

export class SqliteJobStore implements JobStore {
  private readonly insertJob: Database.Statement<unknown[]>;
  private readonly selectJob: Database.Statement<[string], JobRow>;
  private readonly addDevices: Database.Transaction<(jobId: string, ids: string[], now: number) => void>;
  private readonly transition: Database.Transaction<(jobId: string, from: JobState[], to: JobState, fields: { error?: string; approvalId?: string }, now: number) => JobRow>;
  private readonly skip: Database.Transaction<(jobId: string, deviceId: string, note: string, now: number) => void>;
  private readonly pending: Database.Statement<[string, number], { device_id: string }>;
  private readonly inState: Database.Statement<[string], JobRow>;

  constructor(private readonly db: Database.Database) {
    this.insertJob = db.prepare(`INSERT INTO bulk_jobs (id, action, state, actor, selection, reason, ticket, decommission, created_at, updated_at)
      VALUES (?, ?, 'preparing', ?, ?, ?, ?, ?, ?, ?)`);
    this.selectJob = db.prepare('SELECT * FROM bulk_jobs WHERE id = ?');
    const insertDevice = db.prepare('INSERT OR IGNORE INTO bulk_job_devices (job_id, device_id) VALUES (?, ?)');
    const addTotal = db.prepare('UPDATE bulk_jobs SET total = total + ?, updated_at = ? WHERE id = ?');
    this.addDevices = db.transaction((jobId: string, ids: string[], now: number) => {
      const job = this.selectJob.get(jobId);
      if (job === undefined) throw new KakuinError('KAKUIN_E_JOB_NOT_FOUND', 'no bulk job with that id');
      if (job.state !== 'preparing') throw new KakuinError('KAKUIN_E_JOB_STATE', `the job is ${job.state}; its device set is frozen`);
      let added = 0;
      for (const id of ids) added += insertDevice.run(jobId, id).changes;
      addTotal.run(added, now, jobId);
    });
    const setState = db.prepare(`UPDATE bulk_jobs SET state = ?, updated_at = ?, error = coalesce(?, error), approval_id = coalesce(?, approval_id),
      started_at = CASE WHEN ? THEN coalesce(started_at, ?) ELSE started_at END,
      finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?`);
    this.transition = db.transaction((jobId: string, from: JobState[], to: JobState, fields: { error?: string; approvalId?: string }, now: number) => {
      const job = this.selectJob.get(jobId);
      if (job === undefined) throw new KakuinError('KAKUIN_E_JOB_NOT_FOUND', 'no bulk job with that id');
      if (!from.includes(job.state)) throw new KakuinError('KAKUIN_E_JOB_STATE', `the job is ${job.state}, not ${from.join(' or ')}`);
      setState.run(to, now, fields.error ?? null, fields.approvalId ?? null, to === 'running' ? 1 : 0, now, FINISHED.has(to) ? 1 : 0, now, jobId);
      return this.selectJob.get(jobId)!;
    });
    const settle = db.prepare(`UPDATE bulk_job_devices SET outcome = 'skipped', note = ?, settled_at = ? WHERE job_id = ? AND device_id = ? AND outcome = 'pending'`);
    const addSkipped = db.prepare('UPDATE bulk_jobs SET skipped = skipped + 1, updated_at = ? WHERE id = ?');
    this.skip = db.transaction((jobId: string, deviceId: string, note: string, now: number) => {
      if (settle.run(note, now, jobId, deviceId).changes !== 1) throw jobStepSettled();
      addSkipped.run(now, jobId);
    });
    this.pending = db.prepare(`SELECT device_id FROM bulk_job_devices WHERE job_id = ? AND outcome = 'pending' ORDER BY rowid LIMIT ?`);
    this.inState = db.prepare('SELECT * FROM bulk_jobs WHERE state = ? ORDER BY created_at, rowid');
  }

  private run<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw toKakuinError(e, { operation });
    }
  }

  async createJob(job: NewBulkJob): Promise<BulkJob> {
    const j = checkNewJob(job);
    const id = randomUUID();
    const now = Date.now();
    return this.run('creating a bulk job', () => {
      this.insertJob.run(id, j.action, j.actor, JSON.stringify(j.selection), j.reason ?? null, j.ticket ?? null,
        j.decommission === undefined ? null : JSON.stringify(j.decommission), now, now);
      return jobFromRow(this.selectJob.get(id)!);
    });
  }

  async addJobDevices(jobId: string, deviceIds: readonly string[]): Promise<void> {
    const ids = checkJobDeviceIds(deviceIds);
    this.run('freezing a bulk job\'s devices', () => this.addDevices.immediate(jobId, ids, Date.now()));
  }

  async setJobState(jobId: string, from: readonly JobState[], to: JobState, fields: { error?: string; approvalId?: string } = {}): Promise<BulkJob> {
    const states = checkJobStates(from);
    checkJobState(to, 'to');
    return jobFromRow(this.run('moving a bulk job', () => this.transition.immediate(jobId, states, to, fields, Date.now())));
  }

  async getJob(jobId: string): Promise<BulkJob> {
    const row = this.run('reading a bulk job', () => this.selectJob.get(String(jobId)));
    if (row === undefined) throw new KakuinError('KAKUIN_E_JOB_NOT_FOUND', 'no bulk job with that id');
    return jobFromRow(row);
  }

  async listJobs(page: { afterKey?: string; limit?: number; state?: JobState } = {}): Promise<BulkJob[]> {
    const limit = normalizeLimit(page.limit);
    const where: string[] = [];
    const params: unknown[] = [];
    if (page.state !== undefined) {
      where.push('state = ?');
      params.push(checkJobState(page.state));
    }
    if (page.afterKey !== undefined) {
      await this.getJob(page.afterKey).catch(() => { throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no job'); });
      where.push('rowid < (SELECT rowid FROM bulk_jobs WHERE id = ?)');
      params.push(page.afterKey);
    }
    const sql = `SELECT * FROM bulk_jobs${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY rowid DESC LIMIT ?`;
    return this.run('listing bulk jobs', () => (this.db.prepare(sql).all(...params, limit) as JobRow[]).map(jobFromRow));
  }

  async jobsInState(state: JobState): Promise<BulkJob[]> {
    checkJobState(state);
    return this.run('listing bulk jobs', () => this.inState.all(state).map(jobFromRow));
  }

  async pendingJobDevices(jobId: string, limit: number): Promise<string[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new KakuinError('KAKUIN_E_VALIDATION', 'limit must be 1 to 1000');
    return this.run('reading a bulk job\'s devices', () => this.pending.all(jobId, limit).map((r) => r.device_id));
  }

  async skipJobDevice(jobId: string, deviceId: string, note: string): Promise<void> {
    this.run('settling a bulk job step', () => this.skip.immediate(jobId, deviceId, String(note).slice(0, 1024), Date.now()));
  }

  async listJobSteps(jobId: string, page: { afterKey?: string; limit?: number } = {}): Promise<JobStep[]> {
    const limit = normalizeLimit(page.limit);
    const rows = this.run('reading a bulk job\'s devices', () => (page.afterKey === undefined
      ? this.db.prepare('SELECT device_id, outcome, note FROM bulk_job_devices WHERE job_id = ? ORDER BY rowid LIMIT ?').all(jobId, limit)
      : this.db.prepare(`SELECT device_id, outcome, note FROM bulk_job_devices WHERE job_id = ?
          AND rowid > (SELECT rowid FROM bulk_job_devices WHERE job_id = ? AND device_id = ?) ORDER BY rowid LIMIT ?`).all(jobId, jobId, page.afterKey, limit)) as
      { device_id: string; outcome: StepOutcome; note: string | null }[]);
    return rows.map((r) => ({ deviceId: r.device_id, outcome: r.outcome, ...(r.note !== null && { note: r.note }) }));
  }
}
