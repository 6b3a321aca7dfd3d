/**
 * Users and their sessions over the management API (logins.ts, users.ts):
 *
 *   POST   /api/v1/session {name, password, totp?}   anyone → 201 the session (below) + Set-Cookie __Host-kakuin_session
 *   GET    /api/v1/session                           any person or token → who is calling: {name, role, manufacturerId?, via,
 *                                                    and for a session: csrfToken, createdAt, expiresAt, idleExpiresAt, idleTimeoutSeconds}
 *   DELETE /api/v1/session                           → 204, the session ends (logout) and the cookie is cleared
 *   POST   /api/v1/session/password {password, newPassword}   a person → 204; every session of the user ends, this one too
 *   GET    /api/v1/users?limit=&after=               admin, auditor → {users, next?}
 *   POST   /api/v1/users {name, role, manufacturerId?, password?, totp?}   admin → 201 the user, with `password` (when generated)
 *                                                    and `totpUri` (admins always; others with totp: true), shown this once
 *   POST   /api/v1/users/{name}/disable | enable     admin → the user; disabling ends its sessions at once
 *   POST   /api/v1/users/{name}/reset-password {password?}   admin → the user, with `password` when generated; sessions end
 *   POST   /api/v1/users/{name}/reset-totp           admin → the user with a new `totpUri`; sessions end
 *
 * The session answer is what a single-page console on the same origin needs: the CSRF token to
 * send as `X-Kakuin-CSRF` on every request that is not a GET, and when the session ends.
 */
import type { RequestHandler, Response } from 'express';
import { z } from 'zod';
import { TOKEN_ROLES } from '../registry/port.js';
import type { UserStore } from '../registry/users.js';
import type { ApiRoutes } from '../api-schema/routes.js';
import { pageJson, pageQuery, readPage } from '../api-schema/paging.js';
import { hasCode, KakuinError } from '../errors/index.js';
import type { Caller } from './admin-tokens.js';
import { UserLogins, type SessionCaller } from './logins.js';
import { checkUserName, userJson, type UserAccounts } from './users.js';
import { requireApproval, type ApprovalGate } from './approvals.js';

export interface UserRouteDeps {
  store: UserStore;
  accounts: UserAccounts;
  logins: UserLogins;
  sessionIdleMs: number;
  admin: RequestHandler;
  /** Creating an admin user through the API needs a second admin (README "Approvals"); `kakuin user create` on the host does not. */
  approvals?: ApprovalGate;
}

function isSession(caller: Caller | undefined): caller is SessionCaller {
  return caller !== undefined && 'session' in caller;
}

/** How the caller is shown by GET /api/v1/session (and the login answer). */
export function whoAmI(caller: Caller, idleMs: number) {
  if (caller.kind === 'station') return { name: caller.name, role: 'station', via: 'station-key' };
  const base = { name: caller.name, role: caller.role, ...(caller.manufacturerId !== undefined && { manufacturerId: caller.manufacturerId }), actor: caller.actor };
  if (!isSession(caller)) return { ...base, via: 'token' };
  const s = caller.session;
  return {
    ...base, via: 'session', csrfToken: s.csrfToken, createdAt: s.createdAt.toISOString(), expiresAt: s.expiresAt.toISOString(),
    idleExpiresAt: s.idleExpiresAt.toISOString(), idleTimeoutSeconds: Math.floor(idleMs / 1000),
  };
}

const userName = z.string().describe('1 to 64 characters: letters, digits, . _ @ -');

