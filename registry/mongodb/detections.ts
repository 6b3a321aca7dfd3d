/**
 * The detections port on MongoDB (registry/detections.ts). A template version is a document
 * `<id>|<version>` (an insert: a second writer of the same next version hits the duplicate `_id`),
 * a detection one document keyed by its id; a state change is one findOneAndUpdate guarded by
 * the state it may leave, so no transaction is needed.
 */
import { KakuinError } from '../../errors/index.js';
import type {
  DetectionQuery, DetectionRecord, DetectionStateChange, DetectionStore, DetectionTemplateRecord, NewDetection,
} from '../detections.js';
import {
  checkedDetectionQuery, checkedNewDetection, checkedOutcome, checkedTemplateRecord, detectionNotFound, detectionStateFields,
  templateNotFound, templateVersionTaken,
} from '../records/detections.js';
import { COLLECTIONS } from './documents.js';
import { isDuplicateKey } from './driver-errors.js';
import type { RegistryPlumbing } from './plumbing.js';

type TemplateDoc = DetectionTemplateRecord & { _id: string };
/** `order`: detection time (ms, 15 digits) and id, so "newest first, then id" is one sortable key. */
type DetectionDoc = Omit<DetectionRecord, 'id'> & { _id: string; order: string };

function orderKey(detectedAt: Date, id: string): string {
  return `${String(detectedAt.getTime()).padStart(15, '0')}|${id}`;
}

function templateOf(d: TemplateDoc): DetectionTemplateRecord {
  return { id: d.id, version: d.version, description: d.description, assignedTo: d.assignedTo, rules: d.rules, createdAt: d.createdAt, createdBy: d.createdBy };
}

function detectionOf(d: DetectionDoc): DetectionRecord {
  const { _id, order: _order, ...rest } = d;
  return { id: _id, ...rest };
}

export class MongoDetectionStore implements DetectionStore {
  constructor(private readonly p: RegistryPlumbing) {}

  private templates() {
    return this.p.col<TemplateDoc>(COLLECTIONS.detectionTemplates);
  }

  private detections() {
    return this.p.col<DetectionDoc>(COLLECTIONS.detections);
  }

  async saveDetectionTemplate(template: DetectionTemplateRecord): Promise<DetectionTemplateRecord> {
    const t = checkedTemplateRecord(template);
    await this.p.write('saving a detection template', async () => {
      const latest = await this.templates().find({ id: t.id }).sort({ version: -1 }).limit(1).next();
      if ((latest?.version ?? 0) !== t.version - 1) throw templateVersionTaken(t);
      try {
        await this.templates().insertOne({ _id: `${t.id}|${t.version}`, ...t });
      } catch (e) {
        if (isDuplicateKey(e)) throw templateVersionTaken(t);
        throw e;
      }
    });
    return t;
  }

  async getDetectionTemplate(id: string, version?: number): Promise<DetectionTemplateRecord> {
    const doc = await this.p.read('reading a detection template', () => (version === undefined
      ? this.templates().find({ id }).sort({ version: -1 }).limit(1).next()
      : this.templates().findOne({ _id: `${id}|${version}` })));
    if (doc === null) throw templateNotFound(String(id), version);
    return templateOf(doc);
  }

  async listDetectionTemplates(): Promise<DetectionTemplateRecord[]> {
    // Templates are a handful per installation: every version is read and the latest kept here.
    const docs = await this.p.read('listing detection templates', () => this.templates().find({}).sort({ id: 1, version: -1 }).toArray());
    return docs.filter((d, i) => i === 0 || docs[i - 1].id !== d.id).map(templateOf);
  }

  async createDetection(detection: NewDetection): Promise<DetectionRecord> {
    const d = checkedNewDetection(detection);
    await this.getDetectionTemplate(d.templateId, d.templateVersion);
    const { id, ...rest } = d;
    await this.p.write('recording a detection', () => this.detections().insertOne({ _id: id, order: orderKey(d.detectedAt, id), ...rest, state: 'open' }));
    return { ...d, state: 'open' };
  }

  async getDetection(id: string): Promise<DetectionRecord> {
    const doc = await this.p.read('reading a detection', () => this.detections().findOne({ _id: String(id) }));
    if (doc === null) throw detectionNotFound(String(id));
    return detectionOf(doc);
  }

  async listDetections(query: DetectionQuery): Promise<DetectionRecord[]> {
    const q = checkedDetectionQuery(query);
    return this.p.read('listing detections', async () => {
      const filter: Record<string, unknown> = {};
      for (const k of ['deviceId', 'state', 'rule', 'templateId', 'action'] as const) if (q[k] !== undefined) filter[k] = q[k];
      if (q.afterId !== undefined) {
        const a = await this.detections().findOne({ _id: q.afterId }, { projection: { order: 1 } });
        if (a === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no detection', { field: 'after' });
        filter.order = { $lt: a.order };
      }
      const docs = await this.detections().find(filter).sort({ order: -1 }).limit(q.limit).toArray();
      return docs.map(detectionOf);
    });
  }

  async setDetectionOutcome(id: string, outcome: string): Promise<void> {
    const o = checkedOutcome(outcome);
    const r = await this.p.write('recording a detection outcome', () => this.detections().updateOne({ _id: String(id) }, { $set: { outcome: o } }));
    if (r.matchedCount === 0) throw detectionNotFound(String(id));
  }

  async changeDetectionState(id: string, change: DetectionStateChange): Promise<DetectionRecord> {
    const current = await this.getDetection(id);
    const fields = detectionStateFields(current, change);
    const updated = await this.p.write('changing a detection\'s state', () => this.detections().findOneAndUpdate(
      { _id: current.id, state: current.state }, { $set: fields }, { returnDocument: 'after' }));
    // Another writer moved it between the read and the update: judged again on what it is now.
    if (updated === null) return this.changeDetectionState(id, change);
    return detectionOf(updated);
  }
}
