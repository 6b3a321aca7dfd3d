/**
 * EAB keys on the management API (the same as `kakuin acme eab ...`):
 *
 *   GET  /api/v1/acme/eab                 admin, auditor  → {keys: [{kid, names, createdAt, createdBy, revokedAt?, accountId?}]}
 *   POST /api/v1/acme/eab                 admin  {names: [pattern, ...]} → 201 {kid, hmacKey, names} (the HMAC key shown once)
 *   POST /api/v1/acme/eab/{kid}/revoke    admin  → the key, revoked
 */
import { z } from 'zod';
import type { ApiRoutes } from '../../api-schema/routes.js';
import type { ApiHelpers } from '../../management-api/management-api.js';
import type { AcmeStore } from '../../registry/acme.js';
import { createEabKey, eabKeyJson, revokeEabKey, type AuditSink } from './eab.js';

export interface AcmeAdminDeps {
  store: AcmeStore;
  audit: AuditSink;
  pepper: Buffer;
}

export function mountAcmeAdminRoutes(routes: ApiRoutes, helpers: ApiHelpers, deps: AcmeAdminDeps): void {
  routes.add({
    method: 'get', path: '/api/v1/acme/eab', summary: 'ACME external account binding keys (never their HMAC keys)', callers: ['admin'], use: [helpers.admin],
    handler: async ({ res }) => res.json({ keys: (await deps.store.listEabKeys()).map(eabKeyJson) }),
  });

  routes.add({
    method: 'post', path: '/api/v1/acme/eab', summary: 'create an ACME EAB key for name patterns; its HMAC key is shown once', callers: ['admin'], use: [helpers.admin],
    body: { json: z.strictObject({ names: z.array(z.string().min(1).max(253)).min(1).max(100) }) },
    response: { status: 201, description: '{kid, hmacKey, names}' },
    handler: async ({ req, res, body }) => {
      res.status(201).json(await createEabKey(deps.store, deps.audit, deps.pepper, body.names, req.caller?.actor ?? 'admin'));
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/acme/eab/{kid}/revoke', summary: 'revoke an ACME EAB key: it binds no account, its account orders nothing more', callers: ['admin'], use: [helpers.admin],
    handler: async ({ req, res, params }) => {
      res.json(eabKeyJson(await revokeEabKey(deps.store, deps.audit, params.kid, req.caller?.actor ?? 'admin')));
    },
  });
}
