/**
 * The device-facing HTTPS listener of the legacy path (KAKUIN_LEGACY_PORT, default 9444); its
 * server certificate comes from the infrastructure CA (the composition root passes it in).
 *
 *   POST /legacy/v1/token        {commonAuthId, authSecret, uniqueId, firmwareVersion?} → 200 {token, deviceId, expiresAt}
 *   POST /legacy/v1/telemetry    Authorization: Bearer <token>, X-Device-Id; the same JSON as the
 *                                mTLS path, forwarded upstream (or to the sink) the same way
 *   POST /legacy/v1/certificate  Bearer + X-Device-Id; a PKCS#10 request (PEM, or JSON {csr}) →
 *                                201 {serialHex, certificate, chain}: migration to a certificate
 *   GET  /healthz
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { ApiRoutes } from '../../api-schema/routes.js';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { KakuinError } from '../../errors/index.js';
import type { GatewayLogger, TelemetrySink } from '../options.js';
import { upstreamHeaders, type TelemetryUpstream } from '../upstream.js';
import type { ActivityRecorder } from '../activity-recorder.js';
import type { LegacyAuthService } from './auth-service.js';

export interface LegacyServerOptions {
  auth: LegacyAuthService;
  logger: GatewayLogger;
  /** Whether X-Forwarded-For names the client (only behind a proxy you run). */
  trustProxy: boolean;
  bodyLimitBytes: number;
  upstream?: TelemetryUpstream;
  sink?: TelemetrySink;
  /** Issues the device's first certificate (the CA lives outside gateway-auth). */
  issueCertificate(deviceId: string, csr: string): Promise<{ serialHex: string; certificatePem: string; chainPem: string; existing?: boolean }>;
  tls: { cert: string; key: string; passphrase?: string };
  /** Telemetry bytes per device (the auth service records messages, token results and refusals). */
  activity?: ActivityRecorder;
}

export interface LegacyServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

// Headers that authenticate the device to kakuin, not to the upstream.
const NOT_FORWARDED = ['authorization', 'x-device-id', 'cookie'];

export function createLegacyApp(o: LegacyServerOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', o.trustProxy);
  app.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  const json = express.json({ limit: o.bodyLimitBytes, strict: true });
  const raw = express.raw({ type: 'application/json', limit: o.bodyLimitBytes });
  const csrText = express.text({ type: ['application/pkcs10', 'text/plain'], limit: o.bodyLimitBytes });
  const deviceOf = (req: Request) => o.auth.validate(req.get('authorization'), req.get('x-device-id'), req.ip ?? req.socket.remoteAddress);
  const routes = new ApiRoutes(app, json);
  // Authenticated before the body is read: a bad token costs nothing more.
  const tokenHolder = (req: Request, _res: Response, next: NextFunction) => {
    legacyLocals(req).deviceId = deviceOf(req);
    next();
  };

  routes.add({
    method: 'get', path: '/healthz', summary: 'liveness', callers: ['anyone'],
    handler: ({ res }) => res.json({ status: 'ok' }),
  });

  routes.add({
    method: 'post', path: '/legacy/v1/token', summary: 'three factors → a short-lived token and the device id', callers: ['device'],
    body: { json: z.strictObject({ commonAuthId: z.string(), authSecret: z.string(), uniqueId: z.string(), firmwareVersion: z.string().optional() }) },
    // Deployed firmware has had KAKUIN_E_VALIDATION for a mistyped factor since the path began.
    wrongTypeCode: 'KAKUIN_E_VALIDATION',
    handler: async ({ req, res, body }) => {
      const source = req.ip ?? req.socket.remoteAddress ?? 'unknown';
      const t = await o.auth.authenticate({ commonAuthId: body.commonAuthId, authSecret: body.authSecret, uniqueId: body.uniqueId, firmwareVersion: body.firmwareVersion }, source);
      res.json({ token: t.token, deviceId: t.deviceId, expiresAt: t.expiresAt.toISOString() });
    },
  });

  routes.add({
    method: 'post', path: '/legacy/v1/telemetry', summary: 'device data, forwarded upstream as on the mTLS path', callers: ['device'], use: [tokenHolder],
    // The device's own data: any JSON object, passed on as it came (kakuin declares no schema for it).
    body: { media: { 'application/json': { parser: raw, description: 'a JSON object: the device\'s data, forwarded unchanged' } } },
    handler: async ({ req, res }) => {
      const deviceId = legacyLocals(req).deviceId as string;
      if (!req.is('application/json') || !Buffer.isBuffer(req.body)) {
        throw new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'telemetry must be sent as application/json');
      }
      const body: Buffer = req.body;
      o.activity?.traffic(deviceId, 0, body.length);
      let data: unknown;
      try {
        data = JSON.parse(body.toString('utf8'));
      } catch {
        data = undefined;
      }
      if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new KakuinError('KAKUIN_E_TELEMETRY_INVALID', 'the body must be a JSON object');
      const receivedAt = new Date();
      if (o.upstream !== undefined) {
        let up;
        try {
          up = await o.upstream.forward(body, { ...upstreamHeaders(req.headers, { deviceId }, body.length, NOT_FORWARDED), 'x-kakuin-auth': 'legacy-token' });
          if (up.status >= 500) throw new Error(`upstream answered HTTP ${up.status}`);
        } catch (e) {
          o.logger.warn('legacy telemetry not delivered upstream', { deviceId, error: String(e) });
          throw new KakuinError('KAKUIN_E_UPSTREAM_UNAVAILABLE', 'the data could not be delivered upstream; retry later');
        }
        res.status(up.status).type(up.contentType ?? 'application/octet-stream').send(up.body);
        return;
      }
      await o.sink!.record({ receivedAt, deviceId, auth: 'legacy-token', bytes: body.length, data: data as Record<string, unknown> });
      res.status(202).json({ status: 'accepted' });
    },
  });

  routes.add({
    method: 'post', path: '/legacy/v1/certificate', summary: 'migration: the device\'s first certificate', callers: ['device'], use: [tokenHolder],
    body: {
      json: z.strictObject({ csr: z.string() }),
      media: { 'application/pkcs10': { parser: csrText, description: 'a PEM certificate request', alsoAs: ['text/plain'] } },
    },
    response: { status: 201, description: '{serialHex, certificate, chain}' },
    handler: async ({ req, res, body }) => {
      const deviceId = legacyLocals(req).deviceId as string;
      const csr = req.is('application/json') ? body.csr : req.body;
      if (typeof csr !== 'string' || !csr.includes('-----BEGIN')) {
        throw new KakuinError('KAKUIN_E_VALIDATION', 'send a PEM certificate request as application/pkcs10 or JSON {csr}');
      }
      const issued = await o.issueCertificate(deviceId, csr);
      // The same CSR again (a retry) gets the certificate issued before: 200, existing: true.
      res.status(issued.existing ? 200 : 201).json({ serialHex: issued.serialHex, certificate: issued.certificatePem, chain: issued.chainPem, existing: issued.existing ?? false });
    },
  });

  app.use((req, _res, next) => next(new KakuinError('KAKUIN_E_ROUTE_NOT_FOUND', `no route ${req.method} ${req.path}`)));
  app.use(legacyErrorHandler(o.logger));
  return app;
}

