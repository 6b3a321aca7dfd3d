/**
 * Issue 13, items 1–3, over real HTTPS on 127.0.0.1 against an in-process kakuin (SQLite): unknown
 * input is an error, every list pages the same way, and admin tokens have a lifecycle (a token
 * revoked by the `kakuin` command, another process, fails on the server's next request).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { cliMain, makeTempDir, opensslOk, repoPath } from '../support/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { routesOf, undeclaredRoutes } from '../../api-schema/routes.js';

describe('strict management API: unknown input, paging, token lifecycle', function () {
  this.timeout(60_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let manufacturerId: string;

  const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc.url, svc.rootPem, method, p, { token: svc.adminToken, ...options });

  async function device(serialNumber: string): Promise<string> {
    const r = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber } });
    expect(r.status, r.text).to.equal(201);
    return r.json.id;
  }

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService();
    manufacturerId = (await api('POST', '/api/v1/manufacturers', { body: { name: 'Strict Sensors' } })).json.id;
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  describe('unknown fields and filters are refused, not ignored', () => {
    it('GET /api/v1/devices?serial=SN-1 is 400 KAKUIN_E_UNKNOWN_FIELD naming the known filters (not a list of unrelated devices)', async () => {
      await device('SN-1');
      await device('SN-2');
      const r = await api('GET', '/api/v1/devices?serial=SN-1');
      expect(r.status, r.text).to.equal(400);
      expect(r.json).to.include({ code: 'KAKUIN_E_UNKNOWN_FIELD', field: 'serial' });
      expect(r.json.accepted).to.include.members(['serialNumber', 'mac', 'imei', 'hardwareId', 'status', 'manufacturerId', 'limit', 'after']);
      expect(r.json.message).to.include('serialNumber');
      const right = await api('GET', '/api/v1/devices?serialNumber=SN-1');
      expect(right.json.devices.map((d: { serialNumber: string }) => d.serialNumber)).to.deep.equal(['SN-1']);
    });

    it('a revocation with {"reasn":"keyCompromise"} is 400 KAKUIN_E_UNKNOWN_FIELD and leaves the certificate good', async () => {
      const id = await device('SN-REASN');
      const key = path.join(tmp.dir, 'reasn.key');
      const csr = opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/serialNumber=SN-REASN']);
      const issued = await api('POST', `/api/v1/devices/${id}/certificates`, { body: { csr } });
      expect(issued.status, issued.text).to.equal(201);
      for (const p of [`/api/v1/certificates/${issued.json.serialHex}/revoke`, `/api/v1/devices/${id}/revoke`]) {
        const r = await api('POST', p, { body: { reasn: 'keyCompromise' } });
        expect(r.status, r.text).to.equal(400);
        expect(r.json).to.include({ code: 'KAKUIN_E_UNKNOWN_FIELD', field: 'reasn' });
        expect(r.json.accepted).to.include('reason');
      }
      expect((await api('GET', `/api/v1/certificates/${issued.json.serialHex}`)).json.status).to.equal('good');
      expect((await api('GET', `/api/v1/devices/${id}`)).json.status).to.equal('active');
      expect((await api('GET', `/api/v1/audit-events?deviceId=${id}&type=certificate.revoked`)).json.events).to.deep.equal([]);
      // A suspend that takes no body refuses one with fields, too.
      const s = await api('POST', `/api/v1/devices/${id}/suspend`, { body: { reason: 'keyCompromise' } });
      expect([s.status, s.json.code, s.json.accepted]).to.deep.equal([400, 'KAKUIN_E_UNKNOWN_FIELD', []]);
    });

    it('a device with {"identifers": ...} is 400 KAKUIN_E_UNKNOWN_FIELD and is not created; nested typos are named by path', async () => {
      const r = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber: 'SN-TYPO', identifers: { imei: '490154203237518' } } });
      expect(r.status, r.text).to.equal(400);
      expect(r.json).to.include({ code: 'KAKUIN_E_UNKNOWN_FIELD', field: 'identifers' });
      expect(r.json.accepted).to.deep.equal(['manufacturerId', 'serialNumber', 'identifiers', 'model', 'hardwareModuleName']);
      const nested = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber: 'SN-TYPO', identifiers: { imie: '490154203237518' } } });
      expect(nested.json).to.include({ code: 'KAKUIN_E_UNKNOWN_FIELD', field: 'identifiers.imie' });
      expect(nested.json.accepted).to.deep.equal(['mac', 'imei', 'hardwareId']);
      expect((await api('GET', '/api/v1/devices?serialNumber=SN-TYPO')).json.devices).to.deep.equal([]);
    });

    it('a value of the wrong type is 400 KAKUIN_E_INVALID_FIELD naming the field', async () => {
      const cases: [string, string, Parameters<typeof request>[4], string][] = [
        ['POST', '/api/v1/manufacturers', { body: { name: 42 } }, 'name'],
        ['POST', '/api/v1/devices', { body: { manufacturerId, serialNumber: 7 } }, 'serialNumber'],
        ['GET', '/api/v1/devices?limit=many', {}, 'limit'],
        ['GET', '/api/v1/devices?serialNumber=a&serialNumber=b', {}, 'serialNumber'],
        ['POST', '/api/v1/tokens', { body: { name: ['x'] } }, 'name'],
      ];
      for (const [method, p, o, field] of cases) {
        const r = await api(method, p, o);
        expect([r.status, r.json.code, r.json.field], `${method} ${p}`).to.deep.equal([400, 'KAKUIN_E_INVALID_FIELD', field]);
      }
    });

    it('enrollment, legacy admin and EST routes refuse unknown input too', async () => {
      const enroll = await api('POST', '/api/v1/enroll', { body: { manufacturerId, serialNumber: 'SN-1', csr: 'x', profil: 'device' } });
      expect([enroll.status, enroll.json.code, enroll.json.field]).to.deep.equal([400, 'KAKUIN_E_UNKNOWN_FIELD', 'profil']);
      const keygen = await api('POST', '/api/v1/enroll', { body: { manufacturerId, serialNumber: 'SN-1', keygen: { pasword: 'x'.repeat(20) } } });
      expect([keygen.json.code, keygen.json.field]).to.deep.equal(['KAKUIN_E_UNKNOWN_FIELD', 'keygen.pasword']);
      const cai = await api('POST', '/api/v1/legacy/common-auth-ids', { body: { name: 'c', usualHours: '06-22' } });
      expect([cai.json.code, cai.json.field]).to.deep.equal(['KAKUIN_E_UNKNOWN_FIELD', 'usualHours']);
      const imp = await api('POST', '/api/v1/devices/import?manufacturer=x', { body: [] });
      expect([imp.json.code, imp.json.field, imp.json.accepted]).to.deep.equal(['KAKUIN_E_UNKNOWN_FIELD', 'manufacturer', ['manufacturerId']]);
      const batch = await api('POST', `/api/v1/enroll/batch?manufacturerId=${manufacturerId}`, {
        body: `${JSON.stringify({ serialNumber: 'SN-1', csrr: 'x' })}\n${JSON.stringify({ serialNumber: 'SN-2', keygen: { password: 'x'.repeat(20), fromat: 'pem' } })}\n`, contentType: 'application/x-ndjson',
      });
      expect(batch.status, batch.text).to.equal(200);
      const lines = batch.text.trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.map((l) => [l.line, l.error.code])).to.deep.equal([[1, 'KAKUIN_E_UNKNOWN_FIELD'], [2, 'KAKUIN_E_UNKNOWN_FIELD']]);
      expect(lines[0].error.message).to.include('csrr');
      expect(lines[1].error.message).to.include('keygen.fromat');
      const est = await request(svc.url, svc.rootPem, 'GET', '/.well-known/est/cacerts?format=pem');
      expect(est.status).to.equal(400);
      expect(est.text).to.match(/^KAKUIN_E_UNKNOWN_FIELD: /);
    });
  });

  describe('one paging convention', () => {
    it('devices: ?limit=&after= walks every device once; next is absent on the last page', async () => {
      const mfr = (await api('POST', '/api/v1/manufacturers', { body: { name: 'Paging Co' } })).json.id;
      const made: string[] = [];
      for (let i = 0; i < 7; i++) made.push((await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr, serialNumber: `PG-${i}` } })).json.id);
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const r = await api('GET', `/api/v1/devices?manufacturerId=${mfr}&limit=3${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        expect(r.status, r.text).to.equal(200);
        seen.push(...r.json.devices.map((d: { id: string }) => d.id));
        after = r.json.next;
        pages++;
      } while (after !== undefined);
      expect(seen).to.deep.equal(made);
      expect(pages).to.equal(3);
      const exact = await api('GET', `/api/v1/devices?manufacturerId=${mfr}&limit=7`);
      expect(exact.json.devices).to.have.length(7);
      expect(exact.json).to.not.have.property('next');
      const bad = await api('GET', '/api/v1/devices?after=not-a-device');
      expect([bad.status, bad.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);
    });

    it('audit events: after (and its alias afterId), until and actor', async () => {
      const all = (await api('GET', '/api/v1/audit-events?limit=1000')).json.events as { id: number; at: string; actor: string }[];
      expect(all.length).to.be.greaterThan(4);
      const first = await api('GET', '/api/v1/audit-events?limit=2');
      expect(first.json.events.map((e: { id: number }) => e.id)).to.deep.equal(all.slice(0, 2).map((e) => e.id));
      expect(first.json.next).to.equal(String(all[1].id));
      for (const name of ['after', 'afterId']) {
        const next = await api('GET', `/api/v1/audit-events?limit=2&${name}=${first.json.next}`);
        expect(next.json.events.map((e: { id: number }) => e.id)).to.deep.equal(all.slice(2, 4).map((e) => e.id));
      }
      const both = await api('GET', '/api/v1/audit-events?after=1&afterId=1');
      expect([both.status, both.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);
      const until = await api('GET', `/api/v1/audit-events?until=${encodeURIComponent(all[0].at)}`);
      expect(until.json.events.every((e: { at: string }) => e.at < all[0].at)).to.equal(true);
      const byActor = await api('GET', '/api/v1/audit-events?actor=token:bootstrap&limit=1000');
      expect(byActor.json.events.length).to.equal(all.filter((e) => e.actor === 'token:bootstrap').length);
    });

    it('stations, station certificates and tokens answer {<items>, next}', async () => {
      for (let i = 0; i < 3; i++) await api('POST', `/api/v1/manufacturers/${manufacturerId}/stations`, { body: { name: `line ${i}` } });
      const p1 = await api('GET', `/api/v1/manufacturers/${manufacturerId}/stations?limit=2`);
      expect(p1.json.stations).to.have.length(2);
      const p2 = await api('GET', `/api/v1/manufacturers/${manufacturerId}/stations?limit=2&after=${p1.json.next}`);
      expect(p2.json.stations).to.have.length(1);
      expect(p2.json).to.not.have.property('next');
      const certs = await api('GET', `/api/v1/stations/${p1.json.stations[0].id}/certificates`);
      expect(certs.json).to.deep.equal({ certificates: [] });
      const tokens = await api('GET', '/api/v1/tokens?limit=1000');
      expect(tokens.json).to.have.property('tokens');
      expect(tokens.json).to.not.have.property('next');
    });
  });

  describe('admin tokens', () => {
    // An admin token made through the API waits for a second admin (test/integration/approvals.test.ts); these use the auditor role.
    it('POST /api/v1/tokens shows the token once; it works, records its last use, and is listed with role, created and expiry', async () => {
      const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
      const created = await api('POST', '/api/v1/tokens', { body: { name: 'ops-bot', role: 'auditor', expiresAt } });
      expect(created.status, created.text).to.equal(201);
      expect(created.json).to.include({ name: 'ops-bot', role: 'auditor', status: 'active', expiresAt });
      expect(created.json.token).to.match(/^kkadm_[A-Za-z0-9_-]{43}$/);
      const asBot = await request(svc.url, svc.rootPem, 'GET', '/api/v1/manufacturers', { token: created.json.token });
      expect(asBot.status).to.equal(200);
      const listed = (await api('GET', '/api/v1/tokens')).json.tokens.find((t: { name: string }) => t.name === 'ops-bot');
      expect(listed).to.include({ role: 'auditor', status: 'active', expiresAt, createdAt: created.json.createdAt });
      expect(listed).to.not.have.property('token');
      expect(Date.parse(listed.lastUsedAt)).to.be.closeTo(Date.now(), 10_000);
      const events = (await api('GET', '/api/v1/audit-events?type=token.created&actor=token:bootstrap')).json.events;
      expect(events.map((e: { details: { name: string } }) => e.details.name)).to.include('ops-bot');
      const dup = await api('POST', '/api/v1/tokens', { body: { name: 'ops-bot', role: 'auditor' } });
      expect([dup.status, dup.json.code]).to.deep.equal([409, 'KAKUIN_E_TOKEN_EXISTS']);
      const past = await api('POST', '/api/v1/tokens', { body: { name: 'late', expiresAt: '2020-01-01T00:00:00Z' } });
      expect([past.status, past.json.code]).to.deep.equal([400, 'KAKUIN_E_VALIDATION']);
    });

    it('a revoked token fails at once; revoking is an audit event and cannot be repeated', async () => {
      const { token } = (await api('POST', '/api/v1/tokens', { body: { name: 'temp', role: 'auditor' } })).json;
      expect((await request(svc.url, svc.rootPem, 'GET', '/api/v1/tokens', { token })).status).to.equal(200);
      const revoked = await api('POST', '/api/v1/tokens/temp/revoke');
      expect(revoked.status, revoked.text).to.equal(200);
      expect(revoked.json).to.include({ name: 'temp', status: 'revoked' });
      const after = await request(svc.url, svc.rootPem, 'GET', '/api/v1/tokens', { token });
      expect([after.status, after.json.code]).to.deep.equal([401, 'KAKUIN_E_UNAUTHENTICATED']);
      const again = await api('POST', '/api/v1/tokens/temp/revoke');
      expect([again.status, again.json.code]).to.deep.equal([409, 'KAKUIN_E_TOKEN_STATE']);
      expect((await api('POST', '/api/v1/tokens/nobody/revoke')).json.code).to.equal('KAKUIN_E_TOKEN_NOT_FOUND');
      const events = (await api('GET', '/api/v1/audit-events?type=token.revoked')).json.events;
      expect(events.map((e: { actor: string; details: { name: string } }) => [e.actor, e.details.name])).to.deep.include(['token:bootstrap', 'temp']);
    });

    it('an expired token authenticates no one', async () => {
      const { token } = (await api('POST', '/api/v1/tokens', { body: { name: 'brief', role: 'auditor', expiresAt: new Date(Date.now() + 1500).toISOString() } })).json;
      expect((await request(svc.url, svc.rootPem, 'GET', '/api/v1/manufacturers', { token })).status).to.equal(200);
      await new Promise((r) => setTimeout(r, 1700));
      expect((await request(svc.url, svc.rootPem, 'GET', '/api/v1/manufacturers', { token })).status).to.equal(401);
      expect((await api('GET', '/api/v1/tokens')).json.tokens.find((t: { name: string }) => t.name === 'brief').status).to.equal('expired');
    });

    it('kakuin token create / list / revoke: a token revoked by the command (another process) fails on the server\'s next request', () => {
      const kakuin = (...args: string[]) => {
        const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...process.env, ...svc.env }, timeout: 30_000 });
        return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
      };
      const created = kakuin('token', 'create', '--name', 'cli-bot', '--expires', '2099-01-01T00:00:00Z');
      expect(created.status, created.stderr).to.equal(0);
      const token = created.stdout.trim().split('\n').pop()!;
      return (async () => {
        expect((await request(svc.url, svc.rootPem, 'GET', '/api/v1/manufacturers', { token })).status).to.equal(200);
        const list = kakuin('token', 'list');
        expect(list.status, list.stderr).to.equal(0);
        expect(list.stdout).to.match(/^NAME\s+ROLE\s+STATUS\s+CREATED\s+LAST USED\s+EXPIRES/);
        expect(list.stdout).to.match(/cli-bot\s+admin\s+active\s+\S+\s+\S+\s+2099-01-01T00:00:00.000Z/);
        const revoked = kakuin('token', 'revoke', '--name', 'cli-bot');
        expect(revoked.status, revoked.stderr).to.equal(0);
        expect((await request(svc.url, svc.rootPem, 'GET', '/api/v1/manufacturers', { token })).status).to.equal(401);
        expect(kakuin('token', 'list').stdout).to.match(/cli-bot\s+admin\s+revoked/);
        const bad = kakuin('token', 'create', '--name', 'x', '--expires', 'tomorrow');
        expect([bad.status, bad.stderr.includes('KAKUIN_E_USAGE')]).to.deep.equal([2, true]);
      })();
    });
  });

  describe('declared routes and the OpenAPI document', () => {
    it('every route on the management API app was declared with its schemas', () => {
      expect(routesOf(svc.service.apiApp)?.declared().length).to.be.greaterThan(40);
      expect(undeclaredRoutes(svc.service.apiApp)).to.deep.equal([]);
    });

    it('GET /api/v1/openapi.json is an OpenAPI 3.1 document for admins only, with each route\'s query and body schemas', async () => {
      expect((await request(svc.url, svc.rootPem, 'GET', '/api/v1/openapi.json')).status).to.equal(401);
      const r = await api('GET', '/api/v1/openapi.json');
      expect(r.status).to.equal(200);
      const doc = r.json;
      expect(doc.openapi).to.equal('3.1.0');
      // Checked against the OpenAPI 3.1 specification's own JSON Schema (an independent validator).
      const validator = new Validator();
      const verdict = await validator.validate(doc);
      expect(verdict, JSON.stringify(verdict.errors?.slice(0, 3))).to.deep.equal({ valid: true });
      expect(validator.version).to.equal('3.1');
      const list = doc.paths['/api/v1/devices'].get;
      expect(list.parameters.map((p: { name: string }) => p.name)).to.include.members(['serialNumber', 'limit', 'after']);
      const create = doc.paths['/api/v1/devices'].post.requestBody.content['application/json'].schema;
      expect(create.additionalProperties).to.equal(false);
      expect(create.required).to.deep.equal(['manufacturerId', 'serialNumber']);
      const revoke = doc.paths['/api/v1/certificates/{serialHex}/revoke'].post.requestBody;
      expect(revoke.required).to.equal(false);
      expect(Object.keys(revoke.content['application/json'].schema.properties)).to.deep.equal(['reason', 'invalidityDate']);
      const declared = routesOf(svc.service.apiApp)!.declared();
      const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
      expect(documented.sort()).to.deep.equal(declared.map((d) => `${d.method} ${d.path}`).sort());
    });

    it('the README route table ("## Management API") lists exactly the declared routes, their query parameters and callers', async () => {
      const doc = (await api('GET', '/api/v1/openapi.json')).json as { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; 'x-kakuin-callers': string[] }>> };
      const readme = readFileSync(repoPath('README.md'), 'utf8');
      const section = readme.slice(readme.indexOf('## Management API'), readme.indexOf('\n## ', readme.indexOf('## Management API') + 5));
      const callers = new Map<string, string[]>();
      const listed = readmeRoutes(section, callers);
      const norm = (p: string) => p.replace(/\{[^}]+\}/g, '{}');
      const documented = new Map<string, string[]>();
      const declaredCallers = new Map<string, string[]>();
      for (const [p, ops] of Object.entries(doc.paths)) {
        for (const [m, op] of Object.entries(ops)) {
          documented.set(`${m.toUpperCase()} ${norm(p)}`, (op.parameters ?? []).filter((x) => x.in === 'query').map((x) => x.name));
          declaredCallers.set(`${m.toUpperCase()} ${norm(p)}`, [...op['x-kakuin-callers']].sort());
        }
      }
      expect([...listed.keys()].filter((k) => !documented.has(k)), 'README routes that do not exist').to.deep.equal([]);
      expect([...documented.keys()].filter((k) => !listed.has(k)), 'routes missing from the README table').to.deep.equal([]);
      for (const [k, names] of listed) {
        if (names === undefined) continue;
        expect([...names].sort(), `query parameters of ${k} in the README`).to.deep.equal([...documented.get(k)!].sort());
      }
      for (const [k, c] of callers) expect(c, `callers of ${k} in the README`).to.deep.equal(declaredCallers.get(k));
    });
  });
});

const METHODS = /^(GET|POST|DELETE|PUT|PATCH) (\S+)/;

/** `/a/[<x>/]b` → `/a`: the path `.../c` continues from. */
function parentOf(p: string): string {
  const plain = p.replace(/\[<[^>]+>\/\]/, '');
  return plain.slice(0, plain.lastIndexOf('/'));
}

