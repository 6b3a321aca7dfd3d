/** RecentFeedEntries (registry/sqlite/recent-feed.ts): the followers of one process read each feed entry from SQLite once. */
import path from 'node:path';
import { expect } from 'chai';
import type { FeedEntry } from '../../registry/port.js';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { RecentFeedEntries } from '../../registry/sqlite/recent-feed.js';
import { makeTempDir } from '../support/index.js';

/** A feed of `n` entries (seq 1..n) and a fetch that counts the rows it returns. */
function feed(n: number): { log: FeedEntry[]; fetched: { rows: number; calls: number }; fetch: (after: number, limit: number) => FeedEntry[] } {
  const log = Array.from({ length: n }, (_, i) => ({ seq: i + 1, at: new Date(0), kind: 'certificate', serialHex: (i + 1).toString(16).toUpperCase(), issuerId: 'device', status: 'good' }) as FeedEntry);
  const fetched = { rows: 0, calls: 0 };
  return {
    log, fetched,
    fetch: (after, limit) => {
      fetched.calls++;
      const rows = log.filter((e) => e.seq > after).slice(0, limit).map((e) => ({ ...e }));
      fetched.rows += rows.length;
      return rows;
    },
  };
}

const seqs = (entries: FeedEntry[]) => entries.map((e) => e.seq);

describe('registry/sqlite recent feed entries', function () {
  it('two followers reading the same entries fetch them from the store once', function () {
    const f = feed(50);
    const cache = new RecentFeedEntries();
    expect(seqs(cache.read(0, 20, f.fetch))).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(seqs(cache.read(0, 20, f.fetch))).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(seqs(cache.read(10, 20, f.fetch))).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 11));
    expect(seqs(cache.read(30, 100, f.fetch))).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 31));
    expect(seqs(cache.read(0, 100, f.fetch))).to.deep.equal(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(f.fetched.rows).to.equal(50);
  });

  it('entries committed after a read are found by the next one, contiguously', function () {
    const f = feed(5);
    const cache = new RecentFeedEntries();
    expect(seqs(cache.read(0, 100, f.fetch))).to.deep.equal([1, 2, 3, 4, 5]);
    f.log.push({ ...f.log[0], seq: 6 }, { ...f.log[0], seq: 7 });
    expect(seqs(cache.read(3, 100, f.fetch))).to.deep.equal([4, 5, 6, 7]);
    expect(seqs(cache.read(5, 100, f.fetch))).to.deep.equal([6, 7]);
    expect(f.fetched.rows).to.equal(7);
  });

  it('a read before the kept run goes to the store; only `max` entries are kept; entries are frozen', function () {
    const f = feed(30);
    const cache = new RecentFeedEntries(10);
    const all = cache.read(0, 100, f.fetch);
    expect(seqs(all)).to.have.length(30);
    expect(Object.isFrozen(all[0])).to.equal(true);
    const rows = f.fetched.rows;
    expect(seqs(cache.read(25, 100, f.fetch))).to.deep.equal([26, 27, 28, 29, 30]);
    expect(f.fetched.rows).to.equal(rows); // kept: the newest ten
    expect(seqs(cache.read(5, 3, f.fetch))).to.deep.equal([6, 7, 8]);
    expect(f.fetched.rows).to.equal(rows + 3); // no longer kept: read again
  });

  it('the registry answers readFeed from it with the same entries as SQLite holds', async function () {
    const tmp = makeTempDir('kakuin-recent-feed-');
    try {
      const registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'r.db') });
      const other = await openSqliteRegistry({ path: path.join(tmp.dir, 'r.db') });
      try {
        const m = await registry.createManufacturer({ name: 'Feed' });
        const d = await registry.createDevice({ manufacturerId: m.id, serialNumber: 'F-1' });
        // Another connection (another process) changes the device: its entries must show up.
        const before = await registry.readFeed(0);
        await other.applyStatusChange({ device: { id: d.id, from: ['registered'], to: 'retired' }, certificates: [], audit: [] });
        const viaCache = await registry.readFeed(0);
        const reader = await openSqliteRegistry({ path: path.join(tmp.dir, 'r.db'), readonly: true });
        const fresh = await reader.readFeed(0);
        await reader.close();
        expect(viaCache).to.have.length(before.length + 1);
        expect(viaCache[viaCache.length - 1]).to.include({ kind: 'device', deviceId: d.id, status: 'retired' });
        expect(viaCache.map((e) => [e.seq, e.kind, e.status])).to.deep.equal(fresh.map((e) => [e.seq, e.kind, e.status]));
      } finally {
        await other.close();
        await registry.close();
      }
    } finally {
      tmp.cleanup();
    }
  });
});
