/**
 * Wiring of the legacy three-factor token path: its HTTPS listener (server certificate from the
 * infrastructure CA), the token signer and kill switch (both keyed to this installation's pepper
 * and registry), the abuse guard, telemetry forwarded the same way as the mTLS gateway's, and the
 * migration to a certificate through the device issuing CA. Its admin routes are mounted into the
 * management API with `mountAdminRoutes`.
 */
import { readFileSync } from 'node:fs';
import type { RequestHandler } from 'express';
import type { ApiRoutes } from '../api-schema/routes.js';
import { pemChain } from '../management-api/representations.js';
import { KakuinError } from '../errors/index.js';
import { TelemetryUpstream } from '../gateway-auth/upstream.js';
import type { TelemetrySink } from '../gateway-auth/index.js';
import {
  createLegacyServer, LegacyAbuseGuard, LegacyAuthService, LegacyKillSwitch, LegacyTokenSigner, mountLegacyAdminRoutes,
} from '../gateway-auth/legacy/index.js';
import { StationCertificateAuthenticator, stationCertificateOr } from '../enrollment/index.js';
import type { ActivityRecorder } from '../gateway-auth/activity-recorder.js';
import { startActivity } from './activity.js';
import type { Logger } from './logger.js';
import type { RevocationPlane } from './revocation-plane.js';
import { tlsMaterialFor } from './tls-material.js';
import type { Kakuin } from './wiring.js';

export interface RunningLegacyPath {
  url: string;
  killSwitch: LegacyKillSwitch;
  mountAdminRoutes(routes: ApiRoutes, helpers: {
    admin: RequestHandler; admit(...kinds: ('admin' | 'station')[]): RequestHandler;
  }): void;
  close(): Promise<void>;
}

/** `activity`: the recorder of the gateway in the same process; without one the path starts its own (if activity.enabled). */
export async function startLegacyPath(kakuin: Kakuin, plane: Pick<RevocationPlane, 'afterChange'>, logger: Logger, sink: TelemetrySink | undefined, activity?: ActivityRecorder): Promise<RunningLegacyPath> {
  const { config, registry, pepper } = kakuin;
  const ownActivity = activity === undefined ? startActivity(config, registry, logger) : undefined;
  const recorder = activity ?? ownActivity?.recorder;
  const l = config.legacy;
  const g = config.gateway;
  const tls = await tlsMaterialFor(kakuin, 'legacy', logger);
  const killSwitch = new LegacyKillSwitch({ registry, logger, statusGraceMs: g.statusGraceMs });
  await killSwitch.start();
  const upstream = g.upstreamUrl
    ? new TelemetryUpstream(new URL(g.upstreamUrl), g.upstreamCaFile ? [readFileSync(g.upstreamCaFile, 'utf8')] : undefined, 10_000)
    : undefined;
  const auth = new LegacyAuthService({
    registry, pepper, tokens: new LegacyTokenSigner(pepper), killSwitch, logger, ...(recorder !== undefined && { activity: recorder }),
    abuse: new LegacyAbuseGuard(registry, {
      burstLimit: l.burstLimit, commonAuthIdLimit: l.commonAuthIdFailureLimit, sourceLimit: l.sourceFailureLimit,
      backoffBaseMs: l.backoffBaseMs, backoffMaxMs: l.backoffMaxMs,
    }),
    tokenTtlMs: l.tokenTtlSeconds * 1000, throttleDelayMs: l.throttleDelayMs, usualHoursUtc: l.usualHoursUtc,
  });
  const server = createLegacyServer({
    auth, logger, trustProxy: l.trustProxy, bodyLimitBytes: l.bodyLimitBytes, upstream, sink, ...(recorder !== undefined && { activity: recorder }),
    tls: { cert: tls.cert, key: tls.key, passphrase: tls.passphrase },
    async issueCertificate(deviceId, csr) {
      // Migration: the device's first certificate only; a device that has one uses mTLS from then on.
      // The same CSR again (a retry) gets that certificate back; a new key is refused by the issuer
      // (KAKUIN_E_DEVICE_ALREADY_ENROLLED), even under a re-enrollment allowance ('never').
      const certificates = await registry.listCertificatesOfDevice(deviceId);
      if (certificates.length > 0 && certificates.every((c) => c.status === 'revoked')) {
        throw new KakuinError('KAKUIN_E_DEVICE_STATE', 'the device has had a certificate already; renewals go through the CA API');
      }
      const issued = await kakuin.deviceIssuer.issue({ deviceId, csr, actor: `legacy-token:${deviceId}`, reenrollment: 'never' });
      return { serialHex: issued.record.serialHex, certificatePem: pemChain([issued.der]), chainPem: pemChain(issued.chain), existing: issued.existing };
    },
  });
  const address = await server.listen(l.port, config.bindHost);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `https://${host === '0.0.0.0' ? 'localhost' : host}:${address.port}`;
  logger.info('legacy token path listening', { url });
  // A revocation call returns once this process's legacy tokens of the device are dead.
  plane.afterChange.push(() => killSwitch.poke());
  return {
    url, killSwitch,
    mountAdminRoutes: (routes, helpers) => mountLegacyAdminRoutes(routes, {
      registry, pepper, admin: helpers.admin, adminOrStation: stationCertificateOr(new StationCertificateAuthenticator(registry), helpers.admit('admin', 'station')),
      maxImportBytes: l.bodyLimitBytes * 16, afterChange: () => killSwitch.poke(),
    }),
    close: async () => {
      await server.close();
      await killSwitch.stop();
      await ownActivity?.close();
      upstream?.close();
    },
  };
}
