/**
 * MongoChangeFeed over a stand-in for the driver's Db (no MongoDB server here): where it resumes,
 * when it saves the resume token, what it does when the token has fallen off the oplog, and that a
 * failed delivery is not recorded as done.
 */
import { expect } from 'chai';
import { MongoServerError, type Db, type MongoClient } from 'mongodb';
import { CHANGE_STREAM_HISTORY_LOST, MongoChangeFeed, startFeedWakeUp } from '../../registry/mongodb/change-feed.js';
import { MongoRegistry } from '../../registry/mongodb/mongodb-registry.js';
import { COLLECTIONS, feedDoc, type FeedDoc } from '../../registry/mongodb/documents.js';
import type { FeedEntry } from '../../registry/port.js';

interface Change { _id: { _data: string }; operationType: 'insert'; fullDocument: FeedDoc }

/** A database with a feedCursors collection in a Map and a scripted change stream on the feed. */
class FakeDb {
  readonly cursors = new Map<string, { resumeToken: unknown }>();
  readonly watches: { pipeline: unknown; options: unknown }[] = [];
  /** What each successive watch() yields: changes, then (optionally) an error. */
  readonly scripts: { changes: Change[]; error?: Error }[] = [];

  collection(name: string): unknown {
    if (name === COLLECTIONS.feedCursors) {
      return {
        findOne: async (f: { _id: string }) => {
          const saved = this.cursors.get(f._id);
          return saved === undefined ? null : { _id: f._id, ...saved };
        },
        updateOne: async (f: { _id: string }, u: { $set: { resumeToken: unknown } }) => {
          this.cursors.set(f._id, { resumeToken: u.$set.resumeToken });
        },
        deleteOne: async (f: { _id: string }) => {
          this.cursors.delete(f._id);
        },
      };
    }
    if (name === COLLECTIONS.feed) {
      return {
        watch: (pipeline: unknown, options: unknown) => {
          this.watches.push({ pipeline, options });
          const script = this.scripts.shift() ?? { changes: [] };
          let closed = false;
          let wake: (() => void) | undefined;
          return {
            close: async () => { closed = true; wake?.(); },
            async *[Symbol.asyncIterator]() {
              for (const c of script.changes) {
                if (closed) return;
                yield c;
              }
              if (script.error !== undefined) throw script.error;
              // An open stream with nothing more: wait until closed.
              await new Promise<void>((resolve) => { wake = resolve; if (closed) resolve(); });
            },
          };
        },
      };
    }
    throw new Error(`unexpected collection ${name}`);
  }
}

