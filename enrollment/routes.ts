/**
 * Production-line enrollment on the management API. Each route states the callers it admits;
 * a station is always scoped to its own manufacturer (it never names one), an admin names one.
 * A station authenticates by its API key (Bearer) or, without an Authorization header, by its
 * station certificate on the TLS connection (station-certificate-auth.ts).
 *
 *   POST /api/v1/manufacturers/{id}/stations {name}      admin    → 201 {id, apiKey} (the key shown once)
 *   GET  /api/v1/manufacturers/{id}/stations?limit=&after=   admin  → {stations, next?}
 *   POST /api/v1/stations/{id}/rotate-key                admin    → {id, apiKey} (the old key stops working at once)
 *   POST /api/v1/stations/{id}/disable                   admin
 *   POST /api/v1/stations/{id}/enable                    admin   (a disabled station works again, with its current key)
 *   POST /api/v1/stations/{id}/certificate {csr, overlapHours?}        admin  → 201 {serialHex, certificate, chain, supersedes}
 *        (the station CA issues; the station's earlier certificates are revoked as superseded, at once or after overlapHours)
 *   GET  /api/v1/stations/{id}/certificates?limit=&after=    admin  → {certificates, next?}
 *   POST /api/v1/manufacturers/{id}/profiles {profiles: [..]}         admin  the device profiles it may enroll with
 *   GET  /api/v1/manufacturers/{id}/profiles             admin
 *   POST /api/v1/stations/{id}/quota {maxIssuances: n | null}          admin  → station (with issued count)
 *   POST /api/v1/stations/{id}/revoke-issued {since, until, reason?}   admin  → 202 {approval}; approved by another admin: {revoked, alreadyRevoked}
 *   POST /api/v1/devices/import[?manufacturerId=]        station, admin   JSON array or text/csv → {registered, errors}
 *   GET  /api/v1/station/devices?serialNumber=&limit=&after=  station  its own manufacturer's devices → {devices, next?}
 *   POST /api/v1/devices/{id}/allow-reenrollment {until} admin
 *   POST /api/v1/enroll {serialNumber, csr | keygen: {password}, manufacturerId?, profile?}   station, admin → 201 {certificate, chain, pkcs12?, ...} (200 when existing)
 *   POST /api/v1/enroll/batch[?manufacturerId=]          station, admin   NDJSON in (items may name a profile), NDJSON out
 * and EST under /.well-known/est/ (est.ts).
 */
import express, { type RequestHandler } from 'express';
import { z } from 'zod';
import type { ApiRoutes } from '../api-schema/routes.js';
import { isoTime, queryText, revocationReason } from '../api-schema/fields.js';
import { pageJson, pageQuery, readPage } from '../api-schema/paging.js';
import type { Registry, Station } from '../registry/port.js';
import { KakuinError } from '../errors/index.js';
import { newStationApiKey, tokenHmac, type Caller } from '../management-api/admin-tokens.js';
import type { ApiHelpers } from '../management-api/management-api.js';
import { certificateSummaryJson, deviceJson, pemChain } from '../management-api/representations.js';
import { manufacturerScope, requireOwnManufacturer, requireOwnStation } from '../management-api/scope.js';
import { importDevices, parseImportCsv } from './device-import.js';
import { DEFAULT_MAX_BATCH_BYTES, runBatch } from './batch.js';
import type { EnrollmentService } from './enrollment-service.js';
import type { RevocationService } from '../ca/revocation.js';
import { revokeIssuedByStation } from './station-incident.js';
import { requireApproval } from '../management-api/approvals.js';
import { revocationReason as revocationReasonOf } from '../ca/revocation.js';
import { mountEst } from './est.js';
import { mountScep } from './scep/scep-routes.js';
import type { ScepService } from './scep/scep-service.js';
import type { ScepStore } from '../registry/scep.js';
import { StationCertificateAuthenticator, stationCertificateOr } from './station-certificate-auth.js';
import type { StationCertificateIssuer } from '../ca/station-certificates.js';
import { PROFILE_NAME } from '../ca/profiles.js';
import type { CmpStore } from '../registry/cmp.js';
import { parseCertificate } from '../pkix/index.js';
import { CmpProtection, type CmpProtectionKey } from './cmp/cmp-protection.js';
import { CmpServer } from './cmp/cmp-server.js';
import { mountCmp } from './cmp/routes.js';

