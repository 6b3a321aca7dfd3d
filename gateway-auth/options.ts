/**
 * What the composition root passes to `createDeviceGateway`, checked once and frozen (as fastify's
 * initial-config-validation does). Everything the gateway touches from outside comes in here: its
 * TLS identity, the trust anchors, the device issuing CAs, the registry view, the logger, the
 * upstream. A bad option is a KAKUIN_E_CONFIG at start, never a surprise on the first connection.
 */
import { NO_ACTIVITY, type ActivityRecorder } from './activity-recorder.js';
import type { SessionGate } from './session-gate.js';
import { KakuinError } from '../errors/index.js';
import { parseCertificate, toPem, type ParsedCertificate } from '../pkix/index.js';
import type { FeedEntry, Registry } from '../registry/port.js';
import { resolveMqttOptions, type MqttFrontEndOptions, type ResolvedMqttOptions } from './mqtt/options.js';
import { resolveRoutes, type DeviceRouteOptions, type ResolvedRoute } from './http/routes-options.js';
import { resolveTcpListeners, type ResolvedTcpListener, type TcpListenerOptions } from './tcp/options.js';
import type { ConnectionLimitOptions } from './connection-limits.js';
import { NO_SESSIONS, type SessionReporter } from './session-counts.js';
import { checkTicketKeys, type TicketKeys } from './ticket-keys.js';

