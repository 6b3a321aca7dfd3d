/**
 * Who may call which route: ONE table, keyed by `METHOD path` as routes.add declares it. ApiRoutes
 * checks it on every request after the route's authentication (`use`) and before any body is read,
 * so a role that is not listed gets 403 KAKUIN_E_FORBIDDEN whatever the route's own code does.
 *
 * Why one table and not a list on each routes.add call: the whole policy reads (and is reviewed,
 * and diffed) in one place, the OpenAPI document shows it per route (`x-kakuin-roles`), and routes
 * declared in other folders (enrollment/, gateway-auth/) need no knowledge of the roles. A route missing here
 * admits only `admin` (fail closed) and fails test/integration/roles.test.ts, which walks every
 * declared route × every role.
 *
 * Principals: a token or a user (a person logged in with a session cookie) has one of the roles
 * `admin`, `operator`, `auditor`, `manufacturer` (registry/port.ts TOKEN_ROLES), and either is
 * held against this same table; a factory station's API key or certificate is `station`. Two
 * markers are not principals: `anyone` (no authentication at all) and `device` (the device's own
 * credential: its certificate or legacy secret; no bearer token is looked at).
 *
 * A `manufacturer` token is bound to one manufacturer; the routes it may call scope it themselves
 * (management-api/scope.ts): lists hold only its manufacturer's records, another manufacturer's id given
 * in a path, query or body is 403 KAKUIN_E_FORBIDDEN, and another manufacturer's device or station
 * addressed by its own id is 404, as if it did not exist.
 */

export const PRINCIPALS = ['admin', 'operator', 'auditor', 'manufacturer', 'station'] as const;
export type Principal = (typeof PRINCIPALS)[number];
export type AccessRule = readonly (Principal | 'anyone' | 'device')[];

const A = 'admin', O = 'operator', U = 'auditor', M = 'manufacturer', S = 'station';

