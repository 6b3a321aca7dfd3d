/**
 * The event-cursor port (DESIGN.md "registry/": small consumer-named ports): where each events-out
 * destination (operations/events: a webhook, a syslog collector) has got to in the audit trail,
 * so that a restart resumes after the last event it delivered and loses nothing. Kept apart from
 * the Registry port: only the process that sends events (the writing one) needs it.
 */
export interface EventCursorStore {
  /** The audit event id a destination has delivered up to (inclusive); undefined: never started. */
  readEventCursor(destination: string): Promise<number | undefined>;
  /** Moves the destination's cursor; it never moves back (a late, slower write is ignored). */
  saveEventCursor(destination: string, afterAuditId: number): Promise<void>;
  /** The highest audit event id committed (0 when there is none): where a new destination starts. */
  latestAuditEventId(): Promise<number>;
}
