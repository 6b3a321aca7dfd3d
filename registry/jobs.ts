/**
 * The bulk-job port (DESIGN.md "registry/": small consumer-named ports): a bulk action's frozen
 * device set and how far it has got, so that operations/bulk can resume a job after a crash and
 * act on every device exactly once. Kept apart from the Registry port: only the writing process
 * that runs jobs (and the management API that shows them) needs it.
 *
 * Exactly once: a device's step is settled `acted` by the status change itself
 * (`StatusChange.jobStep`, registry/port.ts), in the same transaction, and that status change is
 * refused (KAKUIN_E_JOB_STEP_SETTLED, rolled back) when the step is already settled. A crash
 * between the commit and anything after it leaves a settled step that a resumed run skips; a crash
 * before the commit leaves a pending step and an unchanged device that a resumed run acts on.
 */

export const BULK_ACTIONS = ['suspend', 'resume', 'revoke', 'retire'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];

/**
 * `preparing`: the device set is being frozen (written in short transactions); a job a crash left
 * here is failed at the next start, having acted on nothing. `pending-approval`: frozen, waiting
 * for a second principal (management-api/approvals.ts). `cancelled`: its approval was rejected or
 * expired; it never acted.
 */
export const JOB_STATES = ['preparing', 'pending-approval', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** How one device's step ended: `acted` (its status changed, with the job's audit event) or `skipped` (it could not: state, gone). */
export type StepOutcome = 'pending' | 'acted' | 'skipped';

export const DECOMMISSION_REASONS = ['wiped', 'destroyed', 'returned', 'lost', 'recycled', 'resold'] as const;
export type DecommissionReason = (typeof DECOMMISSION_REASONS)[number];

/** What a retired device keeps as proof it is dead (README "Bulk actions"). */
export interface Decommission {
  reason: DecommissionReason;
  ticket: string;
  evidence: string;
  at: Date;
  actor: string;
  jobId?: string;
}

export interface NewBulkJob {
  action: BulkAction;
  /** Who asked for it (audit actor form, `token:<name>`). */
  actor: string;
  /** What selected the devices, as given (shown back; the frozen set is what counts). */
  selection: Record<string, unknown>;
  /** revoke: the CRL reason; the others: free text the audit events carry. */
  reason?: string;
  ticket?: string;
  /** retire: the decommission reason and evidence note. */
  decommission?: { reason: DecommissionReason; evidence: string };
}

export interface BulkJob extends NewBulkJob {
  id: string;
  state: JobState;
  total: number;
  acted: number;
  skipped: number;
  approvalId?: string;
  error?: string;
  createdAt: Date;
  updatedAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
}

export interface JobStep {
  deviceId: string;
  outcome: StepOutcome;
  note?: string;
}

export interface JobStore {
  /** A new job in state `preparing`, with no devices yet. */
  createJob(job: NewBulkJob): Promise<BulkJob>;
  /**
   * Appends devices to a `preparing` job's frozen set (pending steps, in the order given; a device
   * already in the set is ignored). At most 1000 ids per call: each call is one short transaction.
   */
  addJobDevices(jobId: string, deviceIds: readonly string[]): Promise<void>;
  /**
   * Moves the job from one of `from` to `to` (KAKUIN_E_JOB_STATE otherwise), with the fields given;
   * `running` stamps startedAt, `done`/`failed`/`cancelled` stamp finishedAt.
   */
  setJobState(jobId: string, from: readonly JobState[], to: JobState, fields?: { error?: string; approvalId?: string }): Promise<BulkJob>;
  getJob(jobId: string): Promise<BulkJob>;
  /** Newest first. */
  listJobs(page?: { afterKey?: string; limit?: number; state?: JobState }): Promise<BulkJob[]>;
  /** Jobs in a state, oldest first: what a starting runner resumes. */
  jobsInState(state: JobState): Promise<BulkJob[]>;
  /** The job's still-pending device ids, in frozen order, at most `limit` (≤ 1000). */
  pendingJobDevices(jobId: string, limit: number): Promise<string[]>;
  /** Settles a pending step as skipped, with why (KAKUIN_E_JOB_STEP_SETTLED when it is settled already). */
  skipJobDevice(jobId: string, deviceId: string, note: string): Promise<void>;
  /** Steps of a job in frozen order (for tests and the job's detail view). */
  listJobSteps(jobId: string, page?: { afterKey?: string; limit?: number }): Promise<JobStep[]>;
}
