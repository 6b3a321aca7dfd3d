/**
 * api-schema: a route is declared with its schemas or it is found out, and zod's findings become
 * one stable error. The legacy device listener (its own express app) is held to the same rule.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { expect } from 'chai';
import { z } from 'zod';
import { ApiRoutes, routesOf, undeclaredRoutes } from '../../api-schema/routes.js';
import { parseInput } from '../../api-schema/validation.js';
import { readPage } from '../../api-schema/paging.js';
import { errorHandler } from '../../management-api/http-errors.js';
import { createLegacyApp, type LegacyAuthService } from '../../gateway-auth/legacy/index.js';
import { KakuinError } from '../../errors/index.js';

const quiet = { info() {}, warn() {}, error() {} };

async function serve(app: express.Express): Promise<{ post(p: string, body: string | undefined, type?: string): Promise<{ status: number; json: any }>; close(): Promise<void> }> {
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    post: async (p, body, type = 'application/json') => {
      const r = await fetch(`http://127.0.0.1:${port}${p}`, { method: 'POST', headers: { 'content-type': type }, body });
      return { status: r.status, json: await r.json() };
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('declared routes (api-schema)', () => {
  it('finds a route put on the app without a declaration', () => {
    const app = express();
    const routes = new ApiRoutes(app, express.json());
    routes.add({ method: 'post', path: '/api/v1/things/{id}', summary: 'x', callers: ['admin'], handler: ({ res }) => res.json({}) });
    expect(undeclaredRoutes(app)).to.deep.equal([]);
    app.post('/api/v1/sneaky', (_req, res) => res.json({}));
    app.get('/api/v1/things/:id', (_req, res) => res.json({}));
    expect(undeclaredRoutes(app)).to.deep.equal(['POST /api/v1/sneaky', 'GET /api/v1/things/:id']);
    expect(undeclaredRoutes(express().post('/x', (_req, res) => res.end()))).to.deep.equal(['POST /x']);
  });

  it('runs no handler for an unknown field, a wrong type, or a body on a route that takes none', async () => {
    const app = express();
    const routes = new ApiRoutes(app, express.json());
    let ran = 0;
    routes.add({
      method: 'post', path: '/t', summary: 't', callers: ['anyone'],
      body: { json: z.strictObject({ name: z.string(), n: z.number().optional() }) },
      handler: ({ res, body }) => { ran++; res.json({ name: body.name }); },
    });
    routes.add({ method: 'post', path: '/none', summary: 'none', callers: ['anyone'], handler: ({ res }) => { ran++; res.json({ ok: true }); } });
    app.use(errorHandler(quiet));
    const s = await serve(app);
    try {
      expect((await s.post('/t', '{"name":"a"}')).json).to.deep.equal({ name: 'a' });
      expect((await s.post('/t', '{"name":"a","nmae":"b"}')).json).to.deep.include({ code: 'KAKUIN_E_UNKNOWN_FIELD', field: 'nmae', accepted: ['name', 'n'] });
      expect((await s.post('/t', '{"name":"a","n":"1"}')).json).to.deep.include({ code: 'KAKUIN_E_INVALID_FIELD', field: 'n' });
      expect((await s.post('/t', '{}')).json).to.deep.include({ code: 'KAKUIN_E_VALIDATION', field: 'name' });
      expect((await s.post('/t', 'name=a', 'application/x-www-form-urlencoded')).status).to.equal(415);
      expect((await s.post('/t?debug=1', '{"name":"a"}')).json).to.deep.include({ code: 'KAKUIN_E_UNKNOWN_FIELD', field: 'debug', accepted: [] });
      expect((await s.post('/none', '{}')).json).to.deep.equal({ ok: true });
      expect((await s.post('/none', undefined)).json, 'no body, a JSON Content-Type (curl -X POST -H ...)').to.deep.equal({ ok: true });
      expect((await s.post('/none', '')).json).to.deep.equal({ ok: true });
      expect((await s.post('/none', '{"force":true}')).json).to.deep.include({ code: 'KAKUIN_E_UNKNOWN_FIELD', field: 'force' });
      expect(ran).to.equal(4);
    } finally {
      await s.close();
    }
  });

  it('an unknown name is reported before the missing field it probably is', () => {
    const schema = z.strictObject({ reason: z.string(), invalidityDate: z.string().optional() });
    const e = (() => {
      try {
        parseInput(schema, { reasn: 'keyCompromise' }, { place: 'body' });
      } catch (err) {
        return err as KakuinError;
      }
      throw new Error('accepted');
    })();
    expect(e.toJSON()).to.deep.equal({
      code: 'KAKUIN_E_UNKNOWN_FIELD', message: 'unknown field "reasn"; this route takes reason, invalidityDate', field: 'reasn', accepted: ['reason', 'invalidityDate'],
    });
  });

  it('inside a union (a list, or an object holding one) names the form the value has', () => {
    const row = z.strictObject({ deviceId: z.string(), authSecret: z.string() });
    const schema = z.union([z.array(row), z.strictObject({ credentials: z.array(row) })]);
    const fail = (v: unknown) => {
      try {
        parseInput(schema, v, { place: 'body' });
      } catch (err) {
        return (err as KakuinError).toJSON();
      }
      throw new Error('accepted');
    };
    expect(fail([{ deviceId: 'd', authsecret: 's' }])).to.deep.include({ code: 'KAKUIN_E_UNKNOWN_FIELD', field: '0.authsecret', accepted: ['deviceId', 'authSecret'] });
    expect(fail({ credentials: 'no' })).to.deep.include({ code: 'KAKUIN_E_INVALID_FIELD', field: 'credentials' });
    expect(fail({ credentials: [{ deviceId: 'd', authSecret: 's', extra: 1 }] })).to.deep.include({ code: 'KAKUIN_E_UNKNOWN_FIELD', field: 'credentials.0.extra' });
  });

  it('a page knows whether another follows, also at the largest page size', async () => {
    const items = Array.from({ length: 2500 }, (_, i) => i + 1);
    let reads = 0;
    const fetch = async (after: string | undefined, limit: number) => {
      reads++;
      const from = after === undefined ? 0 : Number(after);
      return items.filter((i) => i > from).slice(0, Math.min(limit, 1000));
    };
    const seen: number[] = [];
    let after: string | undefined;
    do {
      const page = await readPage(fetch, String, { after, limit: 1000 });
      seen.push(...page.items);
      after = page.next;
    } while (after !== undefined);
    expect(seen).to.deep.equal(items);
    const last = await readPage(fetch, String, { after: '2000', limit: 500 });
    expect([last.items.length, last.next]).to.deep.equal([500, undefined]);
    expect(reads).to.be.greaterThan(3);
  });

  it('the legacy device listener declares each of its routes; a factor typo is KAKUIN_E_UNKNOWN_FIELD, a mistyped one stays KAKUIN_E_VALIDATION', async () => {
    let authenticated = 0;
    const auth = { authenticate: async () => { authenticated++; throw new Error('not reached'); }, validate: () => 'dev' } as unknown as LegacyAuthService;
    const app = createLegacyApp({
      auth, logger: quiet, trustProxy: false, bodyLimitBytes: 4096, sink: { record: async () => undefined },
      issueCertificate: async () => { throw new Error('not here'); }, tls: { cert: '', key: '' },
    });
    expect(undeclaredRoutes(app)).to.deep.equal([]);
    expect(routesOf(app)!.declared().map((r) => `${r.method} ${r.path}`)).to.deep.equal([
      'get /healthz', 'post /legacy/v1/token', 'post /legacy/v1/telemetry', 'post /legacy/v1/certificate',
    ]);
    const s = await serve(app);
    try {
      const typo = await s.post('/legacy/v1/token', JSON.stringify({ commonAuthId: 'c', authSecret: 's', uniqueid: 'u' }));
      expect([typo.status, typo.json.code, typo.json.field]).to.deep.equal([400, 'KAKUIN_E_UNKNOWN_FIELD', 'uniqueid']);
      expect(typo.json.accepted).to.deep.equal(['commonAuthId', 'authSecret', 'uniqueId', 'firmwareVersion']);
      const typed = await s.post('/legacy/v1/token', JSON.stringify({ commonAuthId: 'c', authSecret: 's', uniqueId: 1 }));
      expect([typed.status, typed.json.code, typed.json.field]).to.deep.equal([400, 'KAKUIN_E_VALIDATION', 'uniqueId']);
      expect(authenticated).to.equal(0);
    } finally {
      await s.close();
    }
  });
});
