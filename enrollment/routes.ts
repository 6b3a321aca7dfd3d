/**
 * Production-line enrollment on the management API. Each route states the callers it admits;
 * a station is always scoped to its own manufacturer (it never names one), an admin names one.
 * A station authenticates by its API key (Bearer) or, without an Authorization header, by its
 * station certificate on the TLS connection (station-certificate-auth.ts).
 *
 *   POST /api/v1/manufacturers/{id}/stations {name}      admin    → 201 {id, apiKey} (the key shown once)
 *   GET  /api/v1/manufacturers/{id}/stations             admin
 *   POST /api/v1/stations/{id}/rotate-key                admin    → {id, apiKey} (the old key stops working at once)
 *   POST /api/v1/stations/{id}/disable                   admin
 *   POST /api/v1/stations/{id}/enable                    admin   (a disabled station works again, with its current key)
 *   POST /api/v1/stations/{id}/certificate {csr, overlapHours?}        admin  → 201 {serialHex, certificate, chain, supersedes}
 *        (the station CA issues; the station's earlier certificates are revoked as superseded, at once or after overlapHours)
 *   GET  /api/v1/stations/{id}/certificates              admin
 *   POST /api/v1/manufacturers/{id}/profiles {profiles: [..]}         admin  the device profiles it may enroll with
 *   GET  /api/v1/manufacturers/{id}/profiles             admin
 *   POST /api/v1/stations/{id}/quota {maxIssuances: n | null}          admin  → station (with issued count)
 *   POST /api/v1/stations/{id}/revoke-issued {since, until, reason?}   admin  → {revoked, alreadyRevoked}
 *   POST /api/v1/devices/import[?manufacturerId=]        station, admin   JSON array or text/csv → {registered, errors}
 *   GET  /api/v1/station/devices?serialNumber=           station  its own manufacturer's devices
 *   POST /api/v1/devices/{id}/allow-reenrollment {until} admin
 *   POST /api/v1/enroll {serialNumber, csr | keygen: {password}, manufacturerId?, profile?}   station, admin → 201 {certificate, chain, pkcs12?, ...} (200 when existing)
 *   POST /api/v1/enroll/batch[?manufacturerId=]          station, admin   NDJSON in (items may name a profile), NDJSON out
 * and EST under /.well-known/est/ (est.ts).
 */
import express, { type Express, type Request, type RequestHandler } from 'express';
import type { Registry, Station } from '../registry/port.js';
import { KakuinError } from '../errors/index.js';
import { newStationApiKey, tokenHmac, type Caller } from '../ca/api/admin-tokens.js';
import type { ApiHelpers } from '../ca/api/management-api.js';
import { certificateSummaryJson, deviceJson, pemChain } from '../ca/api/representations.js';
import { importDevices, parseImportCsv } from './device-import.js';
import { DEFAULT_MAX_BATCH_BYTES, runBatch } from './batch.js';
import type { EnrollmentService } from './enrollment-service.js';
import type { RevocationService } from '../ca/revocation.js';
import { revokeIssuedByStation } from './station-incident.js';
import { mountEst } from './est.js';
import { StationCertificateAuthenticator, stationCertificateOr } from './station-certificate-auth.js';
import type { StationCertificateIssuer } from '../ca/station-certificates.js';
import { PROFILE_NAME } from '../ca/profiles.js';

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
}

const STATION_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/;

/** The manufacturer a caller acts for: a station's own (naming another is forbidden), or the one an admin names. */
export function scopeOf(caller: Caller, named: unknown): string {
  if (caller.kind === 'station') {
    if (named !== undefined && named !== caller.manufacturerId) {
      throw new KakuinError('KAKUIN_E_FORBIDDEN', "a station acts for its own manufacturer only");
    }
    return caller.manufacturerId;
  }
  if (typeof named !== 'string' || named.length === 0 || named.length > 64) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'an admin names the manufacturer: manufacturerId');
  }
  return named;
}


