/**
 * `kakuin serve`: opens (or on first start creates) the CA, starts the revocation plane (OCSP, CRLs,
 * plain-HTTP listener) and serves the management API over HTTPS.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { AdminAuthenticator } from '../management-api/admin-tokens.js';
import { createManagementApi, type ManagementApiDeps } from '../management-api/management-api.js';
import { UserLogins } from '../management-api/logins.js';
import { UserAccounts } from '../management-api/users.js';
import type { UserStore } from '../registry/users.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';
import { ensureFirstAdminToken } from './admin-bootstrap.js';
import { mqttUrlOf, startDeviceGateway, type RunningGateway } from './device-gateway.js';
import { startEvents, type RunningEvents } from './events.js';
import { startAuditCheckpoints } from './audit.js';
import type { AuditCheckpointer } from '../operations/audit/index.js';
import { startDetections, type RunningDetections } from './detections.js';
import { startLegacyPath, type RunningLegacyPath } from './legacy-path.js';
import { startRevocationPlane, type RevocationPlane } from './revocation-plane.js';
import { scepFor } from './scep.js';
import { scepHttpHandler, type ScepService } from '../enrollment/scep/index.js';
import { caCertificatesOf, metricsCollector } from './metrics.js';
import { cmpProtectionKeyFor, tlsMaterialFor, type TlsMaterial } from './tls-material.js';
import { startAcme, type RunningAcme } from './acme.js';
import {
  EnrollmentService, mountEnrollmentRoutes, StationCertificateAuthenticator, stationCertificateOr, StationQuota, StationRateLimit,
} from '../enrollment/index.js';
import { caFiles, openKakuin, type Kakuin } from './wiring.js';
import { bulkAndApprovals } from './bulk-approvals.js';
import { toPem } from '../pkix/index.js';
import { RevocationService } from '../ca/revocation.js';
import type { CrlPublisher } from '../ca/crl/crl-publisher.js';
import { jsonLinesTelemetrySink } from '../gateway-auth/index.js';
import { mountLegacyAdminRoutes } from '../gateway-auth/legacy/index.js';
import type { KeyRing } from '../hsm-adapters/index.js';
import type { SoftwareKeyStore } from '../hsm-adapters/software/index.js';
import type { OcspResponder } from '../ocsp-responder/index.js';
import type { FeedEntry, Registry } from '../registry/port.js';
import { SqliteRegistry } from '../registry/sqlite/index.js';
import type { ActivityStore } from '../registry/activity.js';
import type { CmpStore } from '../registry/cmp.js';
import {
  needsWritableRegistry, openReadOnlyView, readTlsMaterial, ROLES, startCrlPublication, startGatewayRole, startOcspRole,
  type GatewayRole, type Role,
} from './roles.js';

export interface RunningService {
  kakuin: Kakuin;
  apiUrl: string;
  /** The management API's express app (its declared routes: api-schema/routes.ts `routesOf`). */
  apiApp: Express;
  /** The plain-HTTP listener (OCSP, CRLs, CA certificates) as bound. */
  httpUrl: string;
  plane: RevocationPlane;
  /** The device gateway (mTLS) as bound. */
  gatewayUrl: string;
  gateway: RunningGateway;
  /** The legacy three-factor token path (HTTPS) as bound. */
  legacyUrl: string;
  legacy: RunningLegacyPath;
  /** Events out (events.webhooks, events.syslog); undefined when none is configured. */
  events?: RunningEvents;
  /** Detections (detections.enabled, on a writable registry). */
  detections?: RunningDetections;
  /** SCEP (enrollment/scep/), when the registry adapter carries its store. */
  scep?: ScepService;
  /** Set on the first start without KAKUIN_ADMIN_TOKEN: shown once. */
  initialAdminToken?: string;
  adminTokenFile?: string;
  close(): Promise<void>;
}