/**
 * The routes a README table names: `METHOD /path ...` in the first column (`.../x` continues the
 * path before it), and `GET` / `GET .../x` in the third ("`GET` lists them"). `[<x>/]` is an
 * optional path segment; `?a=&b=` lists query parameters (undefined where the row gives none).
 */
function readmeRoutes(section: string, callers = new Map<string, string[]>()): Map<string, string[] | undefined> {
  const routes = new Map<string, string[] | undefined>();
  let rowCallers: string[] = [];
  const add = (method: string, raw: string) => {
    const q = /[[]?\?([^\]\s]*)\]?$/.exec(raw);
    const names = q ? q[1].split('&').map((x) => x.split('=')[0]).filter((x) => x.length > 0) : undefined;
    const p = (q ? raw.slice(0, q.index) : raw).replace(/\{[^}]+\}/g, '{}');
    const variants = /\[<[^>]+>\/\]/.test(p) ? [p.replace(/\[<[^>]+>\/\]/, ''), p.replace(/\[<[^>]+>\/\]/, '{}/')] : [p];
    for (const v of variants) {
      routes.set(`${method} ${v}`, names ?? routes.get(`${method} ${v}`));
      callers.set(`${method} ${v}`, rowCallers);
    }
  };
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    rowCallers = [...new Set(cells[2].replace(/\([^)]*\)/g, '').match(/\b(anyone|admin|station|device)\b/g) ?? [])].sort();
    let previous: { method: string; path: string } | undefined;
    for (const code of cells[1].match(/`[^`]+`/g) ?? []) {
      const text = code.slice(1, -1);
      const m = METHODS.exec(text);
      if (m) {
        const p = m[2].startsWith('.../') && previous ? parentOf(previous.path) + m[2].slice(3) : m[2];
        previous = { method: m[1], path: p };
        add(m[1], p);
      } else if (text.startsWith('.../') && previous) {
        const p = parentOf(previous.path) + text.slice(3);
        add(previous.method, p);
      }
    }
    const first = cells[1].match(/`([A-Z]+) (\S+)/);
    for (const code of (cells[3] ?? '').match(/`(GET|POST|DELETE)( \.\.\.\/\S+)?`/g) ?? []) {
      if (!first) break;
      const [, method, rel] = /`([A-Z]+)(?: \.\.\.(\/\S+))?`/.exec(code)!;
      const base = first[2].replace(/\[?\?.*$/, '');
      add(method, rel ? parentOf(base) + rel : base);
    }
  }
  return routes;
}
