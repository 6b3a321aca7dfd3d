/**
 * A raw TCP front end of the device gateway (DESIGN.md "gateway-auth/": one admission and one kill
 * switch shared by its front ends). gateway.ts runs its TLS listener with the same handshake
 * admission as the HTTP and MQTT ones and hands each admitted socket here; this opens a plain TCP
 * connection to the upstream service, writes a PROXY v2 header naming the device (proxy-header.ts),
 * then relays bytes both ways unchanged. The kill switch destroys the device socket; its `close`
 * destroys the upstream connection, so a revoked device's stream is cut at both ends.
 */
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ActivityRecorder } from '../activity-recorder.js';
import type { DeviceIdentity } from '../device-identity.js';
import type { GatewayLogger } from '../options.js';
import { describeError, throttledWarn } from '../status-source.js';
import type { ResolvedTcpListener } from './options.js';
import { proxyV2Header } from './proxy-header.js';

export interface TcpStats {
  /** Device connections relayed now. */
  connections: number;
  /** Connections relayed since start. */
  forwarded: number;
  /** Upstream connections that failed or broke. */
  upstreamErrors: number;
  /** Refused at hand-over because the status could not be confirmed. */
  refusedStale: number;
}

export class TcpFrontEnd {
  private readonly counters: TcpStats = { connections: 0, forwarded: 0, upstreamErrors: 0, refusedStale: 0 };
  private readonly warnUpstream: (fields: Record<string, unknown>) => void;

  constructor(readonly options: ResolvedTcpListener, private readonly deps: { logger: GatewayLogger; isFresh(id: DeviceIdentity): boolean; activity: ActivityRecorder }) {
    this.warnUpstream = throttledWarn(deps.logger, 'tcp gateway cannot reach its upstream', 1_000);
  }

  static sum(fronts: readonly TcpFrontEnd[]): TcpStats {
    const total: TcpStats = { connections: 0, forwarded: 0, upstreamErrors: 0, refusedStale: 0 };
    for (const f of fronts) {
      for (const k of Object.keys(total) as (keyof TcpStats)[]) total[k] += f.counters[k];
    }
    return total;
  }

  stats(): TcpStats {
    return { ...this.counters };
  }

  /** An admitted, paused device socket. */
  accept(socket: TLSSocket, id: DeviceIdentity): void {
    if (!this.deps.isFresh(id)) {
      // Fail closed, as the other front ends do when the status is stale.
      this.counters.refusedStale++;
      this.deps.logger.info('tcp gateway refused a connection: status stale', { deviceId: id.deviceId });
      socket.destroy();
      return;
    }
    const { upstream } = this.options;
    const header = proxyV2Header(socket, id);
    const up = net.connect({ host: upstream.host, port: upstream.port, noDelay: true });
    this.counters.connections++;
    this.counters.forwarded++;
    let upOpen = false;
    up.once('connect', () => { upOpen = true; });
    up.on('error', (e) => {
      this.counters.upstreamErrors++;
      this.warnUpstream({ deviceId: id.deviceId, upstream: `${upstream.host}:${upstream.port}`, connected: upOpen, error: describeError(e) });
    });
    up.once('close', () => socket.destroy());
    socket.once('close', () => {
      this.counters.connections--;
      up.destroy();
    });
    socket.setKeepAlive(true, 60_000);
    // Activity: the device's bytes, reported in 64 KiB steps and at close (never per read).
    let bytes = 0;
    let reads = 0;
    socket.on('data', (c: Buffer) => {
      bytes += c.length;
      reads++;
      if (bytes >= 65_536) {
        this.deps.activity.traffic(id.deviceId, reads, bytes);
        bytes = 0;
        reads = 0;
      }
    });
    socket.once('close', () => { if (reads > 0) this.deps.activity.traffic(id.deviceId, reads, bytes); });
    // Written before any device byte: the header is the first thing the upstream reads (§2).
    up.write(header);
    socket.pipe(up).pipe(socket);
    socket.resume();
  }
}
