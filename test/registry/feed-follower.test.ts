/** FeedFollower on its own, over an in-memory feed: order, exactly once, one poll at a time, poke, stop, errors. */
import { expect } from 'chai';
import { FeedFollower, type FeedFollowerOptions } from '../../registry/feed-follower.js';
import type { FeedEntry } from '../../registry/port.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

/** A feed in memory. A read takes its result when called, then waits for `gate` (a slow registry). */
class MemoryFeed {
  readonly entries: FeedEntry[] = [];
  reads = 0;
  failures: unknown[] = [];
  gate: Promise<void> | undefined;

  append(n: number): void {
    for (let i = 0; i < n; i++) {
      const seq = this.entries.length + 1;
      this.entries.push({ seq, at: new Date(), kind: 'certificate', serialHex: seq.toString(16).toUpperCase(), issuerId: 'device', status: 'revoked' });
    }
  }

  async readFeed(afterSeq: number, limit = 1000): Promise<FeedEntry[]> {
    this.reads++;
    const failure = this.failures.shift();
    const result = this.entries.filter((e) => e.seq > afterSeq).slice(0, limit);
    if (this.gate) await this.gate;
    if (failure !== undefined) throw failure;
    return result;
  }
}

describe('registry FeedFollower', function () {
  let feed: MemoryFeed;
  let batches: number[][];
  let errors: unknown[];
  const followers: FeedFollower[] = [];

  function follower(options: Partial<FeedFollowerOptions> = {}): FeedFollower {
    const f = new FeedFollower(feed, {
      afterSeq: 0,
      pollIntervalMs: 10,
      onEntries: (entries) => { batches.push(entries.map((e) => e.seq)); },
      onError: (e) => { errors.push(e); },
      ...options,
    });
    followers.push(f);
    return f;
  }

  const delivered = () => batches.flat();

  beforeEach(function () {
    feed = new MemoryFeed();
    batches = [];
    errors = [];
  });

  afterEach(async function () {
    for (const f of followers.splice(0)) await f.stop();
  });

  it('delivers every entry after afterSeq in seq order, in batches of batchSize, exactly once', async function () {
    feed.append(10);
    const f = follower({ afterSeq: 2, batchSize: 3 });
    expect(f.lastSeq).to.equal(2);
    f.start();
    await waitFor(() => f.lastSeq === 10, 'the backlog');
    expect(batches).to.deep.equal([[3, 4, 5], [6, 7, 8], [9, 10]]);
    feed.append(2);
    await waitFor(() => f.lastSeq === 12, 'new entries');
    await sleep(50);
    expect(delivered()).to.deep.equal([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(errors).to.deep.equal([]);
  });

  it('never runs onEntries concurrently, however often it is poked', async function () {
    let inFlight = 0;
    let most = 0;
    const f = follower({
      batchSize: 2,
      onEntries: async (entries) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await sleep(5);
        batches.push(entries.map((e) => e.seq));
        inFlight--;
      },
    });
    f.start();
    for (let i = 0; i < 20; i++) {
      feed.append(1);
      void f.poke();
      void f.poke();
      await sleep(i % 3);
    }
    await waitFor(() => f.lastSeq === 20, 'all 20 entries');
    expect(most).to.equal(1);
    expect(delivered()).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('poke polls at once; a poke during a poll runs exactly one more poll right after it', async function () {
    const f = follower({ pollIntervalMs: 60_000 });
    f.start();
    await waitFor(() => feed.reads === 1 && f.lastSuccessAt !== undefined, 'the first poll');
    feed.append(1);
    await f.poke();
    expect(delivered()).to.deep.equal([1]);
    expect(feed.reads).to.equal(2);

    const gate = deferred();
    feed.gate = gate.promise;
    const first = f.poke();
    await waitFor(() => feed.reads === 3, 'the gated read');
    feed.append(1); // committed after that read took its snapshot
    const second = f.poke();
    const third = f.poke();
    feed.gate = undefined;
    gate.resolve();
    await first;
    await Promise.all([second, third]);
    expect(delivered()).to.deep.equal([1, 2]);
    expect(feed.reads).to.equal(4);
  });

  it('stop: waits for the poll in progress, then delivers nothing more', async function () {
    const gate = deferred();
    feed.gate = gate.promise;
    const f = follower();
    f.start();
    await waitFor(() => feed.reads === 1, 'the gated read');
    feed.append(3);
    let stopped = false;
    const stopping = f.stop().then(() => { stopped = true; });
    await sleep(20);
    expect(stopped).to.equal(false);
    feed.gate = undefined;
    gate.resolve();
    await stopping;
    feed.append(2);
    await f.poke();
    await sleep(50);
    expect(delivered()).to.deep.equal([]);
    expect(feed.reads).to.equal(1);
  });

  it('stop during a delivery lets that delivery finish and keeps its position', async function () {
    feed.append(2);
    const release = deferred();
    let calls = 0;
    const f = follower({ onEntries: async (entries) => { calls++; await release.promise; batches.push(entries.map((e) => e.seq)); } });
    f.start();
    await waitFor(() => calls === 1, 'the delivery');
    const stopping = f.stop();
    release.resolve();
    await stopping;
    expect(delivered()).to.deep.equal([1, 2]);
    expect(f.lastSeq).to.equal(2);
    f.start();
    feed.append(1);
    await waitFor(() => f.lastSeq === 3, 'resumed after restart');
    expect(delivered()).to.deep.equal([1, 2, 3]);
  });

  it('a failed read goes to onError and is retried; nothing is lost or repeated', async function () {
    const boom = new Error('registry unavailable');
    feed.append(3);
    feed.failures.push(boom, boom);
    const f = follower();
    f.start();
    await waitFor(() => f.lastSeq === 3, 'the entries after two failures');
    expect(errors).to.deep.equal([boom, boom]);
    expect(batches).to.deep.equal([[1, 2, 3]]);
  });

  it('a failed delivery goes to onError and the same entries come again until delivered', async function () {
    feed.append(3);
    const refused = new Error('consumer not ready');
    const attempts: number[][] = [];
    const f = follower({
      onEntries: (entries) => {
        attempts.push(entries.map((e) => e.seq));
        if (attempts.length === 1) throw refused;
      },
    });
    f.start();
    await waitFor(() => f.lastSeq === 3, 'the redelivery');
    feed.append(1);
    await waitFor(() => f.lastSeq === 4, 'the next entry');
    expect(attempts).to.deep.equal([[1, 2, 3], [1, 2, 3], [4]]);
    expect(errors).to.deep.equal([refused]);
  });

  it('lastSuccessAt moves when a poll catches up and stands still while reads fail', async function () {
    const f = follower();
    expect(f.lastSuccessAt).to.equal(undefined);
    feed.failures.push(...Array.from({ length: 5 }, () => new Error('down')));
    f.start();
    await waitFor(() => errors.length === 5, 'five failures');
    expect(f.lastSuccessAt).to.equal(undefined);
    const recovered = Date.now();
    await waitFor(() => f.lastSuccessAt !== undefined, 'recovery');
    expect(f.lastSuccessAt!.getTime()).to.be.at.least(recovered - 1);
    const last = () => f.lastSuccessAt!.getTime();
    await sleep(30);
    expect(Date.now() - last()).to.be.below(30);
    feed.failures.push(...Array.from({ length: 1000 }, () => new Error('down again')));
    const before = errors.length;
    await waitFor(() => errors.length > before, 'the next failure');
    const frozen = last();
    await sleep(50);
    expect(last()).to.equal(frozen);
  });

  it('keeps following when onError itself throws', async function () {
    feed.failures.push(new Error('down'));
    feed.append(1);
    const f = follower({ onError: () => { throw new Error('broken logger'); } });
    f.start();
    await waitFor(() => f.lastSeq === 1, 'the entry after a failing onError');
  });

  it('refuses bad options', function () {
    const onEntries = () => undefined;
    expect(() => new FeedFollower(feed, { afterSeq: -1, onEntries })).to.throw(RangeError);
    expect(() => new FeedFollower(feed, { afterSeq: 1.5, onEntries })).to.throw(RangeError);
    expect(() => new FeedFollower(feed, { afterSeq: 0, pollIntervalMs: 0, onEntries })).to.throw(RangeError);
    expect(() => new FeedFollower(feed, { afterSeq: 0, batchSize: 10_001, onEntries })).to.throw(RangeError);
    expect(() => new FeedFollower(feed, { afterSeq: 0, onEntries: undefined as unknown as () => void })).to.throw(TypeError);
    expect(() => new FeedFollower({} as MemoryFeed, { afterSeq: 0, onEntries })).to.throw(TypeError);
  });
  it('reads at once when the registry wakes it (a change stream), long before the next poll, and stops watching on stop', async () => {
    let wake: (() => void) | undefined;
    let unwatched = 0;
    const watched = Object.assign(feed, {
      watchFeed(w: () => void) {
        wake = w;
        return () => { unwatched++; };
      },
    });
    const f = new FeedFollower(watched, {
      afterSeq: 0, pollIntervalMs: 60_000,
      onEntries: (entries) => { batches.push(entries.map((e) => e.seq)); },
      onError: (e) => { errors.push(e); },
    });
    followers.push(f);
    f.start();
    await waitFor(() => feed.reads === 1, 'the first poll');
    expect(wake, 'watchFeed called by start').to.be.a('function');
    feed.append(2);
    wake!();
    await waitFor(() => batches.length === 1, 'the woken read', 500);
    expect(batches).to.deep.equal([[1, 2]]);
    await f.stop();
    expect(unwatched).to.equal(1);
    feed.append(1);
    wake!();
    await sleep(30);
    expect(batches, 'nothing read after stop').to.deep.equal([[1, 2]]);
  });
});
