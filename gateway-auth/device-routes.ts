/**
 * The HTTP layer behind the TLS checks: only connections of admitted devices get here.
 *
 *   POST /v1/telemetry  a JSON object (Content-Type application/json, at most bodyLimitBytes),
 *                       forwarded upstream with the verified identity or recorded by the sink
 *   POST /v1/status     {firmwareVersion} (strict: any other field is KAKUIN_E_UNKNOWN_FIELD), kept
 *                       in the device's activity with its history; 200 {firmwareVersion}
 *   GET  /healthz       200 while the process runs (`worker`: which cluster worker answered, if any)
 *   GET  /readyz        200, or 503 while revocation status is stale, with the feed lag
 *   anything else       404 KAKUIN_E_ROUTE_NOT_FOUND
 *
 * A refused body (400, 413, 415) is read to its end before the answer, so the keep-alive
 * connection stays usable; only a body far beyond the limit gets `Connection: close`.
 */
import type { ActivityRecorder } from './activity-recorder.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { parseInput } from '../api-schema/validation.js';
import { KakuinError } from '../errors/index.js';
import { firmwareVersion } from './firmware.js';
import type { DeviceIdentity } from './device-identity.js';
import type { GatewayLogger, TelemetrySink } from './options.js';
import type { GatewayReadiness } from './status-source.js';
import { describeError } from './status-source.js';
import { upstreamHeaders, type TelemetryUpstream } from './upstream.js';

export interface DeviceRoutesOptions {
  bodyLimitBytes: number;
  upstream?: TelemetryUpstream;
  sink?: TelemetrySink;
  logger: GatewayLogger;
  identityOf(socket: TLSSocket): DeviceIdentity | undefined;
  isFresh(id: DeviceIdentity): boolean;
  readiness(): GatewayReadiness;
  now: () => number;
  activity: ActivityRecorder;
  /** The worker slot under gateway.workers > 1 (GET /healthz `worker`). */
  workerId?: number;
}

/** A status is a few fields; nothing a device says about itself needs more. */
const STATUS_LIMIT_BYTES = 1024;

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  const json = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json', 'content-length': json.length, 'cache-control': 'no-store',
    ...(close && { connection: 'close' }),
  });
  res.end(json);
}

function sendError(res: ServerResponse, e: KakuinError, close = false): void {
  send(res, e.status, e.toJSON(), close);
}

type BodyOutcome = { kind: 'ok'; body: Buffer } | { kind: 'too-large'; bytes: number; close: boolean } | { kind: 'aborted' };

/**
 * Reads the body, keeping at most `limit` bytes. Past the limit it keeps reading (and discarding) so
 * the next request on the connection parses, up to `drainLimit`, where it gives up on the connection.
 */
function readBody(req: IncomingMessage, limit: number, drainLimit: number): Promise<BodyOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let done = false;
    const finish = (o: BodyOutcome) => {
      if (!done) {
        done = true;
        resolve(o);
      }
    };
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes <= limit) chunks.push(c);
      else if (bytes > drainLimit) {
        req.pause();
        finish({ kind: 'too-large', bytes, close: true });
      }
    });
    req.on('end', () => finish(bytes <= limit ? { kind: 'ok', body: Buffer.concat(chunks, bytes) } : { kind: 'too-large', bytes, close: false }));
    req.on('aborted', () => finish({ kind: 'aborted' }));
    req.on('error', () => finish({ kind: 'aborted' }));
  });
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const [type, ...params] = value.toLowerCase().split(';').map((s) => s.trim());
  if (type !== 'application/json') return false;
  // RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
  const charset = params.find((p) => p.startsWith('charset='));
  return charset === undefined || /^charset="?utf-8"?$/.test(charset);
}

const STATUS_BODY = z.strictObject({ firmwareVersion });

