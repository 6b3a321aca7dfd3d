/**
 * The detection engine on a virtual clock, no sockets (issue 20 item 4): 10,000 simulated devices
 * with the trial's patterns and the shipped templates; a stolen camera, a hijacked meter and a
 * cloned vehicle are caught by a suspending rule within that rule's window, the car in the
 * underground car park and the school child at home are not. Then each rule on its own.
 */
import path from 'node:path';
import { expect } from 'chai';
import { RevocationService } from '../../ca/revocation.js';
import { DetectionResponder } from '../../operations/detections/responder.js';
import { DetectionService } from '../../operations/detections/service.js';
import { openSqliteRegistry, type SqliteRegistry } from '../../registry/sqlite/index.js';
import { makeTempDir } from '../support/index.js';
import { compileTemplate, DetectionEngine, type Finding } from '../../operations/detections/engine.js';
import { compareFirmware } from '../../operations/detections/firmware-order.js';
import { NetworkList } from '../../operations/detections/networks.js';
import { SHIPPED_TEMPLATES } from '../../operations/detections/shipped-templates.js';
import { checkTemplateInput, templateForSubject, type DetectionTemplate, type TemplateRules } from '../../operations/detections/template.js';
import { Fleet, injectTrialCases, minutes, T0 } from './detection-fleet.js';

describe('operations/detections engine: the trial fleet on a virtual clock', function () {
  // Issue 20 item 4: "in under 30 s of test time".
  this.timeout(30_000);
  let fleet: Fleet;
  let cases: ReturnType<typeof injectTrialCases>;
  // The response runs for real: a SQLite registry holding the five injected devices, the shipped
  // templates written by the service, the responder suspending through RevocationService.
  let tmp: ReturnType<typeof makeTempDir>;
  let registry: SqliteRegistry;
  let service: DetectionService;
  let responder: DetectionResponder;
  let revocation: RevocationService;
  const realId = new Map<string, string>();

  before(async function () {
    tmp = makeTempDir('kakuin-detections-fleet-');
    registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
    revocation = new RevocationService(registry);
    service = new DetectionService({ store: registry.detections });
    await service.ensureShippedTemplates();
    const m = await registry.createManufacturer({ name: 'trial' });
    for (const simId of ['camera-17', 'home-42', 'vehicle-99', 'vehicle-123', 'school-7']) {
      realId.set(simId, (await registry.createDevice({ manufacturerId: m.id, serialNumber: simId })).id);
    }
    responder = new DetectionResponder({ store: registry.detections, suspender: revocation, audit: registry });
    fleet = new Fleet({ vehicle: 3000, school: 2000, home: 3000, camera: 2000 }, (f) => responder.accept({ ...f, deviceId: realId.get(f.deviceId) ?? f.deviceId }));
    expect(fleet.devices).to.have.length(10_000);
    cases = injectTrialCases(fleet);
    fleet.start();
    fleet.run(minutes(6 * 60));
    await responder.idle();
  });

  after(async function () {
    await registry?.close();
    tmp?.cleanup();
  });

  it('suspends the stolen, hijacked and cloned devices in the registry, each naming its detection', async function () {
    for (const simId of [cases.stolen, cases.hijacked, cases.clone]) {
      const id = realId.get(simId)!;
      expect((await registry.getDevice(id)).status, simId).to.equal('suspended');
      const [d] = await registry.detections.listDetections({ deviceId: id, action: 'suspend' });
      expect(d).to.include({ state: 'open', outcome: 'suspended' });
      expect((await service.suspensionOf(id))?.id).to.equal(d.id);
      const [audit] = await registry.listAuditEvents({ deviceId: id, type: 'device.suspended' });
      expect(audit.actor).to.equal(`detection:${d.id}`);
      expect(audit.details).to.include({ detectionId: d.id });
      expect(String(audit.details?.reason)).to.contain(d.rule);
    }
    for (const simId of [cases.carPark, cases.child]) expect((await registry.getDevice(realId.get(simId)!)).status, simId).to.equal('registered');
    // The stolen camera's silence alert went into the audit trail (hence out as an event).
    const [alert] = await registry.listAuditEvents({ deviceId: realId.get(cases.stolen), type: 'detection.alert' });
    expect(alert.details).to.include({ rule: 'silence', templateId: 'camera', templateVersion: 1 });
  });

  it('resolves the detection with the operator\'s note when the device is resumed', async function () {
    const id = realId.get(cases.hijacked)!;
    await revocation.resumeDevice(id, 'token:ops');
    const [resolved] = await service.deviceResumed(id, 'token:ops', 'customer reset the hub');
    expect(resolved).to.include({ state: 'resolved', resolvedBy: 'token:ops', resolveNote: 'customer reset the hub' });
    expect(await service.suspensionOf(id)).to.equal(undefined);
  });

  const suspending = (id: string) => fleet.findingsOf(id).filter((f) => f.action === 'suspend');

  it('suspends the stolen camera (silent, then on a stranger\'s network) the moment it reappears', function () {
    const silence = fleet.findingsOf(cases.stolen).find((f) => f.rule === 'silence');
    expect(silence, 'silence alert').to.include({ action: 'alert', templateId: 'camera', templateVersion: 1 });
    // Unplugged at +30 min; limit 15 min; the silence timer runs every virtual minute.
    expect(silence!.at.getTime() - (T0 + 30 * 60_000)).to.be.within(15 * 60_000, 16 * 60_000 + 1);
    const [s] = suspending(cases.stolen);
    expect(s).to.include({ rule: 'networks' });
    expect(s.at.getTime()).to.equal(cases.stolenReappearsAt);
    expect(s.evidence).to.include({ address: '203.0.113.50' });
  });

  it('suspends the hijacked meter within its rate window (600 s)', function () {
    const [s] = suspending(cases.hijacked);
    expect(s).to.include({ rule: 'rate', templateId: 'home' });
    expect(s.at.getTime() - cases.hijackStartsAt).to.be.within(0, 600_000);
    expect(s.evidence.messagesInWindow as number).to.be.above(30);
  });

  it('suspends the clone at its second session and refuses that session', function () {
    const [s] = suspending(cases.clone);
    expect(s).to.include({ rule: 'sessions', templateId: 'vehicle' });
    expect(s.at.getTime()).to.equal(cases.cloneAt);
    expect(s.evidence).to.include({ newAddress: '100.100.7.7', refused: true });
    expect(fleet.refusals.map((r) => r.deviceId)).to.deep.equal([cases.clone]);
  });

  it('does not suspend the car after three hours in an underground car park and its buffered burst', function () {
    expect(fleet.findingsOf(cases.carPark)).to.deep.equal([]);
  });

  it('does not alert on or suspend the school child\'s device at home (it is only recorded)', function () {
    const f = fleet.findingsOf(cases.child);
    expect(f.filter((x) => x.action !== 'record')).to.deep.equal([]);
    expect(f.map((x) => x.rule)).to.deep.equal(['networks']);
  });

  it('suspends or alerts on no other device of the 10,000', function () {
    const injected = new Set([cases.stolen, cases.hijacked, cases.clone, cases.carPark, cases.child]);
    const others = fleet.findings.filter((f) => !injected.has(f.deviceId));
    expect(others.map((f) => `${f.deviceId} ${f.rule} ${f.action}`)).to.deep.equal([]);
    expect(fleet.engine.size).to.equal(10_000);
  });
});