export const ROUTE_ACCESS: Readonly<Record<string, AccessRule>> = {
  // ---- public, and the device's own credential ----
  'GET /healthz': ['anyone'],
  'GET /readyz': ['anyone'],
  'GET /api/v1/ca/chain': ['anyone'],
  'GET /.well-known/est/cacerts': ['anyone'],
  'GET /.well-known/est/{label}/cacerts': ['anyone'],
  'GET /.well-known/est/csrattrs': ['anyone'],
  'GET /.well-known/est/{label}/csrattrs': ['anyone'],
  'POST /.well-known/est/simplereenroll': ['device'],
  // CMP: the PKIMessage's own protection (MAC secret, station or device certificate) authenticates it.
  'POST /.well-known/cmp': ['anyone'],
  'POST /.well-known/cmp/p/{profile}': ['anyone'],
  // SCEP: a PKCSReq carries a one-time challenge, a RenewalReq the device's signature (enrollment/scep/).
  'GET /scep': ['anyone'],
  'POST /scep': ['anyone'],
  'POST /legacy/v1/token': ['device'],
  'POST /legacy/v1/telemetry': ['device'],
  'POST /legacy/v1/certificate': ['device'],
  // ACME (enrollment/acme): the JWS is the credential (an account key bound by EAB), no bearer token.
  'GET /acme/directory': ['anyone'],
  'GET /acme/new-nonce': ['anyone'],
  'POST /acme/new-account': ['anyone'],
  'POST /acme/acct/{id}': ['anyone'],
  'POST /acme/key-change': ['anyone'],
  'POST /acme/new-order': ['anyone'],
  'POST /acme/order/{id}': ['anyone'],
  'POST /acme/order/{id}/finalize': ['anyone'],
  'POST /acme/authz/{id}': ['anyone'],
  'POST /acme/chall/{authzId}/{id}': ['anyone'],
  'POST /acme/cert/{serialHex}': ['anyone'],
  'POST /acme/revoke-cert': ['anyone'],
  'GET /acme/renewal-info/{certId}': ['anyone'],

  // ---- the process and the API itself ----
  'GET /metrics': [A, U],
  'GET /api/v1/openapi.json': [A, U],

  // ---- tokens ----
  'GET /api/v1/tokens': [A, U],
  'POST /api/v1/tokens': [A],
  'POST /api/v1/tokens/{name}/revoke': [A],

  // ---- people: login sessions and users (management-api/user-routes.ts) ----
  // Logging in needs no credential but the password itself; who-am-I and logout answer any person
  // or token (a token has no session to end).
  'POST /api/v1/session': ['anyone'],
  'GET /api/v1/session': [A, O, U, M],
  'DELETE /api/v1/session': [A, O, U, M],
  'POST /api/v1/session/password': [A, O, U, M],
  'GET /api/v1/users': [A, U],
  'POST /api/v1/users': [A],
  'POST /api/v1/users/{name}/disable': [A],
  'POST /api/v1/users/{name}/enable': [A],
  'POST /api/v1/users/{name}/reset-password': [A],
  'POST /api/v1/users/{name}/reset-totp': [A],

  // ---- manufacturers, devices, certificates ----
  'POST /api/v1/manufacturers': [A],
  'GET /api/v1/manufacturers': [A, U],
  'POST /api/v1/devices': [A, M],
  'GET /api/v1/devices': [A, O, U, M],
  'GET /api/v1/devices/{id}': [A, O, U, M],
  'GET /api/v1/devices/{id}/activity/export': [A, U],
  'DELETE /api/v1/devices/{id}/activity': [A],
  'POST /api/v1/devices/{id}/certificates': [A],
  'GET /api/v1/certificates/{serialHex}': [A, O, U],
  'GET /api/v1/audit-events': [A, U],
  'GET /api/v1/audit-events/export': [A, U],

  // ---- revocation ----
  'POST /api/v1/certificates/{serialHex}/revoke': [A, O],
  'POST /api/v1/devices/{id}/revoke': [A, O],
  'POST /api/v1/devices/{id}/suspend': [A, O],
  'POST /api/v1/devices/{id}/resume': [A, O],
  'POST /api/v1/devices/{id}/retire': [A],
  'POST /api/v1/crls/{issuerId}': [A],

  // ---- detections (operations/detections): operators act on detections, admins write templates ----
  'GET /api/v1/detection-templates': [A, O, U],
  'POST /api/v1/detection-templates': [A],
  'GET /api/v1/detection-templates/{id}': [A, O, U],
  'PUT /api/v1/detection-templates/{id}': [A],
  'GET /api/v1/detections': [A, O, U],
  'GET /api/v1/detections/{id}': [A, O, U],
  'POST /api/v1/detections/{id}/acknowledge': [A, O],
  'POST /api/v1/detections/{id}/resolve': [A, O],
  // ---- cohorts and bulk jobs: an operator may request one (over approvals.bulkThreshold devices it waits for an admin) ----
  'POST /api/v1/devices/bulk': [A, O],
  'GET /api/v1/jobs': [A, O, U],
  'GET /api/v1/jobs/{id}': [A, O, U],

  // ---- two-person approval: anyone who may request sees them; an admin other than the requester decides ----
  'GET /api/v1/approvals': [A, O, U],
  'GET /api/v1/approvals/{id}': [A, O, U],
  'POST /api/v1/approvals/{id}/approve': [A],
  'POST /api/v1/approvals/{id}/reject': [A],
  'POST /api/v1/ca/rollover': [A],

  // ---- factory stations, profiles, imports, enrollment ----
  'POST /api/v1/manufacturers/{id}/stations': [A, M],
  'GET /api/v1/manufacturers/{id}/stations': [A, U, M],
  'POST /api/v1/stations/{id}/rotate-key': [A, M],
  'POST /api/v1/stations/{id}/disable': [A, M],
  'POST /api/v1/stations/{id}/enable': [A, M],
  'POST /api/v1/stations/{id}/certificate': [A],
  'GET /api/v1/stations/{id}/certificates': [A, U, M],
  'POST /api/v1/manufacturers/{id}/profiles': [A],
  'GET /api/v1/manufacturers/{id}/profiles': [A, U],
  'POST /api/v1/stations/{id}/quota': [A],
  'POST /api/v1/stations/{id}/revoke-issued': [A],
  'POST /api/v1/devices/import': [A, M, S],
  'GET /api/v1/station/devices': [S],
  'POST /api/v1/devices/{id}/allow-reenrollment': [A],
  'POST /api/v1/devices/{id}/cmp-secret': [A, M, S],
  'POST /api/v1/devices/{id}/scep-challenge': [A, S],
  'POST /api/v1/enroll': [A, S],
  'POST /api/v1/enroll/batch': [A, S],
  'POST /.well-known/est/simpleenroll': [S],
  'POST /.well-known/est/{label}/simpleenroll': [S],
  'POST /.well-known/est/serverkeygen': [S],
  'POST /.well-known/est/{label}/serverkeygen': [S],
  'GET /api/v1/acme/eab': [A, U],
  'POST /api/v1/acme/eab': [A],
  'POST /api/v1/acme/eab/{kid}/revoke': [A],

  // ---- the legacy path ----
  'POST /api/v1/legacy/common-auth-ids': [A, S],
  'POST /api/v1/devices/{id}/legacy-credentials': [A, S],
  'DELETE /api/v1/devices/{id}/legacy-credentials': [A, S],
  'POST /api/v1/legacy/import': [A],
};

/** A route missing from the table admits admins only (and fails the roles test). */
const UNLISTED: AccessRule = [A];

export function routeKey(method: string, path: string): string {
  return `${method.toUpperCase()} ${path}`;
}

export function accessRule(method: string, path: string): AccessRule {
  return ROUTE_ACCESS[routeKey(method, path)] ?? UNLISTED;
}

/** The principal of an authenticated caller (`req.caller`): a station, or a token's role. */
export function principalOf(caller: { kind: string; role?: string }): Principal {
  return (caller.kind === 'station' ? 'station' : caller.role ?? 'admin') as Principal;
}

/** Whether the rule admits the principal; `anyone` routes admit every caller. */
export function admits(rule: AccessRule, principal: Principal): boolean {
  return rule.includes('anyone') || rule.includes(principal);
}
