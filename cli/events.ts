/**
 * Wiring of events out (operations/events): one dispatcher per configured destination, following
 * the audit trail of the writing process's registry (`kakuin serve`, or the ca role), with its
 * cursor in the same registry. Also the sink of the activity aggregator's notable refusals: a
 * revoked or suspended device that tries again becomes a `device.refused` audit event, so it is in
 * the audit trail and goes out like every other event.
 */
import { readFileSync } from 'node:fs';
import { KakuinError } from '../errors/index.js';
import type { NotableRefusal } from '../operations/activity/aggregator.js';
import { EventDispatcher, eventFilter, SyslogDestination, WebhookDestination, type EventDestination } from '../operations/events/index.js';
import type { Registry } from '../registry/port.js';
import { SqliteRegistry } from '../registry/sqlite/index.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';

export interface RunningEvents {
  dispatchers: EventDispatcher[];
  /** Read the audit trail now (after a status change committed in this process). */
  wake(): void;
  close(): Promise<void>;
}

function readPemFile(file: string | undefined, what: string): string[] | undefined {
  if (file === undefined) return undefined;
  try {
    return [readFileSync(file, 'utf8')];
  } catch (e) {
    throw new KakuinError('KAKUIN_E_CONFIG', `cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

function readSecret(file: string, what: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KakuinError('KAKUIN_E_CONFIG', `cannot read ${what} ${file}: ${(e as Error).message}`);
  }
  // A file written with `echo` ends in a newline that is not part of the secret.
  const secret = Buffer.from(text.replace(/\r?\n$/, ''), 'utf8');
  if (secret.length < 16) throw new KakuinError('KAKUIN_E_CONFIG', `${what} ${file} must hold at least 16 bytes`);
  return secret;
}

/** Undefined when no destination is configured. KAKUIN_E_CONFIG for an unreadable secret or CA file. */
export function startEvents(config: Readonly<KakuinConfig>, registry: Registry, logger: Logger): RunningEvents | undefined {
  const e = config.events;
  if (e.webhooks.length === 0 && e.syslog === undefined) return undefined;
  if (!(registry instanceof SqliteRegistry) || registry.connectionSettings().readonly) {
    logger.warn('events out need the SQLite registry opened read-write (kakuin serve or the ca role); sending nothing', { storage: config.storage.type });
    return undefined;
  }
  const destinations: { destination: EventDestination; events: readonly string[] }[] = [];
  for (const [i, w] of e.webhooks.entries()) {
    destinations.push({
      destination: new WebhookDestination({
        url: w.url,
        secret: readSecret(w.secretFile, `events.webhooks[${i}].secretFile`),
        ...(w.caFile !== undefined && { ca: readPemFile(w.caFile, `events.webhooks[${i}].caFile`) }),
      }),
      events: w.events,
    });
  }
  if (e.syslog !== undefined) {
    destinations.push({
      destination: new SyslogDestination({
        url: e.syslog.url,
        ...(e.syslog.caFile !== undefined && { ca: readPemFile(e.syslog.caFile, 'events.syslog.caFile') }),
        ...(e.syslog.hostname !== undefined && { hostname: e.syslog.hostname }),
      }),
      events: e.syslog.events,
    });
  }
  const dispatchers = destinations.map(({ destination, events }) => new EventDispatcher({
    audit: registry,
    cursors: registry.eventCursors,
    destination,
    filter: eventFilter(events),
    onDeliveryError: (error, event, attempt, retryInMs) => logger.warn('event delivery failed; retrying', {
      code: 'KAKUIN_E_EVENT_DELIVERY', destination: destination.name, eventId: event.id, attempt, retryInMs, error: String((error as Error)?.message ?? error),
    }),
    onStoreError: (error) => logger.warn('events out could not read the audit trail or save a cursor; retrying', { destination: destination.name, error: String(error) }),
  }));
  for (const d of dispatchers) {
    d.start();
    logger.info('events out', { destination: d.name });
  }
  return {
    dispatchers,
    wake: () => dispatchers.forEach((d) => d.wake()),
    close: async () => {
      await Promise.all(dispatchers.map((d) => d.stop()));
    },
  };
}

/**
 * The activity aggregator's `onNotable` in a process whose registry is writable: the refusal as a
 * `device.refused` audit event (operations/events sends it). Undefined when the registry is
 * read-only (a gateway role process): the refusal is still in the device's activity.
 */
export function notableRefusalSink(registry: Registry, logger: Logger): ((r: NotableRefusal) => void) | undefined {
  if (registry instanceof SqliteRegistry && registry.connectionSettings().readonly) return undefined;
  return (r) => {
    registry.appendAuditEvent({
      type: 'device.refused', actor: 'system', deviceId: r.deviceId, at: r.at,
      details: { reason: r.reason, frontEnd: r.frontEnd, ...(r.address !== undefined && { address: r.address }) },
    }).catch((error: unknown) => logger.warn('could not record a refused device as an audit event', { deviceId: r.deviceId, error: String(error) }));
  };
}
