/** GroupCommit on its own, over a scratch table: batching, savepoint isolation, commit-before-resolve. */
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { KakuinError } from '../../errors/index.js';
import { toKakuinError } from '../../registry/sqlite/driver-errors.js';
import { GroupCommit } from '../../registry/sqlite/group-commit.js';
import { makeTempDir } from '../support/index.js';

describe('registry/sqlite group commit', function () {
  let tmp: ReturnType<typeof makeTempDir>;
  let file: string;
  let db: Database.Database;
  let batches: number[];

  beforeEach(function () {
    tmp = makeTempDir('kakuin-group-commit-');
    file = path.join(tmp.dir, 'scratch.db');
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, note TEXT NOT NULL) STRICT');
    batches = [];
  });

  afterEach(function () {
    db.close();
    tmp.cleanup();
  });

  /** Inserts row n; item.fail makes it throw after its insert (which the savepoint must undo). */
  function groupCommit(maxBatch?: number): GroupCommit<{ n: number; fail?: KakuinError }, number> {
    const insert = db.prepare('INSERT INTO t (n, note) VALUES (?, ?)');
    return new GroupCommit(db, (item: { n: number; fail?: KakuinError }) => {
      insert.run(item.n, `row ${item.n}`);
      if (item.fail) throw item.fail;
      return item.n;
    }, {
      maxBatch,
      toError: (e) => toKakuinError(e, { operation: 'test' }),
      isFatal: (e) => e.code === 'KAKUIN_E_REGISTRY_UNAVAILABLE',
      onCommit: (n) => batches.push(n),
    });
  }

  const count = () => (db.prepare('SELECT count(*) AS c FROM t').get() as { c: number }).c;

  it('applies each item of a batch once when none refuses; with a refusal, runs the batch again in savepoints', async function () {
    const applied = new Map<number, number>();
    const insert = db.prepare('INSERT INTO t (n, note) VALUES (?, ?)');
    const gc = new GroupCommit(db, (item: { n: number; fail?: boolean }) => {
      applied.set(item.n, (applied.get(item.n) ?? 0) + 1);
      insert.run(item.n, `row ${item.n}`);
      if (item.fail) throw new KakuinError('KAKUIN_E_VALIDATION', `item ${item.n} refused`);
      return item.n;
    }, { toError: (e) => toKakuinError(e, { operation: 'test' }), isFatal: (e) => e.code === 'KAKUIN_E_REGISTRY_UNAVAILABLE', onCommit: (n) => batches.push(n) });
    await Promise.all(Array.from({ length: 10 }, (_, n) => gc.submit({ n })));
    expect([...applied.values()]).to.deep.equal(Array(10).fill(1));
    applied.clear();
    const settled = await Promise.allSettled(Array.from({ length: 10 }, (_, n) => gc.submit({ n: 100 + n, fail: n === 4 })));
    expect(settled.map((r) => r.status)).to.deep.equal(Array.from({ length: 10 }, (_, n) => (n === 4 ? 'rejected' : 'fulfilled')));
    // The whole try reached item 4 and stopped; the savepoint run applied all ten.
    expect([...applied.entries()].map(([n, k]) => [n - 100, k])).to.deep.equal(Array.from({ length: 10 }, (_, n) => [n, n <= 4 ? 2 : 1]));
    expect(count()).to.equal(19);
    expect(batches).to.deep.equal([10, 10]);
  });

  it('commits 250 calls made in one turn in transactions of 100, 100 and 50', async function () {
    const gc = groupCommit();
    const results = await Promise.all(Array.from({ length: 250 }, (_, n) => gc.submit({ n })));
    expect(results).to.deep.equal(Array.from({ length: 250 }, (_, n) => n));
    expect(batches).to.deep.equal([100, 100, 50]);
    expect(count()).to.equal(250);
  });

  it('calls spread over several turns of the event loop get their own transactions', async function () {
    const gc = groupCommit();
    await gc.submit({ n: 1 });
    await gc.submit({ n: 2 });
    expect(batches).to.deep.equal([1, 1]);
  });

  it('a failing item rejects alone and its writes are undone; the others commit', async function () {
    const gc = groupCommit();
    const refused = new KakuinError('KAKUIN_E_SERIAL_EXISTS', 'refused');
    const outcomes = await Promise.allSettled([0, 1, 2, 3, 4].map((n) => gc.submit({ n, fail: n === 2 ? refused : undefined })));
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((outcomes[2] as PromiseRejectedResult).reason).to.equal(refused);
    expect(batches).to.deep.equal([5]);
    expect((db.prepare('SELECT n FROM t ORDER BY n').all() as { n: number }[]).map((r) => r.n)).to.deep.equal([0, 1, 3, 4]);
  });

  it('a driver error in one item (constraint) is mapped and rejects only that item', async function () {
    const gc = groupCommit();
    const outcomes = await Promise.allSettled([7, 7, 8].map((n) => gc.submit({ n })));
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    const reason = (outcomes[1] as PromiseRejectedResult).reason as KakuinError;
    expect(reason).to.be.instanceOf(KakuinError);
    expect(reason.code).to.equal('KAKUIN_E_INTERNAL');
    expect(count()).to.equal(2);
  });

  it('a fatal error rejects the whole batch and commits none of it', async function () {
    const gc = groupCommit();
    const busy = new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'busy');
    const outcomes = await Promise.allSettled([0, 1, 2].map((n) => gc.submit({ n, fail: n === 1 ? busy : undefined })));
    expect(outcomes.map((o) => o.status)).to.deep.equal(['rejected', 'rejected', 'rejected']);
    expect(count()).to.equal(0);
    expect(batches).to.deep.equal([]);
  });

  it('resolves only after COMMIT: another connection sees the row when the promise resolves', async function () {
    const gc = groupCommit();
    const other = new Database(file, { readonly: true });
    try {
      const seen = await Promise.all([1, 2, 3].map((n) => gc.submit({ n }).then((v) =>
        other.prepare('SELECT n FROM t WHERE n = ?').get(v) !== undefined)));
      expect(seen).to.deep.equal([true, true, true]);
    } finally {
      other.close();
    }
  });

  it('another process holding the write lock makes the batch fail with KAKUIN_E_REGISTRY_UNAVAILABLE', async function () {
    db.pragma('busy_timeout = 20');
    const gc = groupCommit();
    const holder = new Database(file);
    holder.exec('BEGIN IMMEDIATE');
    try {
      const outcomes = await Promise.allSettled([1, 2].map((n) => gc.submit({ n })));
      for (const o of outcomes) {
        expect(o.status).to.equal('rejected');
        expect(((o as PromiseRejectedResult).reason as KakuinError).code).to.equal('KAKUIN_E_REGISTRY_UNAVAILABLE');
      }
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(await gc.submit({ n: 3 })).to.equal(3);
  });

  it('drain commits everything queued at once', function () {
    const gc = groupCommit(10);
    const promises = Array.from({ length: 25 }, (_, n) => gc.submit({ n }));
    // 20 were flushed when the queue reached 10 (twice); 5 wait for setImmediate.
    expect(gc.pending).to.equal(5);
    gc.drain();
    expect(gc.pending).to.equal(0);
    expect(count()).to.equal(25);
    expect(batches).to.deep.equal([10, 10, 5]);
    return Promise.all(promises);
  });
});
