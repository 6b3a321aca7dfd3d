/**
 * Proxied HTTP routes (gateway.routes): an admitted device's request whose path falls under a
 * route's prefix goes to that route's upstream, body and answer streamed, with the verified
 * identity attached. Node's own `http` client and server do all the HTTP parsing and framing.
 *
 * - The gateway's own routes (`POST /v1/telemetry`, `GET /healthz`, `GET /readyz`) are never
 *   proxied, whatever the prefixes say (device-routes.ts answers them).
 * - Identity headers are the gateway's word: every `x-kakuin-*` the device sent is dropped and
 *   X-Kakuin-Device-Id, X-Kakuin-Certificate-Serial (uppercase hex) and X-Kakuin-Issuer are set. The
 *   gateway is the edge, so `Forwarded` / `X-Forwarded-*` from the device are dropped too and
 *   X-Forwarded-For/-Proto/-Host set from the connection. Hop-by-hop fields (RFC 9110 §7.6.1) stay
 *   on their hop.
 * - The body is counted as it streams: past the route's bodyLimitBytes the upstream request is
 *   aborted and the device gets 413 KAKUIN_E_ROUTE_BODY_TOO_LARGE (a declared Content-Length over
 *   the limit is refused before anything goes upstream).
 * - The kill switch destroys the device's TLS socket (connections.ts); its open requests then
 *   close, and each closed request destroys its upstream request.
 * WebSocket upgrades are in routes-upgrade.ts.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { KakuinError } from '../../errors/index.js';
import type { ActivityRecorder } from '../activity-recorder.js';
import type { DeviceIdentity } from '../device-identity.js';
import type { GatewayLogger } from '../options.js';
import { describeError, throttledWarn } from '../status-source.js';
import { IDENTITY_HEADERS } from '../upstream.js';
import { hasDotSegment, matchRoute, type ResolvedRoute } from './routes-options.js';

/** The gateway's own routes: answered by device-routes.ts, never proxied. */
const OWN_ROUTES = new Set(['POST /v1/telemetry', 'GET /healthz', 'GET /readyz']);

/** RFC 9110 §7.6.1 hop-by-hop fields, plus what Node sets itself for the next hop (host, framing). */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate',
  'proxy-connection', 'host', 'expect', 'http2-settings',
]);
const EDGE_HEADERS = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip']);

export interface RouteProxyDeps {
  logger: GatewayLogger;
  identityOf(socket: TLSSocket): DeviceIdentity | undefined;
  isFresh(id: DeviceIdentity): boolean;
  activity: ActivityRecorder;
  /** An upstream that sends nothing for this long is given up (the gateway's idleTimeoutMs). */
  upstreamTimeoutMs: number;
}

export interface RouteStats {
  proxied: number;
  refused: number;
  upstreamErrors: number;
  /** WebSocket connections open now. */
  webSockets: number;
}

export interface Upstream {
  route: ResolvedRoute;
  lib: typeof http | typeof https;
  agent: http.Agent;
}

/** Where a request goes: the route, or why none applies. */
export type RouteMatch = { kind: 'own' } | { kind: 'none' } | { kind: 'route'; upstream: Upstream; path: string };

function connectionNamed(headers: IncomingHttpHeaders): Set<string> {
  return new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
}

/** The device's end-to-end headers, cleaned, with the verified identity and the edge's X-Forwarded-*. */
export function proxiedRequestHeaders(req: IncomingMessage, id: DeviceIdentity, keep: readonly string[] = []): OutgoingHttpHeaders {
  const named = connectionNamed(req.headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name.startsWith('x-kakuin-') || EDGE_HEADERS.has(name)) continue;
    if ((HOP_BY_HOP.has(name) || named.has(name)) && !keep.includes(name)) continue;
    out[name] = value;
  }
  out[IDENTITY_HEADERS.deviceId] = id.deviceId;
  out[IDENTITY_HEADERS.serial] = id.serialHex;
  out[IDENTITY_HEADERS.issuer] = id.issuerId;
  if (req.socket.remoteAddress !== undefined) out['x-forwarded-for'] = req.socket.remoteAddress;
  out['x-forwarded-proto'] = 'https';
  if (req.headers.host !== undefined) out['x-forwarded-host'] = req.headers.host;
  return out;
}

/** The upstream's answer headers for the device: hop-by-hop ones removed (Node frames the answer itself). */
export function proxiedResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = connectionNamed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export function sendJsonError(res: ServerResponse, e: KakuinError, close = false): void {
  const json = Buffer.from(JSON.stringify(e.toJSON()));
  res.writeHead(e.status, {
    'content-type': 'application/json', 'content-length': json.length, 'cache-control': 'no-store', ...(close && { connection: 'close' }),
  });
  res.end(json);
}

export class RouteProxy {
  private readonly upstreams: Upstream[];
  readonly counters: RouteStats = { proxied: 0, refused: 0, upstreamErrors: 0, webSockets: 0 };
  readonly warnUpstream: (fields: Record<string, unknown>) => void;

