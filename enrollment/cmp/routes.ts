/**
 * CMP over HTTP (RFC 9811, formerly RFC 6712) on the management API port, and the one-time MAC
 * secrets for it:
 *
 *   POST /.well-known/cmp             anyone (the PKIMessage's own protection authenticates it)
 *   POST /.well-known/cmp/p/{profile} application/pkixcmp → application/pkixcmp (RFC 9811 §3.3: the
 *                                     profile label is the certificate profile)
 *   POST /api/v1/devices/{id}/cmp-secret {lifetimeMinutes?}   station, manufacturer, admin
 *        → 201 {deviceId, reference, secret, expiresAt}: shown once; `openssl cmp -ref <reference> -secret pass:<secret>`
 *
 * RFC 9811 §3.3 / RFC 6712 §3.3: every PKIMessage answer, CMP errors included, is HTTP 200 with
 * application/pkixcmp (clients read the CMP error, not the HTTP status).
 */
import express, { type RequestHandler } from 'express';
import { z } from 'zod';
import type { ApiRoutes } from '../../api-schema/routes.js';
import type { CmpStore } from '../../registry/cmp.js';
import type { Registry } from '../../registry/port.js';
import { KakuinError } from '../../errors/index.js';
import { requireOwnDevice } from '../../management-api/scope.js';
import type { CmpServer } from './cmp-server.js';
import { issueCmpSecret } from './cmp-secrets.js';

const PKIXCMP = 'application/pkixcmp';
const MAX_MESSAGE_BYTES = 256 * 1024;
const DEFAULT_LIFETIME_MINUTES = 60;
/** A week at most: a secret is for the production line, not a standing credential. */
const MAX_LIFETIME_MINUTES = 7 * 24 * 60;

export interface CmpRouteDeps {
  server: CmpServer;
  store: CmpStore;
  registry: Registry;
  pepper: Buffer;
  /** Admits stations, manufacturer tokens and admins (their roles are checked by api-schema/access.ts). */
  stationOrAdmin: RequestHandler;
  clock?: () => Date;
}

export function mountCmp(routes: ApiRoutes, deps: CmpRouteDeps): void {
  const raw = express.raw({ type: () => true, limit: MAX_MESSAGE_BYTES });
  const clock = deps.clock ?? (() => new Date());
  const media = { [PKIXCMP]: { parser: raw, description: 'DER PKIMessage (RFC 9810), protected by MAC (PasswordBasedMac) or signature' } };

  for (const path of ['/.well-known/cmp', '/.well-known/cmp/p/{profile}']) {
    routes.add({
      method: 'post', path, summary: 'CMP (Lightweight CMP profile, RFC 9483): PKIMessage → PKIMessage', callers: ['anyone'],
      body: { media }, response: { status: 200, description: 'application/pkixcmp: ip, cp, kup, rp, pkiconf, genp or error' },
      handler: async ({ req, res, params }) => {
        if (!Buffer.isBuffer(req.body) || req.body.length === 0) throw new KakuinError('KAKUIN_E_BAD_REQUEST', 'the body must be a DER PKIMessage');
        const answer = await deps.server.handle(req.body, params.profile);
        res.status(200).set('Content-Type', PKIXCMP).set('Cache-Control', 'no-store').send(answer);
      },
    });
  }

  routes.add({
    method: 'post', path: '/api/v1/devices/{id}/cmp-secret', summary: 'a one-time CMP MAC secret for the device; shown once', callers: ['station', 'admin'],
    use: [deps.stationOrAdmin],
    body: { json: z.strictObject({ lifetimeMinutes: z.number().optional() }), optional: true },
    response: { status: 201, description: '{deviceId, reference, secret, expiresAt}' },
    handler: async ({ req, res, body, params }) => {
      const minutes = body.lifetimeMinutes ?? DEFAULT_LIFETIME_MINUTES;
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_LIFETIME_MINUTES) {
        throw new KakuinError('KAKUIN_E_VALIDATION', `lifetimeMinutes must be an integer from 1 to ${MAX_LIFETIME_MINUTES}`, { field: 'lifetimeMinutes' });
      }
      const caller = req.caller!;
      const device = requireOwnDevice(caller, await deps.registry.getDevice(params.id));
      // A station sees its own manufacturer's devices only: another's is "not found".
      if (caller.kind === 'station' && device.manufacturerId !== caller.manufacturerId) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
      if (device.status !== 'registered' && device.status !== 'active') {
        throw new KakuinError('KAKUIN_E_DEVICE_STATE', `device ${device.id} is ${device.status}; only registered or active devices enroll`);
      }
      const issued = await issueCmpSecret(deps.store, deps.pepper, device, caller.actor, minutes * 60_000, clock());
      await deps.registry.appendAuditEvent({
        type: 'enrollment.cmp-secret-issued', actor: caller.actor, deviceId: device.id,
        details: { reference: issued.reference, expiresAt: issued.expiresAt.toISOString() },
      });
      res.status(201).set('Cache-Control', 'no-store').json({ deviceId: device.id, reference: issued.reference, secret: issued.secret, expiresAt: issued.expiresAt.toISOString() });
    },
  });
}
