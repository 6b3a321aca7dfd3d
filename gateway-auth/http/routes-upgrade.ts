/**
 * WebSocket upgrades on proxied routes (RFC 6455 §4): the device's upgrade request goes to the
 * route's upstream through Node's `http` client with the same cleaned headers and identity as any
 * proxied request (routes.ts); the upstream's 101 answer is relayed and from then on bytes are
 * piped both ways unchanged. Node's parsers read both handshakes; nothing here parses HTTP.
 *
 * Refused with 403 KAKUIN_E_UPGRADE_REFUSED, before anything goes upstream:
 * - an upgrade to anything but `websocket` (h2c and the like would leave the gateway's framing);
 * - a WebSocket offering the `mqtt` (or pre-standard `mqttv3.1`) subprotocol: MQTT over WebSocket
 *   here would bypass the MQTT front end's topic policy (MQTT 5.0 §6 names `mqtt`).
 *
 * The device's TLS socket stays the one tracked in DeviceConnections, so the kill switch destroys
 * it and, through its `close`, the upstream socket.
 */
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { KakuinError } from '../../errors/index.js';
import { describeError } from '../status-source.js';
import { proxiedRequestHeaders, type RouteProxy } from './routes.js';

/** Subprotocols that carry MQTT (MQTT 5.0 §6 `mqtt`; MQTT 3.1 brokers used `mqttv3.1`). */
const MQTT_SUBPROTOCOLS = new Set(['mqtt', 'mqttv3.1']);

function writeRawError(socket: Duplex, e: KakuinError): void {
  const body = JSON.stringify(e.toJSON());
  socket.end(
    `HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status] ?? ''}\r\ncontent-type: application/json\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** The head of a relayed response, from the upstream's raw header lines (names and values as sent). */
function responseHead(status: number, message: string | undefined, rawHeaders: string[]): string {
  let head = `HTTP/1.1 ${status} ${message ?? http.STATUS_CODES[status] ?? ''}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** The httpServer's `upgrade` listener. */
export function proxyUpgrade(proxy: RouteProxy, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const { deps, counters } = proxy;
  socket.on('error', () => { /* the close that follows is what matters */ });
  const id = deps.identityOf(socket as TLSSocket);
  if (id === undefined) {
    socket.destroy();
    return;
  }
  const refuse = (e: KakuinError, fields: Record<string, unknown>) => {
    counters.refused++;
    deps.logger.info('gateway route refused an upgrade', { deviceId: id.deviceId, code: e.code, status: e.status, ...fields });
    writeRawError(socket, e);
  };
  const m = proxy.match(req);
  if (m.kind !== 'route') {
    refuse(new KakuinError('KAKUIN_E_ROUTE_NOT_FOUND', `no route ${req.method ?? ''} ${(req.url ?? '').split('?')[0]}`), {});
    return;
  }
  const { upstream: up, path } = m;
  const fields = { prefix: up.route.prefix, path: path.split('?')[0] };
  const kind = String(req.headers.upgrade ?? '').trim().toLowerCase();
  if (kind !== 'websocket') {
    refuse(new KakuinError('KAKUIN_E_UPGRADE_REFUSED', `upgrade to "${kind}" is not proxied; only WebSocket is`), { ...fields, upgrade: kind });
    return;
  }
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const mqtt = offered.find((p) => MQTT_SUBPROTOCOLS.has(p));
  if (mqtt !== undefined) {
    refuse(new KakuinError(
      'KAKUIN_E_UPGRADE_REFUSED',
      `the "${mqtt}" WebSocket subprotocol is refused here: it would bypass the MQTT topic policy; connect to the gateway's MQTT front end`,
    ), { ...fields, subprotocol: mqtt });
    return;
  }
  if (!deps.isFresh(id)) {
    refuse(new KakuinError('KAKUIN_E_STATUS_STALE', 'revocation status cannot be confirmed right now; retry later'), fields);
    return;
  }
  const { route } = up;
  // A WebSocket holds its upstream connection for its life: no pooled keep-alive socket.
  const upReq = up.lib.request({
    protocol: route.upstream.protocol, hostname: route.upstream.hostname.replace(/^\[(.*)\]$/, '$1'), port: route.upstream.port,
    method: req.method, path, headers: { ...proxiedRequestHeaders(req, id, ['upgrade']), connection: 'Upgrade', upgrade: 'websocket' },
    ...(route.caPem !== undefined && { ca: route.caPem }), timeout: deps.upstreamTimeoutMs,
  });
  let upstreamSocket: Duplex | undefined;
  socket.once('close', () => {
    upReq.destroy();
    upstreamSocket?.destroy();
  });
  upReq.on('timeout', () => upReq.destroy(new Error(`upstream did not answer the upgrade within ${deps.upstreamTimeoutMs} ms`)));
  upReq.on('error', (e) => {
    if (upstreamSocket !== undefined || socket.destroyed) return;
    counters.upstreamErrors++;
    proxy.warnUpstream({ deviceId: id.deviceId, prefix: route.prefix, error: describeError(e) });
    refuse(new KakuinError('KAKUIN_E_UPSTREAM_UNAVAILABLE', 'the route\'s upstream could not be reached; retry later'), fields);
  });
  // The upstream refused the upgrade with an ordinary answer: relay it and close.
  upReq.on('response', (upRes) => {
    socket.write(responseHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.rawHeaders.filter((_, i, a) => {
      const name = (i % 2 === 0 ? a[i] : a[i - 1]).toLowerCase();
      return name !== 'connection' && name !== 'keep-alive';
    }).concat(['Connection', 'close'])));
    upRes.pipe(socket);
  });
  upReq.on('upgrade', (upRes, upSocket, upHead) => {
    upstreamSocket = upSocket;
    if (socket.destroyed) {
      upSocket.destroy();
      return;
    }
    counters.proxied++;
    counters.webSockets++;
    upSocket.setTimeout(0);
    upSocket.on('error', () => { /* the close that follows is what matters */ });
    upSocket.once('close', () => {
      counters.webSockets--;
      socket.destroy();
    });
    deps.logger.info('gateway route WebSocket open', { deviceId: id.deviceId, ...fields });
    socket.write(responseHead(101, upRes.statusMessage, upRes.rawHeaders));
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upSocket.write(head);
    let bytes = 0;
    socket.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes >= 65_536) {
        deps.activity.traffic(id.deviceId, 0, bytes);
        bytes = 0;
      }
    });
    socket.once('close', () => { if (bytes > 0) deps.activity.traffic(id.deviceId, 0, bytes); });
    socket.pipe(upSocket).pipe(socket);
  });
  upReq.end();
}
