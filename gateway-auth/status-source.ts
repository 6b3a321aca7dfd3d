/**
 * Where the gateway learns whether a device certificate is good: the registry's revocation feed
 * (feed-status.ts) or an RFC 6960 responder (ocsp-status.ts). Both fail closed: a status counts as
 * known only while its last successful read is younger than `statusGraceMs`.
 */
import type { DeviceStatus } from '../registry/port.js';
import type { DeviceIdentity } from './device-identity.js';
import type { GatewayLogger } from './options.js';

export type CertificateVerdict = { ok: true } | { ok: false; reason: string; stale?: boolean };

export const GOOD: CertificateVerdict = Object.freeze({ ok: true });

/** What `/readyz` and `readiness()` report. */
export interface GatewayReadiness {
  ready: boolean;
  statusSource: 'feed' | 'ocsp';
  statusGraceMs: number;
  /** feed: ms since the last successful feed read. */
  feedLagMs?: number;
  /** feed: the last feed sequence number applied. */
  lastFeedSeq?: number;
  /** ocsp: ms since the responder last answered (undefined before the first answer). */
  ocspLagMs?: number;
  /** Why it is not ready. */
  reason?: string;
  /** The gateway closed new connections in the last few seconds (reconnect storm; connection-limits.ts). Not a readiness failure. */
  shedding?: boolean;
  /** TLS handshakes in flight now. */
  pendingHandshakes?: number;
  /** Under gateway.workers > 1 (cluster/primary.ts): workers configured, listening, and ready. */
  workers?: { configured: number; live: number; ready: number };
}

/** Told by a status source when connections must go. */
export interface StatusEvents {
  /** A certificate became revoked or held: close its connections now. */
  certificateBad(certKey: string, reason: string): void;
  /** A device feed entry: the device's new status (anything but `active` closes its connections). */
  deviceStatus(deviceId: string, status: DeviceStatus): void;
}

export interface CertificateStatusSource {
  readonly kind: 'feed' | 'ocsp';
  /** Load what is needed and begin following; resolves when the source can answer. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The status of one certificate; synchronous when it is known in memory. */
  check(id: DeviceIdentity): CertificateVerdict | Promise<CertificateVerdict>;
  /** Whether the status of this certificate is known now (false: fail closed). */
  isFresh(id: DeviceIdentity): boolean;
  readiness(): GatewayReadiness;
  /** Read the feed now (after a revocation in this process); resolves when delivered. A no-op for OCSP. */
  poke(): Promise<void>;
  /** OCSP: re-check these connected certificates (called periodically). */
  recheck?(connected: Iterable<DeviceIdentity>): void;
}

export function toMillis(d: Date | number | undefined): number | undefined {
  if (d === undefined) return undefined;
  return typeof d === 'number' ? d : d.getTime();
}

/**
 * Logs when the status source turns stale and when it recovers (once per transition, not per
 * connection), so an operator sees why devices are refused.
 */
export function watchReadiness(source: CertificateStatusSource, logger: GatewayLogger, intervalMs: number): () => void {
  let wasReady = true;
  const timer = setInterval(() => {
    const r = source.readiness();
    if (r.ready === wasReady) return;
    wasReady = r.ready;
    if (r.ready) logger.info('gateway revocation status is fresh again; accepting devices', { ...r });
    else logger.error('gateway fails closed: revocation status is stale', { ...r });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** At most one log line per `intervalMs` for a repeating failure. */
export function throttledWarn(logger: GatewayLogger, message: string, intervalMs = 5_000): (fields: Record<string, unknown>) => void {
  let last = 0;
  let suppressed = 0;
  return (fields) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    last = now;
    logger.warn(message, suppressed > 0 ? { ...fields, suppressed } : fields);
    suppressed = 0;
  };
}

export function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
