/**
 * The detections port on SQLite (schema step 14). Every write is one short statement or one short
 * transaction (a template version: read the latest, insert the next).
 */
import type Database from 'better-sqlite3';
import type {
  DetectionQuery, DetectionRecord, DetectionStateChange, DetectionStore, DetectionTemplateRecord, NewDetection,
} from '../detections.js';
import {
  checkedDetectionQuery, checkedNewDetection, checkedOutcome, checkedTemplateRecord, detectionNotFound, detectionStateFields,
  templateNotFound, templateVersionTaken,
} from '../records/detections.js';
import { toKakuinError } from './driver-errors.js';
import { KakuinError } from '../../errors/index.js';

interface TemplateRow { id: string; version: number; description: string; assigned_to: string; rules: string; created_at: number; created_by: string }
interface DetectionRow {
  id: string; device_id: string; template_id: string; template_version: number; rule: string; action: string; state: string; summary: string;
  evidence: string; outcome: string | null; detected_at: number; acknowledged_at: number | null; acknowledged_by: string | null;
  acknowledge_note: string | null; resolved_at: number | null; resolved_by: string | null; resolve_note: string | null;
}

function templateOf(r: TemplateRow): DetectionTemplateRecord {
  return {
    id: r.id, version: r.version, description: r.description, assignedTo: JSON.parse(r.assigned_to), rules: JSON.parse(r.rules),
    createdAt: new Date(r.created_at), createdBy: r.created_by,
  };
}

function detectionOf(r: DetectionRow): DetectionRecord {
  return {
    id: r.id, deviceId: r.device_id, templateId: r.template_id, templateVersion: r.template_version, rule: r.rule,
    action: r.action as DetectionRecord['action'], state: r.state as DetectionRecord['state'], summary: r.summary, evidence: JSON.parse(r.evidence),
    ...(r.outcome !== null && { outcome: r.outcome }),
    detectedAt: new Date(r.detected_at),
    ...(r.acknowledged_at !== null && { acknowledgedAt: new Date(r.acknowledged_at) }),
    ...(r.acknowledged_by !== null && { acknowledgedBy: r.acknowledged_by }),
    ...(r.acknowledge_note !== null && { acknowledgeNote: r.acknowledge_note }),
    ...(r.resolved_at !== null && { resolvedAt: new Date(r.resolved_at) }),
    ...(r.resolved_by !== null && { resolvedBy: r.resolved_by }),
    ...(r.resolve_note !== null && { resolveNote: r.resolve_note }),
  };
}

export class SqliteDetectionStore implements DetectionStore {
  private readonly saveTemplate: Database.Transaction<(t: DetectionTemplateRecord) => void>;
  private readonly changeState: Database.Transaction<(id: string, change: DetectionStateChange) => DetectionRecord>;

  constructor(private readonly db: Database.Database) {
    const latest = db.prepare('SELECT max(version) AS v FROM detection_templates WHERE id = ?');
    const insert = db.prepare(`INSERT INTO detection_templates (id, version, description, assigned_to, rules, created_at, created_by)
      VALUES (@id, @version, @description, @assignedTo, @rules, @createdAt, @createdBy)`);
    this.saveTemplate = db.transaction((t: DetectionTemplateRecord) => {
      const v = (latest.get(t.id) as { v: number | null }).v ?? 0;
      if (v !== t.version - 1) throw templateVersionTaken(t);
      insert.run({
        id: t.id, version: t.version, description: t.description, assignedTo: JSON.stringify(t.assignedTo), rules: JSON.stringify(t.rules),
        createdAt: t.createdAt.getTime(), createdBy: t.createdBy,
      });
    });
    const get = db.prepare('SELECT * FROM detections WHERE id = ?');
    const update = db.prepare(`UPDATE detections SET state = @state, acknowledged_at = coalesce(@acknowledgedAt, acknowledged_at),
      acknowledged_by = coalesce(@acknowledgedBy, acknowledged_by), acknowledge_note = coalesce(@acknowledgeNote, acknowledge_note),
      resolved_at = coalesce(@resolvedAt, resolved_at), resolved_by = coalesce(@resolvedBy, resolved_by), resolve_note = coalesce(@resolveNote, resolve_note)
      WHERE id = @id`);
    this.changeState = db.transaction((id: string, change: DetectionStateChange) => {
      const row = get.get(id) as DetectionRow | undefined;
      if (row === undefined) throw detectionNotFound(id);
      const f = detectionStateFields(detectionOf(row), change);
      update.run({
        id, state: f.state, acknowledgedAt: f.acknowledgedAt?.getTime() ?? null, acknowledgedBy: f.acknowledgedBy ?? null, acknowledgeNote: f.acknowledgeNote ?? null,
        resolvedAt: f.resolvedAt?.getTime() ?? null, resolvedBy: f.resolvedBy ?? null, resolveNote: f.resolveNote ?? null,
      });
      return detectionOf(get.get(id) as DetectionRow);
    });
  }

