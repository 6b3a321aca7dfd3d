/**
 * SCEP's HTTP faces (RFC 8894 §4.1: `GET|POST <path>?operation=...&message=...`):
 *
 *   GET  /scep?operation=GetCACaps | GetCACert | PKIOperation&message=<base64>   anyone
 *   POST /scep?operation=PKIOperation   body: the DER pkiMessage                 anyone
 *   POST /api/v1/devices/{id}/scep-challenge {validityMinutes?}                  station (its own manufacturer's devices), admin
 *        → {deviceId, challengePassword, expiresAt}: shown once, stored as its HMAC
 *
 * /scep needs no credential: a PKCSReq carries the one-time challenge password a station issued
 * for one device, a RenewalReq is signed with the device's certificate, and each reply is signed
 * by the RA and its certificate encrypted to the requester's key. The same handler serves the
 * plain-HTTP listener when `scep.plainHttp` is set (scepHttpHandler).
 */
import type http from 'node:http';
import express, { type RequestHandler } from 'express';
import { z } from 'zod';
import type { ApiRoutes } from '../../api-schema/routes.js';
import type { Registry } from '../../registry/port.js';
import type { ScepStore } from '../../registry/scep.js';
import { isKakuinError, KakuinError } from '../../errors/index.js';
import { routeNotFound } from '../../management-api/http-errors.js';
import { requireOwnDevice } from '../../management-api/scope.js';
import { plainTextErrors } from '../est.js';
import { challengeHmac, newScepChallengePassword, type ScepService } from './scep-service.js';

const MAX_MESSAGE_BYTES = 64 * 1024;
const DEFAULT_VALIDITY_MINUTES = 24 * 60;
const MAX_VALIDITY_MINUTES = 30 * 24 * 60;

export interface ScepRouteDeps {
  scep: ScepService;
  store: ScepStore;
  registry: Registry;
  pepper: Buffer;
  /** Authenticates a station (API key or certificate) or an admin token: the challenge route's callers. */
  stationOrAdmin: RequestHandler;
}

export function mountScep(routes: ApiRoutes, deps: ScepRouteDeps): void {
  const { scep } = deps;
  const query = z.strictObject({ operation: z.string().describe('GetCACaps, GetCACert or PKIOperation'), message: z.string().optional().describe('GET PKIOperation: the base64 pkiMessage; otherwise a CA identifier, ignored') });
  const raw = express.raw({ type: () => true, limit: MAX_MESSAGE_BYTES });

  routes.add({
    method: 'get', path: '/scep', summary: 'SCEP (RFC 8894): GetCACaps, GetCACert, PKIOperation with a base64 message', callers: ['anyone'], query,
    handler: async ({ req, res, query: q }) => send(res, await scep.handle(req.method, q.operation, q.message, undefined)),
  });
  routes.add({
    method: 'post', path: '/scep', summary: 'SCEP PKIOperation: the DER pkiMessage as the body → CertRep', callers: ['anyone'], query,
    body: { media: { 'application/x-pki-message': { parser: raw, alsoAs: ['application/octet-stream'], description: 'a DER SCEP pkiMessage' } } },
    handler: async ({ req, res, query: q }) => send(res, await scep.handle(req.method, q.operation, q.message, Buffer.isBuffer(req.body) ? req.body : undefined)),
  });
  routes.use('/scep', routeNotFound, plainTextErrors);

  routes.add({
    method: 'post', path: '/api/v1/devices/{id}/scep-challenge', summary: 'a one-time SCEP challenge password for the device (shown once)',
    callers: ['station', 'admin'], use: [deps.stationOrAdmin],
    body: { json: z.strictObject({ validityMinutes: z.number().optional().describe(`minutes until it expires (default ${DEFAULT_VALIDITY_MINUTES}, at most ${MAX_VALIDITY_MINUTES})`) }), optional: true },
    response: { status: 201, description: '{deviceId, challengePassword, expiresAt}' },
    handler: async ({ req, res, body, params }) => {
      const caller = req.caller!;
      const minutes = body.validityMinutes ?? DEFAULT_VALIDITY_MINUTES;
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_VALIDITY_MINUTES) {
        throw new KakuinError('KAKUIN_E_VALIDATION', `validityMinutes must be an integer from 1 to ${MAX_VALIDITY_MINUTES}`, { field: 'validityMinutes' });
      }
      const device = requireOwnDevice(caller, await deps.registry.getDevice(params.id));
      // A station reaches its own manufacturer's devices only; another's is "not found", as if it did not exist.
      if (caller.kind === 'station' && device.manufacturerId !== caller.manufacturerId) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
      if (device.status === 'revoked' || device.status === 'retired') throw new KakuinError('KAKUIN_E_DEVICE_STATE', `device is ${device.status}`);
      const password = newScepChallengePassword();
      const now = new Date();
      const expiresAt = new Date(now.getTime() + minutes * 60_000);
      await deps.store.putScepChallenge({
        hmac: challengeHmac(deps.pepper, password), deviceId: device.id, manufacturerId: device.manufacturerId, actor: caller.actor, createdAt: now, expiresAt,
      });
      await deps.registry.appendAuditEvent({ type: 'scep.challenge-issued', actor: caller.actor, deviceId: device.id, details: { expiresAt: expiresAt.toISOString() } });
      res.status(201).json({ deviceId: device.id, challengePassword: password, expiresAt: expiresAt.toISOString() });
    },
  });
}

function send(res: express.Response, answer: { status: number; contentType: string; body: Buffer }): void {
  res.status(answer.status).set('Content-Type', answer.contentType).send(answer.body);
}

/**
 * The same SCEP endpoint for a plain node:http listener (the OCSP/CRL publication port, when
 * `scep.plainHttp` is set). Errors are `KAKUIN_E_...: message` text, as on the HTTPS port.
 */
export function scepHttpHandler(scep: ScepService, onError: (e: unknown) => void): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    const fail = (e: unknown) => {
      const known = isKakuinError(e) && e.status < 500;
      if (!known) onError(e);
      const status = known ? e.status : 500;
      const text = known ? `${e.code}: ${e.message}\n` : 'KAKUIN_E_INTERNAL: internal error\n';
      if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') {
      res.writeHead(405, { Allow: 'GET, POST', 'Content-Length': 0 }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://scep.invalid');
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_MESSAGE_BYTES) {
        fail(new KakuinError('KAKUIN_E_BODY_TOO_LARGE', `a SCEP message holds at most ${MAX_MESSAGE_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_MESSAGE_BYTES) return;
      const body = method === 'POST' ? Buffer.concat(chunks) : undefined;
      scep.handle(method, url.searchParams.get('operation') ?? undefined, url.searchParams.get('message') ?? undefined, body)
        .then((a) => res.writeHead(a.status, { 'Content-Type': a.contentType, 'Content-Length': a.body.length }).end(a.body), fail);
    });
    req.on('error', () => undefined);
  };
}
