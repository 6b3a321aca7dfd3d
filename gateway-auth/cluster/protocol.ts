/**
 * The IPC messages between the gateway cluster's primary (primary.ts) and its workers (worker.ts).
 * Node's cluster channel is ordered per worker, so a worker's `session-close` messages sent while it
 * applies a revocation arrive before its `poked` answer.
 */
import type { AddressInfo } from 'node:net';
import type { GatewayStats } from '../gateway.js';
import type { TelemetryRecord } from '../options.js';
import type { OpenedSession } from '../session-counts.js';
import type { GatewayReadiness } from '../status-source.js';
import type { ActivityCall } from './activity-relay.js';

/** Where a worker's HTTPS listener listens (the MQTT and TCP ports come with the worker's own options). */
export interface WorkerListen {
  port: number;
  host?: string;
}

/** Ticket keys travel base64 (the IPC channel's serialization is JSON). */
export interface WireTicketKeys { current: string; previous?: string }

export type PrimaryMessage =
  | {
    type: 'kakuin-gateway-start'; slot: number; payload: unknown; listen: WorkerListen; ticketKeys: WireTicketKeys; reportIntervalMs: number;
    /** Telemetry without an upstream is recorded by the primary (one file, one writer). */
    telemetryToPrimary: boolean;
    /** Device activity goes to the primary's recorder (activity-relay.ts) instead of the worker's own. */
    activityToPrimary?: boolean;
  }
  | { type: 'kakuin-gateway-telemetry-done'; n: number; error?: string }
  | { type: 'kakuin-gateway-ticket-keys'; ticketKeys: WireTicketKeys }
  | { type: 'kakuin-gateway-poke'; n: number }
  | { type: 'kakuin-gateway-stop' };

export interface ListeningAddresses {
  https: AddressInfo;
  mqtt: AddressInfo | null;
  tcp: (AddressInfo | null)[];
}

export type WorkerMessage =
  /** Sent once the worker listens for messages (a message sent before that would be lost). */
  | { type: 'kakuin-gateway-hello' }
  | { type: 'kakuin-gateway-listening'; addresses: ListeningAddresses }
  | { type: 'kakuin-gateway-failed'; error: string; code?: string }
  | { type: 'kakuin-gateway-report'; stats: GatewayStats; readiness: GatewayReadiness }
  | { type: 'kakuin-gateway-poked'; n: number }
  | { type: 'kakuin-gateway-session-open'; session: OpenedSession }
  | { type: 'kakuin-gateway-session-close'; id: string }
  | { type: 'kakuin-gateway-telemetry'; n: number; record: WireTelemetryRecord }
  | { type: 'kakuin-gateway-activity'; calls: ActivityCall[] };

/** A TelemetryRecord with its date as ISO text. */
export type WireTelemetryRecord = Omit<TelemetryRecord, 'receivedAt'> & { receivedAt: string };

function isOurs(m: unknown): boolean {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('kakuin-gateway-');
}

/** Only kakuin's messages (the channel also carries Node's own cluster traffic). */
export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return isOurs(m);
}

export function isPrimaryMessage(m: unknown): m is PrimaryMessage {
  return isOurs(m);
}
