/**
 * Admin routes of the legacy path, mounted into the management API by the composition root
 * (`extraRoutes`):
 *
 *   POST   /api/v1/legacy/common-auth-ids {name, manufacturerId?, usualHoursUtc?}  admin, station → 201 {commonAuthId}
 *   POST   /api/v1/devices/{id}/legacy-credentials {commonAuthId, uniqueId}        admin, station → 201 {authSecret} (shown once)
 *   DELETE /api/v1/devices/{id}/legacy-credentials                                 admin, station → 200 {deviceId, generation}
 *   POST   /api/v1/legacy/import   JSON rows or text/csv                           admin          → 201 {imported}
 *
 * A station acts only within its manufacturer: its common auth IDs belong to that manufacturer, and
 * it provisions only that manufacturer's devices with them (another's device looks unknown to it).
 * A station authenticates by API key or by its station certificate: the composition root passes an
 * `adminOrStation` that takes both (enrollment/station-certificate-auth.ts).
 */
import express, { type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { KakuinError } from '../../errors/index.js';
import type { Registry } from '../../registry/port.js';
import type { ApiRoutes } from '../../api-schema/routes.js';
import { importLegacySecrets, parseImport } from './import.js';
import { generateAuthSecret, hmacVerifier } from './secrets.js';
import { checkUniqueIdOfDevice } from './unique-id.js';

export interface LegacyAdminRouteDeps {
  registry: Registry;
  admin: RequestHandler;
  /** Admits admins and factory stations. */
  adminOrStation: RequestHandler;
  pepper: Buffer;
  maxImportBytes: number;
  /** After a change of credentials: lets the kill switch of this process see it before the call returns. */
  afterChange?: () => Promise<void>;
}

function text(v: string, name: string, max = 128): string {
  if (v.trim().length === 0 || v.length > max) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `${name} must be a non-empty string of at most ${max} characters`, { field: name });
  }
  return v.trim();
}

const IMPORT_ROW = z.strictObject({ deviceId: z.string(), commonAuthId: z.string(), uniqueId: z.string(), authSecret: z.string() });

