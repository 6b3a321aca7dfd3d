/**
 * The bulk-job runner: makes a job (its device set frozen, registry/jobs.ts), runs it, and at
 * start resumes what a crash left running.
 *
 * Every device goes through the revocation service (ca/revocation.ts), the same path as a single
 * `POST /api/v1/devices/{id}/revoke`: the status change and its feed entry commit together, and the
 * kill switch follows for each device (OCSP re-signed, CRL delta, gateways close open sessions,
 * legacy tokens of the device stop working). The change carries the job step, so the registry
 * settles the step in that same transaction and refuses a second one (exactly once across crashes).
 * A device that cannot take the action (already retired, resumed while not suspended, deleted) is
 * skipped with the reason; the job goes on.
 */
import type { BulkAction, BulkJob, JobStore, NewBulkJob } from '../../registry/jobs.js';
import { KakuinError, hasCode } from '../../errors/index.js';
import type { RevocationService } from '../../ca/revocation.js';

export interface BulkLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface BulkJobRunnerOptions {
  /** Devices acted on at once (the OCSP and gateway waits of one overlap the next's). */
  concurrency?: number;
  /** A transient registry failure (KAKUIN_E_REGISTRY_UNAVAILABLE) is retried this often before the job fails. */
  retries?: number;
  retryDelayMs?: number;
}

const FREEZE_CHUNK = 1000;

export class BulkJobRunner {
  private readonly running = new Map<string, Promise<void>>();
  private closing = false;
  private readonly concurrency: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  constructor(
    private readonly jobs: JobStore,
    private readonly revocation: RevocationService,
    private readonly logger: BulkLogger,
    options: BulkJobRunnerOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 64;
    this.retries = options.retries ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 200;
  }

  /**
   * Makes a job and freezes its device set (in short transactions of 1000); the job stays
   * `preparing` until `start` or `hold`. A crash before then leaves a `preparing` job that
   * `resume` fails, having acted on nothing.
   */
  async freeze(job: NewBulkJob, deviceIds: readonly string[]): Promise<BulkJob> {
    if (deviceIds.length === 0) throw new KakuinError('KAKUIN_E_BULK_EMPTY', 'the selection holds no device; no job was made');
    const created = await this.jobs.createJob(job);
    for (let i = 0; i < deviceIds.length; i += FREEZE_CHUNK) await this.jobs.addJobDevices(created.id, deviceIds.slice(i, i + FREEZE_CHUNK));
    return this.jobs.getJob(created.id);
  }

  /** Parks a frozen job until a second principal decides its approval. */
  hold(jobId: string, approvalId: string): Promise<BulkJob> {
    return this.jobs.setJobState(jobId, ['preparing'], 'pending-approval', { approvalId });
  }

  /** A job whose approval was rejected or expired: it never acts. */
  cancel(jobId: string, why: string): Promise<BulkJob> {
    return this.jobs.setJobState(jobId, ['pending-approval'], 'cancelled', { error: why });
  }

  /** Moves a frozen (or approved) job to `running` and runs it in the background. */
  async start(jobId: string): Promise<BulkJob> {
    const job = await this.jobs.setJobState(jobId, ['preparing', 'pending-approval'], 'running');
    this.launch(job);
    return job;
  }

  /**
   * At start: jobs a crash left `running` go on where they stopped (each device's step tells);
   * jobs left `preparing` (device set half frozen) fail, having acted on nothing.
   */
  async resume(): Promise<{ resumed: string[]; failed: string[] }> {
    const failed: string[] = [];
    for (const job of await this.jobs.jobsInState('preparing')) {
      await this.jobs.setJobState(job.id, ['preparing'], 'failed', { error: 'the service stopped while the device set was being frozen; nothing was acted on' });
      failed.push(job.id);
    }
    const resumed: string[] = [];
    for (const job of await this.jobs.jobsInState('running')) {
      this.logger.info('resuming a bulk job', { jobId: job.id, action: job.action, acted: job.acted, skipped: job.skipped, total: job.total });
      this.launch(job);
      resumed.push(job.id);
    }
    return { resumed, failed };
  }

