/**
 * The management API (express, served over HTTPS by the composition root). Every route states the
 * callers it admits; today that is admins (named bearer tokens) or anyone for public CA material.
 *
 *   POST /api/v1/manufacturers                      admin   {name} → 201 {id}
 *   GET  /api/v1/manufacturers                      admin
 *   POST /api/v1/devices                            admin   {manufacturerId, serialNumber, identifiers?, model?, hardwareModuleName?} → 201 {id}
 *   GET  /api/v1/devices?serialNumber=&mac=&imei=&hardwareId=&status=&manufacturerId=&limit=   admin
 *   GET  /api/v1/devices/{id}                       admin
 *   POST /api/v1/devices/{id}/certificates          admin   PKCS#10 (PEM, DER, base64; or JSON {csr}) → 201 {certificate, chain, existing}
 *                                                           (the same CSR again: 200, existing: true; a new key while one is live: 409)
 *   GET  /api/v1/certificates/{serialHex}           admin
 *   GET  /api/v1/audit-events?deviceId=&type=&since=&limit=   admin
 *   GET  /api/v1/ca/chain[?issuer=<id>]             anyone  PEM, issuing CA first, root last (default: the device CA that issues now)
 *   GET  /healthz                                   anyone
 *   GET  /readyz                                    anyone  503 while revocation status is stale (gateway fails closed)
 *   GET  /metrics                                   admin   Prometheus text format: what this process serves (cli/metrics.ts)
 * and the revocation routes in revocation-routes.ts (admin), and whatever `extraRoutes` mounts (the
 * legacy path's admin routes, gateway-auth/legacy/admin-routes.ts).
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { DeviceQuery, DeviceStatus, Registry } from '../../registry/port.js';
import { hasCode, KakuinError } from '../../errors/index.js';
import { registerDevice } from '../devices.js';
import type { DeviceCertificateIssuer } from '../issuance.js';
import type { CrlPublisher } from '../crl/crl-publisher.js';
import type { RevocationService } from '../revocation.js';
import { normalizeSerialHex } from '../serial.js';
import { mountRevocationRoutes } from './revocation-routes.js';
import type { AdminAuthenticator, Caller } from './admin-tokens.js';
import { errorHandler, routeNotFound, type Logger } from './http-errors.js';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus, type MetricFamily } from './prometheus.js';
import {
  auditEventJson, certificateJson, certificateSummaryJson, deviceJson, manufacturerJson, pemChain,
} from './representations.js';

export interface ManagementApiDeps {
  registry: Registry;
  issuer: DeviceCertificateIssuer;
  revocation: RevocationService;
  crls?: CrlPublisher;
  authenticator: AdminAuthenticator;
  logger: Logger;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: number;
  /** Readiness of the device-facing side (the gateway's revocation-status freshness), for GET /readyz. */
  readiness?: () => { ready: boolean };
  /** The metric families of this process, for GET /metrics (admin). */
  metrics?: () => Promise<MetricFamily[]>;
  /** Routes of other components (the legacy path's admin routes), mounted before the 404 handler with the API's helpers. */
  extraRoutes?: (app: express.Express, helpers: ApiHelpers) => void;
}

/** What mounted routes share with the API: authentication, JSON parsing, the JSON-object body. */
export interface ApiHelpers {
  admin: RequestHandler;
  /** Admits any of the given caller kinds (stations are scoped by the route itself). */
  admit(...kinds: Caller['kind'][]): RequestHandler;
  json: RequestHandler;
  body(req: Request): Record<string, unknown>;
  authenticator: AdminAuthenticator;
}