export interface EnrollmentRouteDeps {
  registry: Registry;
  revocation: RevocationService;
  enrollment: EnrollmentService;
  pepper: Buffer;
  /** Largest import upload (JSON or CSV), in bytes. */
  maxImportBytes: number;
  /** Largest NDJSON batch body, in bytes (default DEFAULT_MAX_BATCH_BYTES). */
  maxBatchBytes?: number;
  /** Issues station certificates; absent when there is no station CA (offline root). */
  stationCertificates?: StationCertificateIssuer;
  /** CMP (enrollment/cmp/): its store, and kakuin's key for signing answers (without it, only MAC-protected requests get protected answers). */
  cmp?: { store: CmpStore; protectionKey?: CmpProtectionKey; onError?: (e: unknown) => void };
  /** SCEP (scep/): mounted at /scep with the challenge route when given. */
  scep?: { service: ScepService; store: ScepStore };
}

const STATION_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/;

/** The manufacturer a caller acts for: a station's own (naming another is forbidden), or the one an admin names. */
export function scopeOf(caller: Caller, named: string | undefined): string {
  if (caller.kind === 'station') {
    if (named !== undefined && named !== caller.manufacturerId) {
      throw new KakuinError('KAKUIN_E_FORBIDDEN', "a station acts for its own manufacturer only");
    }
    return caller.manufacturerId;
  }
  // A manufacturer token, like a station, acts for its own manufacturer (management-api/scope.ts).
  const own = manufacturerScope(caller);
  if (own !== undefined) {
    requireOwnManufacturer(caller, named);
    return own;
  }
  if (typeof named !== 'string' || named.length === 0 || named.length > 64) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'an admin names the manufacturer: manufacturerId');
  }
  return named;
}


const KEYGEN = z.strictObject({
  password: z.string().describe('16 to 256 characters; protects the PKCS#12 or the encrypted PEM key'),
  format: z.string().optional().describe('pkcs12 (default) or pem'),
  legacy: z.boolean().optional().describe('pkcs12 only: 3DES and a SHA-1 MAC for devices that cannot read PBES2/AES-256 (weaker; default false)'),
});

