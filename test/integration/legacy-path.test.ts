/**
 * The legacy three-factor token path as `kakuin serve` wires it, over real HTTPS: curl (spawned
 * asynchronously: the service runs in this process) and Node's https client.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { LegacyTokenSigner } from '../../gateway-auth/legacy/index.js';
import { makeTempDir, opensslOk } from '../support/index.js';
import { request, startTestService, type TestService } from '../support/service.js';

function curl(args: string[]): Promise<{ exit: number; body: string; code: number; json: any }> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', '-m', '10', '-w', '\n%{http_code}', ...args]);
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.resume();
    child.on('close', (exit) => {
      const cut = out.lastIndexOf('\n');
      const body = out.slice(0, cut);
      let json: unknown;
      try { json = JSON.parse(body); } catch { json = undefined; }
      resolve({ exit: exit ?? -1, body, code: Number(out.slice(cut + 1)), json });
    });
  });
}

describe('legacy three-factor token path wired into kakuin serve', function () {
  this.timeout(120_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let root: string;
  let mfr: string;
  let cai: string;
  let n = 0;

  const api = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(svc.url, svc.rootPem, m, p, { token: svc.adminToken, ...o });
  const legacy = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(svc.service.legacyUrl, svc.rootPem, m, p, o);

  async function legacyDevice(): Promise<{ id: string; serial: string; uniqueId: string; authSecret: string }> {
    n += 1;
    const serial = `LG-${String(n).padStart(4, '0')}`;
    const uniqueId = `35${String(1000000000000 + n)}`;
    const dev = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: serial, identifiers: { hardwareId: uniqueId } } });
    expect(dev.status, dev.text).to.equal(201);
    const cred = await api('POST', `/api/v1/devices/${dev.json.id}/legacy-credentials`, { body: { commonAuthId: cai, uniqueId } });
    expect(cred.status, cred.text).to.equal(201);
    return { id: dev.json.id, serial, uniqueId, authSecret: cred.json.authSecret };
  }

  const tokenCurl = (body: unknown) => curl(['--cacert', root, '-H', 'Content-Type: application/json', '--data', JSON.stringify(body),
    `${svc.service.legacyUrl}/legacy/v1/token`]);
  const telemetryCurl = (token: string, deviceId: string, data = '{"temperature":19.5}') => curl(['--cacert', root,
    '-H', 'Content-Type: application/json', '-H', `Authorization: Bearer ${token}`, '-H', `X-Device-Id: ${deviceId}`, '--data', data,
    `${svc.service.legacyUrl}/legacy/v1/telemetry`]);
  async function tokenOf(d: { uniqueId: string; authSecret: string }): Promise<string> {
    const r = await legacy('POST', '/legacy/v1/token', { body: { commonAuthId: cai, uniqueId: d.uniqueId, authSecret: d.authSecret } });
    expect(r.status, r.text).to.equal(200);
    return r.json.token;
  }

  before(async () => {
    tmp = makeTempDir();
    // A short backoff (40 ms doubling to 320 ms) so the failure tests stay quick; an old lockMinutes still starts.
    const configFile = path.join(tmp.dir, 'kakuin.json');
    writeFileSync(configFile, JSON.stringify({ legacy: { backoffBaseMs: 40, backoffMaxMs: 320, lockMinutes: 15 } }));
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0', KAKUIN_CONFIG: configFile } });
    root = path.join(tmp.dir, 'root.pem');
    writeFileSync(root, svc.rootPem);
    mfr = (await api('POST', '/api/v1/manufacturers', { body: { name: 'Legacy Meters' } })).json.id;
    const c = await api('POST', '/api/v1/legacy/common-auth-ids', { body: { name: 'meters-2019', manufacturerId: mfr } });
    expect(c.status, c.text).to.equal(201);
    cai = c.json.commonAuthId;
  });
  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('issues a token for the three factors and forwards telemetry with it (curl)', async () => {
    const d = await legacyDevice();
    expect(Buffer.from(d.authSecret, 'base64url').length * 8).to.be.at.least(128);
    const t = await tokenCurl({ commonAuthId: cai, authSecret: d.authSecret, uniqueId: d.uniqueId });
    expect(t.exit, t.body).to.equal(0);
    expect(t.code, t.body).to.equal(200);
    expect(t.json.deviceId).to.equal(d.id);
    const ttl = Date.parse(t.json.expiresAt) - Date.now();
    expect(ttl).to.be.within(3500_000, 3600_000);
    const sent = await telemetryCurl(t.json.token, d.id);
    expect(sent.code, sent.body).to.equal(202);
    const lines = readFileSync(path.join(svc.dataDir, 'telemetry', 'telemetry.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1)).to.deep.include({ deviceId: d.id, auth: 'legacy-token', data: { temperature: 19.5 } });
  });

  it('answers a wrong secret and an unknown device the same way', async () => {
    const d = await legacyDevice();
    const wrong = await tokenCurl({ commonAuthId: cai, authSecret: 'not-the-secret-at-all', uniqueId: d.uniqueId });
    const unknown = await tokenCurl({ commonAuthId: cai, authSecret: d.authSecret, uniqueId: '999999999999999' });
    const otherCai = await tokenCurl({ commonAuthId: '00000000-0000-4000-8000-000000000000', authSecret: d.authSecret, uniqueId: d.uniqueId });
    for (const r of [wrong, unknown, otherCai]) {
      expect(r.code, r.body).to.equal(401);
      expect(r.json).to.deep.equal({ code: 'KAKUIN_E_LEGACY_AUTH_FAILED', message: 'authentication failed' });
    }
  });

  it('refuses an expired token, a forged one, and a token of device A with the identifier of device B', async () => {
    const a = await legacyDevice();
    const b = await legacyDevice();
    const tokenA = await tokenOf(a);
    const cross = await telemetryCurl(tokenA, b.id);
    expect(cross.code, cross.body).to.equal(401);
    expect(cross.json.code).to.equal('KAKUIN_E_LEGACY_TOKEN_INVALID');

    const generation = Number(tokenA.split('.')[2]);
    const expired = new LegacyTokenSigner(svc.service.kakuin.pepper).issue(a.id, generation, new Date(Date.now() - 1000));
    const late = await telemetryCurl(expired, a.id);
    expect(late.code, late.body).to.equal(401);
    expect(late.json.code).to.equal('KAKUIN_E_LEGACY_TOKEN_INVALID');

    const parts = tokenA.split('.');
    const forgedExpiry = [...parts.slice(0, 3), String(Number(parts[3]) + 86_400), ...parts.slice(4)].join('.');
    const otherKey = new LegacyTokenSigner(Buffer.alloc(32, 7)).issue(a.id, generation, new Date(Date.now() + 60_000));
    for (const forged of [forgedExpiry, otherKey, `${tokenA}x`, 'kkl1.garbage', '']) {
      const r = await telemetryCurl(forged, a.id);
      expect(r.code, `${forged}: ${r.body}`).to.equal(401);
      expect(r.json.code).to.equal('KAKUIN_E_LEGACY_TOKEN_INVALID');
    }
    expect((await telemetryCurl(tokenA, a.id)).code).to.equal(202);
  });

  it('never locks a device: 12 failures on its identity are each held for the configured backoff and answered 401, then its secret works; one legacy.burst alert, no lock', async () => {
    const victim = await legacyDevice();
    const neighbour = await legacyDevice();
    const runs: { status: number; code: string; ms: number }[] = [];
    for (let i = 0; i < 12; i++) {
      const t0 = performance.now();
      const r = await legacy('POST', '/legacy/v1/token', { body: { commonAuthId: cai, uniqueId: victim.uniqueId, authSecret: `wrong-${i}-xxxxxxxx` } });
      runs.push({ status: r.status, code: r.json.code, ms: performance.now() - t0 });
    }
    expect(runs.map((r) => r.status)).to.deep.equal(Array(12).fill(401));
    expect(runs.every((r) => r.code === 'KAKUIN_E_LEGACY_AUTH_FAILED')).to.equal(true);
    runs.forEach((r, i) => expect(r.ms, `failure ${i + 1}`).to.be.at.least(Math.min(320, 40 * 2 ** i) - 5));
    const right = await legacy('POST', '/legacy/v1/token', { body: { commonAuthId: cai, uniqueId: victim.uniqueId, authSecret: victim.authSecret } });
    expect(right.status, 'the right secret always passes').to.equal(200);
    expect(right.json.token).to.match(/^kkl1\./);
    expect(await tokenOf(neighbour)).to.match(/^kkl1\./);
    const bursts = await api('GET', `/api/v1/audit-events?deviceId=${victim.id}&type=legacy.burst`);
    expect(bursts.json.events).to.have.length(1);
    expect(bursts.json.events[0].details).to.deep.include({ kind: 'failures', uniqueId: victim.uniqueId });
    expect((await api('GET', `/api/v1/audit-events?deviceId=${victim.id}&type=legacy.locked`)).json.events).to.have.length(0);
  });

  it('kills a live token when the device is revoked, and when its credentials are deleted', async () => {
    const d = await legacyDevice();
    const token = await tokenOf(d);
    expect((await telemetryCurl(token, d.id)).code).to.equal(202);
    const revoked = await api('POST', `/api/v1/devices/${d.id}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(revoked.status, revoked.text).to.equal(200);
    const after = await telemetryCurl(token, d.id);
    expect(after.code, 'replayed after revoke').to.equal(401);
    expect(after.json.code).to.equal('KAKUIN_E_LEGACY_TOKEN_INVALID');
    const again = await legacy('POST', '/legacy/v1/token', { body: { commonAuthId: cai, uniqueId: d.uniqueId, authSecret: d.authSecret } });
    expect(again.status).to.equal(401);

    const e = await legacyDevice();
    const tokenE = await tokenOf(e);
    const del = await api('DELETE', `/api/v1/devices/${e.id}/legacy-credentials`);
    expect(del.status, del.text).to.equal(200);
    expect((await telemetryCurl(tokenE, e.id)).code).to.equal(401);
    const none = await api('DELETE', `/api/v1/devices/${e.id}/legacy-credentials`);
    expect(none.json.code).to.equal('KAKUIN_E_LEGACY_CREDENTIALS_NOT_FOUND');
  });

  it('suspending fails a live token at once; resuming the device makes it good again', async () => {
    const d = await legacyDevice();
    const token = await tokenOf(d);
    await api('POST', `/api/v1/devices/${d.id}/suspend`);
    expect((await telemetryCurl(token, d.id)).code).to.equal(401);
    await api('POST', `/api/v1/devices/${d.id}/resume`);
    expect((await telemetryCurl(token, d.id)).code, 'same credentials: the token is good again after resume').to.equal(202);
  });

  it('refuses an import with a shared, default or weak secret, naming the rows, and stores nothing', async () => {
    const devs = [];
    for (let i = 0; i < 4; i++) {
      n += 1;
      devs.push((await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: `IMP-${n}`, identifiers: { hardwareId: `imp-${'abcd'[i]}` } } })).json.id as string);
    }
    const rows = [
      { deviceId: devs[0], commonAuthId: cai, uniqueId: 'imp-a', authSecret: 'Burned-In-Secret-7731' },
      { deviceId: devs[1], commonAuthId: cai, uniqueId: 'imp-b', authSecret: 'Burned-In-Secret-7731' },
      { deviceId: devs[2], commonAuthId: cai, uniqueId: 'imp-c', authSecret: 'admin' },
      { deviceId: devs[3], commonAuthId: cai, uniqueId: 'imp-d', authSecret: 'abcabcabcabc' },
    ];
    const refused = await api('POST', '/api/v1/legacy/import', { body: rows });
    expect(refused.status, refused.text).to.equal(422);
    expect(refused.json.code).to.equal('KAKUIN_E_LEGACY_IMPORT_REFUSED');
    expect(refused.json.message).to.include('row 3: factory default').and.include('row 4: weak');
    const shared = await api('POST', '/api/v1/legacy/import', { body: rows.slice(0, 2) });
    expect(shared.status).to.equal(422);
    expect(shared.json.message).to.include('row 2: shared secret (same as row 1)');
    const t = await legacy('POST', '/legacy/v1/token', { body: { commonAuthId: cai, uniqueId: 'imp-a', authSecret: 'Burned-In-Secret-7731' } });
    expect(t.status, 'nothing was stored').to.equal(401);

    const csv = `deviceId,commonAuthId,uniqueId,authSecret\n${devs[0]},${cai},imp-a,Burned-In-Secret-7731\n${devs[1]},${cai},imp-b,Other-Burned-Secret-9152\n`;
    const ok = await api('POST', '/api/v1/legacy/import', { body: csv, contentType: 'text/csv' });
    expect(ok.status, ok.text).to.equal(201);
    expect(ok.json.imported).to.equal(2);
    const imported = await legacy('POST', '/legacy/v1/token', { body: { commonAuthId: cai, uniqueId: 'imp-a', authSecret: 'Burned-In-Secret-7731' } });
    expect(imported.status, imported.text).to.equal(200);
    expect(imported.json.deviceId).to.equal(devs[0]);
    const again = await api('POST', '/api/v1/legacy/import', {
      body: [{ deviceId: devs[2], commonAuthId: cai, uniqueId: 'imp-c', authSecret: 'Other-Burned-Secret-9152' }],
    });
    expect(again.status).to.equal(422);
    expect(again.json.message).to.include(`row 1: shared secret (already used by device ${devs[1]})`);
  });

  it('migrates a legacy device to a certificate that then passes the mTLS gateway', async () => {
    const d = await legacyDevice();
    const token = await tokenOf(d);
    const key = path.join(tmp.dir, 'mig.key');
    const csr = path.join(tmp.dir, 'mig.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/serialNumber=${d.serial}`, '-out', csr]);
    const issued = await curl(['--cacert', root, '-H', 'Content-Type: application/pkcs10', '-H', `Authorization: Bearer ${token}`,
      '-H', `X-Device-Id: ${d.id}`, '--data-binary', `@${csr}`, `${svc.service.legacyUrl}/legacy/v1/certificate`]);
    expect(issued.code, issued.body).to.equal(201);
    const cert = path.join(tmp.dir, 'mig.pem');
    writeFileSync(cert, issued.json.certificate);
    const mtls = await curl(['--cert', cert, '--key', key, '--cacert', root, '-H', 'Content-Type: application/json',
      '--data', '{"migrated":true}', `${svc.service.gatewayUrl}/v1/telemetry`]);
    expect(mtls.code, mtls.body).to.be.oneOf([200, 202]);
    // The same CSR again (a retry) gets the certificate issued before; a new key is a second identity: 409.
    const second = await legacy('POST', '/legacy/v1/certificate', { body: { csr: readFileSync(csr, 'utf8') }, headers: { authorization: `Bearer ${token}`, 'x-device-id': d.id } });
    expect(second.status, second.text).to.equal(200);
    expect(second.json).to.include({ existing: true, serialHex: issued.json.serialHex });
    const otherKey = path.join(tmp.dir, 'mig2.key');
    const otherCsr = path.join(tmp.dir, 'mig2.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', otherKey, '-subj', `/serialNumber=${d.serial}`, '-out', otherCsr]);
    const third = await legacy('POST', '/legacy/v1/certificate', { body: { csr: readFileSync(otherCsr, 'utf8') }, headers: { authorization: `Bearer ${token}`, 'x-device-id': d.id } });
    expect(third.status, third.text).to.equal(409);
    expect(third.json.code).to.equal('KAKUIN_E_DEVICE_ALREADY_ENROLLED');
    expect((await api('DELETE', `/api/v1/devices/${d.id}/legacy-credentials`)).status).to.equal(200);
    expect((await telemetryCurl(token, d.id)).code).to.equal(401);
  });

  it('answers bad input with 4xx KAKUIN_E_* codes and changes nothing', async () => {
    const d = await legacyDevice();
    const before = (await api('GET', `/api/v1/audit-events?deviceId=${d.id}`)).json.events.length;
    const cases: [Parameters<typeof request>[4], number, string][] = [
      [{ body: { commonAuthId: cai, uniqueId: d.uniqueId } }, 400, 'KAKUIN_E_VALIDATION'],
      [{ body: { commonAuthId: cai, uniqueId: 12345, authSecret: d.authSecret } }, 400, 'KAKUIN_E_VALIDATION'],
      [{ body: { commonAuthId: [cai], uniqueId: d.uniqueId, authSecret: d.authSecret } }, 400, 'KAKUIN_E_VALIDATION'],
      [{ body: '{"commonAuthId":', contentType: 'application/json' }, 400, 'KAKUIN_E_BAD_REQUEST'],
      [{ body: 'commonAuthId=x', contentType: 'application/x-www-form-urlencoded' }, 415, 'KAKUIN_E_UNSUPPORTED_MEDIA_TYPE'],
      [{ body: '[1,2]', contentType: 'application/json' }, 400, 'KAKUIN_E_VALIDATION'],
      [{ body: JSON.stringify({ commonAuthId: cai, uniqueId: d.uniqueId, authSecret: 'x'.repeat(200_000) }), contentType: 'application/json' }, 413, 'KAKUIN_E_BODY_TOO_LARGE'],
    ];
    for (const [o, status, code] of cases) {
      const r = await legacy('POST', '/legacy/v1/token', o);
      expect(r.status, r.text).to.equal(status);
      expect(r.json.code).to.equal(code);
    }
    const token = await tokenOf(d);
    const h = { authorization: `Bearer ${token}`, 'x-device-id': d.id };
    const tel = [
      [await legacy('POST', '/legacy/v1/telemetry', { body: 'not json', contentType: 'application/json', headers: h }), 400],
      [await legacy('POST', '/legacy/v1/telemetry', { body: '[1]', contentType: 'application/json', headers: h }), 400],
      [await legacy('POST', '/legacy/v1/telemetry', { body: 'x', contentType: 'text/plain', headers: h }), 415],
      [await legacy('POST', '/legacy/v1/telemetry', { body: { a: 'y'.repeat(100_000) }, headers: h }), 413],
      [await legacy('POST', '/legacy/v1/telemetry', { body: { a: 1 } }), 401],
      [await legacy('POST', '/legacy/v1/telemetry', { body: { a: 1 }, headers: { authorization: `Bearer ${token}` } }), 400],
      [await legacy('GET', '/legacy/v1/nothing'), 404],
    ] as const;
    for (const [r, status] of tel) {
      expect(r.status, r.text).to.equal(status);
      expect(r.json.code).to.match(/^KAKUIN_E_/);
    }
    expect(tel[5][0].json.message, 'a missing X-Device-Id is named').to.include('X-Device-Id header is missing');
    expect(tel[3][0].json.message, 'the 413 names the limit').to.match(/at most \d+ bytes/);
    const admin = [
      await api('POST', '/api/v1/legacy/common-auth-ids', { body: { name: 42 } }),
      await api('POST', `/api/v1/devices/${d.id}/legacy-credentials`, { body: { commonAuthId: 'nope', uniqueId: 'x' } }),
      await api('POST', '/api/v1/devices/00000000-0000-4000-8000-000000000000/legacy-credentials', { body: { commonAuthId: cai, uniqueId: 'y' } }),
      await api('POST', '/api/v1/legacy/import', { body: 'x', contentType: 'text/plain' }),
      await api('POST', '/api/v1/legacy/import', { body: { credentials: 'no' } }),
      await request(svc.url, svc.rootPem, 'POST', '/api/v1/legacy/common-auth-ids', { body: { name: 'x' } }),
    ];
    expect(admin.map((r) => r.status)).to.deep.equal([400, 404, 404, 415, 400, 401]);
    expect((await api('GET', `/api/v1/audit-events?deviceId=${d.id}`)).json.events.length).to.equal(before);
    expect((await telemetryCurl(token, d.id)).code, 'the device still works').to.equal(202);
  });

  it('binds a unique ID only to one of the device\'s own identifiers: another device\'s IMEI or a made-up string is refused, by the route and by an import', async () => {
    n += 1;
    const mine = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: `OWN-${n}`, identifiers: { imei: '490154203237518', mac: 'AA-BB-CC-00-11-22' } } });
    const theirs = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: `OWN-${n}-B`, identifiers: { imei: '356938035643809' } } });
    expect(mine.status, mine.text).to.equal(201);
    expect(theirs.status, theirs.text).to.equal(201);
    const before = (await api('GET', `/api/v1/audit-events?deviceId=${mine.json.id}`)).json.events.length;
    for (const uniqueId of ['356938035643809', 'made-up-id', `OWN-${n}-B`]) {
      const r = await api('POST', `/api/v1/devices/${mine.json.id}/legacy-credentials`, { body: { commonAuthId: cai, uniqueId } });
      expect(r.status, r.text).to.equal(400);
      expect(r.json.code).to.equal('KAKUIN_E_LEGACY_UNIQUE_ID_NOT_OWN');
    }
    const imported = await api('POST', '/api/v1/legacy/import', { body: [{ deviceId: mine.json.id, commonAuthId: cai, uniqueId: '356938035643809', authSecret: 'Long-Burned-In-Secret-4417-xq' }] });
    expect(imported.status, imported.text).to.equal(422);
    expect(imported.json.message).to.include('row 1: unique ID "356938035643809" is not one of the device\'s identifiers');
    expect((await api('GET', `/api/v1/audit-events?deviceId=${mine.json.id}`)).json.events.length, 'nothing recorded').to.equal(before);
    // Its own MAC, in another spelling, is accepted; the other device's IMEI then stays free for it.
    const ok = await api('POST', `/api/v1/devices/${mine.json.id}/legacy-credentials`, { body: { commonAuthId: cai, uniqueId: 'aa:bb:cc:00:11:22' } });
    expect(ok.status, ok.text).to.equal(201);
    const tok = await legacy('POST', '/legacy/v1/token', { body: { commonAuthId: cai, uniqueId: 'aa:bb:cc:00:11:22', authSecret: ok.json.authSecret } });
    expect(tok.status, tok.text).to.equal(200);
  });

  it('lets a factory station provision legacy credentials for its own manufacturer only', async () => {
    const st = await api('POST', `/api/v1/manufacturers/${mfr}/stations`, { body: { name: 'line-7' } });
    expect(st.status, st.text).to.equal(201);
    const station = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(svc.url, svc.rootPem, m, p, { token: st.json.apiKey, ...o });
    const own = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: 'LG-STATION-1', identifiers: { imei: '352099001761481' } } });
    const cai2 = await station('POST', '/api/v1/legacy/common-auth-ids', { body: { name: 'line-7-meters' } });
    expect(cai2.status, cai2.text).to.equal(201);
    const cred = await station('POST', `/api/v1/devices/${own.json.id}/legacy-credentials`, { body: { commonAuthId: cai2.json.commonAuthId, uniqueId: '352099001761481' } });
    expect(cred.status, cred.text).to.equal(201);
    expect(cred.json.authSecret).to.be.a('string');
    const tok = await legacy('POST', '/legacy/v1/token', { body: { commonAuthId: cai2.json.commonAuthId, uniqueId: '352099001761481', authSecret: cred.json.authSecret } });
    expect(tok.status, tok.text).to.equal(200);

    const otherMfr = (await api('POST', '/api/v1/manufacturers', { body: { name: 'Someone Else' } })).json.id;
    const foreign = await api('POST', '/api/v1/devices', { body: { manufacturerId: otherMfr, serialNumber: 'LG-FOREIGN-1' } });
    const refused = await station('POST', `/api/v1/devices/${foreign.json.id}/legacy-credentials`, { body: { commonAuthId: cai2.json.commonAuthId, uniqueId: '352099001761482' } });
    expect(refused.status).to.equal(404);
    expect(refused.json.code).to.equal('KAKUIN_E_DEVICE_NOT_FOUND');
    const wrongMfr = await station('POST', '/api/v1/legacy/common-auth-ids', { body: { name: 'x', manufacturerId: otherMfr } });
    expect(wrongMfr.status).to.equal(403);
    const importRefused = await station('POST', '/api/v1/legacy/import', { body: [] });
    expect(importRefused.status).to.equal(403);
  });
});