  /** Resolves when the job's run in this process has stopped (done, failed, or closed). */
  async settled(jobId: string): Promise<void> {
    await this.running.get(jobId);
  }

  /** Stops taking new devices; the ones in flight finish. A running job stays `running` and resumes at the next start. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.running.values()]);
  }

  private launch(job: BulkJob): void {
    if (this.running.has(job.id) || this.closing) return;
    const run = this.run(job).catch((e) => {
      this.logger.error('a bulk job failed', { jobId: job.id, cause: String(e) });
    }).finally(() => this.running.delete(job.id));
    this.running.set(job.id, run);
  }

  private async run(job: BulkJob): Promise<void> {
    const act = this.action(job);
    for (;;) {
      if (this.closing) return;
      const pending = await this.jobs.pendingJobDevices(job.id, 1000);
      if (pending.length === 0) break;
      let next = 0;
      let fatal: unknown;
      const worker = async () => {
        while (next < pending.length && fatal === undefined && !this.closing) {
          const deviceId = pending[next++];
          try {
            await this.step(job.id, deviceId, act);
          } catch (e) {
            fatal ??= e;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.concurrency, pending.length) }, worker));
      if (fatal !== undefined) {
        const code = fatal instanceof KakuinError ? fatal.code : 'KAKUIN_E_INTERNAL';
        await this.jobs.setJobState(job.id, ['running'], 'failed', { error: `${code}: ${fatal instanceof Error ? fatal.message : String(fatal)}` });
        return;
      }
    }
    const done = await this.jobs.setJobState(job.id, ['running'], 'done');
    this.logger.info('bulk job done', { jobId: job.id, action: job.action, total: done.total, acted: done.acted, skipped: done.skipped });
  }

  /** One device: act, or skip with the reason; a transient registry failure is retried, then fails the job. */
  private async step(jobId: string, deviceId: string, act: (deviceId: string) => Promise<unknown>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await act(deviceId);
        return;
      } catch (e) {
        if (hasCode(e, 'KAKUIN_E_JOB_STEP_SETTLED')) return;
        if (hasCode(e, 'KAKUIN_E_REGISTRY_UNAVAILABLE') && attempt < this.retries) {
          await new Promise((r) => setTimeout(r, this.retryDelayMs * (attempt + 1)));
          continue;
        }
        if (hasCode(e, 'KAKUIN_E_REGISTRY_UNAVAILABLE')) throw e;
        const note = e instanceof KakuinError ? `${e.code}: ${e.message}` : `KAKUIN_E_INTERNAL: ${String(e)}`;
        try {
          // If the change committed and only what follows it failed (an OCSP wait), the step is
          // settled `acted` already and this says so; either way the device is not acted on again.
          await this.jobs.skipJobDevice(jobId, deviceId, note);
        } catch (s) {
          if (!hasCode(s, 'KAKUIN_E_JOB_STEP_SETTLED')) throw s;
        }
        return;
      }
    }
  }

  private action(job: BulkJob): (deviceId: string) => Promise<unknown> {
    const details = { jobId: job.id, ...(job.approvalId !== undefined && { approvalId: job.approvalId }), ...(job.ticket !== undefined && { ticket: job.ticket }) };
    const options = (deviceId: string) => ({ jobStep: { jobId: job.id, deviceId }, details });
    const r = this.revocation;
    const actions: Record<BulkAction, (deviceId: string) => Promise<unknown>> = {
      suspend: (id) => r.suspendDevice(id, job.actor, options(id)),
      resume: (id) => r.resumeDevice(id, job.actor, options(id)),
      revoke: (id) => r.revokeDevice(id, { reason: job.reason }, job.actor, options(id)),
      retire: (id) => r.retireDevice(id, job.actor, {
        ...options(id), decommission: { reason: job.decommission!.reason, ticket: job.ticket!, evidence: job.decommission!.evidence, jobId: job.id },
      }),
    };
    return actions[job.action];
  }
}
