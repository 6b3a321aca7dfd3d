/**
 * Wiring of the device-facing mTLS gateway: its TLS server certificate from the infrastructure CA,
 * trust in the device issuing CA (and the root above it) only, the registry's revocation feed (or an
 * OCSP responder) as the status source, and telemetry forwarded upstream or recorded locally.
 * With gateway.workers > 1 the gateway runs in cluster workers (gateway-auth/cluster/,
 * cli/gateway-worker.ts) and this process is their primary.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  createDeviceGateway, GatewayCluster, jsonLinesTelemetrySink, SessionTable, type DeviceGateway, type DeviceGatewayOptions, type SessionCounts,
  type SessionReporter, type TelemetrySink,
} from '../gateway-auth/index.js';
import type { Registry } from '../registry/port.js';
import type { KakuinConfig } from './config.js';
import { NO_ACTIVITY, type ActivityRecorder } from '../gateway-auth/activity-recorder.js';
import type { SessionGate } from '../gateway-auth/session-gate.js';
import type { RunningDetections } from './detections.js';
import { startActivity } from './activity.js';
import type { Logger } from './logger.js';
import type { RevocationPlane } from './revocation-plane.js';
import { tlsMaterialFor, type TlsMaterial } from './tls-material.js';
import type { Kakuin } from './wiring.js';

export interface RunningGateway {
  gateway: DeviceGateway;
  url: string;
  /** Where telemetry is recorded without an upstream (shared with the legacy path: one file, one writer). */
  sink?: TelemetrySink;
  /** The activity recorder (shared with the legacy path in the same process); undefined when activity is off. */
  activity?: ActivityRecorder;
  /** Open sessions per certificate, across every gateway worker (gateway-auth/session-counts.ts). */
  sessions: SessionCounts;
  close(): Promise<void>;
}

/** The MQTT front end's options from gateway.mqtt.* (undefined when no broker is configured). */
export function mqttFrontEndOptions(config: Readonly<KakuinConfig>): DeviceGatewayOptions['mqtt'] {
  const m = config.gateway.mqtt;
  if (m.upstreamUrl === undefined) return undefined;
  return {
    port: m.port,
    upstreamUrl: m.upstreamUrl,
    ...(m.upstreamCaFile !== undefined && { upstreamCa: [readFileSync(m.upstreamCaFile, 'utf8')] }),
    // A file written with `echo` ends in a newline that is not part of the secret.
    ...(m.upstreamPasswordFile !== undefined && { upstreamPassword: readFileSync(m.upstreamPasswordFile, 'utf8').replace(/\r?\n$/, '') }),
    clientId: m.clientId,
    publishTopics: [...m.publishTopics],
    subscribeTopics: [...m.subscribeTopics],
  };
}

/** The proxied routes and TCP front ends from gateway.routes / gateway.tcp (CA files read here). */
export function routeAndTcpOptions(config: Readonly<KakuinConfig>): Pick<DeviceGatewayOptions, 'routes' | 'tcp'> {
  return {
    routes: config.gateway.routes.map((r) => ({
      prefix: r.prefix, upstreamUrl: r.upstreamUrl,
      ...(r.bodyLimitBytes !== undefined && { bodyLimitBytes: r.bodyLimitBytes }),
      ...(r.upstreamCaFile !== undefined && { upstreamCa: [readFileSync(r.upstreamCaFile, 'utf8')] }),
    })),
    tcp: config.gateway.tcp.map((t) => ({ port: t.port, upstream: t.upstream })),
  };
}

/** The CA certificates a gateway trusts: the device issuing CAs in service (current first) and the root. */
export interface GatewayTrust {
  deviceCas: { id: string; certificateDer: Buffer }[];
  rootDer: Buffer;
}

/**
 * createDeviceGateway's options from the config: the one place every process that runs a gateway
 * (`kakuin serve`, the gateway role, a cluster worker) builds them.
 */
export function deviceGatewayOptions(config: Readonly<KakuinConfig>, parts: {
  tls: TlsMaterial; trust: GatewayTrust; registry: Registry; logger: Logger; ocspUrl: string;
  sink?: TelemetrySink; activity?: ActivityRecorder; sessions?: SessionReporter; sessionGate?: SessionGate;
}): DeviceGatewayOptions {
  const g = config.gateway;
  const { tls, trust } = parts;
  return {
    serverCertificates: [tls.cert],
    serverKeyPem: tls.key,
    serverKeyPassphrase: tls.passphrase,
    // During a device CA rollover's overlap, devices of the earlier CAs are admitted too.
    trustAnchors: trust.deviceCas.map((ca) => ca.certificateDer).concat(trust.rootDer),
    deviceIssuers: trust.deviceCas.map((ca) => ({ id: ca.id, certificate: ca.certificateDer })),
    registry: parts.registry,
    logger: parts.logger,
    statusSource: g.statusSource,
    statusGraceMs: g.statusGraceMs,
    maxPendingHandshakes: g.maxPendingHandshakes,
    perSourceConnectionsPerSecond: g.perSourceConnectionsPerSecond,
    ...(g.perSourceBurst !== undefined && { perSourceBurst: g.perSourceBurst }),
    ocsp: g.statusSource === 'ocsp' ? { url: g.ocspUrl ?? parts.ocspUrl } : undefined,
    telemetry: {
      bodyLimitBytes: g.bodyLimitBytes,
      upstreamUrl: g.upstreamUrl,
      upstreamCa: g.upstreamCaFile ? [readFileSync(g.upstreamCaFile, 'utf8')] : undefined,
      sink: parts.sink,
    },
    ...(parts.activity !== undefined && { activity: parts.activity }),
    ...(parts.sessions !== undefined && { sessions: parts.sessions }),
    ...(parts.sessionGate !== undefined && { sessionGate: parts.sessionGate }),
    mqtt: mqttFrontEndOptions(config),
    ...routeAndTcpOptions(config),
  };
}