export function mountLegacyAdminRoutes(routes: ApiRoutes, deps: LegacyAdminRouteDeps): void {
  const { registry, admin, adminOrStation } = deps;
  /** The manufacturer a station is confined to; undefined for an admin. */
  const stationScope = (req: Request): string | undefined => (req.caller?.kind === 'station' ? req.caller.manufacturerId : undefined);
  /** A station may touch only devices (and common auth IDs) of its own manufacturer. */
  const checkDeviceScope = async (req: Request, deviceId: string, commonAuthId?: string): Promise<void> => {
    const scope = stationScope(req);
    if (scope === undefined) return;
    const device = await registry.getDevice(deviceId);
    if (device.manufacturerId !== scope) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
    if (commonAuthId !== undefined && (await registry.getCommonAuthId(commonAuthId)).manufacturerId !== scope) {
      throw new KakuinError('KAKUIN_E_FORBIDDEN', 'a station may use only common auth IDs of its own manufacturer');
    }
  };
  const csv = express.text({ type: ['text/csv'], limit: deps.maxImportBytes });
  const importJson = express.json({ limit: deps.maxImportBytes, strict: true });

  routes.add({
    method: 'post', path: '/api/v1/legacy/common-auth-ids', summary: 'create a common auth ID (a device class)', callers: ['admin', 'station'], use: [adminOrStation],
    body: { json: z.strictObject({ name: z.string(), manufacturerId: z.string().optional(), usualHoursUtc: z.string().optional().describe('HH-HH, UTC') }) },
    response: { status: 201, description: '{commonAuthId}' },
    handler: async ({ req, res, body }) => {
      let manufacturerId = body.manufacturerId;
      const scope = stationScope(req);
      if (scope !== undefined) {
        if (manufacturerId !== undefined && manufacturerId !== scope) {
          throw new KakuinError('KAKUIN_E_FORBIDDEN', 'a station creates common auth IDs of its own manufacturer only');
        }
        manufacturerId = scope;
      }
      const usual = body.usualHoursUtc;
      if (usual !== undefined && !/^([01]\d|2[0-3])-([01]\d|2[0-4])$/.test(usual)) {
        throw new KakuinError('KAKUIN_E_VALIDATION', 'usualHoursUtc must be HH-HH (UTC), e.g. 06-22', { field: 'usualHoursUtc' });
      }
      const created = await registry.createCommonAuthId({
        name: text(body.name, 'name'),
        ...(manufacturerId !== undefined && { manufacturerId: text(manufacturerId, 'manufacturerId') }),
        ...(usual !== undefined && { usualHoursUtc: usual }),
      });
      await registry.appendAuditEvent({ type: 'legacy.common-auth-id-created', actor: req.caller!.actor, details: { commonAuthId: created.id, name: created.name } });
      res.status(201).json({ commonAuthId: created.id });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/devices/{id}/legacy-credentials', summary: 'give the device legacy credentials (the auth secret shown once)', callers: ['admin', 'station'], use: [adminOrStation],
    body: { json: z.strictObject({ commonAuthId: z.string(), uniqueId: z.string() }) },
    response: { status: 201, description: '{deviceId, commonAuthId, uniqueId, authSecret, generation}' },
    handler: async ({ req, res, body, params }) => {
      const deviceId = params.id;
      const commonAuthId = text(body.commonAuthId, 'commonAuthId');
      const uniqueId = text(body.uniqueId, 'uniqueId', 256);
      await checkDeviceScope(req, deviceId, commonAuthId);
      const [device] = await Promise.all([registry.getDevice(deviceId), registry.getCommonAuthId(commonAuthId)]);
      checkUniqueIdOfDevice(device, uniqueId);
      const authSecret = generateAuthSecret();
      const [cred] = await registry.putLegacyCredentials([{ deviceId, commonAuthId, uniqueId, verifierKind: 'hmac', verifier: hmacVerifier(deps.pepper, authSecret) }],
        [{ type: 'legacy.credentials-created', actor: req.caller!.actor, deviceId, details: { commonAuthId, uniqueId } }]);
      await deps.afterChange?.();
      res.status(201).json({ deviceId, commonAuthId, uniqueId, authSecret, generation: cred.generation });
    },
  });

  routes.add({
    method: 'delete', path: '/api/v1/devices/{id}/legacy-credentials', summary: 'switch the legacy path off for the device; its tokens die at once', callers: ['admin', 'station'], use: [adminOrStation],
    handler: async ({ req, res, params }) => {
      const deviceId = params.id;
      await checkDeviceScope(req, deviceId);
      const entry = await registry.deleteLegacyCredentials(deviceId, { type: 'legacy.credentials-deleted', actor: req.caller!.actor, deviceId });
      await deps.afterChange?.();
      res.json({ deviceId, generation: entry.generation, status: 'deleted' });
    },
  });

  routes.add({
    method: 'post', path: '/api/v1/legacy/import', summary: 'import auth secrets of deployed devices, all or nothing', callers: ['admin'], use: [admin],
    body: {
      json: z.union([z.array(IMPORT_ROW), z.strictObject({ credentials: z.array(IMPORT_ROW) })]), jsonParser: importJson,
      media: { 'text/csv': { parser: csv, description: 'CSV with the header deviceId,commonAuthId,uniqueId,authSecret' } },
    },
    response: { status: 201, description: '{imported, devices}' },
    handler: async ({ req, res, body }) => {
      let rows;
      if (req.is('application/json')) rows = parseImport(body, 'json');
      else if (req.is('text/csv') && typeof req.body === 'string') rows = parseImport(req.body, 'csv');
      else throw new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'send the import as application/json or text/csv');
      const stored = await importLegacySecrets(registry, deps.pepper, rows, req.caller!.actor);
      await deps.afterChange?.();
      res.status(201).json({ imported: stored.length, devices: stored.map((c) => ({ deviceId: c.deviceId, generation: c.generation })) });
    },
  });
}
