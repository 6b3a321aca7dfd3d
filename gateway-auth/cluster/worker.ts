/**
 * A gateway cluster worker's side of the IPC protocol (protocol.ts): it waits for its start message,
 * has the composition root build the gateway (`build`, cli/gateway-worker.ts), listens on the shared
 * ports (Node's cluster module hands each listen to the primary, which accepts and distributes the
 * connections), and from then on reports its stats and readiness, every admitted session's open and
 * close, answers pokes after reading the revocation feed, and takes new session-ticket keys.
 *
 * The worker follows the revocation feed itself (its own FeedStatusView), so the kill switch holds
 * in it even if the primary is busy; a poke only makes it read at once. When the primary goes away
 * (the IPC channel disconnects) the worker closes its gateway and exits: no orphan keeps a port.
 */
import type { DeviceGateway } from '../gateway.js';
import type { TelemetrySink } from '../options.js';
import type { ActivityRecorder } from '../activity-recorder.js';
import { relayingRecorder } from './activity-relay.js';
import type { SessionReporter } from '../session-counts.js';
import type { TicketKeys } from '../ticket-keys.js';
import { isPrimaryMessage, type PrimaryMessage, type WireTicketKeys, type WorkerListen, type WorkerMessage } from './protocol.js';

export interface WorkerStart {
  slot: number;
  /** What the primary's composition root put in (GatewayClusterOptions.payload). */
  payload: unknown;
  listen: WorkerListen;
  ticketKeys: TicketKeys;
  /** Report every admitted session here (it goes to the primary's SessionTable). */
  sessions: SessionReporter;
  /** Present when the primary records telemetry (no upstream): use it as the gateway's sink. */
  telemetry?: TelemetrySink;
  /** Present when the primary records device activity (and runs detections): use it as the gateway's recorder. */
  activity?: ActivityRecorder;
}

export interface BuiltWorkerGateway {
  gateway: DeviceGateway;
  /** Closes what the composition root opened around the gateway (registry, sink, activity). */
  close(): Promise<void>;
}

function keysFromWire(k: WireTicketKeys): TicketKeys {
  return { current: Buffer.from(k.current, 'base64'), ...(k.previous !== undefined && { previous: Buffer.from(k.previous, 'base64') }) };
}

/** Runs this process as a gateway worker; call once, in a process forked by GatewayCluster. */
export function serveAsGatewayWorker(build: (start: WorkerStart) => Promise<BuiltWorkerGateway>): void {
  if (typeof process.send !== 'function') throw new Error('serveAsGatewayWorker: not a cluster worker (no IPC channel)');
  const send = (m: WorkerMessage): void => {
    if (process.connected) process.send!(m);
  };
  let built: BuiltWorkerGateway | undefined;
  let report: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  const pendingKeys: TicketKeys[] = [];

  const stop = (code: number): Promise<void> => {
    stopping ??= (async () => {
      clearInterval(report);
      await built?.close().catch(() => undefined);
      // The last connections' closes (made by the close above) still reach the primary.
      relay.flush();
      process.exit(code);
    })();
    return stopping;
  };

  const sessions: SessionReporter = {
    opened: (session) => send({ type: 'kakuin-gateway-session-open', session }),
    closed: (id) => send({ type: 'kakuin-gateway-session-close', id }),
  };

  const relay = relayingRecorder((calls) => send({ type: 'kakuin-gateway-activity', calls }));

  // A receipt is answered (202) only once the primary has written it, as in a single process.
  let telemetrySeq = 0;
  const recording = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  const telemetry: TelemetrySink = {
    record: (r) => new Promise<void>((resolve, reject) => {
      if (!process.connected) {
        reject(new Error('the gateway primary is gone'));
        return;
      }
      const n = ++telemetrySeq;
      recording.set(n, { resolve, reject });
      send({ type: 'kakuin-gateway-telemetry', n, record: { ...r, receivedAt: r.receivedAt.toISOString() } });
    }),
  };

  async function start(m: Extract<PrimaryMessage, { type: 'kakuin-gateway-start' }>): Promise<void> {
    try {
      built = await build({
        slot: m.slot, payload: m.payload, listen: m.listen, ticketKeys: keysFromWire(m.ticketKeys), sessions,
        ...(m.telemetryToPrimary && { telemetry }),
        ...(m.activityToPrimary === true && { activity: relay }),
      });
      for (const k of pendingKeys.splice(0)) built.gateway.setTicketKeys(k);
      const g = built.gateway;
      const https = await g.listen(m.listen.port, m.listen.host);
      send({ type: 'kakuin-gateway-listening', addresses: { https, mqtt: g.mqttAddress(), tcp: g.tcpAddresses() } });
      const tick = () => send({ type: 'kakuin-gateway-report', stats: g.stats(), readiness: g.readiness() });
      tick();
      report = setInterval(tick, m.reportIntervalMs);
      report.unref();
    } catch (e) {
      send({ type: 'kakuin-gateway-failed', error: (e as Error)?.message ?? String(e), ...(typeof (e as { code?: unknown })?.code === 'string' && { code: (e as { code: string }).code }) });
      await stop(1);
    }
  }

  process.on('message', (m: unknown) => {
    if (!isPrimaryMessage(m)) return;
    switch (m.type) {
      case 'kakuin-gateway-start':
        void start(m);
        break;
      case 'kakuin-gateway-ticket-keys': {
        const keys = keysFromWire(m.ticketKeys);
        if (built === undefined) pendingKeys.push(keys);
        else built.gateway.setTicketKeys(keys);
        break;
      }
      case 'kakuin-gateway-poke': {
        const answer = () => {
          // What the poke changed (connections closed) shows in /metrics at once, not a report later.
          if (built !== undefined) send({ type: 'kakuin-gateway-report', stats: built.gateway.stats(), readiness: built.gateway.readiness() });
          send({ type: 'kakuin-gateway-poked', n: m.n });
        };
        if (built === undefined) answer();
        else built.gateway.pokeFeed().then(answer, answer);
        break;
      }
      case 'kakuin-gateway-telemetry-done': {
        const p = recording.get(m.n);
        recording.delete(m.n);
        if (m.error === undefined) p?.resolve();
        else p?.reject(new Error(m.error));
        break;
      }
      case 'kakuin-gateway-stop':
        void stop(0);
        break;
    }
  });
  // The primary exited (or was killed): nothing distributes connections to this worker any more.
  // Ctrl-C reaches the whole process group: the primary stops the workers in order (its close()).
  process.on('SIGINT', () => { /* the primary's stop message follows */ });
  process.on('disconnect', () => {
    for (const p of recording.values()) p.reject(new Error('the gateway primary is gone'));
    recording.clear();
    void stop(0);
  });
  send({ type: 'kakuin-gateway-hello' });
}