const DEVICE_STATUSES: readonly DeviceStatus[] = ['registered', 'active', 'suspended', 'revoked', 'retired'];
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
  const admin = admit(deps.authenticator, 'admin');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // For load balancers and orchestrators: 503 while the gateway cannot confirm revocation status.
  app.get('/readyz', (_req, res) => {
    const r = deps.readiness?.() ?? { ready: true };
    res.status(r.ready ? 200 : 503).json(r);
  });

  // Admin only (it tells how busy each part is and what is refused); Prometheus scrapes with a bearer token.
  app.get('/metrics', admin, async (_req, res) => {
    res.type(PROMETHEUS_CONTENT_TYPE).send(renderPrometheus(deps.metrics ? await deps.metrics() : []));
  });

  // ?issuer=<id>: the chain of a certificate issued by that CA (an earlier device CA after a
  // rollover; bulk batch results name each certificate's issuerId). CA certificates are public.
  app.get('/api/v1/ca/chain', async (req, res) => {
    const requested = req.query.issuer;
    if (requested === undefined) {
      // Which CA this is: a batch result names its certificate's issuerId, and a client that knows
      // the id of this chain needs no further request for certificates of the CA issuing now.
      res.type(PEM_CHAIN).set('Kakuin-Issuer-Id', issuer.issuerId).send(pemChain(issuer.chain));
      return;
    }
    if (typeof requested !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(requested)) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'issuer must be an issuer id (lowercase letters, digits, "-")');
    }
    try {
      res.type(PEM_CHAIN).send(pemChain(await issuer.chainOf(requested)));
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_ISSUER_NOT_FOUND')) throw new KakuinError('KAKUIN_E_ISSUER_UNKNOWN', `no CA with issuer id ${JSON.stringify(requested)}`);
      throw e;
    }
  });

  app.post('/api/v1/manufacturers', admin, json, async (req, res) => {
    const name = body(req).name;
    if (typeof name !== 'string' || name.trim().length === 0 || name.length > 128) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'name must be a non-empty string of at most 128 characters');
    }
    const m = await registry.createManufacturer({ name: name.trim() });
    await registry.appendAuditEvent({ type: 'manufacturer.created', actor: req.caller!.actor, details: { manufacturerId: m.id, name: m.name } });
    res.status(201).json({ id: m.id });
  });

  app.get('/api/v1/manufacturers', admin, async (_req, res) => {
    res.json({ manufacturers: (await registry.listManufacturers()).map(manufacturerJson) });
  });

  app.post('/api/v1/devices', admin, json, async (req, res) => {
    const b = body(req);
    const device = await registerDevice(registry, {
      manufacturerId: b.manufacturerId, serialNumber: b.serialNumber, identifiers: b.identifiers,
      model: b.model, hardwareModuleName: b.hardwareModuleName,
    }, req.caller!.actor);
    res.status(201).json({ id: device.id });
  });

  app.get('/api/v1/devices', admin, async (req, res) => {
    res.json({ devices: (await registry.findDevices(deviceQuery(req))).map(deviceJson) });
  });

  app.get('/api/v1/devices/:id', admin, async (req, res) => {
    const device = await registry.getDevice(String(req.params.id));
    const certificates = await registry.listCertificatesOfDevice(device.id);
    res.json({ ...deviceJson(device), certificates: certificates.map(certificateSummaryJson) });
  });

  app.post('/api/v1/devices/:id/certificates', admin, json, csrBody, async (req, res) => {
    const wantsPem = negotiateCertificateFormat(req);
    const issued = await issuer.issueSuperseding({ deviceId: String(req.params.id), csr: csrFromRequest(req), actor: req.caller!.actor }, deps.revocation);
    // The same CSR again is a retry: the certificate issued before, 200 (issue 13: one live identity per device).
    res.status(issued.existing ? 200 : 201).location(`/api/v1/certificates/${issued.record.serialHex}`);
    if (wantsPem) {
      res.type(PEM_CHAIN).send(pemChain([issued.der, ...issued.chain]));
    } else {
      res.json({
        serialHex: issued.record.serialHex, certificate: pemChain([issued.der]), chain: pemChain(issued.chain), existing: issued.existing,
        ...(issued.supersedes.length > 0 && { supersedes: issued.supersedes.map((c) => c.serialHex) }),
      });
    }
  });

  app.get('/api/v1/certificates/:serialHex', admin, async (req, res) => {
    const serialHex = normalizeSerialHex(String(req.params.serialHex));
    if (!serialHex) throw new KakuinError('KAKUIN_E_VALIDATION', 'serialHex must be a hexadecimal serial number');
    res.json(certificateJson(await registry.getCertificate(serialHex)));
  });

  app.get('/api/v1/audit-events', admin, async (req, res) => {
    const q = req.query;
    const since = typeof q.since === 'string' ? new Date(q.since) : undefined;
    if (since && Number.isNaN(since.getTime())) throw new KakuinError('KAKUIN_E_VALIDATION', 'since must be an ISO 8601 time');
    const events = await registry.listAuditEvents({
      deviceId: stringParam(q.deviceId), type: stringParam(q.type), since, limit: limitParam(q.limit),
    });
    res.json({ events: events.map(auditEventJson) });
  });

  mountRevocationRoutes(app, { registry, revocation: deps.revocation, crls: deps.crls, admin, json, body });
  deps.extraRoutes?.(app, { admin, admit: (...kinds) => admit(deps.authenticator, ...kinds), json, body, authenticator: deps.authenticator });

  app.use(routeNotFound);
  app.use(errorHandler(logger));
  return app;
}

