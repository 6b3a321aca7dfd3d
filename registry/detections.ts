/**
 * The detections port (DESIGN.md "registry/": small consumer-named ports): detection templates,
 * every version kept, and the detections they made, with their state (open → acknowledged →
 * resolved), evidence and outcome. Written by operations/detections in the writing process only
 * (the responder and the management API); kept apart from the Registry port like activity.
 *
 * Templates' `rules` are opaque here: operations/detections/template.ts checks them before they
 * reach a store, and the registry does not import operations/.
 */

export const DETECTION_STATES = ['open', 'acknowledged', 'resolved'] as const;
export type DetectionState = (typeof DETECTION_STATES)[number];

export const DETECTION_ACTIONS = ['record', 'alert', 'suspend'] as const;
export type DetectionActionName = (typeof DETECTION_ACTIONS)[number];

export interface TemplateAssignmentRecord {
  manufacturerIds: string[];
  profiles: string[];
  commonAuthIds: string[];
}

export interface DetectionTemplateRecord {
  id: string;
  version: number;
  description: string;
  assignedTo: TemplateAssignmentRecord;
  rules: Record<string, unknown>;
  createdAt: Date;
  createdBy: string;
}

export interface DetectionRecord {
  /** `det_<32 hex>`. */
  id: string;
  deviceId: string;
  templateId: string;
  templateVersion: number;
  rule: string;
  action: DetectionActionName;
  state: DetectionState;
  summary: string;
  evidence: Record<string, unknown>;
  /** What the action did (`recorded`, `alerted`, `suspended`, `not suspended: ...`); undefined until it ran. */
  outcome?: string;
  detectedAt: Date;
  acknowledgedAt?: Date;
  acknowledgedBy?: string;
  acknowledgeNote?: string;
  resolvedAt?: Date;
  resolvedBy?: string;
  resolveNote?: string;
}

export type NewDetection = Omit<DetectionRecord, 'id' | 'state' | 'outcome' | 'acknowledgedAt' | 'acknowledgedBy' | 'acknowledgeNote' | 'resolvedAt' | 'resolvedBy' | 'resolveNote'>;

export interface DetectionQuery {
  deviceId?: string;
  state?: DetectionState;
  rule?: string;
  templateId?: string;
  action?: DetectionActionName;
  /** Paging: detections listed after the one with this id (newest first). KAKUIN_E_VALIDATION when no detection has it. */
  afterId?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}

export interface DetectionStateChange {
  /** Refused with KAKUIN_E_DETECTION_STATE unless the detection is in one of these now. */
  from: DetectionState[];
  to: 'acknowledged' | 'resolved';
  at: Date;
  actor: string;
  note?: string;
}

export interface DetectionStore {
  /**
   * Writes a template version: version 1 of a new id (KAKUIN_E_DETECTION_TEMPLATE_EXISTS when the
   * id has one already) or version n+1 where n is the latest now (KAKUIN_E_DETECTION_TEMPLATE_EXISTS
   * when another writer made n+1 first: the caller reads again). Earlier versions stay.
   */
  saveDetectionTemplate(template: DetectionTemplateRecord): Promise<DetectionTemplateRecord>;
  /** The latest version, or the named one; KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND. */
  getDetectionTemplate(id: string, version?: number): Promise<DetectionTemplateRecord>;
  /** The latest version of every template, by id. */
  listDetectionTemplates(): Promise<DetectionTemplateRecord[]>;
  /** KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND when the template version does not exist. */
  createDetection(detection: NewDetection): Promise<DetectionRecord>;
  /** KAKUIN_E_DETECTION_NOT_FOUND. */
  getDetection(id: string): Promise<DetectionRecord>;
  /** Newest first (detectedAt, then id). */
  listDetections(query: DetectionQuery): Promise<DetectionRecord[]>;
  setDetectionOutcome(id: string, outcome: string): Promise<void>;
  /** One detection moves on (acknowledge, resolve), atomically guarded by `from`. */
  changeDetectionState(id: string, change: DetectionStateChange): Promise<DetectionRecord>;
}