function change(seq: number): Change {
  return {
    _id: { _data: `token-${seq}` }, operationType: 'insert',
    fullDocument: feedDoc(seq, { at: new Date(seq), kind: 'certificate', serialHex: `0${seq}`, issuerId: 'device', status: 'revoked', previousStatus: 'good' }),
  };
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('registry/mongodb: change feed', function () {
  it('delivers inserts in order and saves each resume token after its delivery', async function () {
    const db = new FakeDb();
    db.scripts.push({ changes: [change(1), change(2)] });
    const seen: FeedEntry[] = [];
    const feed = new MongoChangeFeed(db as unknown as Db, { consumer: 'gateway-a', onChange: (e) => { seen.push(e); } });
    feed.start();
    await waitFor(() => db.cursors.get('gateway-a')?.resumeToken !== undefined && seen.length === 2, 'two changes');
    await feed.stop();
    expect(seen.map((e) => [e.seq, e.serialHex, e.status])).to.deep.equal([[1, '01', 'revoked'], [2, '02', 'revoked']]);
    expect(db.cursors.get('gateway-a')).to.deep.equal({ resumeToken: { _data: 'token-2' } });
    expect(db.watches[0].options).to.deep.equal({});
    expect(db.watches[0].pipeline).to.deep.equal([{ $match: { operationType: 'insert' } }]);
  });

  it('a restarted consumer resumes after its saved token; another consumer keeps its own', async function () {
    const db = new FakeDb();
    db.cursors.set('gateway-a', { resumeToken: { _data: 'token-7' } });
    db.scripts.push({ changes: [change(8)] });
    const seen: number[] = [];
    const feed = new MongoChangeFeed(db as unknown as Db, { consumer: 'gateway-a', onChange: (e) => { seen.push(e.seq); } });
    feed.start();
    await waitFor(() => seen.length === 1, 'the change after the token');
    await feed.stop();
    expect(db.watches[0].options).to.deep.equal({ resumeAfter: { _data: 'token-7' } });
    expect(db.cursors.get('gateway-a')).to.deep.equal({ resumeToken: { _data: 'token-8' } });

    const other = new MongoChangeFeed(db as unknown as Db, { consumer: 'ocsp-b', onChange: () => undefined });
    other.start();
    await waitFor(() => db.watches.length === 2, 'the second watch');
    await other.stop();
    expect(db.watches[1].options).to.deep.equal({});
  });

  it('when the saved token has left the oplog: forgets it, says so, and follows from now', async function () {
    const db = new FakeDb();
    db.cursors.set('gateway-a', { resumeToken: { _data: 'ancient' } });
    db.scripts.push({ changes: [], error: new MongoServerError({ code: CHANGE_STREAM_HISTORY_LOST, errmsg: 'resume point may no longer be in the oplog' }) });
    db.scripts.push({ changes: [change(40)] });
    let lost = 0;
    const seen: number[] = [];
    const feed = new MongoChangeFeed(db as unknown as Db, { consumer: 'gateway-a', onChange: (e) => { seen.push(e.seq); }, onResumeLost: () => { lost++; } });
    feed.start();
    await waitFor(() => seen.length === 1, 'the change after the reopen');
    await feed.stop();
    expect(lost).to.equal(1);
    expect(db.watches.map((w) => w.options)).to.deep.equal([{ resumeAfter: { _data: 'ancient' } }, {}]);
    expect(db.cursors.get('gateway-a')).to.deep.equal({ resumeToken: { _data: 'token-40' } });
  });

  it('a failed delivery is not saved as done: the stream reopens after the last delivered change', async function () {
    const db = new FakeDb();
    db.scripts.push({ changes: [change(1), change(2)] });
    db.scripts.push({ changes: [change(2)] });
    const seen: number[] = [];
    const errors: unknown[] = [];
    let failOnce = true;
    const feed = new MongoChangeFeed(db as unknown as Db, {
      consumer: 'c', retryMs: 1, onError: (e) => errors.push(e),
      onChange: (e) => {
        if (e.seq === 2 && failOnce) {
          failOnce = false;
          throw new Error('consumer busy');
        }
        seen.push(e.seq);
      },
    });
    feed.start();
    await waitFor(() => seen.length === 2, 'the redelivery');
    await feed.stop();
    expect(seen).to.deep.equal([1, 2]);
    expect(errors.map(String)).to.deep.equal(['Error: consumer busy']);
    expect(db.watches.map((w) => w.options)).to.deep.equal([{}, { resumeAfter: { _data: 'token-1' } }]);
  });

  it('stops at once, even while waiting to reopen a failed stream', async function () {
    const db = new FakeDb();
    db.scripts.push({ changes: [], error: new Error('network') });
    const errors: unknown[] = [];
    const feed = new MongoChangeFeed(db as unknown as Db, { consumer: 'c', retryMs: 60_000, onChange: () => undefined, onError: (e) => errors.push(e) });
    feed.start();
    await waitFor(() => errors.length === 1, 'the failure');
    const started = Date.now();
    await feed.stop();
    expect(Date.now() - started).to.be.below(1000);
    expect(db.watches).to.have.length(1);
  });

  it('wakes a follower on each change when the registry is MongoDB, and does nothing for another adapter', async function () {
    const db = new FakeDb();
    db.scripts.push({ changes: [change(1), change(2), change(3)] });
    const registry = new MongoRegistry({} as MongoClient, db as unknown as Db, 1, true);
    let pokes = 0;
    const feed = startFeedWakeUp(registry, 'ocsp-a', () => { pokes++; });
    expect(feed).to.be.instanceOf(MongoChangeFeed);
    await waitFor(() => pokes === 3, 'three pokes');
    await feed!.stop();
    expect(db.cursors.get('ocsp-a')).to.deep.equal({ resumeToken: { _data: 'token-3' } });
    expect(startFeedWakeUp({ readFeed: async () => [] }, 'x', () => { pokes++; })).to.equal(undefined);
  });
});
