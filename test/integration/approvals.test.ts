/**
 * Issue 21 item 4 (two-person approval) and issue 20 item 3 (bulk actions) over real HTTPS on
 * 127.0.0.1 against an in-process kakuin on SQLite, with two admin principals (the bootstrap token
 * and a second admin made on the host with `kakuin token create`, which needs no approval), an
 * operator and an auditor. Each gated act waits for a second principal; self-approval, a wrong role,
 * expiry and a second approve are refused with their codes and change nothing; a rejection changes
 * nothing; an approval acts once.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { cliMain, makeTempDir, opensslBytes } from '../support/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';
import { newFactory, opensslCsr } from '../enrollment/support.js';

const THRESHOLD = 3;

describe('two-person approval and bulk actions over the management API', function () {
  this.timeout(120_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  const tokens: Record<'adminA' | 'adminB' | 'operator' | 'auditor', string> = {} as never;
  let manufacturerId: string;

  const call = (token: string, method: string, p: string, body?: object): Promise<HttpResponse> =>
    request(svc.url, svc.rootPem, method, p, { token, ...(body !== undefined && { body }) });
  const as = (who: keyof typeof tokens) => (method: string, p: string, body?: object) => call(tokens[who], method, p, body);
  const adminA = as('adminA');
  const adminB = as('adminB');
  const operator = as('operator');
  const auditor = as('auditor');
  const registryFile = () => svc.service.kakuin.config.storage.path;

  async function devices(prefix: string, n: number, model = 'bulk-model'): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await adminA('POST', '/api/v1/devices', { manufacturerId, serialNumber: `${prefix}-${i}`, model });
      expect(r.status, r.text).to.equal(201);
      ids.push(r.json.id);
    }
    return ids;
  }

  async function jobSettled(id: string): Promise<HttpResponse> {
    const until = Date.now() + 30_000;
    for (;;) {
      const j = await auditor('GET', `/api/v1/jobs/${id}`);
      expect(j.status, j.text).to.equal(200);
      if (['done', 'failed', 'cancelled'].includes(j.json.state)) return j;
      if (Date.now() > until) throw new Error(`job ${id} still ${j.json.state}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const statusOf = async (id: string) => (await auditor('GET', `/api/v1/devices/${id}`)).json.status;
  const eventsOf = async (deviceId: string, type: string) =>
    (await auditor('GET', `/api/v1/audit-events?deviceId=${deviceId}&type=${type}&limit=1000`)).json.events as { actor: string; details: Record<string, unknown> }[];

  before(async () => {
    tmp = makeTempDir();
    const config = path.join(tmp.dir, 'kakuin.json');
    writeFileSync(config, JSON.stringify({ approvals: { bulkThreshold: THRESHOLD, ttlMinutes: 30 } }));
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_CONFIG: config } });
    tokens.adminA = svc.adminToken;
    // The second admin is made on the host (exempt from approval, audited as cli).
    const cli = spawnSync(process.execPath, [cliMain, 'token', 'create', '--name', 'admin-b', '--role', 'admin'], { env: { ...process.env, ...svc.env }, timeout: 30_000 });
    expect(cli.status, cli.stderr.toString()).to.equal(0);
    tokens.adminB = /^(kkadm_\S+)$/m.exec(cli.stdout.toString())![1];
    for (const role of ['operator', 'auditor'] as const) {
      const r = await adminA('POST', '/api/v1/tokens', { name: `the-${role}`, role });
      expect(r.status, r.text).to.equal(201);
      tokens[role] = r.json.token;
    }
    manufacturerId = (await adminA('POST', '/api/v1/manufacturers', { name: 'Cohort Works' })).json.id;
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('creating an admin token through the API waits for a second admin: the requester cannot approve it, another admin does and gets the secret once', async () => {
    const before = (await auditor('GET', '/api/v1/tokens')).json.tokens.length;
    const asked = await adminA('POST', '/api/v1/tokens', { name: 'admin-c' });
    expect(asked.status, asked.text).to.equal(202);
    expect(asked.json.approval).to.include({ kind: 'admin-token', state: 'pending', requestedBy: 'token:bootstrap' });
    expect(asked.json.token).to.equal(undefined);
    expect((await auditor('GET', '/api/v1/tokens')).json.tokens.length).to.equal(before);
    const id = asked.json.approval.id;

    const self = await adminA('POST', `/api/v1/approvals/${id}/approve`);
    expect([self.status, self.json.code]).to.deep.equal([403, 'KAKUIN_E_APPROVAL_SELF']);
    const wrongRole = await operator('POST', `/api/v1/approvals/${id}/approve`);
    expect([wrongRole.status, wrongRole.json.code]).to.deep.equal([403, 'KAKUIN_E_FORBIDDEN']);
    expect((await auditor('GET', `/api/v1/approvals/${id}`)).json.state).to.equal('pending');

    const ok = await adminB('POST', `/api/v1/approvals/${id}/approve`, { note: 'new on-call admin' });
    expect(ok.status, ok.text).to.equal(200);
    expect(ok.json.approval).to.include({ state: 'approved', decidedBy: 'token:admin-b', note: 'new on-call admin' });
    expect(ok.json.result).to.include({ name: 'admin-c', role: 'admin' });
    const secret = ok.json.result.token as string;
    expect((await call(secret, 'GET', '/api/v1/tokens')).status).to.equal(200);
    // What the approval keeps names the token, never its secret.
    const kept = (await auditor('GET', `/api/v1/approvals/${id}`)).json;
    expect(kept.result).to.deep.equal({ name: 'admin-c', role: 'admin' });
    expect(JSON.stringify(kept)).to.not.include(secret);

    const again = await adminB('POST', `/api/v1/approvals/${id}/approve`);
    expect([again.status, again.json.code]).to.deep.equal([409, 'KAKUIN_E_APPROVAL_DECIDED']);
    const created = (await auditor('GET', '/api/v1/audit-events?type=token.created&limit=1000')).json.events.filter((e: { details: { name: string } }) => e.details.name === 'admin-c');
    expect(created).to.have.length(1);
    const trail = (await auditor('GET', '/api/v1/audit-events?limit=1000')).json.events
      .filter((e: { details?: { approvalId?: string } }) => e.details?.approvalId === id).map((e: { type: string; actor: string }) => [e.type, e.actor]);
    expect(trail).to.deep.equal([['approval.requested', 'token:bootstrap'], ['approval.approved', 'token:admin-b']]);
    // Tokens of other roles are made at once, as before.
    expect((await adminA('POST', '/api/v1/tokens', { name: 'just-reading', role: 'auditor' })).status).to.equal(201);
  });

  it('creating an admin user through the API waits for a second admin, who gets the generated password and TOTP URI once; a chosen password is refused', async () => {
    const chosen = await adminA('POST', '/api/v1/users', { name: 'second-admin', role: 'admin', password: 'a-long-enough-password' });
    expect([chosen.status, chosen.json.code, chosen.json.field]).to.deep.equal([400, 'KAKUIN_E_VALIDATION', 'password']);
    const asked = await adminA('POST', '/api/v1/users', { name: 'second-admin', role: 'admin' });
    expect(asked.status, asked.text).to.equal(202);
    expect(asked.json.approval).to.include({ kind: 'admin-user', state: 'pending', requestedBy: 'token:bootstrap' });
    expect(asked.json.password).to.equal(undefined);
    const names = async () => (await auditor('GET', '/api/v1/users')).json.users.map((u: { name: string }) => u.name);
    expect(await names()).to.not.include('second-admin');
    const id = asked.json.approval.id;
    const self = await adminA('POST', `/api/v1/approvals/${id}/approve`);
    expect([self.status, self.json.code]).to.deep.equal([403, 'KAKUIN_E_APPROVAL_SELF']);
    const ok = await adminB('POST', `/api/v1/approvals/${id}/approve`);
    expect(ok.status, ok.text).to.equal(200);
    expect(ok.json.result).to.include({ name: 'second-admin', role: 'admin', totp: true });
    expect(ok.json.result.password).to.match(/^[A-Za-z0-9_-]{20}$/);
    expect(ok.json.result.totpUri).to.match(/^otpauth:\/\/totp\//);
    expect(await names()).to.include('second-admin');
    const kept = (await auditor('GET', `/api/v1/approvals/${id}`)).json;
    expect(JSON.stringify(kept)).to.not.include(ok.json.result.password);
    // Users of other roles are made at once, as before.
    expect((await adminA('POST', '/api/v1/users', { name: 'plain-operator', role: 'operator' })).status).to.equal(201);
  });

  it('a CA rollover through the API waits for a second admin; a rejection changes nothing, an approval rolls over once', async () => {
    const issuersBefore = () => new Database(registryFile(), { readonly: true });
    const countDeviceCas = () => {
      const db = issuersBefore();
      try {
        return (db.prepare(`SELECT count(*) AS n FROM issuers WHERE kind = 'device'`).get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const n0 = countDeviceCas();
    const first = await adminA('POST', '/api/v1/ca/rollover');
    expect(first.status, first.text).to.equal(202);
    const rejected = await adminB('POST', `/api/v1/approvals/${first.json.approval.id}/reject`, { note: 'not during the audit' });
    expect(rejected.status, rejected.text).to.equal(200);
    expect(rejected.json.approval.state).to.equal('rejected');
    expect(countDeviceCas()).to.equal(n0);
    expect((await adminB('POST', `/api/v1/approvals/${first.json.approval.id}/approve`)).json.code).to.equal('KAKUIN_E_APPROVAL_DECIDED');
    expect(countDeviceCas()).to.equal(n0);

    const second = await adminB('POST', '/api/v1/ca/rollover');
    expect(second.status).to.equal(202);
    expect((await adminB('POST', `/api/v1/approvals/${second.json.approval.id}/approve`)).json.code).to.equal('KAKUIN_E_APPROVAL_SELF');
    const ok = await adminA('POST', `/api/v1/approvals/${second.json.approval.id}/approve`);
    expect(ok.status, ok.text).to.equal(200);
    expect(ok.json.result.issuerId).to.match(/^device-\d+$/);
    expect(countDeviceCas()).to.equal(n0 + 1);
    const rolled = (await auditor('GET', '/api/v1/audit-events?type=ca.rolled-over&limit=1000')).json.events;
    expect(rolled.map((e: { actor: string }) => e.actor)).to.deep.equal(['token:admin-b']);
  });

  it('revoking what a station issued waits for a second admin; approved, it revokes the station\'s certificates', async () => {
    const f = await newFactory(svc, 'Incident Works');
    const station = (method: string, p: string, body?: object) => call(f.apiKey, method, p, body);
    expect((await station('POST', '/api/v1/devices/import', [{ serialNumber: 'INC-1' }])).status).to.equal(201);
    const since = new Date(Date.now() - 2000).toISOString();
    const csr = opensslCsr(tmp.dir, 'inc1', '/serialNumber=INC-1');
    const enrolled = await station('POST', '/api/v1/enroll', { serialNumber: 'INC-1', csr: csr.csrPem });
    expect(enrolled.status, enrolled.text).to.equal(201);
    const until = new Date(Date.now() + 2000).toISOString();

    // The cohort filters of a bulk action find the same device: by the station's window, and by its public key.
    const byStation = await operator('POST', '/api/v1/devices/bulk', { action: 'suspend', filter: { station: f.stationId, from: since, to: until }, reason: 'x', dryRun: true });
    expect(byStation.status, byStation.text).to.equal(200);
    expect(byStation.json.sample.map((d: { id: string }) => d.id)).to.deep.equal([enrolled.json.deviceId]);
    const before = await operator('POST', '/api/v1/devices/bulk', { action: 'suspend', filter: { station: f.stationId, from: '2020-01-01T00:00:00Z', to: since }, reason: 'x', dryRun: true });
    expect(before.json.count).to.equal(0);
    const spkiSha256 = createHash('sha256').update(opensslBytes(['pkey', '-in', csr.keyFile, '-pubout', '-outform', 'DER'])).digest('hex');
    const byKey = await operator('POST', '/api/v1/devices/bulk', { action: 'suspend', filter: { sharedKey: spkiSha256 }, reason: 'x', dryRun: true });
    expect(byKey.json.sample.map((d: { id: string }) => d.id)).to.deep.equal([enrolled.json.deviceId]);
    const windowless = await operator('POST', '/api/v1/devices/bulk', { action: 'suspend', filter: { station: f.stationId }, reason: 'x', dryRun: true });
    expect([windowless.status, windowless.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);

    const asked = await adminA('POST', `/api/v1/stations/${f.stationId}/revoke-issued`, { since, until, reason: 'keyCompromise' });
    expect(asked.status, asked.text).to.equal(202);
    expect((await auditor('GET', `/api/v1/certificates/${enrolled.json.serialHex}`)).json.status).to.equal('good');
    const missing = await adminA('POST', '/api/v1/stations/no-such-station/revoke-issued', { since, until });
    expect(missing.status).to.equal(404);
    const ok = await adminB('POST', `/api/v1/approvals/${asked.json.approval.id}/approve`);
    expect(ok.status, ok.text).to.equal(200);
    expect(ok.json.result.revoked).to.deep.equal([enrolled.json.serialHex]);
    expect((await auditor('GET', `/api/v1/certificates/${enrolled.json.serialHex}`)).json).to.include({ status: 'revoked', reason: 'keyCompromise' });
  });

  it('an approval not decided within approvals.ttlMinutes expires: approving it is KAKUIN_E_APPROVAL_EXPIRED, and an expired bulk job is cancelled having acted on nothing', async () => {
    const ids = await devices('EXP', THRESHOLD + 1);
    const asked = await operator('POST', '/api/v1/devices/bulk', { action: 'suspend', ids, reason: 'suspected clone batch' });
    expect(asked.status, asked.text).to.equal(202);
    expect(asked.json.job.state).to.equal('pending-approval');
    // The clock cannot be moved in a running service: the stored expiry is moved into the past instead.
    const db = new Database(registryFile());
    try {
      db.prepare('UPDATE approvals SET expires_at = ? WHERE id = ?').run(Date.now() - 1000, asked.json.approval.id);
    } finally {
      db.close();
    }
    // Looking at the job is enough to see it cancelled.
    expect((await auditor('GET', `/api/v1/jobs/${asked.json.job.id}`)).json.state).to.equal('cancelled');
    const late = await adminA('POST', `/api/v1/approvals/${asked.json.approval.id}/approve`);
    expect([late.status, late.json.code]).to.deep.equal([409, 'KAKUIN_E_APPROVAL_EXPIRED']);
    expect((await auditor('GET', `/api/v1/approvals/${asked.json.approval.id}`)).json.state).to.equal('expired');
    const job = (await auditor('GET', `/api/v1/jobs/${asked.json.job.id}`)).json;
    expect(job.state).to.equal('cancelled');
    expect(job.progress).to.deep.equal({ total: ids.length, acted: 0, skipped: 0, pending: ids.length });
    for (const id of ids) expect(await statusOf(id)).to.equal('registered');
  });

  it('a bulk action on up to approvals.bulkThreshold devices runs at once; above it the job waits in pending-approval until an admin approves, then acts on each device once', async () => {
    const small = await devices('SMALL', THRESHOLD);
    const run = await operator('POST', '/api/v1/devices/bulk', { action: 'suspend', ids: small, reason: 'firmware recall', ticket: 'INC-42' });
    expect(run.status, run.text).to.equal(202);
    expect(run.json.approval).to.equal(undefined);
    const done = await jobSettled(run.json.job.id);
    expect(done.json).to.deep.include({ state: 'done', requestedBy: 'token:the-operator', ticket: 'INC-42' });
    expect(done.json.progress).to.deep.equal({ total: THRESHOLD, acted: THRESHOLD, skipped: 0, pending: 0 });
    for (const id of small) expect(await statusOf(id)).to.equal('suspended');

    const big = await devices('BIG', THRESHOLD + 2, 'recall-model');
    const asked = await operator('POST', '/api/v1/devices/bulk', { action: 'revoke', filter: { model: 'recall-model' }, reason: 'keyCompromise', ticket: 'INC-43' });
    expect(asked.status, asked.text).to.equal(202);
    expect(asked.json.job).to.deep.include({ state: 'pending-approval', approvalId: asked.json.approval.id });
    expect(asked.json.approval).to.include({ kind: 'bulk-job', state: 'pending' });
    await new Promise((r) => setTimeout(r, 200));
    for (const id of big) expect(await statusOf(id)).to.equal('registered');
    expect((await operator('POST', `/api/v1/approvals/${asked.json.approval.id}/approve`)).json.code).to.equal('KAKUIN_E_FORBIDDEN');

    const ok = await adminA('POST', `/api/v1/approvals/${asked.json.approval.id}/approve`);
    expect(ok.status, ok.text).to.equal(200);
    const finished = await jobSettled(asked.json.job.id);
    expect(finished.json.state).to.equal('done');
    expect(finished.json.progress).to.deep.equal({ total: big.length, acted: big.length, skipped: 0, pending: 0 });
    expect((await adminB('POST', `/api/v1/approvals/${asked.json.approval.id}/approve`)).json.code).to.equal('KAKUIN_E_APPROVAL_DECIDED');
    await new Promise((r) => setTimeout(r, 200));
    for (const id of big) {
      expect(await statusOf(id)).to.equal('revoked');
      const revoked = await eventsOf(id, 'device.revoked');
      expect(revoked, id).to.have.length(1);
      expect(revoked[0]).to.deep.include({ actor: 'token:the-operator' });
      expect(revoked[0].details).to.include({ jobId: asked.json.job.id, approvalId: asked.json.approval.id, reason: 'keyCompromise', ticket: 'INC-43' });
    }
    const listed = (await auditor('GET', '/api/v1/jobs?limit=2')).json.jobs.map((j: { id: string }) => j.id);
    expect(listed[0]).to.equal(asked.json.job.id);
  });

  it('dryRun answers the count and a sample and changes nothing; the filter is the device list\'s own, strictly', async () => {
    const ids = await devices('DRY', 4, 'dry-model');
    const dry = await operator('POST', '/api/v1/devices/bulk', { action: 'revoke', filter: { model: 'dry-model', status: 'registered' }, reason: 'superseded', dryRun: true });
    expect(dry.status, dry.text).to.equal(200);
    expect(dry.json).to.include({ dryRun: true, count: 4, needsApproval: true });
    expect(dry.json.sample.map((d: { id: string }) => d.id)).to.deep.equal(ids);
    for (const id of ids) expect(await statusOf(id)).to.equal('registered');
    expect((await auditor('GET', '/api/v1/approvals?state=pending')).json.approvals.filter((a: { request: { total: number; action: string } }) => a.request.total === 4 && a.request.action === 'revoke')).to.deep.equal([]);

    const typo = await operator('POST', '/api/v1/devices/bulk', { action: 'revoke', filter: { modle: 'dry-model' }, reason: 'superseded', dryRun: true });
    expect([typo.status, typo.json.code]).to.deep.equal([400, 'KAKUIN_E_UNKNOWN_FIELD']);
    const both = await operator('POST', '/api/v1/devices/bulk', { action: 'revoke', filter: { model: 'dry-model' }, ids, reason: 'superseded' });
    expect([both.status, both.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);
    const badReason = await operator('POST', '/api/v1/devices/bulk', { action: 'revoke', ids, reason: 'because' });
    expect([badReason.status, badReason.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);
    const none = await operator('POST', '/api/v1/devices/bulk', { action: 'suspend', filter: { model: 'no-such-model' }, reason: 'x' });
    expect([none.status, none.json.code]).to.deep.equal([400, 'KAKUIN_E_BULK_EMPTY']);
    const unknown = await operator('POST', '/api/v1/devices/bulk', { action: 'suspend', ids: ['no-such-device'], reason: 'x' });
    expect([unknown.status, unknown.json.code]).to.deep.equal([404, 'KAKUIN_E_DEVICE_NOT_FOUND']);
    expect((await auditor('POST', '/api/v1/devices/bulk', { action: 'suspend', ids, reason: 'x', dryRun: true })).status).to.equal(403);
    for (const id of ids) expect(await statusOf(id)).to.equal('registered');
  });

  it('retire keeps the decommission reason, ticket and evidence with each device (GET device shows it); a device that cannot be retired is skipped with why', async () => {
    const ids = await devices('RET', 2, 'ret-model');
    expect((await adminA('POST', `/api/v1/devices/${ids[1]}/revoke`, { reason: 'keyCompromise' })).status).to.equal(200);
    const byOperator = await operator('POST', '/api/v1/devices/bulk', { action: 'retire', ids, reason: 'destroyed', ticket: 'RMA-9', evidence: 'e' });
    expect([byOperator.status, byOperator.json.code], 'retiring is an admin\'s act, in bulk too').to.deep.equal([403, 'KAKUIN_E_FORBIDDEN']);
    const noEvidence = await adminA('POST', '/api/v1/devices/bulk', { action: 'retire', ids, reason: 'destroyed', ticket: 'RMA-9' });
    expect([noEvidence.status, noEvidence.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);
    const r = await adminA('POST', '/api/v1/devices/bulk', { action: 'retire', ids, reason: 'destroyed', ticket: 'RMA-9', evidence: 'shredded, certificate of destruction #77' });
    expect(r.status, r.text).to.equal(202);
    const done = await jobSettled(r.json.job.id);
    expect(done.json.progress).to.deep.equal({ total: 2, acted: 1, skipped: 1, pending: 0 });
    const device = (await auditor('GET', `/api/v1/devices/${ids[0]}`)).json;
    expect(device.status).to.equal('retired');
    expect(device.decommission).to.deep.include({ reason: 'destroyed', ticket: 'RMA-9', evidence: 'shredded, certificate of destruction #77', actor: 'token:bootstrap', jobId: r.json.job.id });
    expect((await auditor('GET', `/api/v1/devices/${ids[1]}`)).json).to.include({ status: 'revoked' }).and.not.have.property('decommission');
  });
});