/** Authentication and role check; it runs before any body is read. */
function admit(authenticator: AdminAuthenticator, ...roles: Caller['kind'][]): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    let caller;
    try {
      caller = await authenticator.authenticate(req.get('authorization'));
    } catch (e) {
      // An expired station key is a 401 too (RFC 6750 §3: with the challenge).
      if (hasCode(e, 'KAKUIN_E_STATION_KEY_EXPIRED')) res.set('WWW-Authenticate', 'Bearer realm="kakuin", error="invalid_token"');
      throw e;
    }
    if (!caller) {
      res.set('WWW-Authenticate', 'Bearer realm="kakuin"');
      throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'a valid bearer token is required');
    }
    if (!roles.includes(caller.kind)) throw new KakuinError('KAKUIN_E_FORBIDDEN', `this route admits ${roles.join(' or ')} callers only`);
    req.caller = caller;
    next();
  };
}

function body(req: Request): Record<string, unknown> {
  if (!req.is('application/json')) {
    throw new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'this route takes application/json');
  }
  const b: unknown = req.body;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new KakuinError('KAKUIN_E_VALIDATION', 'the body must be a JSON object');
  return b as Record<string, unknown>;
}

function stringParam(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > 256) throw new KakuinError('KAKUIN_E_VALIDATION', 'query parameters must be single strings');
  return v;
}

function limitParam(v: unknown): number | undefined {
  const s = stringParam(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new KakuinError('KAKUIN_E_VALIDATION', 'limit must be an integer from 1 to 1000');
  return n;
}

function deviceQuery(req: Request): DeviceQuery {
  const q = req.query;
  const status = stringParam(q.status);
  if (status !== undefined && !DEVICE_STATUSES.includes(status as DeviceStatus)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `status must be one of ${DEVICE_STATUSES.join(', ')}`);
  }
  return {
    manufacturerId: stringParam(q.manufacturerId),
    serialNumber: stringParam(q.serialNumber),
    mac: stringParam(q.mac),
    imei: stringParam(q.imei),
    hardwareId: stringParam(q.hardwareId),
    status: status as DeviceStatus | undefined,
    limit: limitParam(q.limit),
  };
}

function negotiateCertificateFormat(req: Request): boolean {
  const choice = req.accepts(['application/json', PEM_CHAIN]);
  if (!choice) throw new KakuinError('KAKUIN_E_NOT_ACCEPTABLE', `this route answers application/json or ${PEM_CHAIN}`);
  return choice === PEM_CHAIN;
}

/** A CSR from JSON `{csr}` or a raw body: PEM text, binary DER, or base64 DER (as EST sends it). */
function csrFromRequest(req: Request): Buffer | string {
  if (req.is('application/json')) {
    const csr = body(req).csr;
    if (typeof csr !== 'string' || csr.length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'csr must be a PEM string');
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