/**
 * The process that issues writes at production-line rates: its SQLite WAL checkpoints run in a
 * worker thread (registry/sqlite/wal-checkpointer.ts), not inside its group commits.
 */
function checkpointOffTheEventLoop(registry: Registry, logger: Logger): void {
  if (!(registry instanceof SqliteRegistry)) return;
  registry.checkpointInBackground({
    onError: (e) => logger.error('the WAL checkpoint worker failed; the registry checkpoints on its own again', { cause: String(e) }),
  });
}

/** The activity store the management API reads (undefined with activity off: its routes answer KAKUIN_E_ACTIVITY_OFF). */
function activityStoreOf(registry: Registry, config: Readonly<KakuinConfig>): ActivityStore | undefined {
  if (!config.activity.enabled) return undefined;
  // Both adapters carry `activity`; the MongoDB one is not imported here (cli/wiring.ts loads its driver only when configured).
  return (registry as { activity?: ActivityStore }).activity;
}

/**
 * People's logins on the management API (management-api/logins.ts): both adapters carry a `users`
 * store; `clock` is for tests that move time (session timeouts, TOTP steps) instead of sleeping.
 */
function userLoginsOf(registry: Registry, pepper: Buffer, config: Readonly<KakuinConfig>, clock?: () => number): ManagementApiDeps['users'] {
  const store = (registry as { users?: UserStore }).users;
  if (store === undefined) return undefined;
  const accounts = new UserAccounts(registry, store, pepper, { passwordKdfCost: config.users.passwordKdfCost });
  const sessionIdleMs = config.users.sessionIdleMinutes * 60_000;
  const logins = new UserLogins(store, accounts, pepper, {
    sessionIdleMs, sessionMaxMs: config.users.sessionMaxHours * 3_600_000, passwordKdfCost: config.users.passwordKdfCost, ...(clock !== undefined && { now: clock }),
  });
  return { store, accounts, logins, sessionIdleMs };
}

/** Both adapters carry the CMP store (registry/cmp.ts) as `cmp`; the MongoDB one is not imported here. */
function cmpStoreOf(registry: Registry): CmpStore | undefined {
  return (registry as { cmp?: CmpStore }).cmp;
}

function stationKeyMaxAgeMs(config: Readonly<KakuinConfig>): number {
  return config.enrollment.stationKeyMaxAgeDays * 24 * 3600_000;
}

