/**
 * The activity port's contract (registry/activity.ts), run on every adapter that implements it:
 * batches add up, last seen only moves forward, each recorder's sessions replace its own only,
 * retention and erasure delete what they say, and bad input changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { ActivityBatch, ActivityCounts, ActivityStore } from '../../registry/activity.js';
import { expectKakuinError } from './registry-fixtures.js';

export type OpenActivityStore = () => Promise<{ store: ActivityStore; cleanup: () => Promise<void> }>;

const H = 3_600_000;
const T0 = Date.UTC(2026, 11, 7, 10, 0, 0);

function counts(c: Partial<ActivityCounts>): ActivityCounts {
  return { messages: 0, bytes: 0, admitted: 0, refused: 0, tokenOk: 0, tokenFailed: 0, ...c };
}

function batch(recorderId: string, at: number, devices: ActivityBatch['devices'], sessions: ActivityBatch['sessions'] = []): ActivityBatch {
  return { recorderId, at: new Date(at), devices, sessions };
}

export function runActivityContract(adapterName: string, open: OpenActivityStore): void {
  describe(`activity contract: ${adapterName}`, function () {
    let store: ActivityStore;
    let cleanup: () => Promise<void>;
    beforeEach(async function () {
      ({ store, cleanup } = await open());
    });
    afterEach(async function () {
      await cleanup();
    });

    it('adds the counts of several batches into one hourly rollup per device and hour', async function () {
      const d = randomUUID();
      await store.recordActivity(batch('r1', T0 + 1000, [{ deviceId: d, hour: new Date(T0), counts: counts({ messages: 3, bytes: 300, admitted: 1 }), refusals: [] }]));
      await store.recordActivity(batch('r2', T0 + 2000, [{ deviceId: d, hour: new Date(T0), counts: counts({ messages: 2, bytes: 50, tokenOk: 1, tokenFailed: 2 }), refusals: [] }]));
      await store.recordActivity(batch('r1', T0 + H, [{ deviceId: d, hour: new Date(T0 + H), counts: counts({ messages: 1, bytes: 7 }), refusals: [] }]));
      const a = await store.deviceActivity(d);
      expect(a?.hourly).to.deep.equal([
        { hour: new Date(T0), messages: 5, bytes: 350, admitted: 1, refused: 0, tokenOk: 1, tokenFailed: 2 },
        { hour: new Date(T0 + H), messages: 1, bytes: 7, admitted: 0, refused: 0, tokenOk: 0, tokenFailed: 0 },
      ]);
      expect((await store.deviceActivity(d, { since: new Date(T0 + H) }))?.hourly.map((h) => h.messages)).to.deep.equal([1]);
    });

    it('picks, of the given devices and in their order, those whose last seen and current firmware match', async function () {
      const [a, b, c, never] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
      const entry = (deviceId: string, seenAt: number | undefined, firmwareVersion?: string) => ({
        deviceId, hour: new Date(T0), counts: counts({ admitted: 1 }), refusals: [],
        ...(seenAt !== undefined && { lastSeen: { at: new Date(seenAt), frontEnd: 'mqtt' } }), ...(firmwareVersion !== undefined && { firmwareVersion }),
      });
      await store.recordActivity(batch('r1', T0 + 1000, [entry(a, T0 + 1000, '1.0'), entry(b, T0 + 2000, '1.0'), entry(c, undefined, '1.0')]));
      await store.recordActivity(batch('r1', T0 + 3000, [entry(a, undefined, '2.0'), entry(c, T0 + 3000)]));
      const order = [c, never, b, a];
      expect(await store.devicesMatchingActivity(order, {})).to.deep.equal(order);
      expect(await store.devicesMatchingActivity(order, { lastSeenBefore: new Date(T0 + 3000) })).to.deep.equal([b, a]);
      expect(await store.devicesMatchingActivity(order, { lastSeenAfter: new Date(T0 + 2000) })).to.deep.equal([c, b]);
      expect(await store.devicesMatchingActivity(order, { firmwareVersion: '1.0' }), 'a reported 2.0 last').to.deep.equal([c, b]);
      expect(await store.devicesMatchingActivity(order, { firmwareVersion: '2.0', lastSeenAfter: new Date(T0) })).to.deep.equal([a]);
      expect(await store.devicesMatchingActivity([], { firmwareVersion: '1.0' })).to.deep.equal([]);
      await expectKakuinError(store.devicesMatchingActivity(order, { lastSeenBefore: new Date(NaN) }), 'KAKUIN_E_VALIDATION');
    });

    it('moves last seen forward only, whichever recorder flushes last', async function () {
      const d = randomUUID();
      const seen = (at: number, address: string) => ({ deviceId: d, hour: new Date(T0), counts: counts({ admitted: 1 }), refusals: [], lastSeen: { at: new Date(at), address, frontEnd: 'http' } });
      await store.recordActivity(batch('r1', T0 + 9000, [seen(T0 + 5000, '198.51.100.7')]));
      await store.recordActivity(batch('r2', T0 + 9500, [seen(T0 + 4000, '203.0.113.9')]));
      expect((await store.deviceActivity(d))?.lastSeen).to.deep.equal({ at: new Date(T0 + 5000), address: '198.51.100.7', frontEnd: 'http' });
      await store.recordActivity(batch('r2', T0 + 9900, [seen(T0 + 6000, '203.0.113.9')]));
      expect((await store.deviceActivity(d))?.lastSeen?.address).to.equal('203.0.113.9');
    });

    it('keeps refusals with reason and address, newest first, and finds devices by last seen', async function () {
      const d = randomUUID();
      const other = randomUUID();
      await store.recordActivity(batch('r1', T0 + 3000, [
        { deviceId: d, hour: new Date(T0), counts: counts({ refused: 2 }), refusals: [
          { at: new Date(T0 + 1000), reason: 'device revoked', address: '198.51.100.7', frontEnd: 'http' },
          { at: new Date(T0 + 2000), reason: 'certificate revoked', frontEnd: 'mqtt' },
        ], lastSeen: { at: new Date(T0 + 100), frontEnd: 'http' } },
        { deviceId: other, hour: new Date(T0), counts: counts({ admitted: 1 }), refusals: [], lastSeen: { at: new Date(T0 + 10 * H), frontEnd: 'legacy' } },
      ]));
      const a = await store.deviceActivity(d);
      expect(a?.refusals).to.deep.equal([
        { at: new Date(T0 + 2000), reason: 'certificate revoked', frontEnd: 'mqtt' },
        { at: new Date(T0 + 1000), reason: 'device revoked', address: '198.51.100.7', frontEnd: 'http' },
      ]);
      expect(await store.devicesLastSeen({ before: new Date(T0 + H) })).to.include(d).and.not.include(other);
      expect(await store.devicesLastSeen({ after: new Date(T0 + H) })).to.include(other).and.not.include(d);
    });

    it('replaces one recorder\'s open sessions without touching another\'s; stale recorders can be left out', async function () {
      const d = randomUUID();
      await store.recordActivity(batch('r1', T0, [], [{ deviceId: d, addresses: ['198.51.100.7', '198.51.100.8'] }]));
      await store.recordActivity(batch('r2', T0 + 5000, [], [{ deviceId: d, addresses: ['203.0.113.9'] }]));
      expect((await store.deviceActivity(d))?.openSessions).to.have.deep.members([
        { address: '198.51.100.7', recorderId: 'r1' }, { address: '198.51.100.8', recorderId: 'r1' }, { address: '203.0.113.9', recorderId: 'r2' },
      ]);
      await store.recordActivity(batch('r1', T0 + 6000, [], []));
      expect((await store.deviceActivity(d))?.openSessions).to.deep.equal([{ address: '203.0.113.9', recorderId: 'r2' }]);
      expect((await store.deviceActivity(d, { sessionsFreshSince: new Date(T0 + 5001) }))?.openSessions ?? []).to.deep.equal([]);
    });

    it('keeps the firmware history: each version with when it was first reported, the latest as firmwareVersion', async function () {
      const d = randomUUID();
      const fw = (v: string) => ({ deviceId: d, hour: new Date(T0), counts: counts({}), refusals: [], firmwareVersion: v });
      await store.recordActivity(batch('r1', T0 + 1000, [fw('1.0.0')]));
      await store.recordActivity(batch('r1', T0 + 2000, [fw('1.1.0')]));
      await store.recordActivity(batch('r1', T0 + 3000, [fw('1.1.0')]));
      const a = await store.deviceActivity(d);
      expect(a?.firmwareVersion).to.equal('1.1.0');
      expect(a?.firmwareHistory).to.deep.equal([{ version: '1.0.0', at: new Date(T0 + 1000) }, { version: '1.1.0', at: new Date(T0 + 2000) }]);
    });

    it('prunes everything older than the retention bound, and erases one device entirely', async function () {
      const d = randomUUID();
      const keep = randomUUID();
      await store.recordActivity(batch('r1', T0, [
        { deviceId: d, hour: new Date(T0), counts: counts({ refused: 1 }), refusals: [{ at: new Date(T0), reason: 'device suspended', frontEnd: 'http' }], lastSeen: { at: new Date(T0), frontEnd: 'http' } },
      ]));
      await store.recordActivity(batch('r2', T0 + 48 * H, [
        { deviceId: keep, hour: new Date(T0 + 48 * H), counts: counts({ messages: 1 }), refusals: [], lastSeen: { at: new Date(T0 + 48 * H), frontEnd: 'http' }, firmwareVersion: '2.0' },
      ], [{ deviceId: keep, addresses: ['192.0.2.1'] }]));
      expect(await store.pruneActivity(new Date(T0 + 24 * H))).to.be.greaterThan(0);
      expect(await store.deviceActivity(d)).to.equal(undefined);
      expect((await store.deviceActivity(keep))?.hourly).to.have.length(1);
      expect(await store.deleteDeviceActivity(keep)).to.be.greaterThan(0);
      expect(await store.deviceActivity(keep)).to.equal(undefined);
      expect(await store.deleteDeviceActivity(keep)).to.equal(0);
    });

    it('refuses a malformed batch with KAKUIN_E_VALIDATION and records none of it', async function () {
      const d = randomUUID();
      await expectKakuinError(store.recordActivity(batch('r1', T0, [
        { deviceId: d, hour: new Date(T0), counts: counts({ messages: 1 }), refusals: [] },
        { deviceId: randomUUID(), hour: new Date(T0), counts: counts({ messages: -1 }), refusals: [] },
      ])), 'KAKUIN_E_VALIDATION');
      expect(await store.deviceActivity(d), 'all or nothing').to.equal(undefined);
      await expectKakuinError(store.recordActivity({ recorderId: 'r', at: new Date(T0) } as unknown as ActivityBatch), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.deviceActivity(''), 'KAKUIN_E_VALIDATION');
    });
  });
}
