/**
 * The bulk-job port on MongoDB (registry/jobs.ts). A job is one document in `bulkJobs`; its frozen
 * device set is one document per device in `bulkJobDevices` (`_id` `<jobId>|<deviceId>`, `seq` the
 * frozen order). A step is settled `acted` by the status change's own transaction
 * (transaction-bodies.ts writeStatusChange); this store only marks skips, each in a transaction with
 * the job's counter.
 */
import { randomUUID } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import type { BulkJob, JobState, JobStep, JobStore, NewBulkJob, StepOutcome } from '../jobs.js';
import { checkJobDeviceIds, checkJobState, checkJobStates, checkNewJob, jobStepSettled, normalizeLimit } from '../records/index.js';
import { COLLECTIONS } from './documents.js';
import type { RegistryPlumbing } from './plumbing.js';

export interface BulkJobDoc extends Omit<BulkJob, 'id' | 'selection'> {
  _id: string;
  /** JSON text: a selection's keys are the caller's and may not be valid MongoDB field names. */
  selection: string;
  ord: ObjectId;
}

export interface BulkJobDeviceDoc {
  _id: string;
  jobId: string;
  deviceId: string;
  seq: number;
  outcome: StepOutcome;
  note?: string;
  settledAt?: Date;
}

export function jobDeviceKey(jobId: string, deviceId: string): string {
  return `${jobId}|${deviceId}`;
}

function jobFromDoc(d: BulkJobDoc): BulkJob {
  const { _id, ord: _ord, selection, ...rest } = d;
  const job: BulkJob = { ...rest, id: _id, selection: JSON.parse(selection) as Record<string, unknown> };
  for (const k of Object.keys(job) as (keyof BulkJob)[]) if (job[k] === null || job[k] === undefined) delete job[k];
  return job;
}

const FINISHED: ReadonlySet<JobState> = new Set(['done', 'failed', 'cancelled']);

export class MongoJobStore implements JobStore {
  constructor(private readonly p: RegistryPlumbing) {}

  private jobs() {
    return this.p.col<BulkJobDoc>(COLLECTIONS.bulkJobs);
  }

  private steps() {
    return this.p.col<BulkJobDeviceDoc>(COLLECTIONS.bulkJobDevices);
  }

  async createJob(job: NewBulkJob): Promise<BulkJob> {
    const j = checkNewJob(job);
    const now = new Date();
    const doc: BulkJobDoc = {
      _id: randomUUID(), ord: new ObjectId(), action: j.action, actor: j.actor, selection: JSON.stringify(j.selection), state: 'preparing',
      ...(j.reason !== undefined && { reason: j.reason }), ...(j.ticket !== undefined && { ticket: j.ticket }),
      ...(j.decommission !== undefined && { decommission: j.decommission }),
      total: 0, acted: 0, skipped: 0, createdAt: now, updatedAt: now,
    };
    await this.p.write('creating a bulk job', () => this.jobs().insertOne(doc));
    return jobFromDoc(doc);
  }

  async addJobDevices(jobId: string, deviceIds: readonly string[]): Promise<void> {
    const ids = checkJobDeviceIds(deviceIds);
    await this.p.transaction('freezing a bulk job\'s devices', async (session) => {
      const job = await this.jobs().findOne({ _id: jobId }, { session });
      if (job === null) throw new KakuinError('KAKUIN_E_JOB_NOT_FOUND', 'no bulk job with that id');
      if (job.state !== 'preparing') throw new KakuinError('KAKUIN_E_JOB_STATE', `the job is ${job.state}; its device set is frozen`);
      let seq = job.total;
      const seen = new Set<string>();
      const fresh: BulkJobDeviceDoc[] = [];
      for (const deviceId of ids) {
        if (seen.has(deviceId)) continue;
        seen.add(deviceId);
        if (await this.steps().findOne({ _id: jobDeviceKey(jobId, deviceId) }, { session, projection: { _id: 1 } }) !== null) continue;
        fresh.push({ _id: jobDeviceKey(jobId, deviceId), jobId, deviceId, seq: seq++, outcome: 'pending' });
      }
      if (fresh.length > 0) await this.steps().insertMany(fresh, { session });
      await this.jobs().updateOne({ _id: jobId }, { $inc: { total: fresh.length }, $set: { updatedAt: new Date() } }, { session });
    });
  }

