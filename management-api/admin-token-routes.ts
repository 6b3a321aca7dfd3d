/**
 * Admin tokens over the management API (admins only):
 *
 *   GET  /api/v1/tokens?limit=&after=         → {tokens: [{name, role, status, createdAt, lastUsedAt?, expiresAt?, revokedAt?}], next?}
 *   POST /api/v1/tokens {name, role?, manufacturerId?, expiresAt?}   → 201 {name, role, manufacturerId?, token, expiresAt?}: the secret, shown this once
 *        (role admin, the default: 202 {approval}; another admin approves and gets the secret, approvals.ts)
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
import { adminTokenJson, checkTokenName, createAdminToken, revokeAdminToken } from './admin-tokens.js';
import { requireApproval, type ApprovalGate } from './approvals.js';
import { KakuinError } from '../errors/index.js';

export interface AdminTokenRouteDeps {
  registry: Registry;
  pepper: Buffer;
  admin: RequestHandler;
  approvals: ApprovalGate;
}

export function mountAdminTokenRoutes(routes: ApiRoutes, deps: AdminTokenRouteDeps): void {
  const { registry, pepper, admin } = deps;

  // A new admin token is everything an attacker with one admin token wants: it needs a second
  // admin. The approver gets the secret, once, to hand to its owner; the approval keeps only the name.
  deps.approvals.define({
    kind: 'admin-token', deciders: ['admin'],
    run: async (request, approval) => {
      const { token, record } = await createAdminToken(registry, pepper, String(request.name), approval.requestedBy,
        { role: 'admin', ...(typeof request.expiresAt === 'string' && { expiresAt: new Date(request.expiresAt) }) });
      return { kept: { name: record.name, role: record.role }, shown: { ...adminTokenJson(record), token } };
    },
  });

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
      const role = body.role ?? 'admin';
      if (role === 'admin') {
        // Checked now, so a bad request fails at once rather than at the approval.
        checkTokenName(body.name);
        if (body.manufacturerId !== undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'manufacturerId is only for the manufacturer role', { field: 'manufacturerId' });
        if (body.expiresAt !== undefined && new Date(body.expiresAt).getTime() <= Date.now()) throw new KakuinError('KAKUIN_E_VALIDATION', 'expiresAt must be an ISO 8601 time in the future', { field: 'expiresAt' });
      }
      if (await requireApproval(deps.approvals, req, res, {
        kind: 'admin-token', when: role === 'admin', request: { name: body.name, ...(body.expiresAt !== undefined && { expiresAt: body.expiresAt }) },
        summary: `create the admin token ${body.name}`,
      })) return;
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