export async function startService(config: Readonly<KakuinConfig>, logger: Logger, env: Record<string, string | undefined> = process.env, options: { clock?: () => number } = {}): Promise<RunningService> {
  const kakuin = await openKakuin(config, logger, { bootstrap: true, actor: 'system', env });
  checkpointOffTheEventLoop(kakuin.registry, logger);
  let plane: RevocationPlane | undefined;
  let gateway: RunningGateway | undefined;
  let legacy: RunningLegacyPath | undefined;
  let events: RunningEvents | undefined;
  let checkpoints: AuditCheckpointer | undefined;
  let detections: RunningDetections | undefined;
  let acme: RunningAcme | undefined;
  try {
    if (kakuin.created) logger.info('development CA hierarchy created', { dataDir: config.dataDir });
    const admin = await ensureFirstAdminToken(kakuin, env);
    const tls = await tlsMaterialFor(kakuin, 'api', logger);
    const cmpKey = await cmpProtectionKeyFor(kakuin, logger);
    plane = await startRevocationPlane(kakuin, logger);
    events = startEventsOut(kakuin.registry, plane.afterChange, config, logger);
    checkpoints = startAuditCheckpoints(kakuin, logger);
    detections = await startDetections(config, kakuin.registry, plane.revocation, logger);
    gateway = await startDeviceGateway(kakuin, plane, logger, detections);
    legacy = await startLegacyPath(kakuin, plane, logger, gateway.sink, gateway.activity);
    const legacyPath = legacy;
    const revocation = plane.revocation;
    const enrollment = new EnrollmentService(kakuin.registry, kakuin.deviceIssuer, revocation, {
      overlapHours: config.enrollment.overlapHours,
      stationQuota: new StationQuota(kakuin.registry),
      stationRateLimit: new StationRateLimit(config.enrollment.stationPerSecond, config.enrollment.stationBurst),
      onBackgroundError: (e) => logger.error('superseding a re-enrolled certificate failed', { cause: String(e) }),
    });
    enrollment.start();
    const scep = scepFor(kakuin, enrollment, 'scep');
    if (scep && config.scep.plainHttp) {
      plane.mountPlainHttp('/scep', scepHttpHandler(scep.service, (e) => logger.error('SCEP request failed', { cause: String(e) })));
    }
    acme = startAcme(kakuin, revocation, logger);
    const acmeRoutes = acme;
    const authenticator = new AdminAuthenticator(kakuin.registry, kakuin.pepper, env.KAKUIN_ADMIN_TOKEN, { stationKeyMaxAgeMs: stationKeyMaxAgeMs(config) });
    const bulk = bulkAndApprovals(kakuin, kakuin.registry, revocation, config, logger);
    const app = createManagementApi({
      ...bulk.deps,
      registry: kakuin.registry,
      ...(activityStoreOf(kakuin.registry, config) !== undefined && { activity: activityStoreOf(kakuin.registry, config) }),
      issuer: kakuin.deviceIssuer,
      revocation: plane.revocation,
      crls: plane.crls,
      ...(detections !== undefined && { detections: detections.service }),
      readiness: () => gateway!.gateway.readiness(),
      metrics: metricsCollector({
        registry: kakuin.registry, caCertificates: caCertificatesOf(kakuin), issuedCount: () => kakuin.deviceIssuer.issuedCount,
        stationKeyExpiresAt: (s) => authenticator.stationKeyExpiresAt(s),
        responder: plane.responder, gateway: gateway.gateway, enrollment,
      }),
      authenticator,
      users: userLoginsOf(kakuin.registry, kakuin.pepper, config, options.clock),
      logger,
      maxBodyBytes: config.api.maxBodyBytes,
      pepper: kakuin.pepper,
      extraRoutes: (routes, helpers) => {
        legacyPath.mountAdminRoutes(routes, helpers);
        mountEnrollmentRoutes(routes, helpers, {
          registry: kakuin.registry, revocation, enrollment, pepper: kakuin.pepper, maxImportBytes: config.enrollment.importBodyLimitBytes, maxBatchBytes: config.enrollment.batchBodyLimitBytes,
          stationCertificates: kakuin.stationCertificates,
          ...(cmpStoreOf(kakuin.registry) !== undefined && { cmp: { store: cmpStoreOf(kakuin.registry)!, protectionKey: cmpKey, onError: (e: unknown) => logger.error('CMP request failed', { cause: String(e) }) } }),
          ...(scep && { scep }),
        });
        acmeRoutes?.mount(routes, helpers);
      },
    });
    await bulk.resume();
    const api = await listenManagementApi(kakuin, app, tls, logger);
    const apiUrl = api.url;
    const started = plane;
    const startedGateway = gateway;
    return {
      kakuin, apiUrl, apiApp: app, httpUrl: started.httpUrl, plane: started, gatewayUrl: startedGateway.url, gateway: startedGateway,
      legacyUrl: legacyPath.url, legacy: legacyPath, ...(events !== undefined && { events }), ...(detections !== undefined && { detections }), ...(scep && { scep: scep.service }),
      initialAdminToken: admin.token, adminTokenFile: admin.file,
      close: async () => {
        await api.close();
        await bulk.close();
        await acmeRoutes?.close();
        enrollment.close();
        await legacyPath.close();
        await startedGateway.close();
        await checkpoints?.stop();
        await detections?.close();
        await events?.close();
        await started.close();
        await kakuin.close();
      },
    };
  } catch (e) {
    await acme?.close().catch(() => undefined);
    await legacy?.close().catch(() => undefined);
    await gateway?.close().catch(() => undefined);
    await checkpoints?.stop().catch(() => undefined);
    await detections?.close().catch(() => undefined);
    await events?.close().catch(() => undefined);
    await plane?.close().catch(() => undefined);
    await kakuin.close();
    throw e;
  }
}