export function createDeviceRequestHandler(o: DeviceRoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const drainLimit = Math.max(o.bodyLimitBytes * 16, 1024 * 1024);
  const contentLengthTooLarge = (req: IncomingMessage): boolean => Number(req.headers['content-length'] ?? 0) > drainLimit;

  async function telemetry(req: IncomingMessage, res: ServerResponse, id: DeviceIdentity): Promise<void> {
    const started = o.now();
    const meta = { deviceId: id.deviceId, serialHex: id.serialHex, issuerId: id.issuerId };
    const refuse = (e: KakuinError, fields: Record<string, unknown>, close = false) => {
      o.logger.info('telemetry refused', { ...meta, ...fields, code: e.code, status: e.status, ms: o.now() - started });
      sendError(res, e, close);
    };
    if (!isJsonContentType(req.headers['content-type'])) {
      const drained = await readBody(req, 0, drainLimit);
      refuse(new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'telemetry must be sent as application/json'), {}, drained.kind === 'too-large' && drained.close);
      return;
    }
    if (contentLengthTooLarge(req)) {
      refuse(new KakuinError('KAKUIN_E_TELEMETRY_TOO_LARGE', `the body exceeds ${o.bodyLimitBytes} bytes`), { bytes: Number(req.headers['content-length']) }, true);
      return;
    }
    const body = await readBody(req, o.bodyLimitBytes, drainLimit);
    if (body.kind === 'aborted') return;
    if (body.kind === 'too-large') {
      refuse(new KakuinError('KAKUIN_E_TELEMETRY_TOO_LARGE', `the body exceeds ${o.bodyLimitBytes} bytes`), { bytes: body.bytes }, body.close);
      return;
    }
    const bytes = body.body.length;
    o.activity.traffic(id.deviceId, 0, bytes);
    // Checked after reading the body, so a device revoked meanwhile sends nothing further.
    if (!o.isFresh(id)) {
      refuse(new KakuinError('KAKUIN_E_STATUS_STALE', 'revocation status cannot be confirmed right now; retry later'), { bytes });
      return;
    }
    let data: unknown;
    try {
      data = JSON.parse(body.body.toString('utf8'));
    } catch {
      data = undefined;
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      refuse(new KakuinError('KAKUIN_E_TELEMETRY_INVALID', 'the body must be a JSON object'), { bytes });
      return;
    }
    if (o.upstream !== undefined) {
      try {
        const up = await o.upstream.forward(body.body, upstreamHeaders(req.headers, id, bytes));
        if (up.status >= 500) throw new Error(`upstream answered HTTP ${up.status}`);
        o.logger.info('telemetry received', { ...meta, bytes, upstreamStatus: up.status, outcome: 'forwarded', ms: o.now() - started });
        res.writeHead(up.status, { 'content-type': up.contentType ?? 'application/octet-stream', 'content-length': up.body.length });
        res.end(up.body);
      } catch (e) {
        o.logger.warn('telemetry not delivered upstream', { ...meta, bytes, error: describeError(e), ms: o.now() - started });
        sendError(res, new KakuinError('KAKUIN_E_UPSTREAM_UNAVAILABLE', 'the data could not be delivered upstream; retry later'));
      }
      return;
    }
    try {
      await o.sink!.record({ receivedAt: new Date(started), ...meta, bytes, data: data as Record<string, unknown> });
    } catch (e) {
      o.logger.error('telemetry not recorded', { ...meta, bytes, error: describeError(e) });
      sendError(res, new KakuinError('KAKUIN_E_INTERNAL', 'internal error'));
      return;
    }
    o.logger.info('telemetry received', { ...meta, bytes, outcome: 'recorded', ms: o.now() - started });
    send(res, 202, { status: 'accepted' });
  }

  /** What the device says about itself; its identity is the certificate's, never a body field. */
  async function status(req: IncomingMessage, res: ServerResponse, id: DeviceIdentity): Promise<void> {
    const refuse = (e: KakuinError, close = false) => {
      o.logger.info('status refused', { deviceId: id.deviceId, code: e.code, status: e.status });
      sendError(res, e, close);
    };
    if (!isJsonContentType(req.headers['content-type'])) {
      const drained = await readBody(req, 0, drainLimit);
      refuse(new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'a status must be sent as application/json'), drained.kind === 'too-large' && drained.close);
      return;
    }
    const body = await readBody(req, STATUS_LIMIT_BYTES, drainLimit);
    if (body.kind === 'aborted') return;
    if (body.kind === 'too-large') {
      refuse(new KakuinError('KAKUIN_E_VALIDATION', `a status body is at most ${STATUS_LIMIT_BYTES} bytes`), body.close);
      return;
    }
    o.activity.traffic(id.deviceId, 0, body.body.length);
    let data: unknown;
    try {
      data = JSON.parse(body.body.toString('utf8'));
    } catch {
      data = undefined;
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      refuse(new KakuinError('KAKUIN_E_VALIDATION', 'the body must be a JSON object'));
      return;
    }
    let parsed: z.output<typeof STATUS_BODY>;
    try {
      parsed = parseInput(STATUS_BODY, data, { place: 'body' });
    } catch (e) {
      refuse(e as KakuinError);
      return;
    }
    o.activity.firmware(id.deviceId, parsed.firmwareVersion, 'http');
    o.logger.info('status received', { deviceId: id.deviceId, firmwareVersion: parsed.firmwareVersion });
    send(res, 200, { firmwareVersion: parsed.firmwareVersion });
  }

  return (req, res) => {
    const id = o.identityOf(req.socket as TLSSocket);
    if (id === undefined) {
      // Not admitted: cannot happen (only admitted sockets reach HTTP), but never serve one.
      req.socket.destroy();
      return;
    }
    o.activity.traffic(id.deviceId, 1, 0);
    const route = `${req.method ?? ''} ${(req.url ?? '').split('?')[0]}`;
    if (route === 'POST /v1/telemetry') {
      telemetry(req, res, id).catch((e: unknown) => {
        o.logger.error('telemetry handler failed', { deviceId: id.deviceId, error: describeError(e) });
        if (!res.headersSent) sendError(res, new KakuinError('KAKUIN_E_INTERNAL', 'internal error'), true);
        else res.destroy();
      });
      return;
    }
    if (route === 'POST /v1/status') {
      status(req, res, id).catch((e: unknown) => {
        o.logger.error('status handler failed', { deviceId: id.deviceId, error: describeError(e) });
        if (!res.headersSent) sendError(res, new KakuinError('KAKUIN_E_INTERNAL', 'internal error'), true);
        else res.destroy();
      });
      return;
    }
    const done = () => {
      // Under gateway.workers > 1 the worker slot shows which process answered (README "Every core").
      if (route === 'GET /healthz') send(res, 200, o.workerId === undefined ? { status: 'ok' } : { status: 'ok', worker: o.workerId });
      else if (route === 'GET /readyz') {
        const r = o.readiness();
        send(res, r.ready ? 200 : 503, r);
      } else sendError(res, new KakuinError('KAKUIN_E_ROUTE_NOT_FOUND', `no route ${route}`));
    };
    if (contentLengthTooLarge(req)) {
      res.setHeader('connection', 'close');
      done();
      return;
    }
    readBody(req, 0, drainLimit).then(done, done);
  };
}
