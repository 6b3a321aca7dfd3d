/**
 * Detection templates (README "Detections"): per service, which rules apply with which thresholds,
 * and what each does when it fires. A template is assigned to manufacturers, certificate profiles
 * or legacy common auth IDs; it is versioned (an edit makes version n+1, and every detection names
 * the version that fired), so an operator can always tell which thresholds a detection was held to.
 *
 * The schema is zod, so the management API validates a body with the very same definition the
 * engine relies on (api-schema reads `.describe()` into the OpenAPI document).
 */
import { z } from 'zod';
import { KakuinError } from '../../errors/index.js';
import { checkTimeZone, minutesOf } from './local-time.js';
import { parseCidr } from './networks.js';

/** What a rule does when it fires. Never revoke: suspension is reversible, a false positive is not fatal. */
export const ACTIONS = ['record', 'alert', 'suspend'] as const;
export type DetectionAction = (typeof ACTIONS)[number];

export const RULES = ['silence', 'rate', 'usualHours', 'networks', 'sessions', 'authBurst', 'firmwareDowngrade'] as const;
export type RuleName = (typeof RULES)[number];

const action = z.enum(ACTIONS).describe('record (a detection only), alert (also an event out: detection.alert), suspend (also certificateHold; never revoke)');
const seconds = (max: number) => z.number().int().min(1).max(max);
const DAY = 86_400;

const hhmm = z.string().refine((s) => minutesOf(s) !== undefined, 'must be a time of day HH:MM (00:00 to 23:59)');
const timeZone = z.string().min(1).max(64).refine((tz) => {
  try {
    checkTimeZone(tz);
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone (Europe/Berlin, UTC)');
const cidr = z.string().max(64).refine((c) => {
  try {
    parseCidr(c);
    return true;
  } catch {
    return false;
  }
}, 'must be a CIDR network (198.51.100.0/24, 2001:db8::/32)');

export const RULE_SCHEMAS = {
  silence: z.strictObject({
    expectedIntervalSeconds: seconds(7 * DAY).describe('how often the device normally sends'),
    silenceLimitSeconds: seconds(90 * DAY).describe('fires once no message or connection came for this long'),
    action,
  }),
  rate: z.strictObject({
    maxMessages: z.number().int().min(1).max(100_000_000).describe('at most this many messages ...'),
    perSeconds: seconds(DAY).describe('... per this sliding window'),
    burstAfterReconnect: z.strictObject({
      minGapSeconds: seconds(90 * DAY).describe('a connection after at least this long without a message is a reconnect'),
      withinSeconds: seconds(DAY).describe('for this long after a reconnect ...'),
      maxMessages: z.number().int().min(1).max(100_000_000).describe('... this many buffered messages are not counted'),
    }).optional(),
    action,
  }),
  usualHours: z.strictObject({
    timeZone,
    from: hhmm.describe('start of the usual hours, local time'),
    to: hhmm.describe('end (exclusive); from > to wraps midnight'),
    action,
  }),
  networks: z.strictObject({
    allowed: z.array(cidr).min(1).max(256).describe('CIDR networks the device may connect from (IPv4 and IPv6)'),
    action,
  }),
  sessions: z.strictObject({
    maxConcurrent: z.number().int().min(1).max(64).describe('at most this many sessions at once from different addresses'),
    refuseExtra: z.boolean().describe('the gateway refuses a session beyond the limit (the clone gets no connection)'),
    action,
  }),
  authBurst: z.strictObject({
    maxAttempts: z.number().int().min(2).max(1_000_000).describe('this many authentications, successes included, ...'),
    perSeconds: seconds(DAY).describe('... within this window fire'),
    action,
  }),
  firmwareDowngrade: z.strictObject({ action }),
} as const;

export const TEMPLATE_RULES = z.strictObject({
  silence: RULE_SCHEMAS.silence.optional(),
  rate: RULE_SCHEMAS.rate.optional(),
  usualHours: RULE_SCHEMAS.usualHours.optional(),
  networks: RULE_SCHEMAS.networks.optional(),
  sessions: RULE_SCHEMAS.sessions.optional(),
  authBurst: RULE_SCHEMAS.authBurst.optional(),
  firmwareDowngrade: RULE_SCHEMAS.firmwareDowngrade.optional(),
});
export type TemplateRules = z.infer<typeof TEMPLATE_RULES>;

const ids = z.array(z.string().min(1).max(128)).max(1000);
export const ASSIGNMENT = z.strictObject({
  manufacturerIds: ids.default([]).describe('devices of these manufacturers'),
  profiles: ids.default([]).describe('devices whose certificate has one of these profiles'),
  commonAuthIds: ids.default([]).describe('legacy devices of these common auth IDs'),
});
export type TemplateAssignment = z.infer<typeof ASSIGNMENT>;

export const TEMPLATE_ID = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be lowercase letters, digits and "-" (at most 64)');

/** POST body (PUT: the same without `id`). */
export const TEMPLATE_INPUT = z.strictObject({
  id: TEMPLATE_ID,
  description: z.string().max(2000).default(''),
  assignedTo: ASSIGNMENT.default({ manufacturerIds: [], profiles: [], commonAuthIds: [] }),
  rules: TEMPLATE_RULES,
});
export type TemplateInput = z.infer<typeof TEMPLATE_INPUT>;

export interface DetectionTemplate {
  id: string;
  version: number;
  description: string;
  assignedTo: TemplateAssignment;
  rules: TemplateRules;
  /** When this version was written, and by whom (`token:<name>`, `system` for the shipped ones). */
  createdAt: Date;
  createdBy: string;
}

/** The template fields as given (the store and the engine take only checked ones). */
export function checkTemplateInput(input: unknown): TemplateInput {
  const r = TEMPLATE_INPUT.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new KakuinError('KAKUIN_E_VALIDATION', `detection template: ${issue.path.join('.') || '(body)'} ${issue.message}`, { field: issue.path.join('.') });
  }
  if (Object.keys(r.data.rules).length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'detection template: rules must name at least one rule', { field: 'rules' });
  const s = r.data.rules.silence;
  if (s !== undefined && s.silenceLimitSeconds <= s.expectedIntervalSeconds) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'detection template: rules.silence.silenceLimitSeconds must be longer than expectedIntervalSeconds', { field: 'rules.silence' });
  }
  const h = r.data.rules.usualHours;
  if (h !== undefined && h.from === h.to) throw new KakuinError('KAKUIN_E_VALIDATION', 'detection template: rules.usualHours from and to must differ', { field: 'rules.usualHours' });
  return r.data;
}

/** Who a device is, for picking its template: the most specific assignment wins. */
export interface DeviceSubject {
  manufacturerId?: string;
  profile?: string;
  commonAuthId?: string;
}

/**
 * The template of a device: one assigned to its common auth ID, else to its certificate profile,
 * else to its manufacturer (the narrower grouping is the operator's more deliberate choice). Among
 * several at one level, the smallest id, so the choice never depends on load order.
 */
export function templateForSubject(templates: readonly DetectionTemplate[], s: DeviceSubject): DetectionTemplate | undefined {
  const levels: [keyof TemplateAssignment, string | undefined][] = [
    ['commonAuthIds', s.commonAuthId], ['profiles', s.profile], ['manufacturerIds', s.manufacturerId],
  ];
  for (const [key, value] of levels) {
    if (value === undefined) continue;
    const hits = templates.filter((t) => t.assignedTo[key].includes(value));
    if (hits.length > 0) return hits.reduce((a, b) => (a.id <= b.id ? a : b));
  }
  return undefined;
}