/**
 * The gateway of this process: in process with gateway.workers 1, else a GatewayCluster whose
 * workers (cli/gateway-worker.ts) each run one; either way `sessions` counts every worker's sessions.
 */
export async function startGateway(config: Readonly<KakuinConfig>, parts: {
  tls: TlsMaterial; trust: GatewayTrust; registry: Registry; logger: Logger; ocspUrl: string; sink?: TelemetrySink; activity?: ActivityRecorder;
  /** The detections' clone gate: in process only (with workers, each worker admits on its own; see startDeviceGateway). */
  sessionGate?: SessionGate;
}): Promise<{ gateway: DeviceGateway; sessions: SessionCounts; url: string }> {
  const g = config.gateway;
  let gateway: DeviceGateway;
  let sessions: SessionCounts;
  if (g.workers > 1) {
    const payload: GatewayWorkerPayload = {
      config, tls: parts.tls, ocspUrl: parts.ocspUrl,
      deviceCas: parts.trust.deviceCas.map((ca) => ({ id: ca.id, der: ca.certificateDer.toString('base64') })),
      rootDer: parts.trust.rootDer.toString('base64'),
    };
    const cluster = new GatewayCluster({
      workers: g.workers, exec: fileURLToPath(new URL('./gateway-worker.js', import.meta.url)), payload, logger: parts.logger,
      ...(parts.sink !== undefined && { telemetrySink: parts.sink }),
      // The workers' activity comes here: one writer, and the detections feed sees every worker.
      ...(parts.activity !== undefined && { activity: parts.activity }),
      statusSource: g.statusSource, statusGraceMs: g.statusGraceMs,
    });
    gateway = cluster;
    sessions = cluster.sessions;
  } else {
    const table = new SessionTable();
    gateway = createDeviceGateway(deviceGatewayOptions(config, { ...parts, sessions: table }));
    sessions = table;
  }
  const address = await gateway.listen(g.port, config.bindHost);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `https://${host === '0.0.0.0' ? 'localhost' : host}:${address.port}`;
  parts.logger.info('device gateway (mTLS) listening', { url, statusSource: g.statusSource, workers: g.workers });
  logMqttListener(gateway, parts.logger);
  return { gateway, sessions, url };
}

/** What a gateway worker gets from the primary (JSON over the cluster's IPC channel). */
export interface GatewayWorkerPayload {
  config: Readonly<KakuinConfig>;
  tls: TlsMaterial;
  ocspUrl: string;
  deviceCas: { id: string; der: string }[];
  rootDer: string;
}

export async function startDeviceGateway(kakuin: Kakuin, plane: RevocationPlane, logger: Logger, detections?: RunningDetections): Promise<RunningGateway> {
  const { config, hierarchy } = kakuin;
  const tls = await tlsMaterialFor(kakuin, 'gateway', logger);
  const g = config.gateway;
  // With workers, the sink records what they send here; the recorder serves this process's legacy path (each worker has its own).
  const sink = g.upstreamUrl ? undefined : jsonLinesTelemetrySink(g.telemetryDir);
  const activity = startActivity(config, kakuin.registry, logger);
  // Detections see what activity sees (the feed hands every call on to the aggregator unchanged).
  const feed = detections?.attach(activity?.recorder ?? NO_ACTIVITY);
  const recorder: ActivityRecorder | undefined = feed ?? activity?.recorder;
  if (feed !== undefined && g.workers > 1) {
    // The workers' activity reaches the feed (activity-relay.ts) and the clone rule sees sessions on
    // every worker, but the gate that refuses a clone's second session during the handshake runs
    // in process only (it would need a round trip to this process per handshake): with workers the
    // clone is suspended just after its second session is admitted, which cuts both.
    logger.info('detections: gateway workers send their activity here; a clone\'s second session is suspended after admission, not refused in its handshake', { workers: g.workers });
  }
  const { gateway, sessions, url } = await startGateway(config, {
    tls, registry: kakuin.registry, logger, sink, ...(recorder !== undefined && { activity: recorder }),
    ...(feed !== undefined && { sessionGate: feed }),
    trust: {
      deviceCas: [hierarchy.device, ...kakuin.previousDeviceCas].map((ca) => ({ id: ca.id, certificateDer: ca.record.certificateDer })),
      rootDer: hierarchy.root.record.certificateDer,
    },
    ocspUrl: `${plane.httpUrl}/ocsp`,
  });
  // A revocation call returns once this gateway (every worker of it) has closed the device's open connections.
  plane.afterChange.push(() => gateway.pokeFeed());
  return {
    gateway, url, sink, sessions, ...(recorder !== undefined && { activity: recorder }),
    close: async () => {
      await gateway.close();
      await activity?.close();
      await sink?.close();
    },
  };
}

/** Where devices reach the MQTT front end (undefined when it is off). */
export function mqttUrlOf(gateway: DeviceGateway): string | undefined {
  const m = gateway.mqttAddress();
  if (m === null) return undefined;
  const host = m.family === 'IPv6' ? `[${m.address}]` : m.address;
  return `mqtts://${host === '0.0.0.0' ? 'localhost' : host}:${m.port}`;
}

/** Where devices reach the MQTT and TCP front ends, for the operator's log. */
export function logMqttListener(gateway: DeviceGateway, logger: Logger): void {
  const url = mqttUrlOf(gateway);
  if (url !== undefined) logger.info('device gateway (MQTT over mTLS) listening', { url });
  for (const t of gateway.tcpAddresses()) {
    if (t !== null) logger.info('device gateway (TCP over mTLS, PROXY v2 upstream) listening', { host: t.address, port: t.port });
  }
}
