/**
 * The in-memory aggregator over a real SQLite activity store: a failed flush loses nothing, counts
 * split at an hour boundary, and sessions follow admissions and closes.
 */
import path from 'node:path';
import { expect } from 'chai';
import { ActivityAggregator } from '../../operations/activity/aggregator.js';
import type { ActivityBatch } from '../../registry/activity.js';
import { openSqliteRegistry, type SqliteRegistry } from '../../registry/sqlite/index.js';
import { makeTempDir } from '../support/index.js';

const H = 3_600_000;
const T0 = Date.UTC(2026, 11, 7, 10, 59, 59);

describe('operations/activity aggregator', function () {
  let tmp: ReturnType<typeof makeTempDir>;
  let registry: SqliteRegistry;
  beforeEach(async function () {
    tmp = makeTempDir('kakuin-aggregator-');
    registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
  });
  afterEach(async function () {
    await registry.close();
    tmp.cleanup();
  });

  it('keeps a batch whose write failed and writes it with the next flush, counted once', async function () {
    let fail = true;
    const store = {
      ...registry.activity,
      recordActivity: (b: ActivityBatch) => (fail ? Promise.reject(new Error('disk full')) : registry.activity.recordActivity(b)),
      deviceActivity: registry.activity.deviceActivity.bind(registry.activity),
    } as typeof registry.activity;
    const errors: unknown[] = [];
    let now = T0 - 10_000;
    const a = new ActivityAggregator({ store, flushIntervalMs: 1000, now: () => now, onFlushError: (e) => errors.push(e) });
    a.admitted('d1', '198.51.100.7', 'http');
    a.traffic('d1', 2, 100);
    await a.flush();
    expect(errors).to.have.length(1);
    a.traffic('d1', 1, 10);
    fail = false;
    await a.flush();
    const act = await registry.activity.deviceActivity('d1');
    expect(act?.hourly).to.have.length(1);
    expect(act?.hourly[0]).to.include({ messages: 3, bytes: 110, admitted: 1 });
    expect(act?.openSessions).to.deep.equal([{ address: '198.51.100.7', recorderId: a.recorderId }]);
    now += 1;
    a.closed('d1', '198.51.100.7');
    await a.flush();
    expect((await registry.activity.deviceActivity('d1'))?.openSessions).to.deep.equal([]);
  });

  it('counts traffic on either side of an hour boundary in its own hour', async function () {
    let now = T0;
    const a = new ActivityAggregator({ store: registry.activity, flushIntervalMs: 1000, now: () => now });
    a.traffic('d2', 1, 5);
    now = T0 + 2000;
    a.traffic('d2', 1, 7);
    await a.flush();
    const hours = (await registry.activity.deviceActivity('d2'))!.hourly.map((h) => [h.hour.getTime(), h.bytes]);
    expect(hours).to.deep.equal([[T0 - (T0 % H), 5], [T0 - (T0 % H) + H, 7]]);
  });
});
