/**
 * Device activity in the management API, over real HTTPS against an in-process `kakuin serve`
 * (SQLite): the `model`, `lastSeenBefore`, `lastSeenAfter` and `firmwareVersion` filters with
 * paging, and the personal-data routes (export, erasure), each audited. Activity is written into
 * the service's own activity store as a gateway's flush would write it.
 */
import { expect } from 'chai';
import type { ActivityBatch } from '../../registry/activity.js';
import type { SqliteRegistry } from '../../registry/sqlite/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';

describe('management API: device activity filters, export and erasure', function () {
  this.timeout(60_000);
  let svc: TestService;
  const ids: Record<'a' | 'b' | 'c' | 'd', string> = { a: '', b: '', c: '', d: '' };

  const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc.url, svc.rootPem, method, p, { token: svc.adminToken, ...options });
  const listed = async (query: string): Promise<string[]> => {
    const r = await api('GET', `/api/v1/devices?${query}`);
    expect(r.status, r.text).to.equal(200);
    return r.json.devices.map((d: { id: string }) => d.id);
  };

  function flushOf(at: string, devices: { id: string; seen?: string; firmware?: string }[]): ActivityBatch {
    return {
      recorderId: 'test-gateway', at: new Date(at), sessions: [],
      devices: devices.map((d) => ({
        deviceId: d.id, hour: new Date(`${at.slice(0, 13)}:00:00Z`), refusals: [],
        counts: { messages: 3, bytes: 120, admitted: 1, refused: 0, tokenOk: 0, tokenFailed: 0 },
        ...(d.seen !== undefined && { lastSeen: { at: new Date(d.seen), address: '198.51.100.7', frontEnd: 'mqtt' } }),
        ...(d.firmware !== undefined && { firmwareVersion: d.firmware }),
      })),
    };
  }

  before(async () => {
    svc = await startTestService();
    const manufacturerId = (await api('POST', '/api/v1/manufacturers', { body: { name: 'Activity Meters' } })).json.id;
    for (const [k, model] of [['a', 'M1'], ['b', 'M1'], ['c', 'M2'], ['d', undefined]] as const) {
      const r = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber: `ACT-${k}`, ...(model && { model }) } });
      expect(r.status, r.text).to.equal(201);
      ids[k] = r.json.id;
    }
    const store = (svc.service.kakuin.registry as SqliteRegistry).activity;
    await store.recordActivity(flushOf('2026-01-10T08:00:00Z', [{ id: ids.a, seen: '2026-01-10T08:00:00Z', firmware: '1.0.0' }, { id: ids.c, firmware: '1.0.0' }]));
    await store.recordActivity(flushOf('2026-01-10T09:00:00Z', [{ id: ids.a, firmware: '2.0.0' }]));
    await store.recordActivity(flushOf('2026-02-01T12:00:00Z', [{ id: ids.c, seen: '2026-02-01T12:00:00Z' }]));
    await store.recordActivity(flushOf('2026-03-01T12:00:00Z', [{ id: ids.b, seen: '2026-03-01T12:00:00Z', firmware: '2.0.0' }]));
  });

  after(async () => {
    await svc?.stop();
  });

  it('filters devices by model, last seen and the firmware reported last, combined with each other and paged', async () => {
    expect(await listed('model=M1')).to.deep.equal([ids.a, ids.b]);
    expect(await listed('lastSeenBefore=2026-02-15T00:00:00Z'), 'a device never seen does not match').to.deep.equal([ids.a, ids.c]);
    expect(await listed('lastSeenAfter=2026-02-01T12:00:00Z'), 'lastSeenAfter is inclusive').to.deep.equal([ids.b, ids.c]);
    expect(await listed('lastSeenAfter=2026-01-01T00:00:00Z&lastSeenBefore=2026-02-01T12:00:00Z'), 'lastSeenBefore is exclusive').to.deep.equal([ids.a]);
    expect(await listed('firmwareVersion=2.0.0')).to.deep.equal([ids.a, ids.b]);
    expect(await listed('firmwareVersion=1.0.0'), 'a reports 2.0.0 now').to.deep.equal([ids.c]);
    expect(await listed('model=M1&firmwareVersion=2.0.0&lastSeenAfter=2026-02-01T00:00:00Z')).to.deep.equal([ids.b]);

    const first = await api('GET', '/api/v1/devices?firmwareVersion=2.0.0&limit=1');
    expect(first.json.devices.map((d: { id: string }) => d.id)).to.deep.equal([ids.a]);
    expect(first.json.next).to.equal(ids.a);
    const second = await api('GET', `/api/v1/devices?firmwareVersion=2.0.0&limit=1&after=${first.json.next}`);
    expect(second.json.devices.map((d: { id: string }) => d.id)).to.deep.equal([ids.b]);
    expect(second.json).to.not.have.property('next');

    const bad = await api('GET', '/api/v1/devices?lastSeenBefore=yesterday');
    expect([bad.status, bad.json.code, bad.json.field]).to.deep.equal([400, 'KAKUIN_E_VALIDATION', 'lastSeenBefore']);
    const typo = await api('GET', '/api/v1/devices?lastSeen=2026-01-01T00:00:00Z');
    expect(typo.json.code).to.equal('KAKUIN_E_UNKNOWN_FIELD');
    expect(typo.json.accepted).to.include.members(['model', 'lastSeenBefore', 'lastSeenAfter', 'firmwareVersion']);
  });

  it('exports a device\'s activity as an attachment and erases it, each an audit event naming the admin', async () => {
    const shown = await api('GET', `/api/v1/devices/${ids.a}`);
    expect(shown.json.activity.firmwareVersion).to.equal('2.0.0');

    const exported = await api('GET', `/api/v1/devices/${ids.a}/activity/export`);
    expect(exported.status, exported.text).to.equal(200);
    expect(exported.headers['content-disposition']).to.equal(`attachment; filename="activity-${ids.a}.json"`);
    expect(exported.json.deviceId).to.equal(ids.a);
    expect(exported.json.activity.lastSeen).to.deep.equal({ at: '2026-01-10T08:00:00.000Z', address: '198.51.100.7', frontEnd: 'mqtt' });
    expect(exported.json.activity.firmwareHistory.map((f: { version: string }) => f.version)).to.deep.equal(['1.0.0', '2.0.0']);
    expect(exported.json.activity.hourly.map((h: { hour: string; messages: number }) => [h.hour, h.messages])).to.deep.equal([
      ['2026-01-10T08:00:00.000Z', 3], ['2026-01-10T09:00:00.000Z', 3],
    ]);

    const erased = await api('DELETE', `/api/v1/devices/${ids.a}/activity`);
    expect(erased.status, erased.text).to.equal(200);
    expect(erased.json.deleted).to.be.greaterThan(0);
    expect((await api('GET', `/api/v1/devices/${ids.a}`)).json.activity).to.equal(null);
    expect((await api('GET', `/api/v1/devices/${ids.a}/activity/export`)).json.activity).to.equal(null);
    expect(await listed('firmwareVersion=2.0.0'), 'the erased device no longer matches').to.deep.equal([ids.b]);
    expect((await api('GET', `/api/v1/devices/${ids.b}`)).json.activity.firmwareVersion, 'other devices keep theirs').to.equal('2.0.0');

    const events = (await api('GET', `/api/v1/audit-events?deviceId=${ids.a}`)).json.events as { type: string; actor: string; details: Record<string, unknown> }[];
    const activityEvents = events.filter((e) => e.type.startsWith('device.activity.'));
    expect(activityEvents.map((e) => e.type)).to.deep.equal(['device.activity.exported', 'device.activity.deleted', 'device.activity.exported']);
    for (const e of activityEvents) expect(e.actor).to.match(/^token:/);
    expect(activityEvents[1].details).to.deep.equal({ rows: erased.json.deleted });

    const missing = await api('DELETE', '/api/v1/devices/dev_no-such-device/activity');
    expect([missing.status, missing.json.code]).to.deep.equal([404, 'KAKUIN_E_DEVICE_NOT_FOUND']);
    const anonymous = await request(svc.url, svc.rootPem, 'DELETE', `/api/v1/devices/${ids.b}/activity`);
    expect(anonymous.status).to.equal(401);
    expect((await api('GET', `/api/v1/devices/${ids.b}`)).json.activity, 'an unauthenticated erasure changes nothing').to.not.equal(null);
  });
});
