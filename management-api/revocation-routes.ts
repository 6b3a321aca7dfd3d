/**
 * Revocation routes of the management API (all admit admins only):
 *
 *   POST /api/v1/certificates/{serialHex}/revoke {reason?, invalidityDate?}   → 200 certificate
 *   POST /api/v1/devices/{id}/revoke {reason?}                                → 200 {device, changes}
 *   POST /api/v1/devices/{id}/suspend                                         → 200 ...
 *   POST /api/v1/devices/{id}/resume {note?}                                  → 200 ... (+ resolvedDetections)
 *   POST /api/v1/devices/{id}/retire                                          → 200 ...
 *   POST /api/v1/crls/{issuerId} {kind?: "full" | "delta"}                    → 201 {number, thisUpdate, nextUpdate}
 *
 * Device revoke, suspend and retire also work on a device that has no certificate.
 */
import type { RequestHandler } from 'express';
import { z } from 'zod';
import type { FeedEntry, Registry } from '../registry/port.js';
import { KakuinError } from '../errors/index.js';
import type { ApiRoutes } from '../api-schema/routes.js';
import { isoTime, revocationReason } from '../api-schema/fields.js';
import type { CrlPublisher } from '../ca/crl/crl-publisher.js';
import type { RevocationService } from '../ca/revocation.js';
import { normalizeSerialHex } from '../ca/serial.js';
import { certificateJson, deviceJson } from './representations.js';
import type { DetectionService } from '../operations/detections/service.js';

export interface RevocationRouteDeps {
  registry: Registry;
  revocation: RevocationService;
  /** Resuming a device a detection rule suspended resolves that detection with the note. */
  detections?: Pick<DetectionService, 'deviceResumed'>;
  crls?: CrlPublisher;
  admin: RequestHandler;
}

function changesJson(entries: FeedEntry[]) {
  return entries.map((e) => ({ seq: e.seq, kind: e.kind, serialHex: e.serialHex, status: e.status, reason: e.reason }));
}

export function mountRevocationRoutes(routes: ApiRoutes, deps: RevocationRouteDeps): void {
  const { registry, revocation, admin } = deps;

  // An empty body is fine (reason: unspecified); a body that is there must be JSON and name only known fields.
  routes.add({
    method: 'post', path: '/api/v1/certificates/{serialHex}/revoke', summary: 'revoke one certificate', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ reason: revocationReason.optional(), invalidityDate: isoTime.optional() }), optional: true },
    handler: async ({ req, res, body, params }) => {
      const serialHex = normalizeSerialHex(params.serialHex);
      if (!serialHex) throw new KakuinError('KAKUIN_E_VALIDATION', 'serialHex must be a hexadecimal serial number');
      const cert = await revocation.revokeCertificate(serialHex, { reason: body.reason, invalidityDate: body.invalidityDate }, req.caller!.actor);
      res.json(certificateJson(cert));
    },
  });

  const answer = async (res: Parameters<RequestHandler>[1], id: string, entries: FeedEntry[]) => {
    res.json({ device: deviceJson(await registry.getDevice(id)), changes: changesJson(entries) });
  };
  routes.add({
    method: 'post', path: '/api/v1/devices/{id}/revoke', summary: 'revoke the device and all its certificates', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ reason: revocationReason.optional() }), optional: true },
    handler: async ({ req, res, body, params }) => answer(res, params.id, await revocation.revokeDevice(params.id, { reason: body.reason }, req.caller!.actor)),
  });
  routes.add({
    method: 'post', path: '/api/v1/devices/{id}/resume', summary: 'certificateHold off; resolves the detection that suspended it, with the note', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ note: z.string().max(2000).optional().describe('kept with the detection this resolves') }), optional: true },
    handler: async ({ req, res, body, params }) => {
      const entries = await revocation.resumeDevice(params.id, req.caller!.actor);
      const resolved = await deps.detections?.deviceResumed(params.id, req.caller!.actor, body?.note) ?? [];
      res.json({ device: deviceJson(await registry.getDevice(params.id)), changes: changesJson(entries), resolvedDetections: resolved.map((d) => d.id) });
    },
  });
  const actions = {
    suspend: { summary: 'certificateHold on', run: (id: string, actor: string) => revocation.suspendDevice(id, actor) },
    retire: { summary: 'the device left service (its certificates: cessationOfOperation)', run: (id: string, actor: string) => revocation.retireDevice(id, actor) },
  };
  for (const [action, a] of Object.entries(actions)) {
    routes.add({
      method: 'post', path: `/api/v1/devices/{id}/${action}`, summary: a.summary, callers: ['admin'], use: [admin],
      handler: async ({ req, res, params }) => answer(res, params.id, await a.run(params.id, req.caller!.actor)),
    });
  }

  routes.add({
    method: 'post', path: '/api/v1/crls/{issuerId}', summary: 'publish a CRL now', callers: ['admin'], use: [admin],
    body: { json: z.strictObject({ kind: z.enum(['full', 'delta']).optional() }), optional: true },
    response: { status: 201, description: '{issuerId, kind, number, thisUpdate, nextUpdate}' },
    handler: async ({ res, body, params }) => {
      if (!deps.crls) throw new KakuinError('KAKUIN_E_ROUTE_NOT_FOUND', 'CRL publication is not running in this process');
      const kind = body.kind ?? 'full';
      const issuerId = params.issuerId;
      if (!deps.crls.publishes(issuerId)) throw new KakuinError('KAKUIN_E_ISSUER_NOT_FOUND', `no CA ${issuerId} publishes CRLs here`, { status: 404 });
      const record = await deps.crls.publish(issuerId, kind);
      res.status(201).json({ issuerId, kind, number: record.number.toString(), thisUpdate: record.thisUpdate.toISOString(), nextUpdate: record.nextUpdate.toISOString() });
    },
  });
}