describe('operations/detections engine: each rule', function () {
  let now: number;
  let findings: Finding[];
  const make = (rules: TemplateRules) => {
    findings = [];
    now = Date.UTC(2026, 11, 7, 12, 0, 0);
    const t = compileTemplate({ id: 't', version: 3, rules: checkTemplateInput({ id: 't', rules }).rules });
    return new DetectionEngine({ now: () => now, templateOf: (id) => (id.startsWith('d') ? t : undefined), onFinding: (f) => findings.push(f) });
  };

  it('fires authBurst at the 10th authentication within a minute, successes included (the seed rule)', function () {
    const e = make({ authBurst: { maxAttempts: 10, perSeconds: 60, action: 'alert' } });
    for (let i = 0; i < 9; i++) {
      e.authentication('d1', i % 2 === 0, '10.0.0.1');
      now += 5_000;
    }
    expect(findings).to.have.length(0);
    e.authentication('d1', true, '10.0.0.1');
    expect(findings).to.have.length(1);
    expect(findings[0]).to.include({ rule: 'authBurst', action: 'alert', templateVersion: 3 });
  });

  it('does not fire authBurst for 9 a minute held for an hour (SIM retries below the threshold)', function () {
    const e = make({ authBurst: { maxAttempts: 10, perSeconds: 60, action: 'alert' } });
    for (let i = 0; i < 9 * 60; i++) {
      e.authentication('d1', false, undefined);
      now += 60_000 / 9 + 1;
    }
    expect(findings).to.have.length(0);
  });

  it('fires usualHours for a success at 23:30 in Berlin but not for one at 21:30, and not for a failure', function () {
    const e = make({ usualHours: { timeZone: 'Europe/Berlin', from: '06:00', to: '22:00', action: 'alert' } });
    now = Date.UTC(2026, 11, 7, 20, 30); // 21:30 CET
    e.authentication('d1', true, undefined);
    now = Date.UTC(2026, 11, 7, 22, 30); // 23:30 CET
    e.authentication('d1', false, undefined);
    expect(findings).to.have.length(0);
    e.authentication('d1', true, undefined);
    expect(findings).to.have.length(1);
    expect(findings[0].evidence).to.include({ localTime: '23:30' });
  });

  it('takes summer time from the zone: 05:30 UTC in July is 07:30 in Berlin, inside 06:00–22:00', function () {
    const e = make({ usualHours: { timeZone: 'Europe/Berlin', from: '06:00', to: '22:00', action: 'alert' } });
    now = Date.UTC(2026, 6, 7, 4, 30);
    e.opened('d1', undefined);
    expect(findings).to.have.length(0);
    e.opened('d2', undefined);
    now = Date.UTC(2026, 6, 7, 3, 30); // 05:30 CEST
    e.opened('d3', undefined);
    expect(findings.map((f) => f.deviceId)).to.deep.equal(['d3']);
  });

  it('fires networks for an address outside the CIDR list, IPv4, IPv6 and IPv4-mapped alike', function () {
    const e = make({ networks: { allowed: ['10.20.0.0/16', '2001:db8:ca00::/40'], action: 'suspend' } });
    e.opened('d1', '10.20.3.4');
    e.opened('d2', '::ffff:10.20.9.9');
    e.opened('d3', '2001:db8:caff:1::5');
    expect(findings).to.have.length(0);
    e.opened('d4', '10.21.0.1');
    e.opened('d5', '2001:db8:cb00::1');
    e.opened('d6', undefined);
    expect(findings.map((f) => f.deviceId)).to.deep.equal(['d4', 'd5', 'd6']);
  });

  it('fires sessions only for different addresses; the same address twice (NAT, a late close) is not a clone', function () {
    const e = make({ sessions: { maxConcurrent: 1, refuseExtra: false, action: 'alert' } });
    e.opened('d1', '198.51.100.7');
    e.opened('d1', '198.51.100.7');
    expect(findings).to.have.length(0);
    expect(e.refuseSession('d1', '198.51.100.8')).to.equal(undefined); // refuseExtra false: admitted
    e.opened('d1', '198.51.100.8');
    expect(findings).to.have.length(1);
    expect(findings[0].evidence).to.include({ refused: false });
  });

  it('refuses the extra session when the template says so, and admits it again once the first closed', function () {
    const e = make({ sessions: { maxConcurrent: 1, refuseExtra: true, action: 'suspend' } });
    e.opened('d1', '198.51.100.7');
    expect(e.refuseSession('d1', '198.51.100.7')).to.equal(undefined);
    expect(e.refuseSession('d1', '203.0.113.1')).to.match(/concurrent session/);
    e.closed('d1', '198.51.100.7');
    expect(e.refuseSession('d1', '203.0.113.1')).to.equal(undefined);
  });

  it('fires rate above its window but tolerates a buffered burst right after a reconnect', function () {
    const rules: TemplateRules = { rate: { maxMessages: 30, perSeconds: 600, burstAfterReconnect: { minGapSeconds: 600, withinSeconds: 900, maxMessages: 200 }, action: 'suspend' } };
    let e = make(rules);
    e.opened('d1', undefined);
    now += 3_600_000;
    e.opened('d1', undefined); // an hour away: a reconnect
    e.messages('d1', 180);
    now += 60_000;
    e.messages('d1', 5);
    expect(findings).to.have.length(0);
    e = make(rules);
    e.opened('d1', undefined);
    now += 60_000;
    e.messages('d1', 31); // no gap: no allowance
    expect(findings.map((f) => f.rule)).to.deep.equal(['rate']);
  });

  it('fires silence once past the limit, once only until re-armed', function () {
    const e = make({ silence: { expectedIntervalSeconds: 60, silenceLimitSeconds: 900, action: 'alert' } });
    e.messages('d1', 1);
    now += 900_000;
    e.checkSilence();
    expect(findings).to.have.length(0);
    now += 1_000;
    e.checkSilence();
    e.checkSilence();
    expect(findings).to.have.length(1);
    e.rearm('d1', 'silence');
    e.checkSilence();
    expect(findings).to.have.length(2);
  });

  it('fires firmwareDowngrade for an older version than the highest seen (2.10 is newer than 2.9)', function () {
    const e = make({ firmwareDowngrade: { action: 'alert' } });
    e.firmware('d1', '2.9.0');
    e.firmware('d1', '2.10.0');
    e.firmware('d1', '2.10.0');
    expect(findings).to.have.length(0);
    e.firmware('d1', '2.9.5');
    expect(findings[0].evidence).to.include({ reported: '2.9.5', highestBefore: '2.10.0' });
    expect(compareFirmware('1.0.0-rc1', '1.0.0')).to.be.below(0);
    expect(compareFirmware('v3.1', '3.0.9')).to.be.above(0);
  });

  it('evaluates nothing for a device with no template', function () {
    const e = make({ networks: { allowed: ['10.0.0.0/8'], action: 'suspend' } });
    e.opened('x1', '203.0.113.1');
    expect(findings).to.have.length(0);
    expect(e.size).to.equal(0);
  });
});

