/**
 * Abuse detection through the legacy HTTP routes (in process, plain HTTP in front of the express
 * app): per-source throttling with and without a trusted proxy, alerts, and unusual-hour events.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import {
  createLegacyApp, generateAuthSecret, hmacVerifier, LegacyAbuseGuard, LegacyAuthService, LegacyKillSwitch, LegacyTokenSigner,
} from '../../../gateway-auth/legacy/index.js';
import { openSqliteRegistry, type SqliteRegistry } from '../../../registry/sqlite/index.js';
import { makeTempDir } from '../../support/index.js';

const quiet = { info() {}, warn() {}, error() {} };
const pepper = Buffer.alloc(32, 3);

async function harness(trustProxy: boolean) {
  const tmp = makeTempDir();
  const registry: SqliteRegistry = await openSqliteRegistry({ path: path.join(tmp.dir, 'r.db') });
  const mfr = await registry.createManufacturer({ name: 'm' });
  const cai = await registry.createCommonAuthId({ name: 'night-owls', manufacturerId: mfr.id, usualHoursUtc: '00-00' });
  const device = await registry.createDevice({ manufacturerId: mfr.id, serialNumber: 'AB-1' });
  const secret = generateAuthSecret();
  await registry.putLegacyCredentials([{ deviceId: device.id, commonAuthId: cai.id, uniqueId: 'u-1', verifierKind: 'hmac', verifier: hmacVerifier(pepper, secret) }], []);
  const killSwitch = new LegacyKillSwitch({ registry, logger: quiet, statusGraceMs: 10_000 });
  await killSwitch.start();
  const auth = new LegacyAuthService({
    registry, pepper, tokens: new LegacyTokenSigner(pepper), killSwitch, logger: quiet,
    abuse: new LegacyAbuseGuard(registry, { deviceLimit: 10, commonAuthIdLimit: 1000, sourceLimit: 5, lockMs: 60_000, throttleDelayMs: 0 }),
    tokenTtlMs: 60_000, lockMs: 60_000, throttleDelayMs: 0,
  });
  const app = createLegacyApp({
    auth, logger: quiet, trustProxy, bodyLimitBytes: 4096, sink: { record: async () => undefined },
    issueCertificate: async () => { throw new Error('not here'); }, tls: { cert: '', key: '' },
  });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const token = (body: object, forwardedFor?: string) => fetch(`http://127.0.0.1:${port}/legacy/v1/token`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...(forwardedFor && { 'x-forwarded-for': forwardedFor }) }, body: JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, json: await r.json() as any, retryAfter: r.headers.get('retry-after') }));
  return {
    registry, cai: cai.id, device, secret, token,
    async close() {
      await new Promise<void>((r) => server.close(() => r()));
      await killSwitch.stop();
      await registry.close();
      tmp.cleanup();
    },
  };
}

describe('legacy abuse detection', function () {
  it('throttles a source address with an alert, yet still serves correct credentials from it; X-Forwarded-For counts behind a trusted proxy', async function () {
    const h = await harness(true);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await h.token({ commonAuthId: h.cai, uniqueId: `nobody-${i}`, authSecret: 'x' }, '203.0.113.5')).status);
      expect(statuses).to.deep.equal([401, 401, 401, 401, 429, 429]);
      const throttled = await h.token({ commonAuthId: h.cai, uniqueId: 'nobody', authSecret: 'x' }, '203.0.113.5');
      expect(throttled.json.code).to.equal('KAKUIN_E_LEGACY_THROTTLED');
      expect(throttled.retryAfter).to.match(/^\d+$/);
      const alerts = await h.registry.listAuditEvents({ type: 'legacy.throttled' });
      expect(alerts, 'one alert per key and window').to.have.length(1);
      expect(alerts[0].details).to.deep.include({ scope: 'source', source: '203.0.113.5' });
      const ok = await h.token({ commonAuthId: h.cai, uniqueId: 'u-1', authSecret: h.secret }, '203.0.113.5');
      expect(ok.status, 'correct credentials pass a throttled source').to.equal(200);
      const elsewhere = await h.token({ commonAuthId: h.cai, uniqueId: 'nobody', authSecret: 'x' }, '198.51.100.7');
      expect(elsewhere.status, 'another source is not throttled').to.equal(401);
    } finally {
      await h.close();
    }
  });

  it('ignores X-Forwarded-For without a trusted proxy (the socket address counts)', async function () {
    const h = await harness(false);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await h.token({ commonAuthId: h.cai, uniqueId: `n-${i}`, authSecret: 'x' }, `192.0.2.${i}`)).status);
      expect(statuses.slice(4)).to.deep.equal([429, 429]);
      const alerts = await h.registry.listAuditEvents({ type: 'legacy.throttled' });
      expect(alerts[0].details).to.deep.include({ source: '127.0.0.1' });
    } finally {
      await h.close();
    }
  });

  it('records a success outside the device class\'s usual hours as an audit event', async function () {
    const h = await harness(false);
    try {
      const ok = await h.token({ commonAuthId: h.cai, uniqueId: 'u-1', authSecret: h.secret });
      expect(ok.status).to.equal(200);
      const events = await h.registry.listAuditEvents({ type: 'legacy.unusual-hour', deviceId: h.device.id });
      expect(events).to.have.length(1);
      expect(events[0].details).to.deep.include({ commonAuthId: h.cai, usualHoursUtc: '00-00' });
    } finally {
      await h.close();
    }
  });
});
