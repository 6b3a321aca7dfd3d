/**
 * Issue 21 item 1, roles, over real HTTPS on 127.0.0.1 against an in-process kakuin (SQLite):
 * every declared route × every principal (admin, operator, auditor, manufacturer, station) is held
 * against the one role table (api-schema/access.ts): 403 KAKUIN_E_FORBIDDEN where the table does
 * not admit the principal, something else where it does. A route that is not in the table fails
 * here. Then the manufacturer scope, and the role on the token routes and the `kakuin token` command.
 */
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import Database from 'better-sqlite3';
import { cliMain } from '../support/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';
import { routesOf } from '../../api-schema/routes.js';
import { PRINCIPALS, ROUTE_ACCESS, admits, routeKey, type Principal } from '../../api-schema/access.js';
import { createLegacyApp, type LegacyAuthService } from '../../gateway-auth/legacy/index.js';
import { MIGRATIONS, migrate } from '../../registry/sqlite/schema.js';

describe('roles: one table says which role may call which route', function () {
  this.timeout(120_000);
  let svc: TestService;
  let m1: string;
  let m2: string;
  const credentials = {} as Record<Principal, string>;
  /** EST takes a station's key as HTTP Basic `<stationId>:<apiKey>` (RFC 7030 §3.2.3). */
  let stationBasic: string;

  const call = (token: string | undefined, method: string, p: string, body?: object): Promise<HttpResponse> =>
    request(svc.url, svc.rootPem, method, p, { ...(token !== undefined && { token }), ...(body !== undefined && { body }) });
  const admin = (method: string, p: string, body?: object) => call(svc.adminToken, method, p, body);
  const kakuin = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...process.env, ...svc.env }, timeout: 30_000 });
    return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const codeOf = (r: HttpResponse): string | undefined => r.json?.code ?? /^(KAKUIN_E_[A-Z0-9_]+)/.exec(r.text)?.[1];

  async function token(name: string, role: string, manufacturerId?: string): Promise<string> {
    const r = await admin('POST', '/api/v1/tokens', { name, role, ...(manufacturerId !== undefined && { manufacturerId }) });
    expect(r.status, r.text).to.equal(201);
    expect(r.json).to.include({ role, ...(manufacturerId !== undefined && { manufacturerId }) });
    return r.json.token;
  }

  before(async () => {
    svc = await startTestService();
    m1 = (await admin('POST', '/api/v1/manufacturers', { name: 'Role Sensors' })).json.id;
    m2 = (await admin('POST', '/api/v1/manufacturers', { name: 'Other Sensors' })).json.id;
    // A second admin through the API needs a second admin's approval (approvals.test.ts): made on the host instead.
    const made = kakuin('token', 'create', '--name', 'role-admin', '--role', 'admin');
    expect(made.code, made.stderr).to.equal(0);
    credentials.admin = made.stdout.trim().split('\n').pop()!;
    credentials.operator = await token('role-operator', 'operator');
    credentials.auditor = await token('role-auditor', 'auditor');
    credentials.manufacturer = await token('role-maker', 'manufacturer', m1);
    const station = await admin('POST', `/api/v1/manufacturers/${m1}/stations`, { name: 'line 1' });
    expect(station.status, station.text).to.equal(201);
    credentials.station = station.json.apiKey;
    stationBasic = `Basic ${Buffer.from(`${station.json.id}:${station.json.apiKey}`).toString('base64')}`;
  });

  after(async () => {
    await svc?.stop();
  });

  it('every route of the management API and the legacy device listener has a rule in the table, and the table names no route that does not exist', () => {
    const api = routesOf(svc.service.apiApp)!.declared().map((r) => routeKey(r.method, r.path));
    const quiet = { error() {}, warn() {}, info() {}, debug() {} } as never;
    const legacyApp = createLegacyApp({
      auth: {} as LegacyAuthService, logger: quiet, trustProxy: false, bodyLimitBytes: 4096, sink: { record: async () => undefined },
      issueCertificate: async () => { throw new Error('not here'); }, tls: { cert: '', key: '' },
    });
    const legacy = routesOf(legacyApp)!.declared().map((r) => routeKey(r.method, r.path));
    const declared = new Set([...api, ...legacy]);
    expect(api.length).to.be.greaterThan(50);
    expect([...declared].filter((k) => ROUTE_ACCESS[k] === undefined), 'routes without a rule in api-schema/access.ts').to.deep.equal([]);
    expect(Object.keys(ROUTE_ACCESS).filter((k) => !declared.has(k)), 'rules for routes that are not declared').to.deep.equal([]);
  });

  it('each declared route × each principal: 403 KAKUIN_E_FORBIDDEN exactly where the table does not admit it', async () => {
    const declared = routesOf(svc.service.apiApp)!.declared();
    const wrong: string[] = [];
    let walked = 0;
    for (const route of declared) {
      const rule = ROUTE_ACCESS[routeKey(route.method, route.path)];
      expect(rule, `a rule for ${routeKey(route.method, route.path)}`).to.not.equal(undefined);
      // Ids that exist (the manufacturer's own, so its scope is not what answers) or name nothing:
      // an admitted call then ends in 400/404/409/415, never in a change that would disturb the walk.
      const p = route.path
        .replace(/^\/api\/v1\/manufacturers\/\{id\}/, `/api/v1/manufacturers/${m1}`)
        .replace('{id}', 'no-such-id').replace('{serialHex}', '0badc0de').replace('{name}', 'no-such-token')
        .replace('{issuerId}', 'no-such-issuer').replace('{label}', 'nolabel');
      const body = route.method === 'post' ? {} : undefined;
      const anonymous = await call(undefined, route.method.toUpperCase(), p, body);
      for (const principal of PRINCIPALS) {
        const r = principal === 'station' && p.startsWith('/.well-known/est/')
          ? await request(svc.url, svc.rootPem, route.method.toUpperCase(), p, { headers: { authorization: stationBasic }, ...(body !== undefined && { body }) })
          : await call(credentials[principal], route.method.toUpperCase(), p, body);
        walked++;
        const seen = `${routeKey(route.method, route.path)} as ${principal}: ${r.status} ${codeOf(r) ?? ''}`;
        if (rule.includes('device')) {
          // A device route looks at the device's own credential only: a bearer token changes nothing.
          if (r.status !== anonymous.status || codeOf(r) !== codeOf(anonymous)) wrong.push(`${seen} (anonymous: ${anonymous.status})`);
        } else if (admits(rule, principal)) {
          if (r.status === 403 || r.status === 401) wrong.push(`${seen}, but the table admits it`);
        } else if (r.status !== 403 || codeOf(r) !== 'KAKUIN_E_FORBIDDEN') {
          wrong.push(`${seen}, but the table refuses it`);
        }
      }
    }
    expect(wrong).to.deep.equal([]);
    expect(walked).to.equal(declared.length * PRINCIPALS.length);
  });

  it('the OpenAPI document names the roles of each route from the same table; the auditor may read it', async () => {
    const doc = await call(credentials.auditor, 'GET', '/api/v1/openapi.json');
    expect(doc.status, doc.text).to.equal(200);
    expect(doc.json.paths['/api/v1/devices/{id}/suspend'].post['x-kakuin-roles']).to.deep.equal(['admin', 'operator']);
    expect(doc.json.paths['/api/v1/audit-events'].get['x-kakuin-roles']).to.deep.equal(['admin', 'auditor']);
  });

  it('a role that is refused changes nothing: an auditor cannot suspend, an operator cannot create a token, and neither writes an audit event', async () => {
    const device = (await admin('POST', '/api/v1/devices', { manufacturerId: m1, serialNumber: 'R-AUD-1' })).json.id;
    const before = (await admin('GET', '/api/v1/audit-events?limit=1000')).json.events.length;
    const s = await call(credentials.auditor, 'POST', `/api/v1/devices/${device}/suspend`);
    expect([s.status, s.json.code]).to.deep.equal([403, 'KAKUIN_E_FORBIDDEN']);
    const t = await call(credentials.operator, 'POST', '/api/v1/tokens', { name: 'sneaky', role: 'admin' });
    expect([t.status, t.json.code]).to.deep.equal([403, 'KAKUIN_E_FORBIDDEN']);
    expect((await admin('GET', `/api/v1/devices/${device}`)).json.status).to.equal('registered');
    expect((await admin('GET', '/api/v1/tokens')).json.tokens.map((x: { name: string }) => x.name)).to.not.include('sneaky');
    expect((await admin('GET', '/api/v1/audit-events?limit=1000')).json.events.length).to.equal(before);
    // The auditor reads the audit trail; the operator finds and suspends.
    const events = await call(credentials.auditor, 'GET', '/api/v1/audit-events?type=token.created');
    expect(events.status, events.text).to.equal(200);
    expect(events.json.events.length).to.be.greaterThanOrEqual(4);
    const found = await call(credentials.operator, 'GET', '/api/v1/devices?serialNumber=R-AUD-1');
    expect(found.json.devices.map((d: { id: string }) => d.id)).to.deep.equal([device]);
    const suspended = await call(credentials.operator, 'POST', `/api/v1/devices/${device}/suspend`);
    expect(suspended.status, suspended.text).to.not.equal(403);
    const audited = (await admin('GET', `/api/v1/audit-events?deviceId=${device}&actor=token:role-operator`)).json.events;
    expect(audited.length).to.be.greaterThan(0);
  });

  describe('a manufacturer token sees and changes only its manufacturer', () => {
    let own: string;
    let other: string;
    let otherStation: string;
    before(async () => {
      own = (await admin('POST', '/api/v1/devices', { manufacturerId: m1, serialNumber: 'R-OWN-1' })).json.id;
      other = (await admin('POST', '/api/v1/devices', { manufacturerId: m2, serialNumber: 'R-OTHER-1' })).json.id;
      otherStation = (await admin('POST', `/api/v1/manufacturers/${m2}/stations`, { name: 'other line' })).json.id;
    });
    const maker = (method: string, p: string, body?: object) => call(credentials.manufacturer, method, p, body);

    it('device lists hold its own devices only, also when it asks for another manufacturer or none', async () => {
      const all = await maker('GET', '/api/v1/devices?limit=1000');
      expect(all.status, all.text).to.equal(200);
      const ids = all.json.devices.map((d: { id: string }) => d.id);
      expect(ids).to.include(own).and.not.include(other);
      expect(all.json.devices.every((d: { manufacturerId: string }) => d.manufacturerId === m1)).to.equal(true);
      expect((await maker('GET', '/api/v1/devices?serialNumber=R-OTHER-1')).json.devices).to.deep.equal([]);
      const named = await maker('GET', `/api/v1/devices?manufacturerId=${m2}`);
      expect([named.status, named.json.code]).to.deep.equal([403, 'KAKUIN_E_FORBIDDEN']);
    });

    it("another manufacturer's device or station is 404, as an unknown id; another manufacturer's id is 403; its own work", async () => {
      const dev = await maker('GET', `/api/v1/devices/${other}`);
      const unknown = await maker('GET', '/api/v1/devices/no-such-device');
      expect([dev.status, dev.json.code]).to.deep.equal([unknown.status, unknown.json.code]);
      expect(dev.status).to.equal(404);
      expect((await maker('GET', `/api/v1/devices/${own}`)).status).to.equal(200);
      for (const action of ['rotate-key', 'disable']) {
        const r = await maker('POST', `/api/v1/stations/${otherStation}/${action}`);
        expect([r.status, r.json.code], action).to.deep.equal([404, 'KAKUIN_E_STATION_NOT_FOUND']);
      }
      expect((await maker('GET', `/api/v1/stations/${otherStation}/certificates`)).status).to.equal(404);
      expect((await admin('GET', `/api/v1/manufacturers/${m2}/stations`)).json.stations.every((s: { disabledAt?: string }) => s.disabledAt === undefined)).to.equal(true);
      for (const [method, p, body] of [
        ['GET', `/api/v1/manufacturers/${m2}/stations`, undefined],
        ['POST', `/api/v1/manufacturers/${m2}/stations`, { name: 'planted' }],
        ['POST', '/api/v1/devices', { manufacturerId: m2, serialNumber: 'R-PLANTED' }],
        ['POST', `/api/v1/devices/import?manufacturerId=${m2}`, [{ serialNumber: 'R-PLANTED-2' }]],
      ] as const) {
        const r = await maker(method, p, body);
        expect([r.status, r.json.code], `${method} ${p}`).to.deep.equal([403, 'KAKUIN_E_FORBIDDEN']);
      }
      expect((await admin('GET', '/api/v1/devices?serialNumber=R-PLANTED')).json.devices).to.deep.equal([]);
      expect((await admin('GET', '/api/v1/devices?serialNumber=R-PLANTED-2')).json.devices).to.deep.equal([]);
      // Its own: a device, an import (the manufacturer is its own without naming it), its stations.
      expect((await maker('POST', '/api/v1/devices', { manufacturerId: m1, serialNumber: 'R-MINE-1' })).status).to.equal(201);
      const imported = await maker('POST', '/api/v1/devices/import', [{ serialNumber: 'R-MINE-2' }]);
      expect(imported.status, imported.text).to.equal(201);
      expect((await admin('GET', '/api/v1/devices?serialNumber=R-MINE-2')).json.devices[0].manufacturerId).to.equal(m1);
      const stations = await maker('GET', `/api/v1/manufacturers/${m1}/stations`);
      expect(stations.status, stations.text).to.equal(200);
      expect(stations.json.stations.length).to.be.greaterThan(0);
    });
  });

  it('tokens carry their role in GET /api/v1/tokens and `kakuin token list`; bad roles are refused; `token create --role`', async () => {
    const list = (await admin('GET', '/api/v1/tokens')).json.tokens as { name: string; role: string; manufacturerId?: string }[];
    expect(list.find((t) => t.name === 'role-auditor')).to.include({ role: 'auditor' });
    expect(list.find((t) => t.name === 'role-maker')).to.include({ role: 'manufacturer', manufacturerId: m1 });
    expect(list.find((t) => t.name === 'role-admin')).to.include({ role: 'admin' });
    // No role is admin, as before; through the API that waits for a second admin's approval.
    const plain = await admin('POST', '/api/v1/tokens', { name: 'plain' });
    expect([plain.status, plain.json.approval?.kind]).to.deep.equal([202, 'admin-token']);
    for (const body of [{ name: 'x1', role: 'root' }, { name: 'x2', role: 'manufacturer' }, { name: 'x3', role: 'operator', manufacturerId: m1 }, { name: 'x4', role: 'manufacturer', manufacturerId: 'no-such' }]) {
      const r = await admin('POST', '/api/v1/tokens', body);
      expect(r.status, JSON.stringify(body)).to.be.oneOf([400, 404]);
    }
    expect((await admin('GET', '/api/v1/tokens')).json.tokens.map((t: { name: string }) => t.name)).to.not.include.members(['x1', 'x2', 'x3', 'x4']);

    const created = kakuin(...['token', 'create', '--name', 'cli-maker', '--role', 'manufacturer', '--manufacturer', m1]);
    expect(created.code, created.stderr).to.equal(0);
    expect(created.stdout).to.include('role manufacturer');
    const secret = created.stdout.trim().split('\n').pop()!;
    expect((await call(secret, 'GET', '/api/v1/devices')).status).to.equal(200);
    expect((await call(secret, 'GET', '/api/v1/audit-events')).status).to.equal(403);
    const bad = kakuin(...['token', 'create', '--name', 'cli-bad', '--role', 'superuser']);
    expect(bad.code).to.not.equal(0);
    const listed = kakuin(...['token', 'list']);
    expect(listed.stdout).to.match(/^NAME\s+ROLE\s+STATUS\s+CREATED\s+LAST USED\s+EXPIRES\s+MANUFACTURER/);
    expect(listed.stdout).to.match(new RegExp(`cli-maker\\s+manufacturer\\s+active.*${m1}`));
    expect(listed.stdout).to.match(/role-auditor\s+auditor\s+active/);
    expect(listed.stdout).not.to.include('cli-bad');
  });

  it('the schema step that adds roles keeps every existing token an admin, in its order', () => {
    const db = new Database(':memory:');
    try {
      const before = MIGRATIONS.filter((m) => m.version < 11);
      migrate(db, before);
      const insert = db.prepare('INSERT INTO admin_tokens (id, name, token_hmac, role, created_at) VALUES (?, ?, ?, ?, ?)');
      insert.run('t2', 'second', 'b'.repeat(64), 'admin', 2);
      insert.run('t1', 'first', 'a'.repeat(64), 'admin', 1);
      migrate(db, MIGRATIONS);
      expect(db.prepare('SELECT name, role, manufacturer_id AS m FROM admin_tokens ORDER BY rowid').all()).to.deep.equal([
        { name: 'second', role: 'admin', m: null }, { name: 'first', role: 'admin', m: null },
      ]);
      expect(() => insert.run('t3', 'third', 'c'.repeat(64), 'manufacturer', 3), 'a manufacturer token without its manufacturer').to.throw(/CHECK/);
    } finally {
      db.close();
    }
  });
});
