/**
 * gateway-auth: the device-facing mTLS gateway (DESIGN.md "Components"). The composition root
 * (`cli/`) builds it with `createDeviceGateway(options)`; see options.ts for every option.
 *
 * Imports: pkix/, errors/, registry/port.ts (types), registry/feed-follower.ts, and
 * `deviceIdFromUri` of ca/profiles.ts — nothing else of kakuin.
 *
 * The legacy three-factor token path lives in `legacy/` with its own entry point
 * (`gateway-auth/legacy/index.js`); it reaches the CA only through an injected issue function.
 */
export { createDeviceGateway, type DeviceGateway, type GatewayStats } from './gateway.js';
export type {
  CertificateInput, DeviceGatewayOptions, FeedFactory, FeedHandlers, FeedSubscription, GatewayLogger, GatewayRegistry, TelemetryRecord,
  TelemetrySink,
} from './options.js';
export type { GatewayReadiness } from './status-source.js';
export type { MqttStats } from './mqtt/front-end.js';
export type { MqttClientIdMode } from './mqtt/options.js';
export { IDENTITY_HEADERS, jsonLinesTelemetrySink } from './upstream.js';
export type { DeviceRouteOptions } from './http/routes-options.js';
export type { RouteStats } from './http/routes.js';
export type { TcpListenerOptions } from './tcp/options.js';
export type { TcpStats } from './tcp/front-end.js';
export { SessionTable, type CertificateSessions, type OpenedSession, type SessionCounts, type SessionReporter } from './session-counts.js';
export { newTicketKey, TICKET_KEY_BYTES, type TicketKeys } from './ticket-keys.js';
export { GatewayCluster, TICKET_KEY_ROTATION_MS, type GatewayClusterOptions, type WorkerState } from './cluster/primary.js';
export { serveAsGatewayWorker, type BuiltWorkerGateway, type WorkerStart } from './cluster/worker.js';
