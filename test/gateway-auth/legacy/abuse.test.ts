/**
 * Abuse detection through the legacy HTTP routes (in process, plain HTTP in front of the express
 * app): per-source throttling with and without a trusted proxy, alerts, unusual-hour events, the
 * per-identity backoff (brute force slowed, a victim never locked out) and the `legacy.burst` alert.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import type { AbusePolicy } from '../../../gateway-auth/legacy/index.js';
import {
  createLegacyApp, FAILURE_WINDOW_MS, generateAuthSecret, hmacVerifier, LegacyAbuseGuard, LegacyAuthService, LegacyKillSwitch, LegacyTokenSigner,
} from '../../../gateway-auth/legacy/index.js';
import { openSqliteRegistry, type SqliteRegistry } from '../../../registry/sqlite/index.js';
import { makeTempDir } from '../../support/index.js';

const quiet = { info() {}, warn() {}, error() {} };
const pepper = Buffer.alloc(32, 3);

async function harness(trustProxy: boolean, policy: Partial<AbusePolicy> = {}) {
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
    abuse: new LegacyAbuseGuard(registry, { burstLimit: 10, commonAuthIdLimit: 1000, sourceLimit: 5, backoffBaseMs: 1, backoffMaxMs: 1, ...policy }),
    tokenTtlMs: 60_000, throttleDelayMs: 0,
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
  const timed = async (body: object, forwardedFor?: string) => {
    const t0 = performance.now();
    const r = await token(body, forwardedFor);
    return { ...r, ms: performance.now() - t0 };
  };
  return {
    registry, cai: cai.id, device, secret, token, timed,
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

  it('slows a brute force on one identity with a doubling, bounded backoff; every answer stays 401; the 10th failure raises legacy.burst once', async function () {
    this.timeout(30_000);
    // Alerts are once per identity and one-minute window (abuse.ts): the ~4 s of failures below must
    // not straddle a window boundary, where a burst still going on is rightly alerted again.
    const toBoundary = FAILURE_WINDOW_MS - (Date.now() % FAILURE_WINDOW_MS);
    if (toBoundary < 10_000) await new Promise((r) => setTimeout(r, toBoundary + 100));
    const h = await harness(false, { backoffBaseMs: 50, backoffMaxMs: 400, sourceLimit: 1000 });
    try {
      const runs: { status: number; code: string; ms: number }[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await h.timed({ commonAuthId: h.cai, uniqueId: 'u-1', authSecret: `guess-${i}-${'x'.repeat(20)}` });
        runs.push({ status: r.status, code: r.json.code, ms: r.ms });
      }
      expect(runs.map((r) => r.status)).to.deep.equal(Array(12).fill(401));
      expect(new Set(runs.map((r) => r.code))).to.deep.equal(new Set(['KAKUIN_E_LEGACY_AUTH_FAILED']));
      // 50, 100, 200, 400, 400, ...: each answer held at least its backoff, and the bound holds.
      runs.forEach((r, i) => expect(r.ms, `failure ${i + 1}`).to.be.at.least(Math.min(400, 50 * 2 ** i) - 5));
      expect(Math.max(...runs.map((r) => r.ms)), 'bounded').to.be.below(400 + 1500);
      const bursts = await h.registry.listAuditEvents({ type: 'legacy.burst' });
      expect(bursts, 'one alert per identity and minute').to.have.length(1);
      expect(bursts[0].deviceId).to.equal(h.device.id);
      expect(bursts[0].details).to.deep.include({ kind: 'failures', count: 10, commonAuthId: h.cai, uniqueId: 'u-1' });
      expect(await h.registry.listAuditEvents({ type: 'legacy.locked' })).to.have.length(0);
    } finally {
      await h.close();
    }
  });

  it('never locks a victim out: after a parallel flood of failures on its (public) IMEI, its correct secret is answered at once, while a failure still waits the full backoff', async function () {
    const h = await harness(false, { backoffBaseMs: 100, backoffMaxMs: 3000, sourceLimit: 1000 });
    try {
      const flood = await Promise.all(Array.from({ length: 16 }, (_, i) => h.token({ commonAuthId: h.cai, uniqueId: 'u-1', authSecret: `attacker-${i}` })));
      expect(flood.map((r) => r.status)).to.deep.equal(Array(16).fill(401));
      const owner = await h.timed({ commonAuthId: h.cai, uniqueId: 'u-1', authSecret: h.secret });
      expect(owner.status, JSON.stringify(owner.json)).to.equal(200);
      expect(owner.json.token).to.match(/^kkl1\./);
      expect(owner.ms, 'the correct credential is not held by the attacker\'s backoff').to.be.below(1000);
      const another = await h.timed({ commonAuthId: h.cai, uniqueId: 'u-1', authSecret: 'attacker-late' });
      expect(another.status).to.equal(401);
      expect(another.ms, 'the 17th failure waits the bound').to.be.at.least(2995);
    } finally {
      await h.close();
    }
  });

  it('raises legacy.burst when one identity authenticates 10 times within a minute (a shared or leaked credential), once', async function () {
    const h = await harness(false);
    try {
      for (let i = 0; i < 12; i++) expect((await h.token({ commonAuthId: h.cai, uniqueId: 'u-1', authSecret: h.secret })).status).to.equal(200);
      const bursts = await h.registry.listAuditEvents({ type: 'legacy.burst' });
      expect(bursts).to.have.length(1);
      expect(bursts[0].details).to.deep.include({ kind: 'authentications', count: 10, uniqueId: 'u-1' });
    } finally {
      await h.close();
    }
  });
});