describe('operations/detections templates', function () {
  it('ships vehicle, school, home and camera, all valid and assigned to nothing', function () {
    expect(SHIPPED_TEMPLATES.map((t) => t.id)).to.deep.equal(['vehicle', 'school', 'home', 'camera']);
    for (const t of SHIPPED_TEMPLATES) {
      const checked = checkTemplateInput(t);
      expect(checked.assignedTo).to.deep.equal({ manufacturerIds: [], profiles: [], commonAuthIds: [] });
      // Never revoke: the only actions are record, alert and suspend.
      for (const r of Object.values(checked.rules)) expect(['record', 'alert', 'suspend']).to.include(r!.action);
    }
  });

  for (const [what, input, field] of [
    ['an unknown rule', { id: 'a', rules: { teleport: {} } }, 'rules'],
    ['a revoke action', { id: 'a', rules: { firmwareDowngrade: { action: 'revoke' } } }, 'rules.firmwareDowngrade.action'],
    ['a bad CIDR', { id: 'a', rules: { networks: { allowed: ['10.0.0.0/33'], action: 'record' } } }, 'rules.networks.allowed.0'],
    ['an unknown time zone', { id: 'a', rules: { usualHours: { timeZone: 'Mars/Olympus', from: '06:00', to: '22:00', action: 'alert' } } }, 'rules.usualHours.timeZone'],
    ['a silence limit below the interval', { id: 'a', rules: { silence: { expectedIntervalSeconds: 600, silenceLimitSeconds: 60, action: 'alert' } } }, 'rules.silence'],
    ['no rule at all', { id: 'a', rules: {} }, 'rules'],
    ['an upper-case id', { id: 'Vehicle', rules: { firmwareDowngrade: { action: 'alert' } } }, 'id'],
  ] as const) {
    it(`refuses ${what} with KAKUIN_E_VALIDATION naming the field`, function () {
      expect(() => checkTemplateInput(input)).to.throw().with.property('code', 'KAKUIN_E_VALIDATION');
      try {
        checkTemplateInput(input);
      } catch (e) {
        expect((e as { field?: string }).field).to.equal(field);
      }
    });
  }

  it('picks the most specific assignment: common auth ID, then profile, then manufacturer', function () {
    const t = (id: string, assignedTo: Partial<DetectionTemplate['assignedTo']>): DetectionTemplate => ({
      id, version: 1, description: '', rules: {}, createdAt: new Date(), createdBy: 'system',
      assignedTo: { manufacturerIds: [], profiles: [], commonAuthIds: [], ...assignedTo },
    });
    const all = [t('by-m', { manufacturerIds: ['m1'] }), t('by-p', { profiles: ['device'] }), t('by-c', { commonAuthIds: ['meters'] })];
    expect(templateForSubject(all, { manufacturerId: 'm1', profile: 'device', commonAuthId: 'meters' })?.id).to.equal('by-c');
    expect(templateForSubject(all, { manufacturerId: 'm1', profile: 'device' })?.id).to.equal('by-p');
    expect(templateForSubject(all, { manufacturerId: 'm1', profile: 'other' })?.id).to.equal('by-m');
    expect(templateForSubject(all, { manufacturerId: 'm2' })).to.equal(undefined);
  });

  it('matches a network list without a template (NetworkList on its own)', function () {
    const l = new NetworkList(['0.0.0.0/0']);
    expect(l.includes('203.0.113.9')).to.equal(true);
    expect(l.includes('2001:db8::1')).to.equal(false);
  });
});
