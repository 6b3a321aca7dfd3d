/**
 * The management API (express, served over HTTPS by the composition root). Every route states the
 * callers it admits: admins (named bearer tokens, or people's login sessions: user-routes.ts), each
 * with a role the table in api-schema/access.ts holds against the route, or anyone for public CA material.
 * Every route is declared through ApiRoutes (api-schema/routes.ts) with the schemas of its query
 * and body: what a route does not declare it refuses (KAKUIN_E_UNKNOWN_FIELD), and the same
 * declarations are the OpenAPI document. Lists take `?limit=&after=` and answer `{<items>, next?}`.
 *
 *   POST /api/v1/manufacturers                      admin   {name} → 201 {id}
 *   GET  /api/v1/manufacturers?limit=&after=        admin   → {manufacturers, next?}
 *   POST /api/v1/devices                            admin   {manufacturerId, serialNumber, identifiers?, model?, hardwareModuleName?} → 201 {id}
 *   GET  /api/v1/devices?serialNumber=&mac=&imei=&hardwareId=&status=&manufacturerId=&model=&limit=&after=   admin → {devices, next?}
 *        &lastSeenBefore=&lastSeenAfter=&firmwareVersion=  (activity filters: a page may hold fewer than `limit` and still have `next`)
 *   GET  /api/v1/devices/{id}                       admin   the device, its certificates, and `activity`
 *   GET  /api/v1/devices/{id}/activity/export       admin   everything recorded about the device (audited)
 *   DELETE /api/v1/devices/{id}/activity            admin   erases it (audited) → {deleted}
 *   POST /api/v1/devices/{id}/certificates          admin   PKCS#10 (PEM, DER, base64; or JSON {csr}) → 201 {certificate, chain, existing}
 *                                                           (the same CSR again: 200, existing: true; a new key while one is live: 409)
 *   GET  /api/v1/certificates/{serialHex}           admin
 *   GET  /api/v1/audit-events?deviceId=&type=&actor=&since=&until=&limit=&after=|afterId=   admin → {events, next?}
 *   GET  /api/v1/audit-events/export                admin, auditor   NDJSON: every event with its chain link, checkpoints with their proofs
 *   GET  /api/v1/ca/chain[?issuer=<id>]             anyone  PEM, issuing CA first, root last (default: the device CA that issues now)
 *   GET  /api/v1/openapi.json                       admin   OpenAPI 3.1, from the declared schemas
 *   GET  /healthz                                   anyone
 *   GET  /readyz                                    anyone  503 while revocation status is stale (gateway fails closed)
 *   GET  /metrics                                   admin   Prometheus text format: what this process serves (cli/metrics.ts)
 * and the token routes (admin-token-routes.ts), the revocation routes (revocation-routes.ts), and
 * whatever `extraRoutes` declares (enrollment/routes.ts, gateway-auth/legacy/admin-routes.ts).
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { ActivityFilter, ActivityStore } from '../registry/activity.js';
import type { Device, DeviceQuery, DeviceStatus, Registry } from '../registry/port.js';
import { ApiRoutes } from '../api-schema/routes.js';
import { openApiDocument } from '../api-schema/openapi.js';
import { DEFAULT_PAGE, MAX_PAGE, pageJson, pageQuery, readPage, type Page } from '../api-schema/paging.js';
import { isoTime, queryText } from '../api-schema/fields.js';
import { mountAdminTokenRoutes } from './admin-token-routes.js';
import { CSRF_HEADER, UserLogins } from './logins.js';
import { mountUserRoutes } from './user-routes.js';
import type { UserAccounts } from './users.js';
import type { UserStore } from '../registry/users.js';
import { hasCode, KakuinError } from '../errors/index.js';
import { registerDevice } from '../ca/devices.js';
import type { DeviceCertificateIssuer } from '../ca/issuance.js';
import type { CrlPublisher } from '../ca/crl/crl-publisher.js';
import type { RevocationService } from '../ca/revocation.js';
import { normalizeSerialHex } from '../ca/serial.js';
import { mountRevocationRoutes } from './revocation-routes.js';
import { auditExportLines } from '../operations/audit/index.js';
import { mountDetectionRoutes } from './detection-routes.js';
import type { DetectionService } from '../operations/detections/service.js';
import { mountApprovalRoutes, requireApproval, type ApprovalGate } from './approvals.js';
import { defineBulkApproval, mountBulkRoutes } from './bulk-routes.js';
import type { JobStore } from '../registry/jobs.js';
import type { BulkJobRunner } from '../operations/bulk/index.js';
import { manufacturerScope, requireOwnDevice, requireOwnManufacturer } from './scope.js';
import type { AdminAuthenticator, Caller } from './admin-tokens.js';
import { errorHandler, routeNotFound, type Logger } from './http-errors.js';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus, type MetricFamily } from './prometheus.js';
import {
  auditEventJson, certificateJson, certificateSummaryJson, deviceJson, manufacturerJson, pemChain,
} from './representations.js';

export interface ManagementApiDeps {
  registry: Registry;
  /**
   * Per-device activity rollups (registry/activity.ts); without it a device carries no `activity`,
   * and the activity routes and filters answer KAKUIN_E_ACTIVITY_OFF.
   */
  activity?: Pick<ActivityStore, 'deviceActivity' | 'devicesMatchingActivity' | 'deleteDeviceActivity'>;
  issuer: DeviceCertificateIssuer;
  revocation: RevocationService;
  /** Detection templates and detections (operations/detections); undefined: their routes answer KAKUIN_E_DETECTIONS_OFF. */
  detections?: DetectionService;
  crls?: CrlPublisher;
  authenticator: AdminAuthenticator;
  logger: Logger;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: number;
  /** Readiness of the device-facing side (the gateway's revocation-status freshness), for GET /readyz. */
  readiness?: () => { ready: boolean };
  /** The metric families of this process, for GET /metrics (admin). */
  metrics?: () => Promise<MetricFamily[]>;
  /** The pepper admin tokens are kept under (HMAC-SHA-256), for POST /api/v1/tokens. */
  pepper: Buffer;
  /**
   * People's logins (logins.ts, users.ts): with it, a session cookie authenticates like a token of
   * the user's role, and the session and user routes are mounted.
   */
  users?: { store: UserStore; accounts: UserAccounts; logins: UserLogins; sessionIdleMs: number };
  /** Routes of other components (the legacy path's admin routes, enrollment), declared before the 404 handler with the API's helpers. */
  extraRoutes?: (routes: ApiRoutes, helpers: ApiHelpers) => void;
  /** Two-person approval (approvals.ts): every gated act is requested through it. */
  approvals: ApprovalGate;
  /** Bulk actions (bulk-routes.ts): the job store and runner, approvals.bulkThreshold, bulk.maxDevices. */
  bulk: { jobs: JobStore; runner: BulkJobRunner; bulkThreshold: number; maxDevices: number };
  /**
   * A device CA rollover as `kakuin ca rollover` does it (composition root); absent where this
   * process cannot create CAs (an offline root): POST /api/v1/ca/rollover then answers KAKUIN_E_ROUTE_NOT_FOUND.
   */
  rollOverDeviceCa?: (actor: string) => Promise<{ issuerId: string; serialHex: string; previousIssuerId: string }>;
}