export function mountEnrollmentRoutes(app: Express, helpers: ApiHelpers, deps: EnrollmentRouteDeps): void {
  const { registry, enrollment, pepper } = deps;
  const { admin, json, body } = helpers;
  const stationJson = (s: Station) => ({
    id: s.id, manufacturerId: s.manufacturerId, name: s.name, createdAt: s.createdAt.toISOString(),
    keyRotatedAt: s.keyRotatedAt?.toISOString(), keyExpiresAt: helpers.authenticator.stationKeyExpiresAt(s)?.toISOString(),
    disabledAt: s.disabledAt?.toISOString(),
  });
  const certificates = new StationCertificateAuthenticator(registry);
  // Without an Authorization header, a client certificate may authenticate a station.
  const byCertificateOr = (tokenAdmission: RequestHandler): RequestHandler => stationCertificateOr(certificates, tokenAdmission);
  const stationOrAdmin = byCertificateOr(helpers.admit('station', 'admin'));
  const station = byCertificateOr(helpers.admit('station'));
  const importJson = express.json({ limit: deps.maxImportBytes, strict: true });
  const importCsv = express.text({ type: 'text/csv', limit: deps.maxImportBytes });

  app.post('/api/v1/manufacturers/:id/stations', admin, json, async (req, res) => {
    const name = body(req).name;
    if (typeof name !== 'string' || !STATION_NAME.test(name)) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'name is 1 to 64 characters: letters, digits, space, . _ @ -, starting with a letter or digit');
    }
    const apiKey = newStationApiKey();
    const s = await registry.createStation({ manufacturerId: String(req.params.id), name, keyHmac: tokenHmac(pepper, apiKey) },
      { type: 'station.created', actor: req.caller!.actor, details: { manufacturerId: String(req.params.id), name } });
    res.status(201).json({ id: s.id, manufacturerId: s.manufacturerId, name: s.name, apiKey, keyExpiresAt: helpers.authenticator.stationKeyExpiresAt(s)?.toISOString() });
  });

  app.get('/api/v1/manufacturers/:id/stations', admin, async (req, res) => {
    await registry.getManufacturer(String(req.params.id));
    res.json({ stations: (await registry.listStations(String(req.params.id))).map(stationJson) });
  });

  app.post('/api/v1/stations/:id/rotate-key', admin, async (req, res) => {
    const apiKey = newStationApiKey();
    const s = await registry.updateStation(String(req.params.id), { keyHmac: tokenHmac(pepper, apiKey) },
      { type: 'station.key-rotated', actor: req.caller!.actor, details: { stationId: String(req.params.id) } });
    res.json({ id: s.id, apiKey, keyExpiresAt: helpers.authenticator.stationKeyExpiresAt(s)?.toISOString() });
  });

  app.post('/api/v1/stations/:id/disable', admin, async (req, res) => {
    const s = await registry.updateStation(String(req.params.id), { disable: true },
      { type: 'station.disabled', actor: req.caller!.actor, details: { stationId: String(req.params.id) } });
    res.json(stationJson(s));
  });

  // Disabling is a pause, not an end: a station disabled by mistake (or after its key was rotated
  // away from a leak) is enabled again, and its audit trail shows both.
  app.post('/api/v1/stations/:id/enable', admin, async (req, res) => {
    const s = await registry.updateStation(String(req.params.id), { disable: false },
      { type: 'station.enabled', actor: req.caller!.actor, details: { stationId: String(req.params.id) } });
    res.json(stationJson(s));
  });

  app.post('/api/v1/stations/:id/certificate', admin, json, async (req, res) => {
    const b = body(req);
    if (!deps.stationCertificates) throw new KakuinError('KAKUIN_E_STATION_CA_UNAVAILABLE', 'there is no station CA (the root is offline and none was imported: kakuin ca import --root F --station F); stations use API keys');
    if (typeof b.csr !== 'string' || b.csr.length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'csr must be a PEM string');
    const issued = await deps.stationCertificates.issue(String(req.params.id), b.csr, { actor: req.caller!.actor, overlapHours: b.overlapHours, revocation: deps.revocation });
    res.status(201).location(`/api/v1/certificates/${issued.record.serialHex}`).json({
      stationId: String(req.params.id), serialHex: issued.record.serialHex, certificate: pemChain([issued.der]), chain: pemChain(issued.chain),
      supersedes: issued.supersedes, supersedeAt: issued.supersedeAt?.toISOString(),
    });
  });

  app.get('/api/v1/stations/:id/certificates', admin, async (req, res) => {
    res.json({ certificates: (await registry.listStationCertificates(String(req.params.id))).map(certificateSummaryJson) });
  });

  app.post('/api/v1/manufacturers/:id/profiles', admin, json, async (req, res) => {
    const profiles = body(req).profiles;
    if (!Array.isArray(profiles) || profiles.length === 0 || profiles.length > 32 || !profiles.every((p) => typeof p === 'string' && PROFILE_NAME.test(p))) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'profiles must be a list of 1 to 32 profile names');
    }
    const known = enrollment.profileNames();
    const unknown = profiles.find((p) => !known.includes(p));
    if (unknown !== undefined) throw new KakuinError('KAKUIN_E_PROFILE_UNKNOWN', `no certificate profile named ${JSON.stringify(unknown)} is configured (known: ${known.join(', ')})`);
    const id = String(req.params.id);
    await registry.setManufacturerProfiles(id, profiles, { type: 'manufacturer.profiles-set', actor: req.caller!.actor, details: { manufacturerId: id, profiles } });
    res.json({ manufacturerId: id, profiles });
  });

  app.get('/api/v1/manufacturers/:id/profiles', admin, async (req, res) => {
    const id = String(req.params.id);
    await registry.getManufacturer(id);
    res.json({ manufacturerId: id, profiles: (await registry.getManufacturerProfiles(id)) ?? ['device'], configured: enrollment.profileNames() });
  });

  app.post('/api/v1/stations/:id/quota', admin, json, async (req, res) => {
    const q = body(req).maxIssuances;
    if (q !== null && (typeof q !== 'number' || !Number.isSafeInteger(q) || q < 0)) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'maxIssuances must be a non-negative integer, or null for no quota');
    }
    const id = String(req.params.id);
    const s = await registry.updateStation(id, { maxIssuances: q }, { type: 'station.quota-set', actor: req.caller!.actor, details: { stationId: id, maxIssuances: q } });
    res.json({ ...stationJson(s), maxIssuances: s.maxIssuances ?? null, issued: await registry.countStationIssuances(id) });
  });

  app.post('/api/v1/stations/:id/revoke-issued', admin, json, async (req, res) => {
    const b = body(req);
    const time = (v: unknown, name: string) => {
      const d = typeof v === 'string' ? new Date(v) : undefined;
      if (!d || Number.isNaN(d.getTime())) throw new KakuinError('KAKUIN_E_VALIDATION', `${name} must be an ISO 8601 time`);
      return d;
    };
    const since = time(b.since, 'since');
    const until = time(b.until, 'until');
    if (until.getTime() <= since.getTime()) throw new KakuinError('KAKUIN_E_VALIDATION', 'until must be after since');
    const result = await revokeIssuedByStation(registry, deps.revocation, String(req.params.id), { since, until, reason: b.reason }, req.caller!.actor);
    res.json(result);
  });

  app.post('/api/v1/devices/import', stationOrAdmin, importJson, importCsv, async (req, res) => {
    const manufacturerId = scopeOf(req.caller!, typeof req.query.manufacturerId === 'string' ? req.query.manufacturerId : undefined);
    let rows: unknown[];
    if (req.is('text/csv')) {
      if (typeof req.body !== 'string') throw new KakuinError('KAKUIN_E_BAD_REQUEST', 'the CSV body could not be read');
      rows = parseImportCsv(req.body);
    } else if (req.is('application/json')) {
      if (!Array.isArray(req.body)) throw new KakuinError('KAKUIN_E_VALIDATION', 'the body must be a JSON array of devices');
      rows = req.body;
    } else {
      throw new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'send the devices as a JSON array or text/csv');
    }
    const result = await importDevices(registry, manufacturerId, rows, req.caller!.actor);
    await registry.appendAuditEvent({
      type: 'devices.imported', actor: req.caller!.actor,
      details: { manufacturerId, registered: result.registered.length, failed: result.errors.length },
    });
    res.status(result.errors.length === 0 ? 201 : 200).json(result);
  });

  app.get('/api/v1/station/devices', station, async (req, res) => {
    const serialNumber = typeof req.query.serialNumber === 'string' ? req.query.serialNumber : undefined;
    const devices = await registry.findDevices({ manufacturerId: (req.caller as { manufacturerId: string }).manufacturerId, serialNumber });
    res.json({ devices: devices.map(deviceJson) });
  });

  app.post('/api/v1/devices/:id/allow-reenrollment', admin, json, async (req, res) => {
    const untilRaw = body(req).until;
    const until = typeof untilRaw === 'string' ? new Date(untilRaw) : undefined;
    if (!until || Number.isNaN(until.getTime()) || until.getTime() <= Date.now()) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'until must be an ISO 8601 time in the future');
    }
    const id = String(req.params.id);
    await registry.allowReenrollment(id, until, { type: 'enrollment.reenrollment-allowed', actor: req.caller!.actor, deviceId: id, details: { until: until.toISOString() } });
    res.json({ deviceId: id, until: until.toISOString() });
  });

  app.post('/api/v1/enroll', stationOrAdmin, json, async (req: Request, res) => {
    const b = body(req);
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
    if (typeof b.csr !== 'string' || b.csr.length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'csr must be a PEM string (or keygen: {password})');
    const r = await enrollment.enroll({ manufacturerId, serialNumber: b.serialNumber, csr: b.csr, actor: req.caller!.actor, profile: b.profile });
    res.status(r.existing ? 200 : 201).location(`/api/v1/certificates/${r.certificate.serialHex}`).json({
      deviceId: r.device.id, serialNumber: r.device.serialNumber, serialHex: r.certificate.serialHex,
      certificate: pemChain([r.der]), chain: pemChain(r.chain), existing: r.existing, supersedes: r.supersedes,
    });
  });

  app.post('/api/v1/enroll/batch', stationOrAdmin, async (req, res) => {
    const manufacturerId = scopeOf(req.caller!, typeof req.query.manufacturerId === 'string' ? req.query.manufacturerId : undefined);
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
  });

  mountEst(app, { enrollment, authenticator: helpers.authenticator, certificates });
}
