/**
 * Admin tokens over the management API (admins only):
 *
 *   GET  /api/v1/tokens?limit=&after=         → {tokens: [{name, role, status, createdAt, lastUsedAt?, expiresAt?, revokedAt?}], next?}
 *   POST /api/v1/tokens {name, role?, manufacturerId?, expiresAt?}   → 201 {name, role, manufacturerId?, token, expiresAt?}: the secret, shown this once
 *        (role: admin (default), operator, auditor, manufacturer; manufacturerId exactly for manufacturer)
 *   POST /api/v1/tokens/{name}/revoke         → 200 the token (revoked): it fails at once in every process
 *
 * Create and revoke are audit events (`token.created`, `token.revoked`) naming the acting token.
 */
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { TOKEN_ROLES, type Registry } from '../registry/port.js';
import type { ApiRoutes } from '../api-schema/routes.js';
import { isoTime } from '../api-schema/fields.js';
import { pageJson, pageQuery, readPage } from '../api-schema/paging.js';
import { adminTokenJson, createAdminToken, revokeAdminToken } from './admin-tokens.js';

export interface AdminTokenRouteDeps {
  registry: Registry;
  pepper: Buffer;
  admin: RequestHandler;
}

export function mountAdminTokenRoutes(routes: ApiRoutes, deps: AdminTokenRouteDeps): void {
  const { registry, pepper, admin } = deps;

  routes.add({
    method: 'get', path: '/api/v1/tokens', summary: 'list admin tokens (never their secrets)', callers: ['admin'], use: [admin],
    query: z.strictObject({ ...pageQuery }), response: { status: 200, description: '{tokens, next?}' },
    handler: async ({ res, query }) => {
      const page = await readPage((afterKey, limit) => registry.listAdminTokens({ afterKey, limit }), (t) => t.name, query);
      res.json(pageJson('tokens', page, (t) => adminTokenJson(t)));
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/tokens', summary: 'create an admin token; the secret is shown this once', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ name: z.string(), role: z.enum(TOKEN_ROLES).optional().describe('default admin'), manufacturerId: z.string().optional().describe('the manufacturer a manufacturer token is bound to'), expiresAt: isoTime.optional() }) },
    response: { status: 201, description: '{name, role, manufacturerId?, token, createdAt, expiresAt?}' },
    handler: async ({ req, res, body }) => {
      const { token, record } = await createAdminToken(registry, pepper, body.name, req.caller!.actor,
        { expiresAt: body.expiresAt === undefined ? undefined : new Date(body.expiresAt), role: body.role, manufacturerId: body.manufacturerId });
      res.status(201).json({ ...adminTokenJson(record), token });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/tokens/{name}/revoke', summary: 'revoke an admin token (for good)', callers: ['admin'], use: [admin],
    handler: async ({ req, res, params }) => {
      res.json(adminTokenJson(await revokeAdminToken(registry, params.name, req.caller!.actor)));
    },
  });
}
