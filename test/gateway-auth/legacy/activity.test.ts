/**
 * Activity of the legacy token path through its HTTP routes (the express app on a real socket,
 * plain HTTP in front of it as in abuse.test.ts, behind a "trusted proxy" so that each request can
 * come from the address the test names), flushed into a real SQLite registry.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import {
  createLegacyApp, generateAuthSecret, hmacVerifier, LegacyAbuseGuard, LegacyAuthService, LegacyKillSwitch, LegacyTokenSigner,
} from '../../../gateway-auth/legacy/index.js';
import { ActivityAggregator, type NotableRefusal } from '../../../operations/activity/aggregator.js';
import { openSqliteRegistry, type SqliteRegistry } from '../../../registry/sqlite/index.js';
import { makeTempDir } from '../../support/index.js';

const quiet = { info() {}, warn() {}, error() {} };
const pepper = Buffer.alloc(32, 7);

describe('legacy token path activity', function () {
  let registry: SqliteRegistry;
  let killSwitch: LegacyKillSwitch;
  let server: http.Server;
  let tmp: ReturnType<typeof makeTempDir>;
  let recorder: ActivityAggregator;
  const notable: NotableRefusal[] = [];
  let port: number;

  before(async function () {
    tmp = makeTempDir();
    registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'r.db') });
    killSwitch = new LegacyKillSwitch({ registry, logger: quiet, statusGraceMs: 10_000 });
    await killSwitch.start();
    recorder = new ActivityAggregator({ store: registry.activity, flushIntervalMs: 600_000, onNotable: (r) => notable.push(r) });
    const auth = new LegacyAuthService({
      registry, pepper, tokens: new LegacyTokenSigner(pepper), killSwitch, logger: quiet, activity: recorder,
      abuse: new LegacyAbuseGuard(registry, { burstLimit: 10, commonAuthIdLimit: 1000, sourceLimit: 100, backoffBaseMs: 0, backoffMaxMs: 0 }),
      tokenTtlMs: 60_000, throttleDelayMs: 0,
    });
    const app = createLegacyApp({
      auth, logger: quiet, trustProxy: true, bodyLimitBytes: 4096, sink: { record: async () => undefined }, activity: recorder,
      issueCertificate: async () => { throw new Error('not here'); }, tls: { cert: '', key: '' },
    });
    server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async function () {
    await new Promise<void>((r) => server?.close(() => r()));
    await killSwitch?.stop();
    await registry?.close();
    tmp?.cleanup();
  });

  const call = (route: string, body: string, from: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${port}${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': from, ...headers }, body,
  }).then(async (r) => ({ status: r.status, json: await r.json() as any }));

  it('records token successes and failures, telemetry, firmware, and a revoked device trying again with its source address', async function () {
    const mfr = await registry.createManufacturer({ name: 'meters' });
    const cai = await registry.createCommonAuthId({ name: 'meters-v1', manufacturerId: mfr.id });
    const device = await registry.createDevice({ manufacturerId: mfr.id, serialNumber: 'MTR-1' });
    await registry.applyStatusChange({ device: { id: device.id, from: ['registered'], to: 'active' }, certificates: [], audit: [{ type: 'device.active', actor: 'test', deviceId: device.id }] });
    const secret = generateAuthSecret();
    await registry.putLegacyCredentials([{ deviceId: device.id, commonAuthId: cai.id, uniqueId: 'u-1', verifierKind: 'hmac', verifier: hmacVerifier(pepper, secret) }], []);
    await killSwitch.poke();
    const factors = { commonAuthId: cai.id, uniqueId: 'u-1', authSecret: secret };

    const ok = await call('/legacy/v1/token', JSON.stringify({ ...factors, firmwareVersion: '4.1.0' }), '198.51.100.7');
    expect(ok.status, JSON.stringify(ok.json)).to.equal(200);
    const data = '{"kwh":12.5}';
    const sent = await call('/legacy/v1/telemetry', data, '198.51.100.7', { authorization: `Bearer ${ok.json.token}`, 'x-device-id': device.id });
    expect(sent.status).to.equal(202);
    expect((await call('/legacy/v1/token', JSON.stringify({ ...factors, authSecret: 'wrong' }), '203.0.113.9')).status).to.equal(401);
    const badFirmware = await call('/legacy/v1/token', JSON.stringify({ ...factors, firmwareVersion: '4.2 beta' }), '198.51.100.7');
    expect(badFirmware.status).to.equal(400);
    expect(badFirmware.json.code).to.equal('KAKUIN_E_VALIDATION');
    await recorder.flush();

    let a = (await registry.activity.deviceActivity(device.id))!;
    const sum = () => a.hourly.reduce((s, h) => ({ tokenOk: s.tokenOk + h.tokenOk, tokenFailed: s.tokenFailed + h.tokenFailed, messages: s.messages + h.messages, bytes: s.bytes + h.bytes, refused: s.refused + h.refused }),
      { tokenOk: 0, tokenFailed: 0, messages: 0, bytes: 0, refused: 0 });
    expect(sum()).to.deep.equal({ tokenOk: 1, tokenFailed: 1, messages: 1, bytes: data.length, refused: 1 });
    expect(a.lastSeen).to.deep.include({ address: '198.51.100.7', frontEnd: 'legacy' });
    expect(a.firmwareHistory.map((f) => f.version), 'the refused request\'s firmware is not kept').to.deep.equal(['4.1.0']);
    expect(a.refusals[0]).to.deep.include({ reason: 'wrong auth secret', address: '203.0.113.9', frontEnd: 'legacy' });

    // Revoked: its live token and its factors are both refused, each retry recorded with its address.
    await registry.applyStatusChange({ device: { id: device.id, from: ['active'], to: 'revoked' }, certificates: [], audit: [{ type: 'device.revoked', actor: 'test', deviceId: device.id }] });
    await killSwitch.poke();
    const again = await call('/legacy/v1/telemetry', data, '198.51.100.7', { authorization: `Bearer ${ok.json.token}`, 'x-device-id': device.id });
    expect(again.json.code).to.equal('KAKUIN_E_LEGACY_TOKEN_INVALID');
    expect((await call('/legacy/v1/token', JSON.stringify(factors), '192.0.2.44')).json.code).to.equal('KAKUIN_E_LEGACY_AUTH_FAILED');
    await recorder.flush();
    a = (await registry.activity.deviceActivity(device.id))!;
    expect(a.refusals.slice(0, 2).map((r) => ({ reason: r.reason, address: r.address }))).to.deep.equal([
      { reason: 'device revoked', address: '192.0.2.44' },
      { reason: 'legacy token refused: device revoked', address: '198.51.100.7' },
    ]);
    expect(sum()).to.deep.include({ tokenOk: 1, tokenFailed: 2, messages: 1, refused: 3 });
    expect(notable.map((n) => ({ deviceId: n.deviceId, address: n.address, frontEnd: n.frontEnd })), 'once per device per flush').to.deep.equal([
      { deviceId: device.id, address: '198.51.100.7', frontEnd: 'legacy' },
    ]);
  });
});