export function mountEnrollmentRoutes(routes: ApiRoutes, helpers: ApiHelpers, deps: EnrollmentRouteDeps): void {
  const { registry, enrollment, pepper } = deps;
  const { admin } = helpers;
  const stationJson = (s: Station) => ({
    id: s.id, manufacturerId: s.manufacturerId, name: s.name, createdAt: s.createdAt.toISOString(),
    keyRotatedAt: s.keyRotatedAt?.toISOString(), keyExpiresAt: helpers.authenticator.stationKeyExpiresAt(s)?.toISOString(),
    disabledAt: s.disabledAt?.toISOString(),
  });
  const certificates = new StationCertificateAuthenticator(registry);
  // Revoking a whole station's output is a mass act: a second admin approves it (management-api/approvals.ts).
  helpers.approvals.define({
    kind: 'station-revoke-issued', deciders: ['admin'],
    run: async (request, approval) => {
      const result = await revokeIssuedByStation(registry, deps.revocation, String(request.stationId),
        { since: new Date(String(request.since)), until: new Date(String(request.until)), reason: request.reason }, approval.requestedBy);
      return { kept: { stationId: result.stationId, revoked: result.revoked.length, alreadyRevoked: result.alreadyRevoked.length }, shown: { ...result } };
    },
  });
  // A manufacturer token reaches its own manufacturer's stations only; 404 for another's (management-api/scope.ts).
  const ownStation = async (caller: Caller | undefined, id: string) => {
    if (manufacturerScope(caller) !== undefined) requireOwnStation(caller, await registry.getStation(id));
  };
  // Without an Authorization header, a client certificate may authenticate a station.
  const byCertificateOr = (tokenAdmission: RequestHandler): RequestHandler => stationCertificateOr(certificates, tokenAdmission);
  const stationOrAdmin = byCertificateOr(helpers.admit('station', 'admin'));
  const station = byCertificateOr(helpers.admit('station'));
  const importJson = express.json({ limit: deps.maxImportBytes, strict: true });
  const importCsv = express.text({ type: 'text/csv', limit: deps.maxImportBytes });
  const manufacturerQuery = z.strictObject({ manufacturerId: queryText.optional().describe('admins name the manufacturer; a station acts for its own') });

  routes.add({
    method: 'post', path: '/api/v1/manufacturers/{id}/stations', summary: 'create a factory station; its API key is shown once', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ name: z.string() }) }, response: { status: 201, description: '{id, manufacturerId, name, apiKey, keyExpiresAt?}' },
    handler: async ({ req, res, body, params }) => {
      requireOwnManufacturer(req.caller, params.id);
      const name = body.name;
      if (!STATION_NAME.test(name)) {
        throw new KakuinError('KAKUIN_E_VALIDATION', 'name is 1 to 64 characters: letters, digits, space, . _ @ -, starting with a letter or digit', { field: 'name' });
      }
      const apiKey = newStationApiKey();
      const s = await registry.createStation({ manufacturerId: params.id, name, keyHmac: tokenHmac(pepper, apiKey) },
        { type: 'station.created', actor: req.caller!.actor, details: { manufacturerId: params.id, name } });
      res.status(201).json({ id: s.id, manufacturerId: s.manufacturerId, name: s.name, apiKey, keyExpiresAt: helpers.authenticator.stationKeyExpiresAt(s)?.toISOString() });
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/manufacturers/{id}/stations', summary: "the manufacturer's stations", callers: ['admin'], use: [admin],
    query: z.strictObject({ ...pageQuery }), response: { status: 200, description: '{stations, next?}' },
    handler: async ({ req, res, query, params }) => {
      requireOwnManufacturer(req.caller, params.id);
      await registry.getManufacturer(params.id);
      const page = await readPage((afterKey, limit) => registry.listStations(params.id, { afterKey, limit }), (s) => s.id, query);
      res.json(pageJson('stations', page, stationJson));
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/stations/{id}/rotate-key', summary: 'a new API key (the old one stops working at once)', callers: ['admin'], use: [admin],
    handler: async ({ req, res, params }) => {
      await ownStation(req.caller, params.id);
      const apiKey = newStationApiKey();
      const s = await registry.updateStation(params.id, { keyHmac: tokenHmac(pepper, apiKey) },
        { type: 'station.key-rotated', actor: req.caller!.actor, details: { stationId: params.id } });
      res.json({ id: s.id, apiKey, keyExpiresAt: helpers.authenticator.stationKeyExpiresAt(s)?.toISOString() });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/stations/{id}/disable', summary: 'disable the station', callers: ['admin'], use: [admin],
    handler: async ({ req, res, params }) => {
      await ownStation(req.caller, params.id);
      const s = await registry.updateStation(params.id, { disable: true },
        { type: 'station.disabled', actor: req.caller!.actor, details: { stationId: params.id } });
      res.json(stationJson(s));
    },
  });

  // Disabling is a pause, not an end: a station disabled by mistake (or after its key was rotated
  // away from a leak) is enabled again, and its audit trail shows both.
  routes.add({
    method: 'post', path: '/api/v1/stations/{id}/enable', summary: 'enable a disabled station again (with its current key)', callers: ['admin'], use: [admin],
    handler: async ({ req, res, params }) => {
      await ownStation(req.caller, params.id);
      const s = await registry.updateStation(params.id, { disable: false },
        { type: 'station.enabled', actor: req.caller!.actor, details: { stationId: params.id } });
      res.json(stationJson(s));
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/stations/{id}/certificate', summary: 'issue the station an mTLS certificate (station CA)', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ csr: z.string(), overlapHours: z.number().optional() }) },
    response: { status: 201, description: '{stationId, serialHex, certificate, chain, supersedes, supersedeAt?}' },
    handler: async ({ req, res, body, params }) => {
      if (!deps.stationCertificates) throw new KakuinError('KAKUIN_E_STATION_CA_UNAVAILABLE', 'there is no station CA (the root is offline and none was imported: kakuin ca import --root F --station F); stations use API keys');
      if (body.csr.length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'csr must be a PEM string', { field: 'csr' });
      const issued = await deps.stationCertificates.issue(params.id, body.csr, { actor: req.caller!.actor, overlapHours: body.overlapHours, revocation: deps.revocation });
      res.status(201).location(`/api/v1/certificates/${issued.record.serialHex}`).json({
        stationId: params.id, serialHex: issued.record.serialHex, certificate: pemChain([issued.der]), chain: pemChain(issued.chain),
        supersedes: issued.supersedes, supersedeAt: issued.supersedeAt?.toISOString(),
      });
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/stations/{id}/certificates', summary: "the station's certificates, oldest first", callers: ['admin'], use: [admin],
    query: z.strictObject({ ...pageQuery }), response: { status: 200, description: '{certificates, next?}' },
    handler: async ({ req, res, query, params }) => {
      await ownStation(req.caller, params.id);
      const page = await readPage((afterKey, limit) => registry.listStationCertificates(params.id, { afterKey, limit }), (c) => c.serialHex, query);
      res.json(pageJson('certificates', page, certificateSummaryJson));
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/manufacturers/{id}/profiles', summary: 'the device profiles the manufacturer may enroll with', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ profiles: z.array(z.string()) }) },
    handler: async ({ req, res, body, params }) => {
      const profiles = body.profiles;
      if (profiles.length === 0 || profiles.length > 32 || !profiles.every((p) => PROFILE_NAME.test(p))) {
        throw new KakuinError('KAKUIN_E_VALIDATION', 'profiles must be a list of 1 to 32 profile names', { field: 'profiles' });
      }
      const known = enrollment.profileNames();
      const unknown = profiles.find((p) => !known.includes(p));
      if (unknown !== undefined) throw new KakuinError('KAKUIN_E_PROFILE_UNKNOWN', `no certificate profile named ${JSON.stringify(unknown)} is configured (known: ${known.join(', ')})`);
      const id = params.id;
      await registry.setManufacturerProfiles(id, profiles, { type: 'manufacturer.profiles-set', actor: req.caller!.actor, details: { manufacturerId: id, profiles } });
      res.json({ manufacturerId: id, profiles });
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/manufacturers/{id}/profiles', summary: "the manufacturer's allowed profiles and the configured ones", callers: ['admin'], use: [admin],
    handler: async ({ res, params }) => {
      const id = params.id;
      await registry.getManufacturer(id);
      res.json({ manufacturerId: id, profiles: (await registry.getManufacturerProfiles(id)) ?? ['device'], configured: enrollment.profileNames() });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/stations/{id}/quota', summary: 'issuance quota (null: none)', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ maxIssuances: z.number().nullable() }) },
    handler: async ({ req, res, body, params }) => {
      const q = body.maxIssuances;
      if (q !== null && (!Number.isSafeInteger(q) || q < 0)) {
        throw new KakuinError('KAKUIN_E_VALIDATION', 'maxIssuances must be a non-negative integer, or null for no quota', { field: 'maxIssuances' });
      }
      const id = params.id;
      const s = await registry.updateStation(id, { maxIssuances: q }, { type: 'station.quota-set', actor: req.caller!.actor, details: { stationId: id, maxIssuances: q } });
      res.json({ ...stationJson(s), maxIssuances: s.maxIssuances ?? null, issued: await registry.countStationIssuances(id) });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/stations/{id}/revoke-issued', summary: 'revoke every certificate the station had issued in the window', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ since: isoTime, until: isoTime, reason: revocationReason.optional() }) },
    response: { status: 202, description: '{approval}: another admin approves, and its answer is {revoked, alreadyRevoked}' },
    handler: async ({ req, res, body, params }) => {
      const since = new Date(body.since);
      const until = new Date(body.until);
      if (until.getTime() <= since.getTime()) throw new KakuinError('KAKUIN_E_VALIDATION', 'until must be after since', { field: 'until' });
      // Checked now (KAKUIN_E_STATION_NOT_FOUND, a bad reason) so that only a valid act waits for approval.
      const station = await registry.getStation(params.id);
      revocationReasonOf(body.reason ?? 'keyCompromise');
      await requireApproval(helpers.approvals, req, res, {
        kind: 'station-revoke-issued',
        request: { stationId: station.id, since: since.toISOString(), until: until.toISOString(), ...(body.reason !== undefined && { reason: body.reason }) },
        summary: `revoke every certificate station ${station.name} (${station.id}) issued from ${since.toISOString()} to ${until.toISOString()}`,
      });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/devices/import', summary: 'pre-register devices: per row → {registered, errors}', callers: ['station', 'admin'], use: [stationOrAdmin],
    query: manufacturerQuery,
    body: {
      // Rows are checked one by one (importDevices): a bad row, an unknown field in it included, fails that row only.
      json: z.array(z.unknown()).describe('rows {serialNumber, mac?, imei?, model?, hardwareId?}; a row with an unknown field fails (KAKUIN_E_BATCH_ITEM_MALFORMED)'),
      jsonParser: importJson,
      media: { 'text/csv': { parser: importCsv, description: 'CSV with a header naming serialNumber, mac, imei, model, hardwareId' } },
    },
    response: { status: 201, description: '{registered, errors} (200 when some rows failed)' },
    handler: async ({ req, res, body, query }) => {
      const manufacturerId = scopeOf(req.caller!, query.manufacturerId);
      let rows: unknown[];
      if (req.is('text/csv')) {
        if (typeof req.body !== 'string') throw new KakuinError('KAKUIN_E_BAD_REQUEST', 'the CSV body could not be read');
        rows = parseImportCsv(req.body);
      } else {
        rows = body;
      }
      const result = await importDevices(registry, manufacturerId, rows, req.caller!.actor);
      await registry.appendAuditEvent({
        type: 'devices.imported', actor: req.caller!.actor,
        details: { manufacturerId, registered: result.registered.length, failed: result.errors.length },
      });
      res.status(result.errors.length === 0 ? 201 : 200).json(result);
    },
  });

  routes.add({
    method: 'get', path: '/api/v1/station/devices', summary: "the station's own manufacturer's devices", callers: ['station'], use: [station],
    query: z.strictObject({ serialNumber: queryText.optional(), ...pageQuery }), response: { status: 200, description: '{devices, next?}' },
    handler: async ({ req, res, query }) => {
      const manufacturerId = (req.caller as { manufacturerId: string }).manufacturerId;
      const page = await readPage((afterId, limit) => registry.findDevices({ manufacturerId, serialNumber: query.serialNumber, afterId, limit }), (d) => d.id, query);
      res.json(pageJson('devices', page, deviceJson));
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/devices/{id}/allow-reenrollment', summary: 'allow one re-enrollment (RMA) until then', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ until: isoTime }) },
    handler: async ({ req, res, body, params }) => {
      const until = new Date(body.until);
      if (until.getTime() <= Date.now()) {
        throw new KakuinError('KAKUIN_E_VALIDATION', 'until must be an ISO 8601 time in the future', { field: 'until' });
      }
      const id = params.id;
      await registry.allowReenrollment(id, until, { type: 'enrollment.reenrollment-allowed', actor: req.caller!.actor, deviceId: id, details: { until: until.toISOString() } });
      res.json({ deviceId: id, until: until.toISOString() });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/enroll', summary: 'enroll a pre-registered device: a CSR, or a key generated here', callers: ['station', 'admin'], use: [stationOrAdmin],
    body: { json: z.strictObject({ serialNumber: z.string(), csr: z.string().optional(), keygen: KEYGEN.optional(), manufacturerId: z.string().optional(), profile: z.string().optional() }) },
    response: { status: 201, description: '{deviceId, serialNumber, serialHex, certificate, chain, existing, supersedes} (200 when the same key was enrolled before)' },
    handler: async ({ req, res, body: b }) => {
      const manufacturerId = scopeOf(req.caller!, b.manufacturerId);
      if (b.keygen !== undefined) {
        if (b.csr !== undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'send either csr or keygen, not both');
        const k = await enrollment.enrollWithKeygen({ manufacturerId, serialNumber: b.serialNumber, keygen: b.keygen, actor: req.caller!.actor, profile: b.profile });
        res.status(201).location(`/api/v1/certificates/${k.certificate.serialHex}`).json({
          deviceId: k.device.id, serialNumber: k.device.serialNumber, serialHex: k.certificate.serialHex,
          certificate: pemChain([k.der]), chain: pemChain(k.chain), pkcs12: k.pkcs12?.toString('base64'), pem: k.pem, supersedes: k.supersedes,
        });
        return;
      }
      if (b.csr === undefined || b.csr.length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'csr must be a PEM string (or keygen: {password})', { field: 'csr' });
      const r = await enrollment.enroll({ manufacturerId, serialNumber: b.serialNumber, csr: b.csr, actor: req.caller!.actor, profile: b.profile });
      res.status(r.existing ? 200 : 201).location(`/api/v1/certificates/${r.certificate.serialHex}`).json({
        deviceId: r.device.id, serialNumber: r.device.serialNumber, serialHex: r.certificate.serialHex,
        certificate: pemChain([r.der]), chain: pemChain(r.chain), existing: r.existing, supersedes: r.supersedes,
      });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/enroll/batch', summary: 'bulk enrollment: NDJSON in, NDJSON out', callers: ['station', 'admin'], use: [stationOrAdmin],
    query: manufacturerQuery,
    // Streamed: each line is validated as it arrives (batch.ts), so a long batch needs no buffer.
    body: { media: { 'application/x-ndjson': { description: 'one JSON object per line: {serialNumber, csr | keygen, profile?}' } } },
    response: { status: 200, description: 'NDJSON, one result per line' },
    handler: async ({ req, res, query }) => {
      const manufacturerId = scopeOf(req.caller!, query.manufacturerId);
      if (!req.is(['application/x-ndjson', 'application/jsonl', 'application/json-seq', 'text/plain'])) {
        throw new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'send the batch as application/x-ndjson, one JSON object per line');
      }
      const maxBodyBytes = deps.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
      const declared = Number(req.get('content-length'));
      if (Number.isFinite(declared) && declared > maxBodyBytes) {
        // Refused before reading; the unread body must not be drained on this connection.
        res.set('Connection', 'close');
        throw new KakuinError('KAKUIN_E_BATCH_BODY_TOO_LARGE', `a batch body holds at most ${maxBodyBytes} bytes`);
      }
      await registry.getManufacturer(manufacturerId);
      req.setEncoding('utf8');
      res.status(200).type('application/x-ndjson');
      const outcome = await runBatch(req, res, enrollment, { manufacturerId, actor: req.caller!.actor }, { maxBodyBytes });
      if (outcome.bodyTooLarge) {
        // The rest of the body was not read: close the connection once the answer is out, rather than
        // read (and drop) a body of any size.
        const socket = req.socket;
        res.once('finish', () => {
          socket.end();
          setTimeout(() => socket.destroy(), 1000).unref();
        });
      }
      res.end();
    },
  });

  mountEst(routes, { enrollment, authenticator: helpers.authenticator, certificates });

  if (deps.cmp !== undefined) {
    const { store, protectionKey, onError } = deps.cmp;
    const protection = new CmpProtection(registry, store, pepper, certificates, protectionKey, parseCertificate(enrollment.chain[0]).subject.rawDer, () => new Date());
    const server = new CmpServer({ enrollment, registry, revocation: deps.revocation, store, protection, onError });
    mountCmp(routes, { server, store, registry, pepper, stationOrAdmin: byCertificateOr(helpers.admit('station', 'admin')) });
  }
  if (deps.scep) mountScep(routes, { scep: deps.scep.service, store: deps.scep.store, registry, pepper, stationOrAdmin });
}