/** The one logger shape the HTTP layers of kakuin use (the composition root provides it). */
export interface GatewayLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * The narrow registry view the gateway reads (boulder's "subsets"): certificate and device records,
 * the revoked/held list of each device issuer, and the revocation feed. It never writes.
 */
export type GatewayRegistry = Pick<Registry, 'getCertificate' | 'getDevice' | 'forEachCrlEntry' | 'readFeed' | 'latestFeedSeq'>;

/** The feed follower the gateway needs (registry/feed-follower.ts's FeedFollower fits it). */
export interface FeedSubscription {
  start(): void;
  stop(): void | Promise<void>;
  /** Read now instead of at the next poll; may resolve when that read has been delivered. */
  poke(): void | Promise<void>;
  readonly lastSeq: number;
  /** When the feed was last read successfully (undefined before the first read). */
  readonly lastSuccessAt: Date | number | undefined;
}

export interface FeedHandlers {
  onEntries(entries: FeedEntry[]): void | Promise<void>;
  onError(error: unknown): void;
}

/** Builds the follower; the default (feed-subscription.ts) polls the registry with FeedFollower. */
export type FeedFactory = (afterSeq: number, handlers: FeedHandlers) => FeedSubscription;

/** One telemetry receipt, as recorded locally when no upstream is configured. */
export interface TelemetryRecord {
  receivedAt: Date;
  deviceId: string;
  /** The client certificate (mTLS path); absent on the legacy token path. */
  serialHex?: string;
  issuerId?: string;
  /** How the device authenticated: absent for mTLS, `legacy-token` on the legacy path. */
  auth?: 'legacy-token';
  /** The JSON object the device sent (parsed). */
  data: Record<string, unknown>;
  /** Size of the body as received. */
  bytes: number;
}

/** Where telemetry goes when there is no upstream; `jsonLinesTelemetrySink(dir)` is the default kind. */
export interface TelemetrySink {
  record(record: TelemetryRecord): Promise<void>;
  close?(): Promise<void>;
}

/** PEM text, or DER bytes (certificates only). */
export type CertificateInput = string | Buffer;

export interface DeviceGatewayOptions {
  /**
   * The gateway's TLS server certificate chain, leaf first (issued by the infrastructure CA): DER
   * certificates, or PEM texts (one text may hold the whole chain, as cli/tls-material.ts writes it).
   */
  serverCertificates: CertificateInput[];
  /** Its private key, PEM (PKCS#8, SEC1 or PKCS#1); an ENCRYPTED PRIVATE KEY needs serverKeyPassphrase. */
  serverKeyPem: string | Buffer;
  serverKeyPassphrase?: string;
  /**
   * Trust anchors for verifying client chains in the handshake: the root and the device issuing
   * CA(s). Anything else here (a station CA, say) only lets its leaves finish the handshake; they
   * are still refused, because only `deviceIssuers` issue devices.
   */
  trustAnchors: CertificateInput[];
  /** The device issuing CAs, by registry issuer id: the only issuers whose leaves are devices. */
  deviceIssuers: { id: string; certificate: CertificateInput }[];
  registry: GatewayRegistry;
  logger: GatewayLogger;
  /** `feed` (default): follow the registry's revocation feed. `ocsp`: ask an RFC 6960 responder. */
  statusSource?: 'feed' | 'ocsp';
  /** How long a status stays known without a fresh feed read or OCSP answer (default 10 000 ms). */
  statusGraceMs?: number;
  feed?: {
    /** Poll interval of the follower (default 100 ms; DESIGN.md "Storage": ≤ 100 ms). */
    pollIntervalMs?: number;
    /** Feed entries per read (default 1000). */
    batchSize?: number;
    /** Replace the follower (tests, or a change-stream follower for MongoDB). */
    factory?: FeedFactory;
  };
  ocsp?: {
    /** The responder URL (http: or https:), e.g. `http://127.0.0.1:8080/ocsp`. Required in `ocsp` mode. */
    url: string;
    /** CA certificates for an https: responder (default: Node's bundled roots). */
    ca?: CertificateInput[];
    /** Reuse an answer at most this long, and never past its nextUpdate (default 5 000 ms). */
    cacheMaxAgeMs?: number;
    /** Re-ask for every connected certificate this often, to close revoked ones (default 1 000 ms). */
    recheckIntervalMs?: number;
    /** Per request (default 2 000 ms). */
    timeoutMs?: number;
    /** Requests in flight at once (default 16). */
    maxConcurrent?: number;
  };
  telemetry?: {
    /** Largest accepted body (default 65 536 bytes); larger gets 413 KAKUIN_E_TELEMETRY_TOO_LARGE. */
    bodyLimitBytes?: number;
    /** Where to forward (http: or https:). Without it, telemetry goes to `sink`. */
    upstreamUrl?: string;
    /** CA certificates for an https: upstream (default: Node's bundled roots). */
    upstreamCa?: CertificateInput[];
    /** Per forwarded request (default 10 000 ms). */
    upstreamTimeoutMs?: number;
    /** Used when no upstreamUrl is set (required then). */
    sink?: TelemetrySink;
  };
  /**
   * The MQTT front end (mqtt/): a second TLS listener, admitted exactly like the HTTP one, proxying
   * each device's session to `upstreamUrl` with its verified identity and topic policy enforced.
   */
  mqtt?: Omit<MqttFrontEndOptions, 'upstreamCaPem'> & {
    /** CA certificates for an mqtts: upstream (default: Node's bundled roots). */
    upstreamCa?: CertificateInput[];
  };
  /**
   * Proxied HTTP routes of the HTTPS listener (http/routes.ts): requests and WebSockets under a
   * prefix go to its upstream with the verified identity headers. Default: none.
   */
  routes?: (Omit<DeviceRouteOptions, 'upstreamCaPem'> & {
    /** CA certificates for an https: upstream (default: Node's bundled roots). */
    upstreamCa?: CertificateInput[];
  })[];
  /** Raw TCP front ends (tcp/): one TLS listener each, bytes forwarded after a PROXY v2 header. Default: none. */
  tcp?: TcpListenerOptions[];
  /** An idle connection is closed after this long (default 120 000 ms). */
  idleTimeoutMs?: number;
  /** A TLS handshake must finish within this (default 10 000 ms). */
  handshakeTimeoutMs?: number;
  /** TLS handshakes in flight across all listeners; beyond it new connections are closed at once (default 64; connection-limits.ts). */
  maxPendingHandshakes?: number;
  /** New connections per second per source address (token bucket); 0, the default, turns it off. */
  perSourceConnectionsPerSecond?: number;
  /** Connections a source may open at once before its rate applies (default: twice the rate, at least 1). */
  perSourceBurst?: number;
  /** Clock in ms (tests). */
  now?: () => number;
  /** Where admissions, refusals, closes and traffic are reported (activity-recorder.ts); default: nowhere. */
  activity?: ActivityRecorder;
  /** Where each admitted connection's open and close is reported (session-counts.ts); default: nowhere. */
  sessions?: SessionReporter;
  /**
   * Session-ticket keys shared with the other workers of a cluster (ticket-keys.ts); rotate with
   * `setTicketKeys`. Default: each listener's own random key (Node's), as a single process needs.
   */
  ticketKeys?: TicketKeys;
  /** This process's worker slot (1..N) under `gateway.workers` > 1: shown in `GET /healthz` as `worker`. */
  workerId?: number;
  /** Asked before each admission (session-gate.ts: the detections' clone rule); default: none. */
  sessionGate?: SessionGate;
}

export interface DeviceIssuerConfig {
  id: string;
  der: Buffer;
  cert: ParsedCertificate;
}

export interface ResolvedGatewayOptions {
  serverCertificatesPem: string;
  serverKeyPem: string | Buffer;
  serverKeyPassphrase?: string;
  trustAnchorsPem: string[];
  deviceIssuers: readonly DeviceIssuerConfig[];
  registry: GatewayRegistry;
  logger: GatewayLogger;
  statusSource: 'feed' | 'ocsp';
  statusGraceMs: number;
  feed: { pollIntervalMs: number; batchSize: number; factory?: FeedFactory };
  ocsp?: { url: URL; caPem?: string[]; cacheMaxAgeMs: number; recheckIntervalMs: number; timeoutMs: number; maxConcurrent: number };
  telemetry: { bodyLimitBytes: number; upstreamUrl?: URL; upstreamCaPem?: string[]; upstreamTimeoutMs: number; sink?: TelemetrySink };
  mqtt?: ResolvedMqttOptions;
  routes: readonly ResolvedRoute[];
  tcp: readonly ResolvedTcpListener[];
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  limits: Readonly<ConnectionLimitOptions>;
  now: () => number;
  activity: ActivityRecorder;
  sessions: SessionReporter;
  ticketKeys?: TicketKeys;
  workerId?: number;
  sessionGate?: SessionGate;
}

function configError(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_CONFIG', `gateway: ${message}`);
}

function positiveInt(value: unknown, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) <= 0) throw configError(`${field} must be a positive integer`);
  return value as number;
}