function legacyLocals(req: Request): Record<string, unknown> {
  return (req as Request & { legacy?: Record<string, unknown> }).legacy ??= {};
}

function legacyErrorHandler(logger: GatewayLogger): express.ErrorRequestHandler {
  return (err, req, res, _next) => {
    let e: KakuinError;
    if (err instanceof KakuinError) e = err;
    else {
      const type = (err as { type?: string }).type;
      const { limit, length } = err as { limit?: number; length?: number };
      e = type === 'entity.too.large' ? new KakuinError('KAKUIN_E_BODY_TOO_LARGE', `the request body is too large${typeof length === 'number' ? ` (${length} bytes)` : ''}${typeof limit === 'number' ? `; this route takes at most ${limit} bytes` : ''}`)
        : type === 'entity.parse.failed' ? new KakuinError('KAKUIN_E_BAD_REQUEST', 'the request body is not valid JSON')
          : type === 'encoding.unsupported' || type === 'charset.unsupported' ? new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'unsupported body encoding or charset')
            : type === 'request.aborted' ? new KakuinError('KAKUIN_E_BAD_REQUEST', 'the request body was cut short')
              : new KakuinError('KAKUIN_E_INTERNAL', 'internal error');
    }
    if (e.status >= 500) logger.error('legacy request failed', { code: e.code, path: req.path, error: String(err?.stack ?? err) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const retry = (e as KakuinError & { retryAfterSeconds?: number }).retryAfterSeconds;
    if (retry !== undefined) res.set('Retry-After', String(retry));
    else if (e.code === 'KAKUIN_E_LEGACY_THROTTLED') res.set('Retry-After', '60');
    if (e.status === 401) res.set('WWW-Authenticate', 'Bearer realm="kakuin-legacy"');
    res.status(e.status).json(e.toJSON());
  };
}

export function createLegacyServer(o: LegacyServerOptions): LegacyServer {
  const server = https.createServer({
    cert: o.tls.cert, key: o.tls.key, passphrase: o.tls.passphrase, minVersion: 'TLSv1.2', handshakeTimeout: 10_000,
  }, createLegacyApp(o));
  // Sockets in their TLS handshake are unknown to closeAllConnections(): tracked so close() ends them.
  const sockets = new Set<import('node:stream').Duplex>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', (_err, socket) => socket.destroy());
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  return {
    listen: (port, host) => new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(server.address() as AddressInfo);
      });
    }),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    }),
  };
}