  private run<T>(operation: string, fn: () => T, foreignKey?: { code: 'KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND'; message: string }): T {
    try {
      return fn();
    } catch (e) {
      throw toKakuinError(e, { operation, ...(foreignKey !== undefined && { foreignKey }) });
    }
  }

  async saveDetectionTemplate(template: DetectionTemplateRecord): Promise<DetectionTemplateRecord> {
    const t = checkedTemplateRecord(template);
    this.run('saving a detection template', () => this.saveTemplate.immediate(t));
    return t;
  }

  async getDetectionTemplate(id: string, version?: number): Promise<DetectionTemplateRecord> {
    const row = this.run('reading a detection template', () => (version === undefined
      ? this.db.prepare('SELECT * FROM detection_templates WHERE id = ? ORDER BY version DESC LIMIT 1').get(id)
      : this.db.prepare('SELECT * FROM detection_templates WHERE id = ? AND version = ?').get(id, version)) as TemplateRow | undefined);
    if (row === undefined) throw templateNotFound(String(id), version);
    return templateOf(row);
  }

  async listDetectionTemplates(): Promise<DetectionTemplateRecord[]> {
    const rows = this.run('listing detection templates', () => this.db.prepare(`SELECT t.* FROM detection_templates t
      JOIN (SELECT id, max(version) AS version FROM detection_templates GROUP BY id) l ON l.id = t.id AND l.version = t.version
      ORDER BY t.id`).all() as TemplateRow[]);
    return rows.map(templateOf);
  }

  async createDetection(detection: NewDetection): Promise<DetectionRecord> {
    const d = checkedNewDetection(detection);
    this.run('recording a detection', () => this.db.prepare(`INSERT INTO detections (id, device_id, template_id, template_version, rule, action, state, summary, evidence, detected_at)
      VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)`).run(d.id, d.deviceId, d.templateId, d.templateVersion, d.rule, d.action, d.summary, JSON.stringify(d.evidence), d.detectedAt.getTime()),
    { code: 'KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND', message: `no detection template ${d.templateId} version ${d.templateVersion}` });
    return { ...d, state: 'open' };
  }

  async getDetection(id: string): Promise<DetectionRecord> {
    const row = this.run('reading a detection', () => this.db.prepare('SELECT * FROM detections WHERE id = ?').get(id) as DetectionRow | undefined);
    if (row === undefined) throw detectionNotFound(String(id));
    return detectionOf(row);
  }

  async listDetections(query: DetectionQuery): Promise<DetectionRecord[]> {
    const q = checkedDetectionQuery(query);
    const where: string[] = [];
    const args: (string | number)[] = [];
    for (const [k, col] of [['deviceId', 'device_id'], ['state', 'state'], ['rule', 'rule'], ['templateId', 'template_id'], ['action', 'action']] as const) {
      if (q[k] !== undefined) {
        where.push(`${col} = ?`);
        args.push(q[k]!);
      }
    }
    return this.run('listing detections', () => {
      if (q.afterId !== undefined) {
        const a = this.db.prepare('SELECT detected_at, id FROM detections WHERE id = ?').get(q.afterId) as { detected_at: number; id: string } | undefined;
        if (a === undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no detection', { field: 'after' });
        where.push('(detected_at < ? OR (detected_at = ? AND id < ?))');
        args.push(a.detected_at, a.detected_at, a.id);
      }
      const sql = `SELECT * FROM detections ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY detected_at DESC, id DESC LIMIT ?`;
      return (this.db.prepare(sql).all(...args, q.limit) as DetectionRow[]).map(detectionOf);
    });
  }

  async setDetectionOutcome(id: string, outcome: string): Promise<void> {
    const o = checkedOutcome(outcome);
    const changes = this.run('recording a detection outcome', () => this.db.prepare('UPDATE detections SET outcome = ? WHERE id = ?').run(o, id).changes);
    if (changes === 0) throw detectionNotFound(String(id));
  }

  async changeDetectionState(id: string, change: DetectionStateChange): Promise<DetectionRecord> {
    return this.run('changing a detection\'s state', () => this.changeState.immediate(id, change));
  }
}
