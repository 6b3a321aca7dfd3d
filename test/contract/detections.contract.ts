/**
 * The detections port's contract (registry/detections.ts), run on every adapter: template versions
 * are kept and never overwritten, a detection moves open → acknowledged → resolved and never back,
 * lists are newest first and page without gaps, and bad input changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { DetectionRecord, DetectionStore, DetectionTemplateRecord, NewDetection } from '../../registry/detections.js';
import { expectKakuinError } from './registry-fixtures.js';

export type OpenDetectionStore = () => Promise<{ store: DetectionStore; cleanup: () => Promise<void> }>;

const T0 = Date.UTC(2026, 11, 7, 10, 0, 0);

function template(id: string, version: number, over: Partial<DetectionTemplateRecord> = {}): DetectionTemplateRecord {
  return {
    id, version, description: `v${version}`, assignedTo: { manufacturerIds: ['m1'], profiles: [], commonAuthIds: [] },
    rules: { silence: { expectedIntervalSeconds: 60, silenceLimitSeconds: 900, action: 'alert' } }, createdAt: new Date(T0 + version), createdBy: 'token:ops', ...over,
  };
}

function detection(deviceId: string, at: number, over: Partial<NewDetection> = {}): NewDetection {
  return {
    deviceId, templateId: 'camera', templateVersion: 1, rule: 'silence', action: 'alert', summary: 'silent for 901 s',
    evidence: { silentSeconds: 901, lastSeenAt: new Date(at - 901_000).toISOString() }, detectedAt: new Date(at), ...over,
  };
}

export function runDetectionsContract(adapterName: string, open: OpenDetectionStore): void {
  describe(`detections contract: ${adapterName}`, function () {
    let store: DetectionStore;
    let cleanup: () => Promise<void>;
    beforeEach(async function () {
      ({ store, cleanup } = await open());
      await store.saveDetectionTemplate(template('camera', 1));
    });
    afterEach(async function () {
      await cleanup();
    });

    it('keeps every template version; get answers the latest or the one named; list the latest of each', async function () {
      await store.saveDetectionTemplate(template('camera', 2, { description: 'second' }));
      await store.saveDetectionTemplate(template('vehicle', 1));
      expect((await store.getDetectionTemplate('camera')).version).to.equal(2);
      expect(await store.getDetectionTemplate('camera', 1)).to.deep.equal(template('camera', 1));
      expect((await store.listDetectionTemplates()).map((t) => `${t.id}@${t.version}`)).to.deep.equal(['camera@2', 'vehicle@1']);
    });

    it('refuses a second version 1 and a version that skips or repeats one, writing nothing', async function () {
      await expectKakuinError(store.saveDetectionTemplate(template('camera', 1, { description: 'again' })), 'KAKUIN_E_DETECTION_TEMPLATE_EXISTS');
      await expectKakuinError(store.saveDetectionTemplate(template('camera', 3)), 'KAKUIN_E_DETECTION_TEMPLATE_EXISTS');
      await store.saveDetectionTemplate(template('camera', 2));
      await expectKakuinError(store.saveDetectionTemplate(template('camera', 2, { description: 'racing' })), 'KAKUIN_E_DETECTION_TEMPLATE_EXISTS');
      expect((await store.getDetectionTemplate('camera')).description).to.equal('v2');
      expect((await store.getDetectionTemplate('camera', 1)).description).to.equal('v1');
    });

    it('answers KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND for an unknown id or version', async function () {
      await expectKakuinError(store.getDetectionTemplate('nope'), 'KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND');
      await expectKakuinError(store.getDetectionTemplate('camera', 9), 'KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND');
      await expectKakuinError(store.createDetection(detection('d1', T0, { templateVersion: 9 })), 'KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND');
      expect(await store.listDetections({})).to.deep.equal([]);
    });

    it('records a detection open with its evidence, and reads it back by id', async function () {
      const d = await store.createDetection(detection('d1', T0));
      expect(d.id).to.match(/^det_[0-9a-f]{32}$/);
      expect(d.state).to.equal('open');
      const read = await store.getDetection(d.id);
      expect(read).to.deep.equal(d);
      expect(read.evidence).to.deep.equal({ silentSeconds: 901, lastSeenAt: new Date(T0 - 901_000).toISOString() });
      await expectKakuinError(store.getDetection('det_0'), 'KAKUIN_E_DETECTION_NOT_FOUND');
    });

    it('moves open → acknowledged → resolved with who, when and the notes, and never back', async function () {
      const d = await store.createDetection(detection('d1', T0));
      const ack = await store.changeDetectionState(d.id, { from: ['open'], to: 'acknowledged', at: new Date(T0 + 1000), actor: 'token:ops', note: 'looking' });
      expect(ack).to.include({ state: 'acknowledged', acknowledgedBy: 'token:ops', acknowledgeNote: 'looking' });
      expect(ack.acknowledgedAt?.getTime()).to.equal(T0 + 1000);
      const res = await store.changeDetectionState(d.id, { from: ['open', 'acknowledged'], to: 'resolved', at: new Date(T0 + 2000), actor: 'token:lead', note: 'car park' });
      expect(res).to.include({ state: 'resolved', resolvedBy: 'token:lead', resolveNote: 'car park', acknowledgedBy: 'token:ops' });
      await expectKakuinError(store.changeDetectionState(d.id, { from: ['open'], to: 'acknowledged', at: new Date(), actor: 'token:ops' }), 'KAKUIN_E_DETECTION_STATE');
      await expectKakuinError(store.changeDetectionState(d.id, { from: ['open', 'acknowledged'], to: 'resolved', at: new Date(), actor: 'token:x' }), 'KAKUIN_E_DETECTION_STATE');
      expect((await store.getDetection(d.id)).resolvedBy).to.equal('token:lead');
      await expectKakuinError(store.changeDetectionState('det_0', { from: ['open'], to: 'resolved', at: new Date(), actor: 'a' }), 'KAKUIN_E_DETECTION_NOT_FOUND');
    });

    it('records the outcome of the action', async function () {
      const d = await store.createDetection(detection('d1', T0, { action: 'suspend' }));
      await store.setDetectionOutcome(d.id, 'suspended');
      expect((await store.getDetection(d.id)).outcome).to.equal('suspended');
      await expectKakuinError(store.setDetectionOutcome('det_0', 'suspended'), 'KAKUIN_E_DETECTION_NOT_FOUND');
    });

    it('lists newest first with filters, and pages with afterId without gaps or repeats', async function () {
      const dev = randomUUID();
      const made: DetectionRecord[] = [];
      for (let i = 0; i < 7; i++) made.push(await store.createDetection(detection(i % 2 === 0 ? dev : 'other', T0 + Math.floor(i / 2) * 1000, { rule: i < 3 ? 'silence' : 'rate' })));
      const expected = [...made].sort((a, b) => b.detectedAt.getTime() - a.detectedAt.getTime() || (a.id < b.id ? 1 : -1)).map((d) => d.id);
      const seen: string[] = [];
      let afterId: string | undefined;
      for (;;) {
        const page = await store.listDetections({ limit: 3, ...(afterId !== undefined && { afterId }) });
        seen.push(...page.map((d) => d.id));
        if (page.length < 3) break;
        afterId = page[page.length - 1].id;
      }
      expect(seen).to.deep.equal(expected);
      expect((await store.listDetections({ deviceId: dev })).map((d) => d.id)).to.deep.equal(expected.filter((id) => made.find((m) => m.id === id)!.deviceId === dev));
      expect((await store.listDetections({ rule: 'rate', deviceId: 'other' })).every((d) => d.rule === 'rate' && d.deviceId === 'other')).to.equal(true);
      await store.changeDetectionState(made[0].id, { from: ['open'], to: 'resolved', at: new Date(), actor: 'a' });
      expect((await store.listDetections({ state: 'resolved' })).map((d) => d.id)).to.deep.equal([made[0].id]);
      expect(await store.listDetections({ state: 'open', templateId: 'nope' })).to.deep.equal([]);
      await expectKakuinError(store.listDetections({ afterId: 'det_0' }), 'KAKUIN_E_VALIDATION');
    });

    it('refuses bad input with KAKUIN_E_VALIDATION and writes nothing', async function () {
      await expectKakuinError(store.createDetection(detection('', T0)), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.createDetection(detection('d1', T0, { action: 'revoke' as never })), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.createDetection(detection('d1', T0, { detectedAt: new Date(NaN) })), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.saveDetectionTemplate(template('Bad Id', 1)), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.saveDetectionTemplate(template('x', 0)), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.listDetections({ limit: 0 }), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.listDetections({ state: 'closed' as never }), 'KAKUIN_E_VALIDATION');
      expect(await store.listDetections({})).to.deep.equal([]);
      expect((await store.listDetectionTemplates()).map((t) => t.id)).to.deep.equal(['camera']);
    });
  });
}
