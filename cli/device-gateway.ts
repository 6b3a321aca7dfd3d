/**
 * Wiring of the device-facing mTLS gateway: its TLS server certificate from the infrastructure CA,
 * trust in the device issuing CA (and the root above it) only, the registry's revocation feed (or an
 * OCSP responder) as the status source, and telemetry forwarded upstream or recorded locally.
 */
import { readFileSync } from 'node:fs';
import { createDeviceGateway, jsonLinesTelemetrySink, type DeviceGateway, type DeviceGatewayOptions, type TelemetrySink } from '../gateway-auth/index.js';
import type { KakuinConfig } from './config.js';
import { NO_ACTIVITY, type ActivityRecorder } from '../gateway-auth/activity-recorder.js';
import type { RunningDetections } from './detections.js';
import { startActivity } from './activity.js';
import type { Logger } from './logger.js';
import type { RevocationPlane } from './revocation-plane.js';
import { tlsMaterialFor } from './tls-material.js';
import type { Kakuin } from './wiring.js';

export interface RunningGateway {
  gateway: DeviceGateway;
  url: string;
  /** Where telemetry is recorded without an upstream (shared with the legacy path: one file, one writer). */
  sink?: TelemetrySink;
  /** The activity recorder (shared with the legacy path in the same process); undefined when activity is off. */
  activity?: ActivityRecorder;
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

export async function startDeviceGateway(kakuin: Kakuin, plane: RevocationPlane, logger: Logger, detections?: RunningDetections): Promise<RunningGateway> {
  const { config, hierarchy } = kakuin;
  const tls = await tlsMaterialFor(kakuin, 'gateway', logger);
  const g = config.gateway;
  const sink = g.upstreamUrl ? undefined : jsonLinesTelemetrySink(g.telemetryDir);
  const activity = startActivity(config, kakuin.registry, logger);
  // Detections see what activity sees (the feed hands every call on to the aggregator unchanged).
  const feed = detections?.attach(activity?.recorder ?? NO_ACTIVITY);
  const recorder: ActivityRecorder | undefined = feed ?? activity?.recorder;
  const gateway = createDeviceGateway({
    serverCertificates: [tls.cert],
    serverKeyPem: tls.key,
    serverKeyPassphrase: tls.passphrase,
    // During a device CA rollover's overlap, devices of the earlier CAs are admitted too.
    trustAnchors: [hierarchy.device, ...kakuin.previousDeviceCas].map((ca) => ca.record.certificateDer).concat(hierarchy.root.record.certificateDer),
    deviceIssuers: [hierarchy.device, ...kakuin.previousDeviceCas].map((ca) => ({ id: ca.id, certificate: ca.record.certificateDer })),
    registry: kakuin.registry,
    logger,
    statusSource: g.statusSource,
    statusGraceMs: g.statusGraceMs,
    maxPendingHandshakes: g.maxPendingHandshakes,
    perSourceConnectionsPerSecond: g.perSourceConnectionsPerSecond,
    ...(g.perSourceBurst !== undefined && { perSourceBurst: g.perSourceBurst }),
    ocsp: g.statusSource === 'ocsp'
      ? { url: g.ocspUrl ?? `${plane.httpUrl}/ocsp` }
      : undefined,
    telemetry: {
      bodyLimitBytes: g.bodyLimitBytes,
      upstreamUrl: g.upstreamUrl,
      upstreamCa: g.upstreamCaFile ? [readFileSync(g.upstreamCaFile, 'utf8')] : undefined,
      sink,
    },
    ...(recorder !== undefined && { activity: recorder }),
    ...(feed !== undefined && { sessionGate: feed }),
    mqtt: mqttFrontEndOptions(config),
    ...routeAndTcpOptions(config),
  });
  const address = await gateway.listen(g.port, config.bindHost);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `https://${host === '0.0.0.0' ? 'localhost' : host}:${address.port}`;
  logger.info('device gateway (mTLS) listening', { url, statusSource: g.statusSource });
  logMqttListener(gateway, logger);
  // A revocation call returns once this gateway has closed the device's open connections.
  plane.afterChange.push(() => gateway.pokeFeed());
  return {
    gateway, url, sink, ...(recorder !== undefined && { activity: recorder }),
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
