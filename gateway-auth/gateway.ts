/**
 * The device-facing mTLS gateway (DESIGN.md flow 3, "Connection").
 *
 * A `tls.Server` verifies the client chain in the handshake (client certificate required, TLS 1.3
 * preferred, 1.2 the floor — RFC 8446 / RFC 5246; plain HTTP on the port fails the handshake, so
 * nothing is ever redirected). Node does not verify a resumed session again: a TLS 1.2 ticket or a
 * TLS 1.3 PSK resumption (RFC 8446 §2.2) carries the peer certificate of the first handshake and
 * reports it authorized. So every socket, resumed or not, stops in the `secureConnection` listener
 * while paused: its certificate must be a device certificate, good, and its device `active`
 * (admission.ts). Only then is the socket handed to an `http.Server` by emitting `connection` on
 * it; a refused socket is destroyed before a byte of its application data is read, so it gets no
 * HTTP response at all.
 *
 * Admitted sockets are tracked by certificate and device (connections.ts); a revocation, hold or
 * device change from the status source closes them at once. With `mqtt` set, a second listener
 * with the very same admission and tracking hands its sockets to the MQTT front end (mqtt/), whose
 * kill switch also sends a 5.0 DISCONNECT and closes the broker connection. `routes` proxies HTTP
 * requests and WebSockets of the HTTPS listener to upstreams (http/routes*.ts); each `tcp` listener
 * forwards its admitted connections' bytes after a PROXY v2 header (tcp/). Both use the same
 * admission and tracking, so the kill switch closes their connections too.
 *
 * Under `gateway.workers` > 1 each cluster worker runs one of these (cluster/): `workerId` shows in
 * /healthz, `ticketKeys` are the primary's shared session-ticket keys (ticket-keys.ts), and every
 * admitted connection's open and close goes to `sessions` (session-counts.ts), the primary's count.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { DeviceAdmission } from './admission.js';
import { ConnectionLimits, type ShedStats } from './connection-limits.js';
import { DeviceConnections } from './connections.js';
import { DeviceIdentityReader, type DeviceIdentity } from './device-identity.js';
import { createDeviceRequestHandler } from './device-routes.js';
import { RouteProxy, type RouteStats } from './http/routes.js';
import { proxyUpgrade } from './http/routes-upgrade.js';
import { registryFeedFactory } from './feed-subscription.js';
import { FeedStatusView } from './feed-status.js';
import { MqttFrontEnd, type MqttStats } from './mqtt/front-end.js';
import { OcspStatusView } from './ocsp-status.js';
import { resolveGatewayOptions, type DeviceGatewayOptions, type ResolvedGatewayOptions } from './options.js';
import { CertificateRecordCache, DeviceStatusCache } from './record-cache.js';
import {
  describeError, throttledWarn, watchReadiness, type CertificateStatusSource, type CertificateVerdict, type GatewayReadiness,
  type StatusEvents,
} from './status-source.js';
import { TcpFrontEnd, type TcpStats } from './tcp/front-end.js';
import { shareTicketKeys, checkTicketKeys, type TicketKeys } from './ticket-keys.js';
import { TelemetryUpstream } from './upstream.js';

export interface GatewayStats {
  /** TLS connections open now (admitted or being checked). */
  openConnections: number;
  admitted: number;
  refused: number;
  /** Connections closed because their certificate or device went bad. */
  closedByStatusChange: number;
  /** TLS handshakes in flight now, across all listeners. */
  pendingHandshakes: number;
  /** Connections closed before their handshake by the storm bounds (connection-limits.ts). */
  shed: ShedStats;
  /** True while connections were shed in the last few seconds. */
  shedding: boolean;
  /** The MQTT front end, when it is on. */
  mqtt?: MqttStats;
  /** The proxied HTTP routes, when there are any. */
  routes?: RouteStats;
  /** The TCP front ends, when there are any. */
  tcp?: TcpStats;
  /** Under gateway.workers > 1 (cluster/primary.ts): worker processes configured, live now, and restarted so far. */
  workers?: { configured: number; live: number; restarts: number };
}

