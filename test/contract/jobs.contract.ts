/**
 * The bulk-job and approval ports' contract (registry/jobs.ts, registry/approvals.ts), run on every
 * adapter: a job's device set is frozen once it leaves `preparing`; a status change that carries a
 * job step settles it in the same transaction and a second one for the same step is refused and
 * changes nothing (the exactly-once guard); the decommission record stays with the retired device;
 * approvals are decided once, with their audit events.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { ApprovalStore } from '../../registry/approvals.js';
import type { JobStore } from '../../registry/jobs.js';
import type { Registry } from '../../registry/port.js';
import { expectKakuinError } from './registry-fixtures.js';

export type OpenJobStores = () => Promise<{ registry: Registry; jobs: JobStore; approvals: ApprovalStore; cleanup: () => Promise<void> }>;

export function runJobsContract(adapterName: string, open: OpenJobStores): void {
  describe(`bulk jobs and approvals contract: ${adapterName}`, function () {
    let registry: Registry;
    let jobs: JobStore;
    let approvals: ApprovalStore;
    let cleanup: () => Promise<void>;
    beforeEach(async function () {
      ({ registry, jobs, approvals, cleanup } = await open());
    });
    afterEach(async function () {
      await cleanup();
    });

    async function devices(n: number): Promise<string[]> {
      const m = await registry.createManufacturer({ name: `m-${randomUUID()}` });
      const ids: string[] = [];
      for (let i = 0; i < n; i++) ids.push((await registry.createDevice({ manufacturerId: m.id, serialNumber: `SN-${i}`, identifiers: {} })).id);
      return ids;
    }

    const suspendChange = (deviceId: string, jobId: string) => ({
      device: { id: deviceId, from: ['registered' as const, 'active' as const], to: 'suspended' as const },
      certificates: [], audit: [{ type: 'device.suspended', actor: 'token:ops', deviceId, details: { jobId } }],
      jobStep: { jobId, deviceId },
    });

    it('freezes the device set in order, ignores a repeated id, and refuses more once the job left preparing', async function () {
      const ids = await devices(5);
      const job = await jobs.createJob({ action: 'suspend', actor: 'token:ops', selection: { ids } });
      expect(job.state).to.equal('preparing');
      await jobs.addJobDevices(job.id, ids.slice(0, 3));
      await jobs.addJobDevices(job.id, [ids[2], ...ids.slice(3)]);
      expect((await jobs.getJob(job.id)).total).to.equal(5);
      expect(await jobs.pendingJobDevices(job.id, 1000)).to.deep.equal(ids);
      const running = await jobs.setJobState(job.id, ['preparing'], 'running');
      expect(running.state).to.equal('running');
      expect(running.startedAt).to.be.instanceOf(Date);
      await expectKakuinError(jobs.addJobDevices(job.id, [randomUUID()]), 'KAKUIN_E_JOB_STATE');
      await expectKakuinError(jobs.setJobState(job.id, ['preparing'], 'running'), 'KAKUIN_E_JOB_STATE');
      expect((await jobs.getJob(job.id)).total).to.equal(5);
    });

    it('a status change settles its job step in the same transaction; the same step again is refused and changes nothing', async function () {
      const [a, b] = await devices(2);
      const job = await jobs.createJob({ action: 'suspend', actor: 'token:ops', selection: { ids: [a, b] } });
      await jobs.addJobDevices(job.id, [a, b]);
      await jobs.setJobState(job.id, ['preparing'], 'running');
      await registry.applyStatusChange(suspendChange(a, job.id));
      expect((await registry.getDevice(a)).status).to.equal('suspended');
      expect(await jobs.pendingJobDevices(job.id, 10)).to.deep.equal([b]);
      expect((await jobs.getJob(job.id)).acted).to.equal(1);

      const eventsBefore = (await registry.listAuditEvents({ deviceId: a, limit: 1000 })).length;
      // The device is put back by hand, so only the step guard can refuse the second change.
      await registry.applyStatusChange({ device: { id: a, from: ['suspended'], to: 'active' }, certificates: [], audit: [] });
      await expectKakuinError(registry.applyStatusChange(suspendChange(a, job.id)), 'KAKUIN_E_JOB_STEP_SETTLED');
      expect((await registry.getDevice(a)).status).to.equal('active');
      expect((await registry.listAuditEvents({ deviceId: a, limit: 1000 })).length).to.equal(eventsBefore);
      expect((await jobs.getJob(job.id)).acted).to.equal(1);
    });

    it('a step not in the frozen set refuses the status change', async function () {
      const [a, outsider] = await devices(2);
      const job = await jobs.createJob({ action: 'suspend', actor: 'token:ops', selection: { ids: [a] } });
      await jobs.addJobDevices(job.id, [a]);
      await expectKakuinError(registry.applyStatusChange(suspendChange(outsider, job.id)), 'KAKUIN_E_JOB_STEP_SETTLED');
      expect((await registry.getDevice(outsider)).status).to.equal('registered');
    });

    it('skips a step once, counting it, and lists the steps with their outcomes in frozen order', async function () {
      const [a, b, c] = await devices(3);
      const job = await jobs.createJob({ action: 'suspend', actor: 'token:ops', selection: { ids: [a, b, c] } });
      await jobs.addJobDevices(job.id, [a, b, c]);
      await jobs.setJobState(job.id, ['preparing'], 'running');
      await registry.applyStatusChange(suspendChange(b, job.id));
      await jobs.skipJobDevice(job.id, a, 'KAKUIN_E_DEVICE_STATE: retired');
      await expectKakuinError(jobs.skipJobDevice(job.id, a, 'again'), 'KAKUIN_E_JOB_STEP_SETTLED');
      await expectKakuinError(jobs.skipJobDevice(job.id, b, 'acted already'), 'KAKUIN_E_JOB_STEP_SETTLED');
      const steps = await jobs.listJobSteps(job.id);
      expect(steps.map((s) => [s.deviceId, s.outcome])).to.deep.equal([[a, 'skipped'], [b, 'acted'], [c, 'pending']]);
      expect(steps[0].note).to.equal('KAKUIN_E_DEVICE_STATE: retired');
      expect(await jobs.listJobSteps(job.id, { afterKey: a, limit: 1 })).to.have.length(1);
      const done = await jobs.setJobState(job.id, ['running'], 'done');
      expect([done.total, done.acted, done.skipped]).to.deep.equal([3, 1, 1]);
      expect(done.finishedAt).to.be.instanceOf(Date);
    });

    it('keeps the decommission record with a device retired in the change, and refuses it on any other transition', async function () {
      const [a, b] = await devices(2);
      const decommission = { reason: 'destroyed' as const, ticket: 'RMA-7', evidence: 'shredder certificate #99', at: new Date(Date.UTC(2026, 11, 8)), actor: 'token:ops' };
      await registry.applyStatusChange({ device: { id: a, from: ['registered'], to: 'retired', decommission }, certificates: [], audit: [] });
      expect((await registry.getDevice(a)).decommission).to.deep.equal(decommission);
      expect((await registry.getDevice(b)).decommission).to.equal(undefined);
      await expectKakuinError(registry.applyStatusChange({ device: { id: b, from: ['registered'], to: 'suspended', decommission }, certificates: [], audit: [] }), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(registry.applyStatusChange({
        device: { id: b, from: ['registered'], to: 'retired', decommission: { ...decommission, reason: 'vanished' as never } }, certificates: [], audit: [],
      }), 'KAKUIN_E_VALIDATION');
      expect((await registry.getDevice(b)).status).to.equal('registered');
    });

    it('lists jobs newest first, by state, and names the ones a starting runner resumes', async function () {
      const j1 = await jobs.createJob({ action: 'revoke', actor: 'token:a', selection: { x: 1 }, reason: 'keyCompromise' });
      const j2 = await jobs.createJob({ action: 'retire', actor: 'token:a', selection: {}, ticket: 'T-1', decommission: { reason: 'wiped', evidence: 'log' } });
      await jobs.setJobState(j1.id, ['preparing'], 'pending-approval', { approvalId: 'ap-1' });
      expect((await jobs.listJobs()).map((j) => j.id)).to.deep.equal([j2.id, j1.id]);
      expect((await jobs.listJobs({ afterKey: j2.id })).map((j) => j.id)).to.deep.equal([j1.id]);
      expect((await jobs.jobsInState('pending-approval')).map((j) => j.id)).to.deep.equal([j1.id]);
      const got = await jobs.getJob(j2.id);
      expect(got.decommission).to.deep.equal({ reason: 'wiped', evidence: 'log' });
      expect(got.ticket).to.equal('T-1');
      expect((await jobs.getJob(j1.id)).approvalId).to.equal('ap-1');
      await expectKakuinError(jobs.getJob(randomUUID()), 'KAKUIN_E_JOB_NOT_FOUND');
    });

    it('refuses malformed jobs before anything is written', async function () {
      await expectKakuinError(jobs.createJob({ action: 'explode' as never, actor: 'token:a', selection: {} }), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(jobs.createJob({ action: 'retire', actor: 'token:a', selection: {} }), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(jobs.createJob({ action: 'suspend', actor: 'token:a', selection: {}, decommission: { reason: 'wiped', evidence: 'e' } }), 'KAKUIN_E_VALIDATION');
      expect(await jobs.listJobs()).to.deep.equal([]);
    });

    it('an approval is decided once, with its request and decision in the audit trail', async function () {
      const expiresAt = new Date(Date.now() + 60_000);
      const a = await approvals.createApproval({ kind: 'ca-rollover', request: { what: 'device CA' }, summary: 'roll the device CA over', requestedBy: 'token:alice', expiresAt },
        { type: 'approval.requested', actor: 'token:alice', details: { kind: 'ca-rollover' } });
      expect(a.state).to.equal('pending');
      expect(a.request).to.deep.equal({ what: 'device CA' });
      const decided = await approvals.decideApproval(a.id, { state: 'approved', by: 'token:bob', at: new Date() }, { type: 'approval.approved', actor: 'token:bob', details: {} });
      expect([decided.state, decided.decidedBy]).to.deep.equal(['approved', 'token:bob']);
      await expectKakuinError(approvals.decideApproval(a.id, { state: 'rejected', by: 'token:carol', at: new Date() }, { type: 'approval.rejected', actor: 'token:carol', details: {} }), 'KAKUIN_E_APPROVAL_DECIDED');
      await approvals.recordApprovalResult(a.id, { ok: true });
      expect((await approvals.getApproval(a.id)).result).to.deep.equal({ ok: true });
      const events = (await registry.listAuditEvents({ limit: 1000 })).filter((e) => e.type.startsWith('approval.'));
      expect(events.map((e) => [e.type, e.actor, e.details?.approvalId])).to.deep.equal([
        ['approval.requested', 'token:alice', a.id], ['approval.approved', 'token:bob', a.id],
      ]);
    });

    it('an expired approval says so when decided; lists newest first and by state', async function () {
      const soon = new Date(Date.now() + 60_000);
      const a = await approvals.createApproval({ kind: 'k', request: {}, summary: 's', requestedBy: 'token:a', expiresAt: soon }, { type: 'approval.requested', actor: 'token:a', details: {} });
      const b = await approvals.createApproval({ kind: 'k', request: {}, summary: 's', requestedBy: 'token:a', expiresAt: soon }, { type: 'approval.requested', actor: 'token:a', details: {} });
      await approvals.decideApproval(a.id, { state: 'expired', by: 'system', at: new Date() }, { type: 'approval.expired', actor: 'system', details: {} });
      await expectKakuinError(approvals.decideApproval(a.id, { state: 'approved', by: 'token:b', at: new Date() }, { type: 'approval.approved', actor: 'token:b', details: {} }), 'KAKUIN_E_APPROVAL_EXPIRED');
      expect((await approvals.listApprovals()).map((x) => x.id)).to.deep.equal([b.id, a.id]);
      expect((await approvals.listApprovals({ state: 'pending' })).map((x) => x.id)).to.deep.equal([b.id]);
      expect((await approvals.listApprovals({ afterKey: b.id })).map((x) => x.id)).to.deep.equal([a.id]);
      await expectKakuinError(approvals.getApproval(randomUUID()), 'KAKUIN_E_APPROVAL_NOT_FOUND');
      await expectKakuinError(approvals.createApproval({ kind: 'k', request: {}, summary: 's', requestedBy: 'token:a', expiresAt: new Date(0) }, { type: 'approval.requested', actor: 'token:a', details: {} }), 'KAKUIN_E_VALIDATION');
    });
  });
}
