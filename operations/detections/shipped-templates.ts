/**
 * The templates kakuin ships (version 1 of `vehicle`, `school`, `home`, `camera`), with the field
 * trial's figures. docs/detections.md gives the rationale of every figure; keep the two in step.
 * They are assigned to nothing: an operator assigns one (PUT, version 2) to a manufacturer, a
 * profile or a common auth ID, so no device is ever suspended by a template nobody chose.
 *
 * Networks are documentation prefixes (RFC 5737, RFC 3849) and RFC 6598 shared address space
 * standing for a carrier's APN pool: an operator replaces them with their own.
 */
import type { TemplateInput } from './template.js';

const none = { manufacturerIds: [], profiles: [], commonAuthIds: [] };

export const SHIPPED_TEMPLATES: readonly TemplateInput[] = Object.freeze([
  {
    id: 'vehicle',
    description: 'Telematics unit in a car on a carrier APN: reports every minute while it has coverage, buffers when it has none (underground car parks), retries its SIM attach.',
    assignedTo: none,
    rules: {
      // Seed: "one silent for 6 hours is stolen" — but a car in an underground car park is silent
      // too, so silence alerts and never suspends on its own.
      silence: { expectedIntervalSeconds: 60, silenceLimitSeconds: 6 * 3600, action: 'alert' },
      // 10 messages per 10 min normally; 3x headroom for SIM retries. After ≥10 min without a
      // message the unit sends what it buffered (24 h at one a minute) within 15 min: not counted.
      rate: { maxMessages: 30, perSeconds: 600, burstAfterReconnect: { minGapSeconds: 600, withinSeconds: 900, maxMessages: 1440 }, action: 'suspend' },
      // Roaming partners hand out other ranges: an alert, not a suspension.
      networks: { allowed: ['100.64.0.0/10', '2001:db8:a000::/36'], action: 'alert' },
      // One car, one unit: a second session from elsewhere is a clone; the gateway refuses it.
      sessions: { maxConcurrent: 1, refuseExtra: true, action: 'suspend' },
      // Seed: 10 or more authentications by one identity within a minute (successes too).
      authBurst: { maxAttempts: 10, perSeconds: 60, action: 'alert' },
      firmwareDowngrade: { action: 'suspend' },
    },
  },
  {
    id: 'school',
    description: "A child's school tablet or watch: on the school Wi-Fi by day, at home in the evening and at weekends.",
    assignedTo: none,
    rules: {
      // Trial lesson: a child's device off the school Wi-Fi looks stolen. A long weekend plus a
      // bank holiday is 4 days; silence and networks only record.
      silence: { expectedIntervalSeconds: 300, silenceLimitSeconds: 4 * 86_400, action: 'record' },
      rate: { maxMessages: 60, perSeconds: 600, burstAfterReconnect: { minGapSeconds: 3600, withinSeconds: 900, maxMessages: 500 }, action: 'alert' },
      // Seed: "a success between 22:00 and 06:00 is an alert" — a child's device in the night.
      usualHours: { timeZone: 'Europe/Berlin', from: '06:00', to: '22:00', action: 'alert' },
      networks: { allowed: ['10.30.0.0/16', '2001:db8:5c00::/40'], action: 'record' },
      sessions: { maxConcurrent: 1, refuseExtra: false, action: 'alert' },
      authBurst: { maxAttempts: 10, perSeconds: 60, action: 'alert' },
      firmwareDowngrade: { action: 'alert' },
    },
  },
  {
    id: 'home',
    description: 'A meter, thermostat or hub on a household broadband line: a reading every 5 minutes around the clock, any consumer ISP address.',
    assignedTo: none,
    rules: {
      silence: { expectedIntervalSeconds: 300, silenceLimitSeconds: 6 * 3600, action: 'alert' },
      // Seed: "far more often than its baseline is hijacked": 2 per 10 min, suspended above 30.
      // A router reboot or outage buffers a few hours of readings: up to 300 after ≥30 min away.
      rate: { maxMessages: 30, perSeconds: 600, burstAfterReconnect: { minGapSeconds: 1800, withinSeconds: 600, maxMessages: 300 }, action: 'suspend' },
      sessions: { maxConcurrent: 1, refuseExtra: false, action: 'alert' },
      authBurst: { maxAttempts: 10, perSeconds: 60, action: 'alert' },
      firmwareDowngrade: { action: 'alert' },
    },
  },
  {
    id: 'camera',
    description: "A fixed camera on a site's network: a heartbeat every minute and motion events, never anywhere else.",
    assignedTo: none,
    rules: {
      // A camera going dark is an incident in itself (someone unplugged it): 15 min.
      silence: { expectedIntervalSeconds: 60, silenceLimitSeconds: 900, action: 'alert' },
      rate: { maxMessages: 600, perSeconds: 600, burstAfterReconnect: { minGapSeconds: 300, withinSeconds: 300, maxMessages: 2000 }, action: 'suspend' },
      // Seed: "a connection from a network other than the device's own": a camera off its site was taken.
      networks: { allowed: ['10.20.0.0/16', '2001:db8:ca00::/40'], action: 'suspend' },
      sessions: { maxConcurrent: 1, refuseExtra: true, action: 'suspend' },
      authBurst: { maxAttempts: 10, perSeconds: 60, action: 'alert' },
      firmwareDowngrade: { action: 'suspend' },
    },
  },
]);