/**
 * Events out, in the process that writes the registry (all roles, or the ca role): the one place
 * both start paths build it. A status change committed here wakes the dispatchers at once; others
 * (another process's enrollment refusals) are read at the next poll.
 */
function startEventsOut(
  registry: Registry, afterChange: ((entries: FeedEntry[]) => Promise<void>)[], config: Readonly<KakuinConfig>, logger: Logger,
): RunningEvents | undefined {
  const events = startEvents(config, registry, logger);
  if (events !== undefined) afterChange.push(async () => events.wake());
  return events;
}

/** The management API over HTTPS on api.port, as every process serving it runs it. */
async function listenManagementApi(kakuin: Kakuin, app: import('express').Express, tls: TlsMaterial, logger: Logger): Promise<{ url: string; close(): Promise<void> }> {
  const { config } = kakuin;
  // Client certificates are asked for but optional: admins and stations use tokens, a device renewing
  // by EST simplereenroll (RFC 7030 §4.2.2) shows its current certificate, verified against the device chain.
  const server = https.createServer({
    ...tls, minVersion: 'TLSv1.2', handshakeTimeout: 10_000,
    requestCert: true, rejectUnauthorized: false,
    // ... and a station may authenticate by its station certificate (enrollment/station-certificate-auth.ts).
    ca: [...kakuin.deviceIssuer.chain, ...(kakuin.stationCertificates ? [kakuin.stationCertificates.caCertificateDer] : [])].map((der) => toPem('CERTIFICATE', der)),
  }, app);
  // closeAllConnections() only knows HTTP connections; a socket still in its TLS handshake would
  // hold `close()` open until the handshake times out, so every socket is tracked for shutdown.
  const sockets = new Set<import('node:stream').Duplex>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  // Slow-loris bounds: a client must send its headers and body in time.
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.api.port, config.bindHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.bindHost.includes(':') ? `[${config.bindHost}]` : config.bindHost;
  const apiUrl = `https://${host === '0.0.0.0' ? 'localhost' : host}:${port}`;
  logger.info('management API listening', { url: apiUrl });
  return {
    url: apiUrl,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    }),
  };
}

/** What an operator needs to see once the service is up. */
export function startBanner(service: RunningService): string {
  const { config } = service.kakuin;
  const files = caFiles(config);
  const lines = [
    'kakuin is running',
    `  management API    ${service.apiUrl}/api/v1   (HTTPS, server certificate from the infrastructure CA)`,
    `  root certificate  ${files.root}`,
    `  device chain      ${files.chain}   (device issuing CA + root)`,
    `  data directory    ${config.dataDir}`,
    `  OCSP, CRLs        ${service.httpUrl}/ocsp, ${service.httpUrl}/crl/device.crl   (plain HTTP)`,
    `  public HTTP URL   ${config.publicHttpUrl}   (written into certificates; recorded, changed only by kakuin ca set-public-url)`,
    `  device gateway    ${service.gatewayUrl}   (mTLS: device certificates only; POST /v1/telemetry)`,
    ...mqttBannerLine(mqttUrlOf(service.gateway.gateway), config),
    `  legacy devices    ${service.legacyUrl}   (HTTPS: POST /legacy/v1/token, /legacy/v1/telemetry, /legacy/v1/certificate)`,
  ];
  if (service.initialAdminToken) {
    lines.push('', `  admin token (shown once; also kept in ${service.adminTokenFile}):`, `    ${service.initialAdminToken}`);
  } else if (service.adminTokenFile) {
    lines.push(`  admin token       in ${service.adminTokenFile} (or KAKUIN_ADMIN_TOKEN)`);
  } else {
    lines.push('  admin token       KAKUIN_ADMIN_TOKEN');
  }
  lines.push('', `  try: curl --cacert ${files.root} -H "Authorization: Bearer $TOKEN" ${service.apiUrl}/api/v1/manufacturers`);
  return `${lines.join('\n')}\n`;
}

