/**
 * Checks of the detections port's inputs (registry/detections.ts), shared by every adapter so that
 * SQLite and MongoDB refuse exactly the same records: a bad one changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import {
  DETECTION_ACTIONS, DETECTION_STATES, type DetectionQuery, type DetectionRecord, type DetectionState, type DetectionStateChange,
  type DetectionTemplateRecord, type NewDetection,
} from '../detections.js';

function text(value: unknown, what: string, max: number, allowEmpty = false): string {
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0) || value.length > max) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a ${allowEmpty ? '' : 'non-empty '}string of at most ${max} characters`, { field: what });
  }
  return value;
}

function date(value: unknown, what: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a valid Date`, { field: what });
  return value;
}

function version(value: unknown, what = 'version'): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a positive integer`, { field: what });
  return value as number;
}

function plainObject(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be an object`, { field: what });
  // Stored as JSON: what does not survive it (a function, a cycle, a BigInt) is refused here.
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch {
    throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be plain JSON`, { field: what });
  }
  if (json.length > 65_536) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be at most 64 KiB as JSON`, { field: what });
  return JSON.parse(json) as Record<string, unknown>;
}

function ids(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.length > 1000) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be an array of at most 1000 ids`, { field: what });
  return value.map((v, i) => text(v, `${what}[${i}]`, 128));
}

export const TEMPLATE_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function checkedTemplateRecord(t: DetectionTemplateRecord): DetectionTemplateRecord {
  if (t === null || typeof t !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', 'a detection template must be an object');
  if (typeof t.id !== 'string' || !TEMPLATE_ID_PATTERN.test(t.id)) throw new KakuinError('KAKUIN_E_VALIDATION', 'template id must be lowercase letters, digits and "-" (at most 64)', { field: 'id' });
  const a = t.assignedTo;
  if (a === null || typeof a !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', 'assignedTo must be an object', { field: 'assignedTo' });
  return {
    id: t.id, version: version(t.version), description: text(t.description, 'description', 2000, true),
    assignedTo: { manufacturerIds: ids(a.manufacturerIds, 'assignedTo.manufacturerIds'), profiles: ids(a.profiles, 'assignedTo.profiles'), commonAuthIds: ids(a.commonAuthIds, 'assignedTo.commonAuthIds') },
    rules: plainObject(t.rules, 'rules'), createdAt: date(t.createdAt, 'createdAt'), createdBy: text(t.createdBy, 'createdBy', 256),
  };
}

export function checkedNewDetection(d: NewDetection): NewDetection & { id: string } {
  if (d === null || typeof d !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', 'a detection must be an object');
  if (!DETECTION_ACTIONS.includes(d.action)) throw new KakuinError('KAKUIN_E_VALIDATION', `action must be one of ${DETECTION_ACTIONS.join(', ')}`, { field: 'action' });
  return {
    id: `det_${randomBytes(16).toString('hex')}`,
    deviceId: text(d.deviceId, 'deviceId', 128), templateId: text(d.templateId, 'templateId', 64), templateVersion: version(d.templateVersion, 'templateVersion'),
    rule: text(d.rule, 'rule', 64), action: d.action, summary: text(d.summary, 'summary', 1000), evidence: plainObject(d.evidence, 'evidence'),
    detectedAt: date(d.detectedAt, 'detectedAt'),
  };
}

export function checkedDetectionQuery(q: DetectionQuery): DetectionQuery & { limit: number } {
  const limit = q.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new KakuinError('KAKUIN_E_VALIDATION', 'limit must be 1 to 1000', { field: 'limit' });
  if (q.state !== undefined && !DETECTION_STATES.includes(q.state)) throw new KakuinError('KAKUIN_E_VALIDATION', `state must be one of ${DETECTION_STATES.join(', ')}`, { field: 'state' });
  if (q.action !== undefined && !DETECTION_ACTIONS.includes(q.action)) throw new KakuinError('KAKUIN_E_VALIDATION', `action must be one of ${DETECTION_ACTIONS.join(', ')}`, { field: 'action' });
  for (const k of ['deviceId', 'rule', 'templateId', 'afterId'] as const) if (q[k] !== undefined) text(q[k], k, 128);
  return { ...q, limit };
}

export function checkedOutcome(outcome: unknown): string {
  return text(outcome, 'outcome', 1000);
}

/**
 * The fields a state change sets on `current`, or KAKUIN_E_DETECTION_STATE. Resolving needs no
 * acknowledgement first (an operator may resolve a false positive at once).
 */
export function detectionStateFields(current: DetectionRecord, change: DetectionStateChange): Partial<DetectionRecord> & { state: DetectionState } {
  if (change === null || typeof change !== 'object' || !Array.isArray(change.from)) throw new KakuinError('KAKUIN_E_VALIDATION', 'a state change needs from');
  date(change.at, 'at');
  text(change.actor, 'actor', 256);
  const note = change.note === undefined ? undefined : text(change.note, 'note', 2000, true);
  if (!change.from.includes(current.state)) {
    throw new KakuinError('KAKUIN_E_DETECTION_STATE', `detection ${current.id} is ${current.state}; it cannot become ${change.to}`);
  }
  if (change.to === 'acknowledged') {
    return { state: 'acknowledged', acknowledgedAt: change.at, acknowledgedBy: change.actor, ...(note !== undefined && { acknowledgeNote: note }) };
  }
  if (change.to === 'resolved') return { state: 'resolved', resolvedAt: change.at, resolvedBy: change.actor, ...(note !== undefined && { resolveNote: note }) };
  throw new KakuinError('KAKUIN_E_VALIDATION', 'to must be acknowledged or resolved', { field: 'to' });
}

export function detectionNotFound(id: string): KakuinError {
  return new KakuinError('KAKUIN_E_DETECTION_NOT_FOUND', `no detection ${JSON.stringify(id)}`);
}

export function templateNotFound(id: string, version?: number): KakuinError {
  return new KakuinError('KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND', `no detection template ${JSON.stringify(id)}${version === undefined ? '' : ` version ${version}`}`);
}

export function templateVersionTaken(t: DetectionTemplateRecord): KakuinError {
  return new KakuinError('KAKUIN_E_DETECTION_TEMPLATE_EXISTS', t.version === 1
    ? `detection template ${JSON.stringify(t.id)} exists already (PUT makes a new version)`
    : `detection template ${JSON.stringify(t.id)} version ${t.version} was written by someone else first; read it again`);
}
