/**
 * `kakuin serve`: opens (or on first start creates) the CA, starts the revocation plane (OCSP, CRLs,
 * plain-HTTP listener) and serves the management API over HTTPS.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { AdminAuthenticator } from '../ca/api/admin-tokens.js';
import { createManagementApi } from '../ca/api/management-api.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';
import { ensureFirstAdminToken } from './admin-bootstrap.js';
import { startDeviceGateway, type RunningGateway } from './device-gateway.js';
import { startLegacyPath, type RunningLegacyPath } from './legacy-path.js';
import { startRevocationPlane, type RevocationPlane } from './revocation-plane.js';
import { tlsMaterialFor } from './tls-material.js';
import { EnrollmentService, mountEnrollmentRoutes, StationQuota, StationRateLimit } from '../enrollment/index.js';
import { caFiles, openKakuin, type Kakuin } from './wiring.js';
import { toPem } from '../pkix/index.js';

export interface RunningService {
  kakuin: Kakuin;
  apiUrl: string;
  /** The plain-HTTP listener (OCSP, CRLs, CA certificates) as bound. */
  httpUrl: string;
  plane: RevocationPlane;
  /** The device gateway (mTLS) as bound. */
  gatewayUrl: string;
  gateway: RunningGateway;
  /** The legacy three-factor token path (HTTPS) as bound. */
  legacyUrl: string;
  legacy: RunningLegacyPath;
  /** Set on the first start without KAKUIN_ADMIN_TOKEN: shown once. */
  initialAdminToken?: string;
  adminTokenFile?: string;
  close(): Promise<void>;
}

export async function startService(config: Readonly<KakuinConfig>, logger: Logger, env: Record<string, string | undefined> = process.env): Promise<RunningService> {
  const kakuin = await openKakuin(config, logger, { bootstrap: true, actor: 'system', env });
  let plane: RevocationPlane | undefined;
  let gateway: RunningGateway | undefined;
  let legacy: RunningLegacyPath | undefined;
  try {
    if (kakuin.created) logger.info('development CA hierarchy created', { dataDir: config.dataDir });
    const admin = await ensureFirstAdminToken(kakuin, env);
    const tls = await tlsMaterialFor(kakuin, 'api', logger);
    plane = await startRevocationPlane(kakuin, logger);
    gateway = await startDeviceGateway(kakuin, plane, logger);
    legacy = await startLegacyPath(kakuin, plane, logger, gateway.sink);
    const legacyPath = legacy;
    const revocation = plane.revocation;
    const enrollment = new EnrollmentService(kakuin.registry, kakuin.deviceIssuer, revocation, {
      overlapHours: config.enrollment.overlapHours,
      stationQuota: new StationQuota(kakuin.registry),
      stationRateLimit: new StationRateLimit(config.enrollment.stationPerSecond, config.enrollment.stationBurst),
      onBackgroundError: (e) => logger.error('superseding a re-enrolled certificate failed', { cause: String(e) }),
    });
    const app = createManagementApi({
      registry: kakuin.registry,
      issuer: kakuin.deviceIssuer,
      revocation: plane.revocation,
      crls: plane.crls,
      readiness: () => gateway!.gateway.readiness(),
      authenticator: new AdminAuthenticator(kakuin.registry, kakuin.pepper, env.KAKUIN_ADMIN_TOKEN),
      logger,
      maxBodyBytes: config.api.maxBodyBytes,
      extraRoutes: (app, helpers) => {
        legacyPath.mountAdminRoutes(app, helpers);
        mountEnrollmentRoutes(app, helpers, {
          registry: kakuin.registry, revocation, enrollment, pepper: kakuin.pepper, maxImportBytes: config.enrollment.importBodyLimitBytes,
        });
      },
    });
    // Client certificates are asked for but optional: admins and stations use tokens, a device renewing
    // by EST simplereenroll (RFC 7030 §4.2.2) shows its current certificate, verified against the device chain.
    const server = https.createServer({
      ...tls, minVersion: 'TLSv1.2', handshakeTimeout: 10_000,
      requestCert: true, rejectUnauthorized: false, ca: kakuin.deviceIssuer.chain.map((der) => toPem('CERTIFICATE', der)),
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
    const started = plane;
    const startedGateway = gateway;
    return {
      kakuin, apiUrl, httpUrl: started.httpUrl, plane: started, gatewayUrl: startedGateway.url, gateway: startedGateway,
      legacyUrl: legacyPath.url, legacy: legacyPath,
      initialAdminToken: admin.token, adminTokenFile: admin.file,
      close: async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
          for (const socket of sockets) socket.destroy();
        });
        enrollment.close();
        await legacyPath.close();
        await startedGateway.close();
        await started.close();
        await kakuin.close();
      },
    };
  } catch (e) {
    await legacy?.close().catch(() => undefined);
    await gateway?.close().catch(() => undefined);
    await plane?.close().catch(() => undefined);
    await kakuin.close();
    throw e;
  }
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
    `  public HTTP URL   ${config.publicHttpUrl}   (written into certificates)`,
    `  device gateway    ${service.gatewayUrl}   (mTLS: device certificates only; POST /v1/telemetry)`,
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
