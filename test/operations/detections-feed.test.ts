/**
 * The detection feed between the front ends and the engine: every call reaches the activity
 * recorder unchanged; a device is looked up once, its events until the answer are replayed with
 * their own times; nothing is looked up while no template is assigned. The responder stores
 * evidence with addresses cut as activity.addressPrefix cuts them.
 */
import { expect } from 'chai';
import type { ActivityRecorder } from '../../gateway-auth/activity-recorder.js';
import type { Finding } from '../../operations/detections/engine.js';
import { truncateAddress } from '../../operations/activity/address.js';
import { DetectionFeed } from '../../operations/detections/feed.js';
import { DetectionResponder } from '../../operations/detections/responder.js';
import { DetectionService } from '../../operations/detections/service.js';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { makeTempDir } from '../support/index.js';
import { checkTemplateInput, type DetectionTemplate, type DeviceSubject } from '../../operations/detections/template.js';

function template(assigned: string[]): DetectionTemplate {
  const t = checkTemplateInput({
    id: 'fleet', assignedTo: { manufacturerIds: assigned },
    rules: { sessions: { maxConcurrent: 1, refuseExtra: false, action: 'alert' }, firmwareDowngrade: { action: 'alert' } },
  });
  return { ...t, version: 4, createdAt: new Date(), createdBy: 'test' };
}

function recording(): { recorder: ActivityRecorder; calls: string[] } {
  const calls: string[] = [];
  const rec = (name: string) => (...args: unknown[]) => { calls.push(`${name}(${args.map(String).join(',')})`); };
  return { calls, recorder: { admitted: rec('admitted'), refused: rec('refused'), closed: rec('closed'), traffic: rec('traffic'), tokenResult: rec('tokenResult'), firmware: rec('firmware') } };
}

describe('operations/detections feed', function () {
  let now: number;
  let lookups: string[];
  let findings: Finding[];
  const make = (templates: DetectionTemplate[], subject: DeviceSubject | undefined = { manufacturerId: 'm1' }) => {
    const inner = recording();
    now = Date.UTC(2026, 11, 7, 12, 0);
    lookups = [];
    findings = [];
    const feed = new DetectionFeed({
      inner: inner.recorder, now: () => now, onFinding: (f) => findings.push(f),
      subjectOf: async (id) => {
        lookups.push(id);
        await new Promise((r) => setTimeout(r, 10));
        return subject;
      },
    });
    feed.setTemplates(templates);
    return { feed, calls: inner.calls };
  };

  it('hands every call to the activity recorder unchanged, template or not', function () {
    const { feed, calls } = make([template([])]);
    feed.admitted('d1', '198.51.100.7', 'mqtt');
    feed.traffic('d1', 3, 120);
    feed.firmware('d1', '1.2.3', 'http');
    feed.tokenResult('d1', true, '198.51.100.7');
    feed.refused('d1', 'device suspended', '198.51.100.7', 'tcp');
    feed.closed('d1', '198.51.100.7', 'mqtt');
    expect(calls).to.deep.equal([
      'admitted(d1,198.51.100.7,mqtt)', 'traffic(d1,3,120)', 'firmware(d1,1.2.3,http)', 'tokenResult(d1,true,198.51.100.7)',
      'refused(d1,device suspended,198.51.100.7,tcp)', 'closed(d1,198.51.100.7,mqtt)',
    ]);
  });

  it('looks nothing up while no template is assigned (the shipped templates as installed)', async function () {
    const { feed } = make([template([])]);
    feed.admitted('d1', '198.51.100.7', 'mqtt');
    await feed.settled();
    expect(lookups).to.deep.equal([]);
  });

  it('looks a device up once and replays its first events with their own times, so its first session counts', async function () {
    const { feed } = make([template(['m1'])]);
    const t0 = now;
    feed.admitted('d1', '198.51.100.7', 'mqtt');
    feed.firmware('d1', '2.0.0', 'mqtt');
    // Before the answer the gate admits (nothing known yet).
    expect(feed.refuse('d1', '203.0.113.9')).to.equal(undefined);
    now += 5_000;
    feed.admitted('d1', '203.0.113.9', 'mqtt');
    await feed.settled();
    expect(lookups).to.deep.equal(['d1']);
    expect(findings.map((f) => f.rule)).to.deep.equal(['sessions']);
    expect(findings[0]).to.include({ templateId: 'fleet', templateVersion: 4 });
    expect(findings[0].at.getTime()).to.equal(t0 + 5_000);
    feed.firmware('d1', '1.9.0', 'mqtt');
    expect(findings.map((f) => f.rule)).to.deep.equal(['sessions', 'firmwareDowngrade']);
    expect(lookups).to.have.length(1);
  });

  it('evaluates nothing for a device no template is assigned to', async function () {
    const { feed } = make([template(['m1'])], { manufacturerId: 'm2' });
    feed.admitted('d1', '198.51.100.7', 'mqtt');
    feed.admitted('d1', '203.0.113.9', 'mqtt');
    await feed.settled();
    feed.admitted('d1', '203.0.113.10', 'mqtt');
    expect(findings).to.deep.equal([]);
    expect(feed.engine.size).to.equal(0);
  });
});

describe('operations/detections responder', function () {
  it('stores evidence with source addresses cut to their network when activity.addressPrefix says so', async function () {
    const tmp = makeTempDir('kakuin-responder-');
    const registry = await openSqliteRegistry({ path: `${tmp.dir}/registry.db` });
    try {
      await new DetectionService({ store: registry.detections }).ensureShippedTemplates();
      const responder = new DetectionResponder({
        store: registry.detections, audit: registry, suspender: { suspendDevice: async () => { throw new Error('not called'); } },
        redactAddress: (a) => truncateAddress(a, { v4: 24, v6: 48 }),
      });
      responder.accept({
        deviceId: 'd1', rule: 'networks', templateId: 'school', templateVersion: 1, action: 'record', at: new Date(),
        summary: 'connected from 203.0.113.50, outside its allowed networks', evidence: { address: '203.0.113.50', allowed: ['10.30.0.0/16'] },
      });
      responder.accept({
        deviceId: 'd2', rule: 'sessions', templateId: 'school', templateVersion: 1, action: 'record', at: new Date(),
        summary: '2 sessions', evidence: { newAddress: '2001:db8:1:2::9', openAddresses: ['198.51.100.7', '2001:db8:1:2::9'] },
      });
      await responder.idle();
      const [a] = await registry.detections.listDetections({ deviceId: 'd1' });
      expect(a.evidence).to.deep.equal({ address: '203.0.113.0/24', allowed: ['10.30.0.0/16'] });
      expect(a.summary).to.equal('connected from 203.0.113.0/24, outside its allowed networks');
      expect(a.outcome).to.equal('recorded');
      const [b] = await registry.detections.listDetections({ deviceId: 'd2' });
      expect(b.evidence).to.deep.equal({ newAddress: '2001:db8:1:0:0:0:0:0/48', openAddresses: ['198.51.100.0/24', '2001:db8:1:0:0:0:0:0/48'] });
    } finally {
      await registry.close();
      tmp.cleanup();
    }
  });
});