/** What mounted routes share with the API: authentication (their inputs are declared on the ApiRoutes). */
export interface ApiHelpers {
  admin: RequestHandler;
  /** Admits any of the given caller kinds (stations are scoped by the route itself). */
  admit(...kinds: Caller['kind'][]): RequestHandler;
  authenticator: AdminAuthenticator;
  /** The gate of two-person approval: `requireApproval(helpers.approvals, req, res, {...})` (approvals.ts). */
  approvals: ApprovalGate;
}

const DEVICE_STATUSES = ['registered', 'active', 'suspended', 'revoked', 'retired'] as const satisfies readonly DeviceStatus[];
const PEM_CHAIN = 'application/pem-certificate-chain';

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

export function createManagementApi(deps: ManagementApiDeps): express.Express {
  const { registry, issuer, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  const json = express.json({ limit: deps.maxBodyBytes, strict: true });
  const csrBody = express.raw({ type: ['application/pkcs10', 'application/x-pem-file', 'text/plain'], limit: deps.maxBodyBytes });
  const admin = admit(deps.authenticator, deps.users?.logins, 'admin');
  const routes = new ApiRoutes(app, json);
  const activityOrRefuse = () => {
    if (deps.activity === undefined) throw new KakuinError('KAKUIN_E_ACTIVITY_OFF', 'device activity is not recorded here (activity.enabled, or a registry adapter without an activity store)');
    return deps.activity;
  };

  routes.add({
    method: 'get', path: '/healthz', summary: 'liveness', callers: ['anyone'],
    handler: ({ res }) => res.json({ status: 'ok' }),
  });

  // For load balancers and orchestrators: 503 while the gateway cannot confirm revocation status.
  routes.add({
    method: 'get', path: '/readyz', summary: 'readiness: 503 while the gateway cannot confirm revocation status', callers: ['anyone'],
    handler: ({ res }) => {
      const r = deps.readiness?.() ?? { ready: true };
      res.status(r.ready ? 200 : 503).json(r);
    },
  });

  // Admin only (it tells how busy each part is and what is refused); Prometheus scrapes with a bearer token.
  routes.add({
    method: 'get', path: '/metrics', summary: 'Prometheus text format', callers: ['admin'], use: [admin],
    handler: async ({ res }) => {
      res.type(PROMETHEUS_CONTENT_TYPE).send(renderPrometheus(deps.metrics ? await deps.metrics() : []));
    },
  });

  // Admin only: it maps every route (the callers of each included), which an anonymous scanner need not be told.
  routes.add({
    method: 'get', path: '/api/v1/openapi.json', summary: 'this API as an OpenAPI 3.1 document, rendered from the schemas that validate each request', callers: ['admin'], use: [admin],
    handler: ({ res }) => {
      res.json(openApiDocument({ title: 'kakuin management API', version: 'v1' }, routes.declared()));
    },
  });

  // ?issuer=<id>: the chain of a certificate issued by that CA (an earlier device CA after a
  // rollover; bulk batch results name each certificate's issuerId). CA certificates are public.
  routes.add({
    method: 'get', path: '/api/v1/ca/chain', summary: 'PEM chain, issuing CA first, root last', callers: ['anyone'],
    query: z.strictObject({ issuer: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be an issuer id (lowercase letters, digits, "-")').optional() }),
    handler: async ({ res, query }) => {
      const requested = query.issuer;
      if (requested === undefined) {
        // Which CA this is: a batch result names its certificate's issuerId, and a client that knows
        // the id of this chain needs no further request for certificates of the CA issuing now.
        res.type(PEM_CHAIN).set('Kakuin-Issuer-Id', issuer.issuerId).send(pemChain(issuer.chain));
        return;
      }
      try {
        res.type(PEM_CHAIN).send(pemChain(await issuer.chainOf(requested)));
      } catch (e) {
        if (hasCode(e, 'KAKUIN_E_ISSUER_NOT_FOUND')) throw new KakuinError('KAKUIN_E_ISSUER_UNKNOWN', `no CA with issuer id ${JSON.stringify(requested)}`);
        throw e;
      }
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/manufacturers', summary: 'create a manufacturer', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ name: z.string() }) }, response: { status: 201, description: '{id}' },
    handler: async ({ req, res, body }) => {
      const name = body.name;
      if (name.trim().length === 0 || name.length > 128) {
        throw new KakuinError('KAKUIN_E_VALIDATION', 'name must be a non-empty string of at most 128 characters', { field: 'name' });
      }
      const m = await registry.createManufacturer({ name: name.trim() });
      await registry.appendAuditEvent({ type: 'manufacturer.created', actor: req.caller!.actor, details: { manufacturerId: m.id, name: m.name } });
      res.status(201).json({ id: m.id });
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/manufacturers', summary: 'list manufacturers', callers: ['admin'], use: [admin],
    query: z.strictObject({ ...pageQuery }), response: { status: 200, description: '{manufacturers, next?}' },
    handler: async ({ res, query }) => {
      const page = await readPage((afterKey, limit) => registry.listManufacturers({ afterKey, limit }), (m) => m.id, query);
      res.json(pageJson('manufacturers', page, manufacturerJson));
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/devices', summary: 'pre-register a device (status registered)', callers: ['admin'], use: [admin],
    body: { json: NEW_DEVICE }, response: { status: 201, description: '{id}' },
    handler: async ({ req, res, body }) => {
      requireOwnManufacturer(req.caller, body.manufacturerId);
      const device = await registerDevice(registry, body, req.caller!.actor);
      res.status(201).json({ id: device.id });
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/devices', summary: 'find devices (a theft report gives a serial or IMEI)', callers: ['admin'], use: [admin],
    query: DEVICE_QUERY, response: { status: 200, description: '{devices, next?}' },
    handler: async ({ req, res, query }) => {
      const { after, limit, lastSeenBefore, lastSeenAfter, firmwareVersion, ...named } = query;
      // A manufacturer token lists its own manufacturer's devices only (scope.ts).
      requireOwnManufacturer(req.caller, named.manufacturerId);
      const own = manufacturerScope(req.caller);
      const filters = own === undefined ? named : { ...named, manufacturerId: own };
      if (lastSeenBefore === undefined && lastSeenAfter === undefined && firmwareVersion === undefined) {
        const page = await readPage((afterId, n) => registry.findDevices({ ...filters, afterId, limit: n }), (d) => d.id, { after, limit });
        res.json(pageJson('devices', page, deviceJson));
        return;
      }
      const activity = activityOrRefuse();
      const page = await devicesByActivity(registry, activity, filters, {
        ...(lastSeenBefore !== undefined && { lastSeenBefore: new Date(lastSeenBefore) }),
        ...(lastSeenAfter !== undefined && { lastSeenAfter: new Date(lastSeenAfter) }),
        ...(firmwareVersion !== undefined && { firmwareVersion }),
      }, { after, limit: limit ?? DEFAULT_PAGE });
      res.json(pageJson('devices', page, deviceJson));
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/devices/{id}', summary: 'the device and a summary of its certificates', callers: ['admin'], use: [admin],
    handler: async ({ req, res, params }) => {
      const device = requireOwnDevice(req.caller, await registry.getDevice(params.id));
      const certificates = await registry.listCertificatesOfDevice(device.id);
      const activity = await deps.activity?.deviceActivity(device.id);
      // A device a detection rule suspended says which detection did it (resuming resolves it).
      const suspendedBy = device.status === 'suspended' ? await deps.detections?.suspensionOf(device.id) : undefined;
      res.json({
        ...deviceJson(device), certificates: certificates.map(certificateSummaryJson), ...(deps.activity !== undefined && { activity: activity ?? null }),
        ...(suspendedBy !== undefined && { statusReason: { detectionId: suspendedBy.id, rule: suspendedBy.rule, templateId: suspendedBy.templateId, templateVersion: suspendedBy.templateVersion, summary: suspendedBy.summary } }),
      });
    },
  });

  // Source addresses and last-seen times of people's devices are personal data (GDPR Art. 15 access,
  // Art. 17 erasure): an admin can hand over or erase them, and either leaves an audit event.
  routes.add({
    method: 'get', path: '/api/v1/devices/{id}/activity/export', summary: 'everything recorded about the device\'s activity, as a JSON attachment (audited)', callers: ['admin'], use: [admin],
    response: { status: 200, description: '{deviceId, exportedAt, activity} (activity null when nothing was recorded)' },
    handler: async ({ req, res, params }) => {
      const activity = activityOrRefuse();
      const device = await registry.getDevice(params.id);
      const recorded = await activity.deviceActivity(device.id, { refusalLimit: 1000 });
      await registry.appendAuditEvent({ type: 'device.activity.exported', actor: req.caller!.actor, deviceId: device.id, details: {} });
      res.set('Content-Disposition', `attachment; filename="activity-${device.id}.json"`);
      res.json({ deviceId: device.id, exportedAt: new Date().toISOString(), activity: recorded ?? null });
    },
  });

  routes.add({
    method: 'delete', path: '/api/v1/devices/{id}/activity', summary: 'erase the device\'s recorded activity (audited); the device record stays', callers: ['admin'], use: [admin],
    response: { status: 200, description: '{deleted: rows removed}' },
    handler: async ({ req, res, params }) => {
      const activity = activityOrRefuse();
      const device = await registry.getDevice(params.id);
      const deleted = await activity.deleteDeviceActivity(device.id);
      await registry.appendAuditEvent({ type: 'device.activity.deleted', actor: req.caller!.actor, deviceId: device.id, details: { rows: deleted } });
      res.json({ deleted });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/devices/{id}/certificates', summary: 'issue the device a certificate for a PKCS#10 request', callers: ['admin'], use: [admin],
    body: {
      json: z.strictObject({ csr: z.string() }),
      media: { 'application/pkcs10': { parser: csrBody, description: 'PKCS#10 request: PEM, DER or base64 DER', alsoAs: ['application/x-pem-file', 'text/plain'] } },
    },
    response: { status: 201, description: '{serialHex, certificate, chain, existing, supersedes?} or application/pem-certificate-chain; the same CSR again: 200, existing: true; a new key while one is live: 409' },
    handler: async ({ req, res, body, params }) => {
      const wantsPem = negotiateCertificateFormat(req);
      const issued = await issuer.issueSuperseding({ deviceId: params.id, csr: csrFromRequest(req, body?.csr), actor: req.caller!.actor }, deps.revocation);
      // The same CSR again is a retry: the certificate issued before, 200 (one live identity per device).
      res.status(issued.existing ? 200 : 201).location(`/api/v1/certificates/${issued.record.serialHex}`);
      if (wantsPem) {
        res.type(PEM_CHAIN).send(pemChain([issued.der, ...issued.chain]));
      } else {
        res.json({
          serialHex: issued.record.serialHex, certificate: pemChain([issued.der]), chain: pemChain(issued.chain), existing: issued.existing,
          ...(issued.supersedes.length > 0 && { supersedes: issued.supersedes.map((c) => c.serialHex) }),
        });
      }
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/certificates/{serialHex}', summary: 'one certificate', callers: ['admin'], use: [admin],
    handler: async ({ res, params }) => {
      const serialHex = normalizeSerialHex(params.serialHex);
      if (!serialHex) throw new KakuinError('KAKUIN_E_VALIDATION', 'serialHex must be a hexadecimal serial number');
      res.json(certificateJson(await registry.getCertificate(serialHex)));
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/audit-events', summary: 'the audit trail, oldest first', callers: ['admin'], use: [admin],
    query: AUDIT_QUERY, response: { status: 200, description: '{events, next?}' },
    handler: async ({ res, query }) => {
      const { after, afterId, limit, since, until, ...filters } = query;
      if (after !== undefined && afterId !== undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'give after or afterId (its older name), not both', { field: 'afterId' });
      const page = await readPage((a, n) => registry.listAuditEvents({
        ...filters, since: since === undefined ? undefined : new Date(since), until: until === undefined ? undefined : new Date(until),
        afterId: a === undefined ? undefined : Number(a), limit: n,
      }), (e) => String(e.id), { after: after ?? afterId, limit });
      res.json(pageJson('events', page, auditEventJson));
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/audit-events/export', summary: 'the whole audit trail as NDJSON with its hash chains and signed checkpoints, for a third party (docs/audit-trail.md)',
    callers: ['admin'], use: [admin],
    response: { status: 200, description: 'application/x-ndjson: a header line, then {record: "event", event, hash} per event, oldest first' },
    handler: async ({ res }) => {
      res.set('Content-Type', 'application/x-ndjson; charset=utf-8');
      res.set('Content-Disposition', 'attachment; filename="audit-trail.ndjson"');
      // Streamed page by page: the trail may hold millions of events.
      for await (const chunk of auditExportLines(registry)) {
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      }
      res.end();
    },
  });

  // A device CA rollover through the API needs a second admin; on the CA host, `kakuin ca rollover` needs none.
  const rollOver = deps.rollOverDeviceCa;
  deps.approvals.define({
    kind: 'ca-rollover', deciders: ['admin'],
    run: async (_request, approval) => {
      if (rollOver === undefined) throw new KakuinError('KAKUIN_E_ROUTE_NOT_FOUND', 'this process cannot create CAs (offline root)');
      return { kept: await rollOver(approval.requestedBy) };
    },
  });
  routes.add({
    method: 'post', path: '/api/v1/ca/rollover', summary: 'a new device issuing CA takes over issuance from the next start (needs a second admin\'s approval)', callers: ['admin'], use: [admin],
    response: { status: 202, description: '{approval}: pending until another admin approves' },
    handler: async ({ req, res }) => {
      if (rollOver === undefined) throw new KakuinError('KAKUIN_E_ROUTE_NOT_FOUND', 'this process cannot create CAs (offline root): roll over on the CA host');
      await requireApproval(deps.approvals, req, res, { kind: 'ca-rollover', request: { current: issuer.issuerId }, summary: `roll the device issuing CA over (now ${issuer.issuerId})` });
    },
  });

  mountApprovalRoutes(routes, { gate: deps.approvals, admin });
  mountBulkRoutes(routes, {
    registry, ...(deps.activity !== undefined && { activity: deps.activity }), jobs: deps.bulk.jobs, runner: deps.bulk.runner, gate: deps.approvals, admin,
    deviceQuery: DEVICE_QUERY, bulkThreshold: deps.bulk.bulkThreshold, maxDevices: deps.bulk.maxDevices,
  });
  defineBulkApproval(deps.approvals, deps.bulk.runner);
  mountAdminTokenRoutes(routes, { registry, pepper: deps.pepper, admin, approvals: deps.approvals });
  if (deps.users !== undefined) mountUserRoutes(routes, { ...deps.users, admin, approvals: deps.approvals });
  mountRevocationRoutes(routes, { registry, revocation: deps.revocation, crls: deps.crls, admin, ...(deps.detections !== undefined && { detections: deps.detections }) });
  mountDetectionRoutes(routes, { admin, ...(deps.detections !== undefined && { detections: deps.detections }) });
  deps.extraRoutes?.(routes, { admin, admit: (...kinds) => admit(deps.authenticator, deps.users?.logins, ...kinds), authenticator: deps.authenticator, approvals: deps.approvals });

  app.use(routeNotFound);
  app.use(errorHandler(logger));
  return app;
}

const IDENTIFIERS = z.strictObject({ mac: z.string().optional(), imei: z.string().optional(), hardwareId: z.string().optional() });

const NEW_DEVICE = z.strictObject({
  manufacturerId: z.string(),
  serialNumber: z.string(),
  identifiers: IDENTIFIERS.optional(),
  model: z.string().optional(),
  hardwareModuleName: z.strictObject({ hwType: z.string(), hwSerialHex: z.string() }).optional(),
});

const DEVICE_QUERY = z.strictObject({
  serialNumber: queryText.optional(),
  mac: queryText.optional(),
  imei: queryText.optional(),
  hardwareId: queryText.optional(),
  status: z.enum(DEVICE_STATUSES).optional(),
  manufacturerId: queryText.optional(),
  model: queryText.optional(),
  lastSeenBefore: isoTime.optional().describe('last seen before this time (exclusive); a device never seen does not match'),
  lastSeenAfter: isoTime.optional().describe('last seen at or after this time'),
  firmwareVersion: queryText.optional().describe('the firmware version the device reported last, exactly'),
  ...pageQuery,
});

/** At most this many devices are read for one page of an activity-filtered list; then `next` says where to go on. */
const ACTIVITY_SCAN_LIMIT = 10_000;

/**
 * One page of the devices that match the registry filters (in the registry's listing order) and the
 * activity filter. The registry is read in pages of MAX_PAGE and each page is checked against the
 * activity store in one query. A page stops after ACTIVITY_SCAN_LIMIT devices read, so a rare
 * match costs bounded work per request: such a page may hold fewer than `limit` devices and still
 * carry `next` (the last device read), and following `next` still sees every match once.
 */
async function devicesByActivity(
  registry: Registry, activity: Pick<ActivityStore, 'devicesMatchingActivity'>, filters: Omit<DeviceQuery, 'afterId' | 'limit'>,
  activityFilter: ActivityFilter, page: { after?: string; limit: number },
): Promise<Page<Device>> {
  const items: Device[] = [];
  let cursor = page.after;
  let read = 0;
  for (;;) {
    const rows = await registry.findDevices({ ...filters, afterId: cursor, limit: MAX_PAGE });
    if (rows.length === 0) return { items };
    const matching = new Set(await activity.devicesMatchingActivity(rows.map((d) => d.id), activityFilter));
    for (const d of rows) {
      if (!matching.has(d.id)) continue;
      if (items.length === page.limit) return { items, next: items[items.length - 1].id };
      items.push(d);
    }
    cursor = rows[rows.length - 1].id;
    read += rows.length;
    if (rows.length < MAX_PAGE) return { items };
    if (read >= ACTIVITY_SCAN_LIMIT) return { items, next: cursor };
  }
}

const eventCursor = z.string().regex(/^[0-9]{1,16}$/, 'must be the id of an audit event (a `next` of this list)');

const AUDIT_QUERY = z.strictObject({
  deviceId: queryText.optional(),
  type: queryText.optional(),
  actor: queryText.optional().describe('who acted, exactly: token:<name>, user:<name>, station:<id>, cli, system, anonymous (a failed login)'),
  since: isoTime.optional().describe('inclusive'),
  until: isoTime.optional().describe('exclusive'),
  limit: pageQuery.limit,
  after: eventCursor.optional().describe('the `next` of the previous page'),
  afterId: eventCursor.optional().describe('the older name of `after`'),
});

/**
 * Authentication and role check; it runs before any body is read. A bearer token decides when the
 * request carries one; otherwise a session cookie (logins.ts) yields a caller of the user's role,
 * held against the same role table (api-schema/access.ts) as a token of that role.
 */
function admit(authenticator: AdminAuthenticator, logins: UserLogins | undefined, ...roles: Caller['kind'][]): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    let caller;
    try {
      const authorization = req.get('authorization');
      caller = authorization === undefined && logins !== undefined
        ? await logins.authenticate(req.get('cookie'), req.get(CSRF_HEADER), req.method)
        : await authenticator.authenticate(authorization);
    } catch (e) {
      // An expired station key is a 401 too (RFC 6750 §3: with the challenge).
      if (hasCode(e, 'KAKUIN_E_STATION_KEY_EXPIRED')) res.set('WWW-Authenticate', 'Bearer realm="kakuin", error="invalid_token"');
      // An ended session's cookie is worth nothing: the browser may as well drop it.
      if (hasCode(e, 'KAKUIN_E_SESSION_EXPIRED')) res.set('Set-Cookie', UserLogins.clearedCookie());
      throw e;
    }
    if (!caller) {
      res.set('WWW-Authenticate', 'Bearer realm="kakuin"');
      throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'a valid bearer token (or a login session) is required');
    }
    if (!roles.includes(caller.kind)) throw new KakuinError('KAKUIN_E_FORBIDDEN', `this route admits ${roles.join(' or ')} callers only`);
    req.caller = caller;
    next();
  };
}

function negotiateCertificateFormat(req: Request): boolean {
  const choice = req.accepts(['application/json', PEM_CHAIN]);
  if (!choice) throw new KakuinError('KAKUIN_E_NOT_ACCEPTABLE', `this route answers application/json or ${PEM_CHAIN}`);
  return choice === PEM_CHAIN;
}

/** A CSR from JSON `{csr}` or a raw body: PEM text, binary DER, or base64 DER (as EST sends it). */
function csrFromRequest(req: Request, csr: string | undefined): Buffer | string {
  if (req.is('application/json')) {
    if (csr === undefined || csr.length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'csr must be a PEM string', { field: 'csr' });
    return csr.includes('-----BEGIN') ? csr : base64Der(csr);
  }
  if (!Buffer.isBuffer(req.body) || req.body.length === 0) {
    throw new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'send the CSR as application/pkcs10 (PEM, DER or base64) or JSON {csr}');
  }
  const raw: Buffer = req.body;
  if (raw[0] === 0x30) return raw;
  const text = raw.toString('latin1');
  return text.includes('-----BEGIN') ? text : base64Der(text);
}

function base64Der(text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', 'the CSR is neither PEM, DER nor base64');
  return Buffer.from(compact, 'base64');
}