/** A process running some of the roles (`kakuin serve --role ...`); the URLs of the listeners it runs. */
export interface RunningRoles {
  roles: ReadonlySet<Role>;
  config: Readonly<KakuinConfig>;
  apiUrl?: string;
  httpUrl?: string;
  gatewayUrl?: string;
  /** The gateway's MQTT front end, when gateway.mqtt.upstreamUrl is set. */
  gatewayMqttUrl?: string;
  legacyUrl?: string;
  initialAdminToken?: string;
  adminTokenFile?: string;
  close(): Promise<void>;
}

/**
 * `kakuin serve --role ...` for a subset of the roles (cli/roles.ts says what each does). With
 * every role, use startService: one process, the revocation plane wired as one.
 *
 * A revocation call returns once the components of *this* process reflect it (its OCSP cache, its
 * gateway's open connections, its legacy tokens); other processes follow the registry's feed
 * within their poll interval (≤ 100 ms) and are not waited for.
 */
export async function startRoles(
  config: Readonly<KakuinConfig>, logger: Logger, roles: ReadonlySet<Role>, env: Record<string, string | undefined> = process.env,
): Promise<RunningRoles> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((e) => logger.error('stopping a component failed', { error: String(e) }));
  };
  try {
    let kakuin: Kakuin | undefined;
    let registry: Registry;
    let keys: KeyRing;
    let softwareKeys: SoftwareKeyStore;
    if (needsWritableRegistry(roles)) {
      // Only the ca role creates the CA hierarchy; enrollment or legacy alone need it made already.
      kakuin = await openKakuin(config, logger, { bootstrap: roles.has('ca'), actor: 'system', env });
      stops.push(kakuin.close);
      checkpointOffTheEventLoop(kakuin.registry, logger);
      if (kakuin.created) logger.info('development CA hierarchy created', { dataDir: config.dataDir });
      ({ registry, keys, softwareKeys } = kakuin);
    } else {
      const view = await openReadOnlyView(config, env);
      stops.push(view.close);
      ({ registry, keys, softwareKeys } = view);
    }
    const result: RunningRoles = { roles, config, close: stopAll };
    const afterChange: ((entries: FeedEntry[]) => Promise<void>)[] = [];

    let crls: CrlPublisher | undefined;
    if (roles.has('ca')) {
      // The device-facing listeners' TLS certificates, for gateway and legacy processes that start later.
      await tlsMaterialFor(kakuin!, 'gateway', logger);
      await tlsMaterialFor(kakuin!, 'legacy', logger);
      const publication = await startCrlPublication(kakuin!, logger);
      stops.push(publication.close);
      crls = publication.crls;
      const events = startEventsOut(registry, afterChange, config, logger);
      if (events !== undefined) stops.push(events.close);
      const checkpoints = startAuditCheckpoints(kakuin!, logger);
      stops.push(() => checkpoints.stop());
    }
    let responder: OcspResponder | undefined;
    if (roles.has('ocsp')) {
      const ocsp = await startOcspRole(config, registry, keys, logger);
      stops.push(ocsp.close);
      responder = ocsp.responder;
      result.httpUrl = ocsp.httpUrl;
    }
    const sink = config.gateway.upstreamUrl || !(roles.has('gateway') || roles.has('legacy'))
      ? undefined
      // One writer per file: each process of a subset of the roles records into a file of its own.
      : jsonLinesTelemetrySink(config.gateway.telemetryDir, `telemetry-${process.pid}.jsonl`);
    if (sink) stops.push(() => sink.close());
    let gateway: GatewayRole | undefined;
    if (roles.has('gateway')) {
      const tls = kakuin ? await tlsMaterialFor(kakuin, 'gateway', logger) : await readTlsMaterial(config, softwareKeys, 'gateway', logger);
      gateway = await startGatewayRole({
        config, registry, tls, logger, sink, ocspUrl: `${result.httpUrl ?? (kakuin?.config ?? config).publicHttpUrl}/ocsp`,
      });
      stops.push(gateway.close);
      // The engine needs the writable registry its responder records into (README "Detections").
      if (config.detections.enabled) logger.warn('detections are not evaluated in a gateway role process yet (kakuin serve evaluates them); its devices are not held to any template here');
      const g = gateway.gateway;
      afterChange.push(() => g.pokeFeed());
      result.gatewayUrl = gateway.url;
      result.gatewayMqttUrl = mqttUrlOf(g);
    }
    let legacy: RunningLegacyPath | undefined;
    if (roles.has('legacy')) {
      legacy = await startLegacyPath(kakuin!, { afterChange }, logger, sink);
      stops.push(legacy.close);
      result.legacyUrl = legacy.url;
    }

    if (roles.has('ca') || roles.has('enrollment')) {
      const k = kakuin!;
      const revocation = new RevocationService(registry, async (entries) => {
        if (entries.length === 0) return;
        crls?.onFeedEntries(entries);
        const seq = entries[entries.length - 1].seq;
        const [ok] = await Promise.all([responder ? responder.waitForSeq(seq, 2000) : true, ...afterChange.map((f) => f(entries))]);
        if (!ok) logger.warn('OCSP cache did not catch up with a revocation within 2 s', { seq });
      });
      const admin = await ensureFirstAdminToken(k, env);
      const cmpKey = roles.has('enrollment') ? await cmpProtectionKeyFor(k, logger) : undefined;
      result.initialAdminToken = admin.token;
      result.adminTokenFile = admin.file;
      const enrollment = roles.has('enrollment')
        ? new EnrollmentService(registry, k.deviceIssuer, revocation, {
          overlapHours: config.enrollment.overlapHours,
          stationQuota: new StationQuota(registry),
          stationRateLimit: new StationRateLimit(config.enrollment.stationPerSecond, config.enrollment.stationBurst),
          onBackgroundError: (e) => logger.error('superseding a re-enrolled certificate failed', { cause: String(e) }),
        })
        : undefined;
      enrollment?.start();
      if (enrollment) stops.push(async () => enrollment.close());
      const acme = enrollment ? startAcme(k, revocation, logger) : undefined;
      if (acme) stops.push(acme.close);
      const legacyPath = legacy;
      const authenticator = new AdminAuthenticator(registry, k.pepper, env.KAKUIN_ADMIN_TOKEN, { stationKeyMaxAgeMs: stationKeyMaxAgeMs(config) });
      // Templates and detections are served here; they are evaluated where the gateway runs on a
      // writable registry (kakuin serve), not in a gateway role process (README "Detections").
      const roleDetections = await startDetections(config, registry, revocation, logger);
      if (roleDetections !== undefined) stops.push(roleDetections.close);
      const bulk = bulkAndApprovals(k, registry, revocation, config, logger);
      stops.push(bulk.close);
      // SCEP on the management port; on the plain-HTTP port only in `serve` (one process with the OCSP listener).
      const scepWired = enrollment && scepFor(k, enrollment, 'scep');
      const app = createManagementApi({
        ...bulk.deps,
        registry, issuer: k.deviceIssuer, revocation, crls,
        ...(roleDetections !== undefined && { detections: roleDetections.service }),
        ...(activityStoreOf(registry, config) !== undefined && { activity: activityStoreOf(registry, config) }),
        readiness: gateway ? () => gateway.gateway.readiness() : undefined,
        metrics: metricsCollector({
          registry, caCertificates: caCertificatesOf(k), issuedCount: () => k.deviceIssuer.issuedCount, responder, gateway: gateway?.gateway, enrollment,
          stationKeyExpiresAt: (s) => authenticator.stationKeyExpiresAt(s),
        }),
        authenticator,
        users: userLoginsOf(registry, k.pepper, config),
        logger,
        maxBodyBytes: config.api.maxBodyBytes,
        pepper: k.pepper,
        extraRoutes: (routes, helpers) => {
          if (legacyPath) {
            legacyPath.mountAdminRoutes(routes, helpers);
          } else {
            // Legacy processes elsewhere follow the feed; there is no kill switch here to poke.
            mountLegacyAdminRoutes(routes, {
              registry, pepper: k.pepper, admin: helpers.admin, adminOrStation: stationCertificateOr(new StationCertificateAuthenticator(registry), helpers.admit('admin', 'station')),
              maxImportBytes: config.legacy.bodyLimitBytes * 16, afterChange: async () => {},
            });
          }
          if (enrollment) {
            mountEnrollmentRoutes(routes, helpers, {
              registry, revocation, enrollment, pepper: k.pepper, maxImportBytes: config.enrollment.importBodyLimitBytes, maxBatchBytes: config.enrollment.batchBodyLimitBytes,
              stationCertificates: k.stationCertificates,
              ...(cmpStoreOf(registry) !== undefined && { cmp: { store: cmpStoreOf(registry)!, protectionKey: cmpKey, onError: (e: unknown) => logger.error('CMP request failed', { cause: String(e) }) } }),
              ...(scepWired && { scep: scepWired }),
            });
          }
          acme?.mount(routes, helpers);
        },
      });
      await bulk.resume();
      const api = await listenManagementApi(k, app, await tlsMaterialFor(k, 'api', logger), logger);
      stops.push(api.close);
      result.apiUrl = api.url;
    }
    return result;
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** The MQTT front end's banner line, when it listens. */
function mqttBannerLine(url: string | undefined, config: Readonly<KakuinConfig>): string[] {
  if (url === undefined) return [];
  // The broker's scheme, host and port only: a URL may carry credentials.
  const upstream = new URL(config.gateway.mqtt.upstreamUrl!);
  return [`  MQTT front end    ${url}   (mTLS: device certificates only; broker ${upstream.protocol}//${upstream.host})`];
}

/** The start-up lines of a process running some of the roles. */
export function rolesBanner(service: RunningRoles): string {
  const files = caFiles(service.config);
  const lines = [`kakuin is running (roles: ${ROLES.filter((r) => service.roles.has(r)).join(', ')})`];
  if (service.apiUrl) lines.push(`  management API    ${service.apiUrl}/api/v1   (HTTPS, server certificate from the infrastructure CA)`);
  if (service.httpUrl) lines.push(`  OCSP, CRLs        ${service.httpUrl}/ocsp, ${service.httpUrl}/crl/device.crl   (plain HTTP)`);
  if (service.gatewayUrl) lines.push(`  device gateway    ${service.gatewayUrl}   (mTLS: device certificates only; POST /v1/telemetry)`);
  lines.push(...mqttBannerLine(service.gatewayMqttUrl, service.config));
  if (service.legacyUrl) lines.push(`  legacy devices    ${service.legacyUrl}   (HTTPS: POST /legacy/v1/token, /legacy/v1/telemetry, /legacy/v1/certificate)`);
  lines.push(`  root certificate  ${files.root}`, `  data directory    ${service.config.dataDir}`);
  if (service.initialAdminToken) {
    lines.push('', `  admin token (shown once; also kept in ${service.adminTokenFile}):`, `    ${service.initialAdminToken}`);
  }
  return `${lines.join('\n')}\n`;
}