export function mountUserRoutes(routes: ApiRoutes, deps: UserRouteDeps): void {
  const { accounts, logins, admin } = deps;

  // Like an admin token: an admin login is everything an attacker with one admin wants. The approver
  // gets the generated password and TOTP URI, once, to hand over; the approval keeps only the name.
  deps.approvals?.define({
    kind: 'admin-user', deciders: ['admin'],
    run: async (request, approval) => {
      const { user, ...once } = await accounts.create({ name: String(request.name), role: 'admin' }, approval.requestedBy);
      return { kept: { name: user.name, role: user.role }, shown: { ...userJson(user), ...once } };
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/session', summary: 'log in with a user name, password and (admins always) a TOTP code; sets the session cookie', callers: ['anyone'],
    body: { json: z.strictObject({ name: z.string().max(256), password: z.string().max(1024), totp: z.string().max(16).optional().describe('the 6-digit code of the authenticator app') }) },
    response: { status: 201, description: '{name, role, manufacturerId?, via: session, csrfToken, createdAt, expiresAt, idleExpiresAt, idleTimeoutSeconds} and Set-Cookie' },
    handler: async ({ req, res, body }) => {
      try {
        const { sessionId, caller } = await logins.login(body, req.socket.remoteAddress ?? 'unknown');
        res.status(201).set('Set-Cookie', logins.sessionCookie(sessionId)).json(whoAmI(caller, deps.sessionIdleMs));
      } catch (e) {
        retryAfter(res, e);
        throw e;
      }
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/session', summary: 'who is calling: the user of the session (with its CSRF token and when it ends) or the token', callers: ['admin'], use: [admin],
    response: { status: 200, description: '{name, role, manufacturerId?, via: session|token, csrfToken?, expiresAt?, idleExpiresAt?}' },
    handler: ({ req, res }) => {
      res.json(whoAmI(req.caller!, deps.sessionIdleMs));
    },
  });

  routes.add({
    method: 'delete', path: '/api/v1/session', summary: 'log out: the session ends and its cookie is cleared (a token caller: nothing to end)', callers: ['admin'], use: [admin],
    response: { status: 204, description: 'no content' },
    handler: async ({ req, res }) => {
      if (isSession(req.caller)) await logins.logout(req.caller);
      res.status(204).set('Set-Cookie', UserLogins.clearedCookie()).end();
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/session/password', summary: 'change your own password (give the current one); every session of yours ends, this one too', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ password: z.string().max(1024).describe('the current password'), newPassword: z.string().describe('at least 12 characters') }) },
    response: { status: 204, description: 'no content; the cookie is cleared: log in with the new password' },
    handler: async ({ req, res, body }) => {
      if (!isSession(req.caller)) throw new KakuinError('KAKUIN_E_VALIDATION', 'a token has no password: change a person\'s password while logged in as that person');
      try {
        await logins.changeOwnPassword(req.caller, body.password, body.newPassword, req.socket.remoteAddress ?? 'unknown');
      } catch (e) {
        retryAfter(res, e);
        throw e;
      }
      res.status(204).set('Set-Cookie', UserLogins.clearedCookie()).end();
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/users', summary: 'list users (never a password hash or TOTP secret)', callers: ['admin'], use: [admin],
    query: z.strictObject({ ...pageQuery }), response: { status: 200, description: '{users, next?}' },
    handler: async ({ res, query }) => {
      const page = await readPage((afterKey, limit) => deps.store.listUsers({ afterKey, limit }), (u) => u.name, query);
      res.json(pageJson('users', page, userJson));
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/users', summary: 'create a user; a generated password and the TOTP URI are shown this once', callers: ['admin'], use: [admin],
    body: {
      json: z.strictObject({
        name: userName, role: z.enum(TOKEN_ROLES), manufacturerId: z.string().optional().describe('for the manufacturer role'),
        password: z.string().optional().describe('at least 12 characters; absent: one is generated'), totp: z.boolean().optional().describe('a TOTP second factor (admins always have one)'),
      }),
    },
    response: { status: 201, description: '{name, role, manufacturerId?, status, totp, createdAt, ..., password?, totpUri?}' },
    handler: async ({ req, res, body }) => {
      if (body.role === 'admin' && deps.approvals !== undefined) {
        // Checked now, so a bad request fails at once rather than at the approval. A chosen password
        // would have to wait in the approval record: an admin made here always gets a generated one.
        checkUserName(body.name);
        if (body.totp === false) throw new KakuinError('KAKUIN_E_VALIDATION', 'every admin has a TOTP second factor', { field: 'totp' });
        if (body.manufacturerId !== undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'manufacturerId is only for the manufacturer role', { field: 'manufacturerId' });
        if (body.password !== undefined) {
          throw new KakuinError('KAKUIN_E_VALIDATION', 'an admin user made through the API gets a generated password, shown once to the approving admin; or use `kakuin user create` on the host', { field: 'password' });
        }
        if (await requireApproval(deps.approvals, req, res, { kind: 'admin-user', request: { name: body.name }, summary: `create the admin user ${body.name}` })) return;
      }
      const { user, ...once } = await accounts.create(body, req.caller!.actor);
      res.status(201).json({ ...userJson(user), ...once });
    },
  });

  for (const action of ['disable', 'enable'] as const) {
    routes.add({
      method: 'post', path: `/api/v1/users/{name}/${action}`, summary: action === 'disable' ? 'disable a user: its sessions end at once' : 'enable a disabled user', callers: ['admin'], use: [admin],
      handler: async ({ req, res, params }) => {
        res.json(userJson(await (action === 'disable' ? accounts.disable(params.name, req.caller!.actor) : accounts.enable(params.name, req.caller!.actor))));
      },
    });
  }

  routes.add({
    method: 'post', path: '/api/v1/users/{name}/reset-password', summary: 'set a new password (generated and shown once when none is given); the user\'s sessions end', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ password: z.string().optional() }), optional: true },
    handler: async ({ req, res, params, body }) => {
      const { user, ...once } = await accounts.resetPassword(params.name, req.caller!.actor, body.password);
      res.json({ ...userJson(user), ...once });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/users/{name}/reset-totp', summary: 'a new TOTP secret, its URI shown once; the user\'s sessions end', callers: ['admin'], use: [admin],
    handler: async ({ req, res, params }) => {
      const { user, ...once } = await accounts.resetTotp(params.name, req.caller!.actor);
      res.json({ ...userJson(user), ...once });
    },
  });
}

function retryAfter(res: Response, e: unknown): void {
  if (hasCode(e, 'KAKUIN_E_LOGIN_THROTTLED')) res.set('Retry-After', String((e as { retryAfterSeconds?: number }).retryAfterSeconds ?? 60));
}