  constructor(private readonly routes: readonly ResolvedRoute[], readonly deps: RouteProxyDeps) {
    this.upstreams = routes.map((route) => {
      const tls = route.upstream.protocol === 'https:';
      return {
        route,
        lib: tls ? https : http,
        agent: tls
          ? new https.Agent({ keepAlive: true, maxSockets: 256, ...(route.caPem !== undefined && { ca: route.caPem }) })
          : new http.Agent({ keepAlive: true, maxSockets: 256 }),
      };
    });
    this.warnUpstream = throttledWarn(deps.logger, 'gateway route cannot reach its upstream', 1_000);
  }

  get enabled(): boolean {
    return this.routes.length > 0;
  }

  match(req: IncomingMessage): RouteMatch {
    const target = req.url ?? '';
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    if (OWN_ROUTES.has(`${req.method ?? ''} ${path}`)) return { kind: 'own' };
    // An absolute-form target (`GET http://x/`) or a dot segment matches no route.
    if (!path.startsWith('/') || hasDotSegment(path)) return { kind: 'none' };
    const route = matchRoute(this.routes, path);
    if (route === undefined) return { kind: 'none' };
    return { kind: 'route', upstream: this.upstreams.find((u) => u.route === route)!, path: `${route.basePath}${target}` };
  }

  /** Proxies the request if a route covers it; false leaves it to the gateway's own routes (and their 404). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const m = this.match(req);
    if (m.kind !== 'route') return false;
    const id = this.deps.identityOf(req.socket as TLSSocket);
    if (id === undefined) {
      req.socket.destroy();
      return true;
    }
    this.forward(req, res, id, m.upstream, m.path);
    return true;
  }

  private refuse(res: ServerResponse, e: KakuinError, id: DeviceIdentity, fields: Record<string, unknown>, close: boolean): void {
    this.counters.refused++;
    this.deps.logger.info('gateway route refused a request', { deviceId: id.deviceId, code: e.code, status: e.status, ...fields });
    if (!res.headersSent) sendJsonError(res, e, close);
    else res.destroy();
  }

  private forward(req: IncomingMessage, res: ServerResponse, id: DeviceIdentity, up: Upstream, path: string): void {
    const { route } = up;
    const fields = { prefix: route.prefix, method: req.method, path: path.split('?')[0] };
    if (!this.deps.isFresh(id)) {
      this.refuse(res, new KakuinError('KAKUIN_E_STATUS_STALE', 'revocation status cannot be confirmed right now; retry later'), id, fields, true);
      return;
    }
    const tooLarge = () => new KakuinError('KAKUIN_E_ROUTE_BODY_TOO_LARGE', `the body exceeds ${route.bodyLimitBytes} bytes`);
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > route.bodyLimitBytes) {
      // Nothing has gone upstream; the unread body makes the connection unusable, so it closes.
      this.refuse(res, tooLarge(), id, { ...fields, bytes: Number(declared) }, true);
      return;
    }
    const upReq = up.lib.request({
      protocol: route.upstream.protocol, hostname: route.upstream.hostname.replace(/^\[(.*)\]$/, '$1'), port: route.upstream.port,
      method: req.method, path, headers: proxiedRequestHeaders(req, id), agent: up.agent, timeout: this.deps.upstreamTimeoutMs,
    });
    let bytes = 0;
    let failed = false;
    const fail = (e: KakuinError, extra: Record<string, unknown>) => {
      if (failed) return;
      failed = true;
      upReq.destroy();
      req.unpipe();
      this.refuse(res, e, id, { ...fields, ...extra }, true);
    };
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      bytes += chunk.length;
      if (bytes > route.bodyLimitBytes) {
        fail(tooLarge(), { bytes });
        return;
      }
      if (!upReq.write(chunk)) req.pause();
    });
    upReq.on('drain', () => req.resume());
    req.on('end', () => {
      if (failed) return;
      this.deps.activity.traffic(id.deviceId, 1, bytes);
      upReq.end();
    });
    // The device went away (or the kill switch closed it): so does the upstream request.
    res.on('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    upReq.on('timeout', () => upReq.destroy(new Error(`upstream sent nothing for ${this.deps.upstreamTimeoutMs} ms`)));
    upReq.on('error', (e) => {
      if (failed || res.destroyed) return;
      this.counters.upstreamErrors++;
      this.warnUpstream({ deviceId: id.deviceId, prefix: route.prefix, error: describeError(e) });
      fail(new KakuinError('KAKUIN_E_UPSTREAM_UNAVAILABLE', 'the route\'s upstream could not be reached; retry later'), {});
    });
    upReq.on('response', (upRes) => {
      if (failed) {
        upRes.resume();
        return;
      }
      this.counters.proxied++;
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, proxiedResponseHeaders(upRes.headers));
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
      upRes.on('aborted', () => res.destroy());
    });
  }

  close(): void {
    for (const u of this.upstreams) u.agent.destroy();
  }
}
