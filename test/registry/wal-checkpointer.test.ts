/** WAL checkpoints in a worker thread (registry/sqlite/wal-checkpointer.ts), over a scratch WAL file and the registry. */
import { statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { WalCheckpointer } from '../../registry/sqlite/wal-checkpointer.js';
import { makeTempDir } from '../support/index.js';

const PAGE = 4096;

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('registry/sqlite WAL checkpoints in a worker thread', function () {
  this.timeout(20_000);
  let tmp: ReturnType<typeof makeTempDir>;
  let file: string;
  let db: Database.Database;

  beforeEach(function () {
    tmp = makeTempDir('kakuin-wal-checkpointer-');
    file = path.join(tmp.dir, 'scratch.db');
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, blob BLOB NOT NULL) STRICT');
  });

  afterEach(function () {
    if (db.open) db.close();
    tmp.cleanup();
  });

  /** `rows` rows of about one page each, from `from` on, committed in one transaction. */
  function write(rows: number, from = 0): void {
    const insert = db.prepare('INSERT INTO t (n, blob) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = from; i < from + rows; i++) insert.run(i, Buffer.alloc(PAGE - 200, i % 251));
    })();
  }

  it('copies committed pages into the database file while the writer\'s own threshold is far away', async function () {
    write(300); // ~300 WAL pages: under the writer's default threshold (1,000), so nothing checkpointed yet
    const before = statSync(file).size;
    expect(before).to.be.below(100 * PAGE);
    const cp = new WalCheckpointer(db, { path: file, synchronous: 'NORMAL' }, { intervalMs: 5 });
    try {
      expect(db.pragma('wal_autocheckpoint', { simple: true })).to.equal(16_384);
      await until('a checkpoint by the worker', () => cp.checkpoints > 0);
      expect(statSync(file).size).to.be.above(300 * PAGE);
    } finally {
      await cp.stop();
    }
    expect(db.pragma('wal_autocheckpoint', { simple: true })).to.equal(1000);
    expect((db.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c).to.equal(300);
  });

  it('keeps the WAL short while a writer keeps committing (it restarts from the beginning)', async function () {
    const cp = new WalCheckpointer(db, { path: file, synchronous: 'NORMAL' }, { intervalMs: 5 });
    try {
      for (let k = 0; k < 30; k++) {
        write(100, k * 100);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      // 3,000 pages committed; the writer's threshold (16,384) never fired, so only the worker
      // can have kept the WAL below a fraction of that.
      expect(statSync(`${file}-wal`).size).to.be.below(1000 * PAGE);
      expect(cp.checkpoints).to.be.above(5);
    } finally {
      await cp.stop();
    }
    expect((db.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c).to.equal(3000);
  });

  it('a worker that cannot open the file reports it and gives the writer its threshold back', async function () {
    const errors: unknown[] = [];
    const cp = new WalCheckpointer(db, { path: path.join(tmp.dir, 'missing.db'), synchronous: 'NORMAL' }, { onError: (e) => errors.push(e) });
    await until('the worker to fail', () => errors.length > 0);
    await cp.stop();
    expect((errors[0] as { code?: string }).code).to.equal('SQLITE_CANTOPEN');
    expect(db.pragma('wal_autocheckpoint', { simple: true })).to.equal(1000);
  });

  it('a registry checkpointing in the background closes cleanly and keeps what it committed', async function () {
    db.close();
    const regFile = path.join(tmp.dir, 'registry.db');
    const registry = await openSqliteRegistry({ path: regFile });
    registry.checkpointInBackground({ intervalMs: 5 });
    registry.checkpointInBackground(); // idempotent: still one worker
    const m = await registry.createManufacturer({ name: 'Checkpointed' });
    for (let i = 0; i < 200; i++) await registry.createDevice({ manufacturerId: m.id, serialNumber: `CP-${i}` });
    await until('a background checkpoint', () => registry.backgroundCheckpoints > 0);
    await registry.close();
    const again = await openSqliteRegistry({ path: regFile, readonly: true });
    try {
      expect(await again.findDevices({ manufacturerId: m.id, limit: 1000 })).to.have.length(200);
      expect(again.backgroundCheckpoints).to.equal(0);
    } finally {
      await again.close();
    }
  });
});
