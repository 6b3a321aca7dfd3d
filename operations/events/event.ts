/**
 * The one event schema of kakuin's events out (README "Events"). Every event is an audit event
 * of the registry seen through this table: the audit trail is already the durable, ordered record
 * of what happened (each id assigned at commit, increasing), so sending it out at least once needs
 * nothing but a cursor per destination (registry/event-cursors.ts). Event types are stable names:
 * a type is never renamed or reused; a new one is added to this table and to the README.
 */
import type { AuditEvent } from '../../registry/port.js';

export interface KakuinEvent {
  /**
   * `evt_<audit event id>_<time in ms>`: the same on every redelivery. The time is part of it
   * because a registry restored from a backup gives the ids after the backup point out again, to
   * other events; with the time, those are new ids and a receiver's deduplication keeps them.
   */
  id: string;
  type: EventType;
  /** When it happened (ISO 8601, UTC, milliseconds). */
  time: string;
  /** The device it concerns, or null (a CA, a station, a refused unregistered serial). */
  device: string | null;
  /** Who acted: `token:<name>`, `station:<id>`, `cli`, `system`. */
  actor: string;
  /** Type-specific fields (README "Events"); `serialHex` when a certificate is named. */
  details: Record<string, unknown>;
}

/**
 * Audit event types that go out, by the group an operator filters on. The event type is the audit
 * type itself, so the audit trail (GET /api/v1/audit) and the events out speak the same names.
 */
export const EVENT_TYPES = {
  // Registry status changes (ca/revocation.ts): the device's status moved.
  'device.suspended': 'status',
  'device.resumed': 'status',
  'device.revoked': 'status',
  'device.retired': 'status',
  'certificate.revoked': 'status',
  // A revoked, suspended or retired device tried again (operations/activity, once per device per flush).
  'device.refused': 'refusal',
  // A detection rule with action `alert` fired (operations/detections); suspensions are device.suspended.
  'detection.alert': 'detection',
  // The legacy path: a burst of failures from one source or class, a device's credentials locked.
  'legacy.throttled': 'legacy',
  'legacy.locked': 'legacy',
  'legacy.unusual-hour': 'legacy',
  // Enrollment refused: unregistered serial, already enrolled (a clone?), public key bound elsewhere.
  'enrollment.refused': 'enrollment',
  // CA and station events.
  'ca.created': 'ca',
  'station.created': 'station',
  'station.disabled': 'station',
  'station.enabled': 'station',
  'station.key-rotated': 'station',
  'station.quota-set': 'station',
  'station.issued-revoked': 'station',
  // The audit trail's signed checkpoints (operations/audit): kept off-host, they reveal a deleted tail.
  'audit.checkpoint': 'audit',
} as const;

export type EventType = keyof typeof EVENT_TYPES;
export type EventGroup = (typeof EVENT_TYPES)[EventType];

export function isEventType(type: string): type is EventType {
  return Object.prototype.hasOwnProperty.call(EVENT_TYPES, type);
}

/** The audit event as an event out, or undefined when its type is not one that goes out. */
export function eventFromAudit(a: AuditEvent): KakuinEvent | undefined {
  if (!isEventType(a.type)) return undefined;
  return {
    id: `evt_${a.id}_${a.at.getTime()}`,
    type: a.type,
    time: a.at.toISOString(),
    device: a.deviceId ?? null,
    actor: a.actor,
    details: { ...(a.serialHex !== undefined && { serialHex: a.serialHex }), ...a.details },
  };
}

/**
 * A destination's `events` filter: exact types (`device.revoked`), a group prefix (`device.*`,
 * `station.*`) or `*`. Checked once at start (cli/config.ts), so a typo is a config error.
 */
export function eventFilter(patterns: readonly string[]): (type: EventType) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of patterns) {
    if (p === '*') return () => true;
    if (p.endsWith('.*')) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  return (type) => exact.has(type) || prefixes.some((prefix) => type.startsWith(prefix));
}

/** Whether a filter pattern names at least one event type (a config check). */
export function isEventPattern(p: string): boolean {
  if (p === '*') return true;
  if (p.endsWith('.*')) return Object.keys(EVENT_TYPES).some((t) => t.startsWith(p.slice(0, -1)));
  return isEventType(p);
}