function resolveLimits(o: DeviceGatewayOptions): ConnectionLimitOptions {
  const rate = o.perSourceConnectionsPerSecond ?? 0;
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 0) throw configError('perSourceConnectionsPerSecond must be a whole number, 0 or more');
  return {
    maxPendingHandshakes: positiveInt(o.maxPendingHandshakes, 'maxPendingHandshakes', 64),
    perSourceConnectionsPerSecond: rate,
    perSourceBurst: positiveInt(o.perSourceBurst, 'perSourceBurst', Math.max(1, 2 * rate)),
  };
}

function certificateDer(input: CertificateInput, field: string): Buffer {
  if (Buffer.isBuffer(input) && input[0] === 0x30) return input;
  const text = Buffer.isBuffer(input) ? input.toString('latin1') : input;
  if (typeof text !== 'string') throw configError(`${field} must be PEM text or DER bytes`);
  const m = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/.exec(text);
  if (!m) throw configError(`${field} holds no PEM CERTIFICATE block`);
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

/** PEM for Node's TLS options, which do not take DER certificates. */
function certificatesPem(inputs: unknown, field: string): string[] {
  if (!Array.isArray(inputs) || inputs.length === 0) throw configError(`${field} must be a non-empty array of certificates`);
  return inputs.map((c: CertificateInput, i) => {
    if (typeof c === 'string' || (Buffer.isBuffer(c) && c[0] !== 0x30)) {
      const text = typeof c === 'string' ? c : c.toString('latin1');
      if (!text.includes('-----BEGIN CERTIFICATE-----')) throw configError(`${field}[${i}] holds no PEM CERTIFICATE block`);
      return text;
    }
    return toPem('CERTIFICATE', certificateDer(c, `${field}[${i}]`));
  });
}

function httpUrl(value: unknown, field: string): URL {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw configError(`${field} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(`${field} must be an http: or https: URL`);
  return url;
}

function requireMethods(value: unknown, field: string, methods: string[]): void {
  for (const m of methods) {
    if (typeof (value as Record<string, unknown> | undefined)?.[m] !== 'function') throw configError(`${field} must have a ${m}() method`);
  }
}

/** Validates and freezes the options; KAKUIN_E_CONFIG names the first bad field. */
export function resolveGatewayOptions(o: DeviceGatewayOptions): ResolvedGatewayOptions {
  if (o === null || typeof o !== 'object') throw configError('options must be an object');
  const serverCertificatesPem = certificatesPem(o.serverCertificates, 'serverCertificates').join('\n');
  const keyText = Buffer.isBuffer(o.serverKeyPem) ? o.serverKeyPem.toString('latin1') : o.serverKeyPem;
  if (typeof keyText !== 'string' || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyText)) throw configError('serverKeyPem must be a PEM private key');
  const trustAnchorsPem = certificatesPem(o.trustAnchors, 'trustAnchors');
  if (!Array.isArray(o.deviceIssuers) || o.deviceIssuers.length === 0) throw configError('deviceIssuers must name at least one device issuing CA');
  const deviceIssuers = o.deviceIssuers.map((d, i) => {
    if (typeof d?.id !== 'string' || d.id === '') throw configError(`deviceIssuers[${i}].id must be a registry issuer id`);
    const der = certificateDer(d.certificate, `deviceIssuers[${i}].certificate`);
    let cert: ParsedCertificate;
    try {
      cert = parseCertificate(der);
    } catch (e) {
      throw new KakuinError('KAKUIN_E_CONFIG', `gateway: deviceIssuers[${i}].certificate does not parse`, { cause: e });
    }
    if (cert.basicConstraints?.ca !== true) throw configError(`deviceIssuers[${i}].certificate is not a CA certificate`);
    return Object.freeze({ id: d.id, der, cert });
  });
  requireMethods(o.registry, 'registry', ['getCertificate', 'getDevice', 'forEachCrlEntry', 'readFeed', 'latestFeedSeq']);
  requireMethods(o.logger, 'logger', ['info', 'warn', 'error']);
  const statusSource = o.statusSource ?? 'feed';
  if (statusSource !== 'feed' && statusSource !== 'ocsp') throw configError('statusSource must be "feed" or "ocsp"');
  const statusGraceMs = positiveInt(o.statusGraceMs, 'statusGraceMs', 10_000);
  const feed = {
    pollIntervalMs: positiveInt(o.feed?.pollIntervalMs, 'feed.pollIntervalMs', 100),
    batchSize: positiveInt(o.feed?.batchSize, 'feed.batchSize', 1000),
    ...(o.feed?.factory !== undefined && { factory: o.feed.factory }),
  };
  if (feed.factory !== undefined && typeof feed.factory !== 'function') throw configError('feed.factory must be a function');
  let ocsp: ResolvedGatewayOptions['ocsp'];
  if (statusSource === 'ocsp') {
    if (o.ocsp === undefined) throw configError('statusSource "ocsp" needs ocsp.url');
    ocsp = {
      url: httpUrl(o.ocsp.url, 'ocsp.url'),
      ...(o.ocsp.ca !== undefined && { caPem: certificatesPem(o.ocsp.ca, 'ocsp.ca') }),
      cacheMaxAgeMs: positiveInt(o.ocsp.cacheMaxAgeMs, 'ocsp.cacheMaxAgeMs', 5_000),
      recheckIntervalMs: positiveInt(o.ocsp.recheckIntervalMs, 'ocsp.recheckIntervalMs', 1_000),
      timeoutMs: positiveInt(o.ocsp.timeoutMs, 'ocsp.timeoutMs', 2_000),
      maxConcurrent: positiveInt(o.ocsp.maxConcurrent, 'ocsp.maxConcurrent', 16),
    };
  }
  const t = o.telemetry ?? {};
  const telemetry: ResolvedGatewayOptions['telemetry'] = {
    bodyLimitBytes: positiveInt(t.bodyLimitBytes, 'telemetry.bodyLimitBytes', 64 * 1024),
    upstreamTimeoutMs: positiveInt(t.upstreamTimeoutMs, 'telemetry.upstreamTimeoutMs', 10_000),
  };
  if (t.upstreamUrl !== undefined) {
    telemetry.upstreamUrl = httpUrl(t.upstreamUrl, 'telemetry.upstreamUrl');
    if (t.upstreamCa !== undefined) telemetry.upstreamCaPem = certificatesPem(t.upstreamCa, 'telemetry.upstreamCa');
  } else {
    if (t.sink === undefined) throw configError('telemetry needs an upstreamUrl or a sink');
    requireMethods(t.sink, 'telemetry.sink', ['record']);
    telemetry.sink = t.sink;
  }
  const handshakeTimeoutMs = positiveInt(o.handshakeTimeoutMs, 'handshakeTimeoutMs', 10_000);
  let mqtt: ResolvedMqttOptions | undefined;
  if (o.mqtt !== undefined) {
    const { upstreamCa, ...rest } = o.mqtt;
    mqtt = resolveMqttOptions({ ...rest, ...(upstreamCa !== undefined && { upstreamCaPem: certificatesPem(upstreamCa, 'mqtt.upstreamCa') }) }, handshakeTimeoutMs);
  }
  if (o.routes !== undefined && !Array.isArray(o.routes)) throw configError('routes must be a list of {prefix, upstreamUrl}');
  const routes = resolveRoutes(o.routes?.map((r, i) => {
    if (r === null || typeof r !== 'object') return r;
    const { upstreamCa, ...rest } = r;
    return { ...rest, ...(upstreamCa !== undefined && { upstreamCaPem: certificatesPem(upstreamCa, `routes[${i}].upstreamCa`) }) };
  }));
  const tcp = resolveTcpListeners(o.tcp);
  const now = o.now ?? Date.now;
  if (typeof now !== 'function') throw configError('now must be a function');
  if (o.activity !== undefined) requireMethods(o.activity, 'activity', ['admitted', 'refused', 'closed', 'traffic', 'tokenResult', 'firmware']);
  if (o.sessions !== undefined) requireMethods(o.sessions, 'sessions', ['opened', 'closed']);
  if (o.workerId !== undefined && (!Number.isSafeInteger(o.workerId) || o.workerId < 1)) throw configError('workerId must be a positive integer');
  if (o.ticketKeys !== undefined) {
    try {
      checkTicketKeys(o.ticketKeys);
    } catch (e) {
      throw configError(`ticketKeys: ${(e as Error).message}`);
    }
  }
  if (o.sessionGate !== undefined) requireMethods(o.sessionGate, 'sessionGate', ['refuse']);
  return Object.freeze({
    serverCertificatesPem,
    serverKeyPem: o.serverKeyPem,
    ...(o.serverKeyPassphrase !== undefined && { serverKeyPassphrase: o.serverKeyPassphrase }),
    trustAnchorsPem,
    deviceIssuers: Object.freeze(deviceIssuers),
    registry: o.registry,
    logger: o.logger,
    statusSource,
    statusGraceMs,
    feed: Object.freeze(feed),
    ...(ocsp !== undefined && { ocsp: Object.freeze(ocsp) }),
    telemetry: Object.freeze(telemetry),
    ...(mqtt !== undefined && { mqtt }),
    routes,
    tcp,
    idleTimeoutMs: positiveInt(o.idleTimeoutMs, 'idleTimeoutMs', 120_000),
    handshakeTimeoutMs,
    limits: Object.freeze(resolveLimits(o)),
    now,
    activity: o.activity ?? NO_ACTIVITY,
    sessions: o.sessions ?? NO_SESSIONS,
    ...(o.ticketKeys !== undefined && { ticketKeys: o.ticketKeys }),
    ...(o.workerId !== undefined && { workerId: o.workerId }),
    ...(o.sessionGate !== undefined && { sessionGate: o.sessionGate }),
  });
}
