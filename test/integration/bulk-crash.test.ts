/**
 * A bulk revoke interrupted by killing the service (SIGKILL, a child process running `kakuin serve`)
 * while its job runs, then resumed by a new process on the same SQLite file: the job finishes by
 * itself at start, and every device of the frozen set is acted on exactly once — one
 * `device.revoked` audit event and one device feed entry per device, none missing, none doubled.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { makeTempDir } from '../support/index.js';
import { request, spawnService, type ChildService } from '../support/service.js';

const N = 5000;

describe('bulk job across a service crash (kill -9 mid-job, then restart on the same file)', function () {
  this.timeout(180_000);
  let tmp: { dir: string; cleanup: () => void };
  let child: ChildService | undefined;

  before(() => {
    tmp = makeTempDir();
  });

  after(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    tmp?.cleanup();
  });

  it('resumes at start and acts on each device of the frozen set exactly once', async () => {
    const config = path.join(tmp.dir, 'kakuin.json');
    writeFileSync(config, JSON.stringify({ approvals: { bulkThreshold: N } }));
    const env = {
      KAKUIN_DATA_DIR: path.join(tmp.dir, 'data'), KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0',
      KAKUIN_KEY_PASSPHRASE: 'bulk-crash-passphrase', KAKUIN_KEY_KDF_COST: '10', KAKUIN_LOG_LEVEL: 'error', KAKUIN_CONFIG: config,
      KAKUIN_ADMIN_TOKEN: `kktest_${randomBytes(24).toString('base64url')}`,
    };
    const file = path.join(env.KAKUIN_DATA_DIR, 'kakuin.db');
    // First start creates the CA and the registry; the devices are then written straight into the file.
    child = await spawnService(env);
    child.proc.kill('SIGTERM');
    await child.exited;
    const registry = await openSqliteRegistry({ path: file });
    const m = await registry.createManufacturer({ name: 'Recall Works' });
    const ids: string[] = [];
    for (let i = 0; i < N; i++) ids.push((await registry.createDevice({ manufacturerId: m.id, serialNumber: `RC-${i}`, identifiers: {}, model: 'recalled' })).id);
    await registry.close();

    child = await spawnService(env);
    const root = readFileSync(path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem'), 'utf8');
    const admin = (url: string, method: string, p: string, body?: object) => request(url, root, method, p, { token: env.KAKUIN_ADMIN_TOKEN, body });
    const started = await admin(child.url, 'POST', '/api/v1/devices/bulk', { action: 'revoke', filter: { manufacturerId: m.id, model: 'recalled' }, reason: 'keyCompromise', ticket: 'RECALL-1' });
    expect(started.status, started.text).to.equal(202);
    const jobId = started.json.job.id as string;
    expect(started.json.job.progress.total).to.equal(N);

    // Kill it once a part of the job is done.
    let seen = 0;
    for (;;) {
      const j = await admin(child.url, 'GET', `/api/v1/jobs/${jobId}`);
      seen = j.json.progress.acted;
      if (seen >= N / 10 || j.json.state !== 'running') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.proc.kill('SIGKILL');
    await child.exited;
    const atKill = (() => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT state, acted, skipped FROM bulk_jobs WHERE id = ?').get(jobId) as { state: string; acted: number; skipped: number };
      } finally {
        db.close();
      }
    })();
    expect(atKill.state, 'the job was still running when the service was killed').to.equal('running');
    expect(atKill.acted).to.be.greaterThan(0).and.below(N);

    child = await spawnService(env);
    const until = Date.now() + 120_000;
    let job;
    for (;;) {
      job = (await admin(child.url, 'GET', `/api/v1/jobs/${jobId}`)).json;
      if (job.state !== 'running' || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(job.state).to.equal('done');
    expect(job.progress).to.deep.equal({ total: N, acted: N, skipped: 0, pending: 0 });

    const db = new Database(file, { readonly: true });
    try {
      const perDevice = (sql: string) => new Map((db.prepare(sql).all() as { id: string; n: number }[]).map((r) => [r.id, r.n]));
      const audits = perDevice(`SELECT device_id AS id, count(*) AS n FROM audit_events WHERE type = 'device.revoked' AND json_extract(details, '$.jobId') = '${jobId}' GROUP BY device_id`);
      const feed = perDevice(`SELECT device_id AS id, count(*) AS n FROM revocation_feed WHERE kind = 'device' AND status = 'revoked' GROUP BY device_id`);
      const missing = ids.filter((id) => audits.get(id) !== 1 || feed.get(id) !== 1);
      expect(missing.slice(0, 5), `${missing.length} devices not acted on exactly once`).to.deep.equal([]);
      expect(audits.size).to.equal(N);
      expect((db.prepare(`SELECT count(*) AS n FROM devices WHERE manufacturer_id = ? AND status = 'revoked'`).get(m.id) as { n: number }).n).to.equal(N);
    } finally {
      db.close();
    }
  });
});