  async setJobState(jobId: string, from: readonly JobState[], to: JobState, fields: { error?: string; approvalId?: string } = {}): Promise<BulkJob> {
    const states = checkJobStates(from);
    checkJobState(to, 'to');
    return this.p.transaction('moving a bulk job', async (session) => {
      const job = await this.jobs().findOne({ _id: jobId }, { session });
      if (job === null) throw new KakuinError('KAKUIN_E_JOB_NOT_FOUND', 'no bulk job with that id');
      if (!states.includes(job.state)) throw new KakuinError('KAKUIN_E_JOB_STATE', `the job is ${job.state}, not ${states.join(' or ')}`);
      const now = new Date();
      const set: Partial<BulkJobDoc> = { state: to, updatedAt: now };
      if (fields.error !== undefined) set.error = fields.error;
      if (fields.approvalId !== undefined) set.approvalId = fields.approvalId;
      if (to === 'running' && job.startedAt === undefined) set.startedAt = now;
      if (FINISHED.has(to)) set.finishedAt = now;
      await this.jobs().updateOne({ _id: jobId, state: job.state }, { $set: set }, { session });
      return jobFromDoc({ ...job, ...set } as BulkJobDoc);
    });
  }

  async getJob(jobId: string): Promise<BulkJob> {
    const doc = await this.p.read('reading a bulk job', () => this.jobs().findOne({ _id: String(jobId) }));
    if (doc === null) throw new KakuinError('KAKUIN_E_JOB_NOT_FOUND', 'no bulk job with that id');
    return jobFromDoc(doc);
  }

  async listJobs(page: { afterKey?: string; limit?: number; state?: JobState } = {}): Promise<BulkJob[]> {
    const limit = normalizeLimit(page.limit);
    const filter: Record<string, unknown> = {};
    if (page.state !== undefined) filter.state = checkJobState(page.state);
    if (page.afterKey !== undefined) {
      const after = await this.p.read('reading a bulk job', () => this.jobs().findOne({ _id: page.afterKey! }));
      if (after === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no job');
      filter.ord = { $lt: after.ord };
    }
    return this.p.read('listing bulk jobs', async () => (await this.jobs().find(filter).sort({ ord: -1 }).limit(limit).toArray()).map(jobFromDoc));
  }

  async jobsInState(state: JobState): Promise<BulkJob[]> {
    checkJobState(state);
    return this.p.read('listing bulk jobs', async () => (await this.jobs().find({ state }).sort({ ord: 1 }).toArray()).map(jobFromDoc));
  }

  async pendingJobDevices(jobId: string, limit: number): Promise<string[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new KakuinError('KAKUIN_E_VALIDATION', 'limit must be 1 to 1000');
    return this.p.read('reading a bulk job\'s devices', async () =>
      (await this.steps().find({ jobId, outcome: 'pending' }).sort({ seq: 1 }).limit(limit).toArray()).map((d) => d.deviceId));
  }

  async skipJobDevice(jobId: string, deviceId: string, note: string): Promise<void> {
    await this.p.transaction('settling a bulk job step', async (session) => {
      const r = await this.steps().updateOne({ _id: jobDeviceKey(jobId, deviceId), outcome: 'pending' },
        { $set: { outcome: 'skipped', note: String(note).slice(0, 1024), settledAt: new Date() } }, { session });
      if (r.matchedCount !== 1) throw jobStepSettled();
      await this.jobs().updateOne({ _id: jobId }, { $inc: { skipped: 1 }, $set: { updatedAt: new Date() } }, { session });
    });
  }

  async listJobSteps(jobId: string, page: { afterKey?: string; limit?: number } = {}): Promise<JobStep[]> {
    const limit = normalizeLimit(page.limit);
    const filter: Record<string, unknown> = { jobId };
    if (page.afterKey !== undefined) {
      const after = await this.p.read('reading a bulk job\'s devices', () => this.steps().findOne({ _id: jobDeviceKey(jobId, page.afterKey!) }));
      if (after === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no device of the job');
      filter.seq = { $gt: after.seq };
    }
    return this.p.read('reading a bulk job\'s devices', async () =>
      (await this.steps().find(filter).sort({ seq: 1 }).limit(limit).toArray())
        .map((d) => ({ deviceId: d.deviceId, outcome: d.outcome, ...(typeof d.note === 'string' && { note: d.note }) })));
  }
}