export interface DeviceGateway {
  /** Loads the status source, then listens. Resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Stops listening, closes every connection and the status source. */
  close(): Promise<void>;
  address(): AddressInfo | null;
  /** The MQTT listener's address (null when the MQTT front end is off or not listening). */
  mqttAddress(): AddressInfo | null;
  /** The TCP listeners' addresses, in the order of the `tcp` option (null where not listening). */
  tcpAddresses(): (AddressInfo | null)[];
  /** For the composition root's plain-HTTP `/readyz` (the gateway port serves it to devices only). */
  readiness(): GatewayReadiness;
  /**
   * Read the revocation feed now: call it after a revocation in this process (as the API's
   * afterChange does). Resolves when the entries read have been applied (connections closed).
   */
  pokeFeed(): Promise<void>;
  stats(): GatewayStats;
  /**
   * Replaces the shared session-ticket keys (ticket-keys.ts) of every listener; only for a gateway
   * built with `ticketKeys` (a cluster worker). New tickets use `current` at once.
   */
  setTicketKeys(keys: TicketKeys): void;
}

const OCSP_DEVICE_CACHE_TTL_MS = 1_000;

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | undefined)?.then === 'function';
}

export function createDeviceGateway(options: DeviceGatewayOptions): DeviceGateway {
  const o: ResolvedGatewayOptions = resolveGatewayOptions(options);
  const { logger } = o;
  const connections = new DeviceConnections();
  const devices = new DeviceStatusCache(o.registry, o.now, o.statusSource === 'ocsp' ? OCSP_DEVICE_CACHE_TTL_MS : Number.POSITIVE_INFINITY);
  const counters = { admitted: 0, refused: 0, closedByStatusChange: 0 };

  const events: StatusEvents = {
    certificateBad(certKey, reason) {
      const n = connections.closeCertificate(certKey);
      if (n > 0) {
        counters.closedByStatusChange += n;
        logger.info('gateway closed connections of a certificate', { certKey, reason, connections: n });
      }
    },
    deviceStatus(deviceId, status) {
      devices.setStatus(deviceId, status);
      if (status !== 'active') closeDevice(deviceId, status);
    },
  };

  function closeDevice(deviceId: string, status: string): void {
    const n = connections.closeDevice(deviceId);
    if (n > 0) {
      counters.closedByStatusChange += n;
      logger.info('gateway closed connections of a device', { deviceId, status, connections: n });
    }
  }

  const status: CertificateStatusSource = o.statusSource === 'feed'
    ? new FeedStatusView({
      registry: o.registry, issuerIds: o.deviceIssuers.map((i) => i.id), statusGraceMs: o.statusGraceMs,
      factory: o.feed.factory ?? registryFeedFactory(o.registry, o.feed), events, logger, now: o.now,
    })
    : new OcspStatusView({ ...o.ocsp!, statusGraceMs: o.statusGraceMs, issuers: o.deviceIssuers, events, logger, now: o.now });
  const identities = new DeviceIdentityReader(o.deviceIssuers);
  const admission = new DeviceAdmission(status, devices, o.statusSource === 'feed' ? new CertificateRecordCache(o.registry) : undefined);
  const upstream = o.telemetry.upstreamUrl === undefined ? undefined
    : new TelemetryUpstream(o.telemetry.upstreamUrl, o.telemetry.upstreamCaPem, o.telemetry.upstreamTimeoutMs);

  const routes = new RouteProxy(o.routes, {
    logger, identityOf: (socket) => connections.identityOf(socket), isFresh: (id) => status.isFresh(id), activity: o.activity,
    upstreamTimeoutMs: o.idleTimeoutMs,
  });
  const ownRoutes = createDeviceRequestHandler({
    bodyLimitBytes: o.telemetry.bodyLimitBytes,
    ...(upstream !== undefined && { upstream }),
    ...(o.telemetry.sink !== undefined && { sink: o.telemetry.sink }),
    logger,
    identityOf: (socket) => connections.identityOf(socket),
    isFresh: (id) => status.isFresh(id),
    readiness: () => readiness(),
    now: o.now,
    activity: o.activity,
    ...(o.workerId !== undefined && { workerId: o.workerId }),
  });
  const httpServer = http.createServer({ keepAlive: true }, (req, res) => {
    if (!routes.handle(req, res)) ownRoutes(req, res);
  });
  if (routes.enabled) httpServer.on('upgrade', (req, socket, head) => proxyUpgrade(routes, req, socket, head));
  httpServer.timeout = o.idleTimeoutMs;
  httpServer.keepAliveTimeout = o.idleTimeoutMs;

  const open = new Set<TLSSocket>();
  // Sockets still in their TLS handshake are not in `open` yet; close() must end them too.
  const handshaking = new Set<import('node:net').Socket>();
  const limits = new ConnectionLimits(o.limits);
  // Every socket in `handshaking` that is not yet in `open` is still in its handshake (both sets
  // drop a socket on its close), so this is the count across all listeners at no extra cost.
  const pendingHandshakes = (): number => Math.max(0, handshaking.size - open.size);
  const warnShed = throttledWarn(logger, 'gateway is shedding new connections (reconnect storm)', 1_000);
  const warnHandshake = throttledWarn(logger, 'gateway refused a TLS handshake', 1_000);
  const warnRegistry = throttledWarn(logger, 'gateway cannot read the registry; refusing devices');
  let ticketKeys = o.ticketKeys;
  // Listeners that could not take the ticket-key hook (ticket-keys.ts): they get each new current key.
  const singleKeyServers: tls.Server[] = [];
  let sessionSeq = 0;

  function refuse(socket: TLSSocket, reason: string, fields: { deviceId?: string } & Record<string, unknown> = {}): void {
    counters.refused++;
    o.activity.refused(fields.deviceId as string | undefined, reason, socket.remoteAddress, (fields.frontEnd as 'mqtt' | 'tcp' | undefined) ?? 'http');
    logger.info('gateway refused a device connection', { reason, resumed: socket.isSessionReused(), ...fields });
    socket.destroy();
  }

  /**
   * One TLS listener with the shared admission: every front end (HTTP, MQTT) gets its sockets only
   * from here, checked the same way, tracked in the same DeviceConnections. `handOff` receives an
   * admitted socket still paused.
   */
  function deviceListener(frontEnd: 'https' | 'mqtt' | 'tcp', handOff: (socket: TLSSocket, id: DeviceIdentity) => void): net.Server {
    const server = tls.createServer({
      key: o.serverKeyPem,
      ...(o.serverKeyPassphrase !== undefined && { passphrase: o.serverKeyPassphrase }),
      cert: o.serverCertificatesPem,
      ca: o.trustAnchorsPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      honorCipherOrder: true,
      handshakeTimeout: o.handshakeTimeoutMs,
      // Workers of one cluster must agree on it, or a ticket from one is refused by another; the
      // default is derived from process.argv.
      ...(ticketKeys !== undefined && { sessionIdContext: `kakuin-gateway-${frontEnd}` }),
    });
    if (ticketKeys !== undefined && !shareTicketKeys(server, () => ticketKeys!)) singleKeyServers.push(server);
    const tag = frontEnd === 'https' ? {} : { frontEnd };

    function decide(socket: TLSSocket, verdict: CertificateVerdict, identity: DeviceIdentity, fields: Record<string, unknown>): void {
      if (socket.destroyed) return;
      if (!verdict.ok) {
        refuse(socket, verdict.reason, fields);
        return;
      }
      const remoteAddress = socket.remoteAddress;
      const front = frontEnd === 'https' ? 'http' : frontEnd;
      // The detections' clone rule: a second session from another address may be refused here.
      const gated = o.sessionGate?.refuse(identity.deviceId, remoteAddress, front);
      if (gated !== undefined) {
        refuse(socket, gated, fields);
        return;
      }
      counters.admitted++;
      o.activity.admitted(identity.deviceId, remoteAddress, front);
      const sessionId = String(++sessionSeq);
      o.sessions.opened({ id: sessionId, certKey: identity.certKey, deviceId: identity.deviceId, remoteAddress, frontEnd: front });
      socket.once('close', () => {
        o.activity.closed(identity.deviceId, remoteAddress, front);
        o.sessions.closed(sessionId);
      });
      handOff(socket, identity);
    }

    server.on('secureConnection', (socket: TLSSocket) => {
      // Nothing reads the socket until it is admitted.
      socket.pause();
      socket.on('error', () => { /* the close that follows is what matters */ });
      open.add(socket);
      socket.once('close', () => open.delete(socket));
      if (!socket.authorized) {
        refuse(socket, `client certificate not authorized: ${String(socket.authorizationError)}`, tag);
        return;
      }
      const id = identities.read(socket.getPeerX509Certificate()?.raw, o.now());
      if (!id.ok) {
        refuse(socket, id.reason, tag);
        return;
      }
      const fields = { deviceId: id.identity.deviceId, serialHex: id.identity.serialHex, issuerId: id.identity.issuerId, ...tag };
      connections.add(socket, id.identity);
      let verdict: CertificateVerdict | Promise<CertificateVerdict>;
      try {
        verdict = admission.check(id.identity);
      } catch (e) {
        verdict = Promise.reject(e);
      }
      if (!isPromise(verdict)) {
        decide(socket, verdict, id.identity, fields);
        return;
      }
      verdict.then((v) => decide(socket, v, id.identity, fields), (e: unknown) => {
        warnRegistry({ error: describeError(e) });
        if (!socket.destroyed) refuse(socket, 'registry unavailable', fields);
      });
    });
    // The port is a plain TCP listener in front of the TLS server: a shed connection is closed
    // before Node wraps it in a TLSSocket (that wrap is most of an accepted socket's cost, and a
    // storm's sockets all arrive in one poll phase). Admitted ones are handed to the TLS server the
    // way Node's own listener does it, in the same tick, so no byte is missed.
    // Handshake flights and small responses go out at once (no Nagle delay on top of the RTT).
    const front = net.createServer({ noDelay: true });
    front.on('connection', (socket: net.Socket) => {
      // Counted before it joins: this socket's own handshake is one of the pending ones.
      const shed = limits.admit(pendingHandshakes() + 1, socket.remoteAddress);
      if (shed !== null) {
        warnShed({
          code: shed === 'handshakes' ? 'KAKUIN_E_HANDSHAKES_SHED' : 'KAKUIN_E_SOURCE_RATE_LIMITED',
          remoteAddress: socket.remoteAddress, pendingHandshakes: pendingHandshakes(), ...tag,
        });
        // No TLS byte is read or written: the device sees its connection closed and retries later.
        socket.destroy();
        return;
      }
      handshaking.add(socket);
      socket.once('close', () => handshaking.delete(socket));
      server.emit('connection', socket);
    });

    server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      warnHandshake({ error: err.code ?? err.message, remoteAddress: socket.remoteAddress, ...tag });
      // With a listener attached Node leaves the socket open: a client that never finishes its
      // handshake (or a slow-loris) would keep it, and a file descriptor, forever.
      socket.destroy();
    });
    return front;
  }

  const tlsServer = deviceListener('https', (socket) => {
    httpServer.emit('connection', socket);
    socket.resume();
  });
  const mqtt = o.mqtt === undefined ? undefined : new MqttFrontEnd(o.mqtt, {
    registry: o.registry, logger, connections, activity: o.activity, isFresh: (id) => status.isFresh(id),
  });
  const mqttServer = mqtt === undefined ? undefined : deviceListener('mqtt', (socket, id) => mqtt.accept(socket, id));
  const tcp = o.tcp.map((listener) => {
    const front = new TcpFrontEnd(listener, { logger, isFresh: (id) => status.isFresh(id), activity: o.activity });
    return { front, server: deviceListener('tcp', (socket, id) => front.accept(socket, id)) };
  });

  let started: Promise<void> | undefined;
  let startedOk = false;
  const stoppers: (() => void)[] = [];

  function readiness(): GatewayReadiness {
    // Shedding is reported, not made a readiness failure: revocation status is still known, and in
    // a fleet-wide storm every gateway sheds, so taking them all out of a balancer refuses everyone.
    const load = { shedding: limits.shedding(), pendingHandshakes: pendingHandshakes() };
    if (!startedOk) return { ready: false, statusSource: status.kind, statusGraceMs: o.statusGraceMs, reason: 'not started', ...load };
    return { ...status.readiness(), ...load };
  }

  function startOnce(): Promise<void> {
    started ??= (async () => {
      await status.start();
      startedOk = true;
      stoppers.push(watchReadiness(status, logger, Math.min(1_000, Math.max(50, Math.floor(o.statusGraceMs / 4)))));
      if (o.ocsp !== undefined && status.recheck !== undefined) {
        const recheck = status.recheck.bind(status);
        const timer = setInterval(() => {
          const connected = [...connections.connectedIdentities()];
          recheck(connected);
          for (const id of connected) {
            Promise.resolve(devices.status(id.deviceId)).then((s) => {
              if (s !== 'active') closeDevice(id.deviceId, s);
            }, () => { /* a registry failure is not a verdict on the device */ });
          }
        }, o.ocsp.recheckIntervalMs);
        timer.unref();
        stoppers.push(() => clearInterval(timer));
      }
    })();
    return started;
  }

  function listenOn(server: net.Server, port: number, host: string | undefined): Promise<AddressInfo> {
    return new Promise<AddressInfo>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        resolve(server.address() as AddressInfo);
      });
    });
  }

  function closeServer(server: net.Server | undefined): Promise<void> {
    return server?.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
  }

  return {
    async listen(port, host) {
      await startOnce();
      const address = await listenOn(tlsServer, port, host);
      logger.info('device gateway listening', { port: address.port, host: address.address, statusSource: status.kind });
      if (mqttServer !== undefined && mqtt !== undefined) {
        const m = await listenOn(mqttServer, mqtt.options.port, host).catch(async (e: unknown) => {
          await closeServer(tlsServer);
          throw e;
        });
        const u = mqtt.options.upstream;
        logger.info('device gateway MQTT listening', { port: m.port, host: m.address, upstream: `${u.tls ? 'mqtts' : 'mqtt'}://${u.host}:${u.port}` });
      }
      for (const t of tcp) {
        const a = await listenOn(t.server, t.front.options.port, host).catch(async (e: unknown) => {
          await Promise.all([closeServer(tlsServer), closeServer(mqttServer), ...tcp.map((x) => closeServer(x.server))]);
          throw e;
        });
        logger.info('device gateway TCP listening', { port: a.port, host: a.address, upstream: `${t.front.options.upstream.host}:${t.front.options.upstream.port}` });
      }
      return address;
    },
    async close() {
      for (const stop of stoppers.splice(0)) stop();
      limits.stop();
      const closed = Promise.all([closeServer(tlsServer), closeServer(mqttServer), ...tcp.map((t) => closeServer(t.server))]);
      for (const socket of open) socket.destroy();
      for (const socket of handshaking) socket.destroy();
      await closed;
      await status.stop();
      upstream?.close();
      routes.close();
    },
    address: () => tlsServer.address() as AddressInfo | null,
    mqttAddress: () => (mqttServer?.listening ? mqttServer.address() as AddressInfo : null),
    tcpAddresses: () => tcp.map((t) => (t.server.listening ? t.server.address() as AddressInfo : null)),
    readiness,
    pokeFeed: () => status.poke(),
    setTicketKeys(keys) {
      if (ticketKeys === undefined) throw new TypeError('setTicketKeys needs a gateway built with ticketKeys');
      ticketKeys = checkTicketKeys(keys);
      for (const server of singleKeyServers) server.setTicketKeys(keys.current);
    },
    stats: () => ({
      openConnections: open.size, ...counters, pendingHandshakes: pendingHandshakes(), shed: { ...limits.shed }, shedding: limits.shedding(), ...(mqtt !== undefined && { mqtt: mqtt.stats() }),
      ...(routes.enabled && { routes: { ...routes.counters } }), ...(tcp.length > 0 && { tcp: TcpFrontEnd.sum(tcp.map((t) => t.front)) }),
    }),
  };
}
