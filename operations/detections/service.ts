/**
 * Detection templates and detections as the management API and the resume route use them:
 * template versions (POST makes version 1, PUT the next one), the shipped templates written once,
 * acknowledge and resolve, and "which detection suspended this device" / "resuming it resolves
 * that detection". Template changes are handed to `onTemplatesChanged` (the live feed re-reads).
 */
import { KakuinError } from '../../errors/index.js';
import type { DetectionQuery, DetectionRecord, DetectionStore, DetectionTemplateRecord } from '../../registry/detections.js';
import { SHIPPED_TEMPLATES } from './shipped-templates.js';
import { checkTemplateInput, type DetectionTemplate, type RuleName } from './template.js';

export interface DetectionServiceOptions {
  store: DetectionStore;
  now?: () => Date;
  onTemplatesChanged?: (templates: DetectionTemplate[]) => void;
  /** A detection was resolved: its rule may fire again for the device (DetectionEngine.rearm). */
  onResolved?: (detection: DetectionRecord) => void;
}

function asTemplate(r: DetectionTemplateRecord): DetectionTemplate {
  return r as unknown as DetectionTemplate;
}

export class DetectionService {
  constructor(private readonly o: DetectionServiceOptions) {}

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** Writes version 1 of each shipped template that is not there yet (at start; idempotent). */
  async ensureShippedTemplates(): Promise<void> {
    const have = new Set((await this.o.store.listDetectionTemplates()).map((t) => t.id));
    for (const t of SHIPPED_TEMPLATES) {
      if (have.has(t.id)) continue;
      try {
        await this.o.store.saveDetectionTemplate({ ...checkTemplateInput(t), version: 1, createdAt: this.now(), createdBy: 'system' });
      } catch (e) {
        // Another process wrote it first.
        if ((e as { code?: string }).code !== 'KAKUIN_E_DETECTION_TEMPLATE_EXISTS') throw e;
      }
    }
    await this.templatesChanged();
  }

  async templates(): Promise<DetectionTemplate[]> {
    return (await this.o.store.listDetectionTemplates()).map(asTemplate);
  }

  async template(id: string, version?: number): Promise<DetectionTemplate> {
    return asTemplate(await this.o.store.getDetectionTemplate(id, version));
  }

  async createTemplate(input: unknown, actor: string): Promise<DetectionTemplate> {
    const t = checkTemplateInput(input);
    const saved = await this.o.store.saveDetectionTemplate({ ...t, version: 1, createdAt: this.now(), createdBy: actor });
    await this.templatesChanged();
    return asTemplate(saved);
  }

  /** PUT: the whole template again (without id); version n+1. KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND. */
  async updateTemplate(id: string, input: unknown, actor: string): Promise<DetectionTemplate> {
    if (input !== null && typeof input === 'object' && 'id' in input && (input as { id: unknown }).id !== id) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'the body\'s id must be the id in the path (or left out)', { field: 'id' });
    }
    const t = checkTemplateInput({ ...(input as object), id });
    const current = await this.o.store.getDetectionTemplate(id);
    const saved = await this.o.store.saveDetectionTemplate({ ...t, version: current.version + 1, createdAt: this.now(), createdBy: actor });
    await this.templatesChanged();
    return asTemplate(saved);
  }

  detection(id: string): Promise<DetectionRecord> {
    return this.o.store.getDetection(id);
  }

  detections(query: DetectionQuery): Promise<DetectionRecord[]> {
    return this.o.store.listDetections(query);
  }

  acknowledge(id: string, actor: string, note?: string): Promise<DetectionRecord> {
    return this.o.store.changeDetectionState(id, { from: ['open'], to: 'acknowledged', at: this.now(), actor, ...(note !== undefined && { note }) });
  }

  async resolve(id: string, actor: string, note?: string): Promise<DetectionRecord> {
    const d = await this.o.store.changeDetectionState(id, { from: ['open', 'acknowledged'], to: 'resolved', at: this.now(), actor, ...(note !== undefined && { note }) });
    this.o.onResolved?.(d);
    return d;
  }

  /** The unresolved detection that suspended the device, if a rule did (newest first). */
  async suspensionOf(deviceId: string): Promise<DetectionRecord | undefined> {
    const list = await this.o.store.listDetections({ deviceId, action: 'suspend', limit: 100 });
    return list.find((d) => d.state !== 'resolved' && d.outcome === 'suspended');
  }

  /** The device was resumed: every unresolved detection that suspended it is resolved with the operator's note. */
  async deviceResumed(deviceId: string, actor: string, note?: string): Promise<DetectionRecord[]> {
    const list = await this.o.store.listDetections({ deviceId, action: 'suspend', limit: 1000 });
    const resolved: DetectionRecord[] = [];
    for (const d of list) {
      if (d.state === 'resolved' || d.outcome !== 'suspended') continue;
      resolved.push(await this.resolve(d.id, actor, note ?? 'device resumed'));
    }
    return resolved;
  }

  private async templatesChanged(): Promise<void> {
    if (this.o.onTemplatesChanged !== undefined) this.o.onTemplatesChanged(await this.templates());
  }
}

export type { RuleName };
