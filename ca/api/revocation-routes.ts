/**
 * Revocation routes of the management API (all admit admins only):
 *
 *   POST /api/v1/certificates/{serialHex}/revoke {reason?, invalidityDate?}   → 200 certificate
 *   POST /api/v1/devices/{id}/revoke {reason?}                                → 200 {device, changes}
 *   POST /api/v1/devices/{id}/suspend                                         → 200 ...
 *   POST /api/v1/devices/{id}/resume                                          → 200 ...
 *   POST /api/v1/devices/{id}/retire                                          → 200 ...
 *   POST /api/v1/crls/{issuerId} {kind?: "full" | "delta"}                    → 201 {number, thisUpdate, nextUpdate}
 *
 * Device revoke, suspend and retire also work on a device that has no certificate.
 */
import type { Express, RequestHandler } from 'express';
import type { FeedEntry, Registry } from '../../registry/port.js';
import { KakuinError } from '../../errors/index.js';
import type { CrlPublisher } from '../crl/crl-publisher.js';
import type { RevocationService } from '../revocation.js';
import { normalizeSerialHex } from '../serial.js';
import { certificateJson, deviceJson } from './representations.js';

export interface RevocationRouteDeps {
  registry: Registry;
  revocation: RevocationService;
  crls?: CrlPublisher;
  admin: RequestHandler;
  json: RequestHandler;
  body(req: Parameters<RequestHandler>[0]): Record<string, unknown>;
}

function changesJson(entries: FeedEntry[]) {
  return entries.map((e) => ({ seq: e.seq, kind: e.kind, serialHex: e.serialHex, status: e.status, reason: e.reason }));
}

export function mountRevocationRoutes(app: Express, deps: RevocationRouteDeps): void {
  const { registry, revocation, admin, json } = deps;
  // An empty body is fine for device actions; a body that is there must be JSON.
  const optionalBody = (req: Parameters<RequestHandler>[0]) => (req.headers['content-length'] === '0' || !req.headers['content-type'] ? {} : deps.body(req));

  app.post('/api/v1/certificates/:serialHex/revoke', admin, json, async (req, res) => {
    const serialHex = normalizeSerialHex(String(req.params.serialHex));
    if (!serialHex) throw new KakuinError('KAKUIN_E_VALIDATION', 'serialHex must be a hexadecimal serial number');
    const b = optionalBody(req);
    const cert = await revocation.revokeCertificate(serialHex, { reason: b.reason, invalidityDate: b.invalidityDate }, req.caller!.actor);
    res.json(certificateJson(cert));
  });

  const deviceAction = (action: 'revoke' | 'suspend' | 'resume' | 'retire') => async (req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1]) => {
    const id = String(req.params.id);
    const actor = req.caller!.actor;
    const b = optionalBody(req);
    const entries = action === 'revoke' ? await revocation.revokeDevice(id, { reason: b.reason }, actor)
      : action === 'suspend' ? await revocation.suspendDevice(id, actor)
        : action === 'resume' ? await revocation.resumeDevice(id, actor)
          : await revocation.retireDevice(id, actor);
    res.json({ device: deviceJson(await registry.getDevice(id)), changes: changesJson(entries) });
  };
  for (const action of ['revoke', 'suspend', 'resume', 'retire'] as const) {
    app.post(`/api/v1/devices/:id/${action}`, admin, json, deviceAction(action));
  }

  app.post('/api/v1/crls/:issuerId', admin, json, async (req, res) => {
    if (!deps.crls) throw new KakuinError('KAKUIN_E_ROUTE_NOT_FOUND', 'CRL publication is not running in this process');
    const kind = optionalBody(req).kind ?? 'full';
    if (kind !== 'full' && kind !== 'delta') throw new KakuinError('KAKUIN_E_VALIDATION', 'kind must be "full" or "delta"');
    const issuerId = String(req.params.issuerId);
    if (!deps.crls.publishes(issuerId)) throw new KakuinError('KAKUIN_E_ISSUER_NOT_FOUND', `no CA ${issuerId} publishes CRLs here`, { status: 404 });
    const record = await deps.crls.publish(issuerId, kind);
    res.status(201).json({ issuerId, kind, number: record.number.toString(), thisUpdate: record.thisUpdate.toISOString(), nextUpdate: record.nextUpdate.toISOString() });
  });
}
