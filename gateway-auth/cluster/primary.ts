/**
 * `gateway.workers` > 1: the device gateway on every core. This process (the cluster primary)
 * forks N worker processes that each run a whole gateway (cli/gateway-worker.ts builds it) on the
 * same ports. Node 20 has no `reusePort`, so Node's cluster module does the sharing: a worker's
 * `listen` is handed to the primary, which binds once, accepts, and passes each connection to a
 * worker in turn (SCHED_RR, Node's default on Linux). No device-facing TLS runs here.
 *
 * What the primary holds:
 * - the workers: the first started alone (so a bad option fails once), then the others, all asking
 *   for the same ports (with port 0, a random port shared until no worker listens on it), restarted when one dies (backoff from `restartBackoffMs.min` doubling to `.max` while a slot
 *   keeps dying within RESTART_RESET_MS of its start), stopped on close;
 * - the session-ticket keys (ticket-keys.ts): 48 random bytes, a new one every
 *   `ticketKeyRotationMs` (default TICKET_KEY_ROTATION_MS, 1 h) sent to every worker, the previous
 *   one still opened for one more interval, so a device resumes on any worker;
 * - the open sessions per certificate of every worker (session-counts.ts `SessionCounts`, as
 *   `sessions`): each worker reports opens and closes, and a dead worker's sessions are dropped;
 * - without a telemetry upstream, the one telemetry file: workers send each receipt here and answer
 *   the device once it is written;
 * - `readiness()` and `stats()` for /readyz and /metrics: each worker reports both every
 *   `reportIntervalMs`. Ready when at least one worker listens and every listening worker is ready
 *   with a report younger than three intervals; feedLagMs is the largest. Counters are the sum over
 *   the live workers plus the last report of each worker that exited (they never go backwards);
 *   gauges (open connections, handshakes in flight, WebSockets, relayed TCP) sum the live ones.
 *
 * `pokeFeed()` asks every worker to read the revocation feed now and resolves when all have
 * answered (or after `pokeTimeoutMs`): a revocation made in this process returns once every
 * worker has closed the device's connections. Each worker also follows the feed on its own.
 */
import type { ActivityRecorder } from '../activity-recorder.js';
import { replayActivity } from './activity-relay.js';
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { KakuinError } from '../../errors/index.js';
import type { DeviceGateway, GatewayStats } from '../gateway.js';
import type { GatewayLogger, TelemetrySink } from '../options.js';
import { SessionTable, type SessionCounts } from '../session-counts.js';
import type { GatewayReadiness } from '../status-source.js';
import { checkTicketKeys, newTicketKey, type TicketKeys } from '../ticket-keys.js';
import { isWorkerMessage, type ListeningAddresses, type PrimaryMessage, type WireTicketKeys, type WorkerListen, type WorkerMessage } from './protocol.js';

/** How often the shared session-ticket key is replaced; the previous one is still accepted for one more. */
export const TICKET_KEY_ROTATION_MS = 3_600_000;
/** A worker that lived this long before dying restarts after the minimum backoff again. */
const RESTART_RESET_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

export interface GatewayClusterOptions {
  workers: number;
  /** The script each worker runs (it calls serveAsGatewayWorker). */
  exec: string;
  /** Handed to every worker's build function as is (JSON-safe: it crosses the IPC channel). */
  payload: unknown;
  logger: GatewayLogger;
  /** Without a telemetry upstream: where the workers' receipts are recorded (one writer, this process). */
  telemetrySink?: TelemetrySink;
  /**
   * Where the workers' device activity is recorded (activity-relay.ts: this process's aggregator, and
   * in `kakuin serve` the detections feed in front of it). Unset: each worker records its own.
   */
  activity?: ActivityRecorder;
  /** For readiness before the first report. */
  statusSource: 'feed' | 'ocsp';
  statusGraceMs: number;
  ticketKeyRotationMs?: number;
  reportIntervalMs?: number;
  pokeTimeoutMs?: number;
  startTimeoutMs?: number;
  restartBackoffMs?: { min: number; max: number };
}

interface Slot {
  n: number;
  worker?: Worker;
  startedAt: number;
  quickExits: number;
  listening: boolean;
  restartTimer?: NodeJS.Timeout;
  report?: { at: number; stats: GatewayStats; readiness: GatewayReadiness };
}

export interface WorkerState {
  slot: number;
  pid: number | undefined;
  listening: boolean;
  ready: boolean;
  /** Its last report (undefined before the first). */
  stats?: GatewayStats;
}

const GAUGES: readonly string[] = ['openConnections', 'pendingHandshakes', 'shedding', 'mqtt.connections', 'tcp.connections', 'routes.webSockets'];

function wire(k: TicketKeys): WireTicketKeys {
  return { current: k.current.toString('base64'), ...(k.previous !== undefined && { previous: k.previous.toString('base64') }) };
}

/** a + b, field by field: numbers added, booleans or-ed, nested objects merged the same way. */
function addStats(a: unknown, b: unknown, path = '', skip: ReadonlySet<string> = new Set()): unknown {
  if (typeof b === 'number') return (skip.has(path) ? 0 : b) + (typeof a === 'number' ? a : 0);
  if (typeof b === 'boolean') return (skip.has(path) ? false : b) || a === true;
  if (typeof b === 'object' && b !== null) {
    const out: Record<string, unknown> = { ...(typeof a === 'object' && a !== null ? a as Record<string, unknown> : {}) };
    for (const [k, v] of Object.entries(b)) out[k] = addStats(out[k], v, path === '' ? k : `${path}.${k}`, skip);
    return out;
  }
  return a;
}

export class GatewayCluster implements DeviceGateway {
  private readonly table = new SessionTable();
  /** Open sessions per certificate across every worker (the clone rule's query). */
  readonly sessions: SessionCounts = this.table;
  private readonly slots: Slot[];
  private readonly o: Required<Omit<GatewayClusterOptions, 'payload' | 'telemetrySink' | 'activity'>> & Pick<GatewayClusterOptions, 'payload' | 'telemetrySink' | 'activity'>;
  private keys: TicketKeys = { current: newTicketKey() };
  private rotation: NodeJS.Timeout | undefined;
  private ports: WorkerListen | undefined;
  private addresses: ListeningAddresses | undefined;
  private retired: GatewayStats | undefined;
  private restarts = 0;
  private stopping = false;
  private pokeSeq = 0;
  private readonly pokes = new Map<number, { waiting: Set<number>; done: () => void }>();

  constructor(options: GatewayClusterOptions) {
    if (!Number.isSafeInteger(options.workers) || options.workers < 1) throw new KakuinError('KAKUIN_E_CONFIG', 'gateway: workers must be a positive integer');
    this.o = {
      ticketKeyRotationMs: TICKET_KEY_ROTATION_MS, reportIntervalMs: 1_000, pokeTimeoutMs: 2_000, startTimeoutMs: 60_000,
      restartBackoffMs: { min: 200, max: 10_000 }, ...options,
    };
    this.slots = Array.from({ length: options.workers }, (_, i) => ({ n: i + 1, startedAt: 0, quickExits: 0, listening: false }));
  }

  async listen(port: number, host?: string): Promise<AddressInfo> {
    if (!cluster.isPrimary) throw new Error('GatewayCluster runs in a cluster primary only');
    this.rotation = setInterval(() => this.rotateTicketKeys(), this.o.ticketKeyRotationMs);
    this.rotation.unref();
    try {
      // Every worker asks for the very ports it was configured with, port 0 included: the primary
      // keys its shared listening handles by the requested address and port, so a worker asking for
      // the port another one bound (instead of 0) would make it bind a second time (EADDRINUSE).
      this.ports = { port, ...(host !== undefined && { host }) };
      const first = await this.spawn(this.slots[0], this.ports);
      this.addresses = first;
      await Promise.all(this.slots.slice(1).map((s) => this.spawn(s, this.ports!)));
    } catch (e) {
      await this.close();
      throw e;
    }
    this.o.logger.info('device gateway workers listening', { workers: this.slots.length, port: this.addresses.https.port });
    return this.addresses.https;
  }

  /** Replaces the shared ticket key now (the timer does it every ticketKeyRotationMs). */
  rotateTicketKeys(): void {
    this.keys = { current: newTicketKey(), previous: this.keys.current };
    this.broadcast({ type: 'kakuin-gateway-ticket-keys', ticketKeys: wire(this.keys) });
  }

  setTicketKeys(keys: TicketKeys): void {
    this.keys = checkTicketKeys(keys);
    this.broadcast({ type: 'kakuin-gateway-ticket-keys', ticketKeys: wire(this.keys) });
  }

  /** The workers now (tests, operators' diagnostics). */
  workers(): WorkerState[] {
    return this.slots.map((s) => ({
      slot: s.n, pid: s.worker?.process.pid, listening: s.listening, ready: s.listening && s.report?.readiness.ready === true,
      ...(s.report !== undefined && { stats: s.report.stats }),
    }));
  }

  pokeFeed(): Promise<void> {
    const live = this.slots.filter((s) => s.listening && s.worker !== undefined);
    if (live.length === 0) return Promise.resolve();
    const n = ++this.pokeSeq;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.pokes.delete(n);
        this.o.logger.warn('gateway workers did not all answer a feed poke in time', { timeoutMs: this.o.pokeTimeoutMs });
        resolve();
      }, this.o.pokeTimeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.pokes.delete(n);
        resolve();
      };
      this.pokes.set(n, { waiting: new Set(live.map((s) => s.worker!.id)), done });
      for (const s of live) this.send(s.worker!, { type: 'kakuin-gateway-poke', n });
    });
  }

  readiness(): GatewayReadiness {
    const base = { statusSource: this.o.statusSource, statusGraceMs: this.o.statusGraceMs };
    const live = this.slots.filter((s) => s.listening);
    const fresh = (s: Slot) => s.report !== undefined && Date.now() - s.report.at < 3 * this.o.reportIntervalMs;
    const ready = live.filter((s) => fresh(s) && s.report!.readiness.ready);
    const workers = { configured: this.slots.length, live: live.length, ready: ready.length };
    if (live.length === 0) return { ...base, ready: false, reason: this.addresses === undefined ? 'not started' : 'no gateway worker is running', workers };
    const reports = live.filter(fresh).map((s) => s.report!.readiness);
    const lags = reports.map((r) => r.feedLagMs).filter((v): v is number => v !== undefined);
    const seqs = reports.map((r) => r.lastFeedSeq).filter((v): v is number => v !== undefined);
    const notReady = live.find((s) => !ready.includes(s));
    return {
      ...base,
      ready: notReady === undefined,
      ...(lags.length > 0 && { feedLagMs: Math.max(...lags) }),
      ...(seqs.length > 0 && { lastFeedSeq: Math.min(...seqs) }),
      ...(notReady !== undefined && {
        reason: `worker ${notReady.n}: ${fresh(notReady) ? notReady.report!.readiness.reason ?? 'not ready' : 'no recent report'}`,
      }),
      shedding: reports.some((r) => r.shedding === true),
      pendingHandshakes: reports.reduce((sum, r) => sum + (r.pendingHandshakes ?? 0), 0),
      workers,
    };
  }

  stats(): GatewayStats {
    let sum: unknown = {
      openConnections: 0, admitted: 0, refused: 0, closedByStatusChange: 0, pendingHandshakes: 0, shed: { handshakes: 0, sourceRate: 0 }, shedding: false,
    };
    if (this.retired !== undefined) sum = addStats(sum, this.retired);
    for (const s of this.slots) if (s.worker !== undefined && s.report !== undefined) sum = addStats(sum, s.report.stats);
    return {
      ...(sum as GatewayStats),
      workers: { configured: this.slots.length, live: this.slots.filter((s) => s.listening).length, restarts: this.restarts },
    };
  }

  address(): AddressInfo | null {
    return this.addresses?.https ?? null;
  }

  mqttAddress(): AddressInfo | null {
    return this.addresses?.mqtt ?? null;
  }

  tcpAddresses(): (AddressInfo | null)[] {
    return this.addresses?.tcp ?? [];
  }

  async close(): Promise<void> {
    this.stopping = true;
    clearInterval(this.rotation);
    for (const p of [...this.pokes.values()]) p.done();
    await Promise.all(this.slots.map(async (s) => {
      clearTimeout(s.restartTimer);
      const w = s.worker;
      if (w === undefined) return;
      const exited = new Promise<void>((resolve) => {
        if (w.isDead()) resolve();
        else w.once('exit', () => resolve());
      });
      this.send(w, { type: 'kakuin-gateway-stop' });
      const timer = setTimeout(() => w.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }));
  }

  private send(w: Worker, m: PrimaryMessage): void {
    if (w.isConnected()) w.send(m);
  }

  private broadcast(m: PrimaryMessage): void {
    for (const s of this.slots) if (s.worker !== undefined) this.send(s.worker, m);
  }

  /** Forks the slot's worker; resolves once it listens, rejects if it fails or exits first. */
  private spawn(slot: Slot, listen: WorkerListen): Promise<ListeningAddresses> {
    cluster.setupPrimary({ exec: this.o.exec, args: [], silent: false });
    const w = cluster.fork({ KAKUIN_GATEWAY_WORKER_SLOT: String(slot.n) });
    slot.worker = w;
    slot.startedAt = Date.now();
    slot.listening = false;
    slot.report = undefined;
    return new Promise<ListeningAddresses>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        fail(new KakuinError('KAKUIN_E_INTERNAL', `gateway worker ${slot.n} did not start within ${this.o.startTimeoutMs} ms`));
        w.process.kill('SIGKILL');
      }, this.o.startTimeoutMs);
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(e);
      };
      w.on('message', (m: unknown) => {
        if (!isWorkerMessage(m)) return;
        if (m.type === 'kakuin-gateway-hello') {
          this.send(w, {
            type: 'kakuin-gateway-start', slot: slot.n, payload: this.o.payload, listen, ticketKeys: wire(this.keys), reportIntervalMs: this.o.reportIntervalMs,
            telemetryToPrimary: this.o.telemetrySink !== undefined,
            activityToPrimary: this.o.activity !== undefined,
          });
          return;
        }
        if (m.type === 'kakuin-gateway-listening' && !settled) {
          settled = true;
          clearTimeout(timer);
          slot.listening = true;
          resolve(m.addresses);
          return;
        }
        if (m.type === 'kakuin-gateway-failed') {
          fail(m.code?.startsWith('KAKUIN_E_') ? new KakuinError(m.code as never, m.error) : Object.assign(new Error(m.error), { code: m.code }));
          return;
        }
        this.onMessage(slot, w, m);
      });
      w.once('exit', (code, signal) => {
        fail(new KakuinError('KAKUIN_E_INTERNAL', `gateway worker ${slot.n} exited while starting (code ${String(code)}, signal ${String(signal)})`));
        this.onExit(slot, w, code, signal);
      });
    });
  }

  private onMessage(slot: Slot, w: Worker, m: WorkerMessage): void {
    switch (m.type) {
      case 'kakuin-gateway-report':
        slot.report = { at: Date.now(), stats: m.stats, readiness: m.readiness };
        break;
      case 'kakuin-gateway-session-open':
        this.table.openOn(slot.n, `${w.id}:${m.session.id}`, m.session);
        break;
      case 'kakuin-gateway-session-close':
        this.table.close(`${w.id}:${m.id}`);
        break;
      case 'kakuin-gateway-telemetry': {
        const answer = (error?: string) => this.send(w, { type: 'kakuin-gateway-telemetry-done', n: m.n, ...(error !== undefined && { error }) });
        const sink = this.o.telemetrySink;
        if (sink === undefined) answer('no telemetry sink');
        else sink.record({ ...m.record, receivedAt: new Date(m.record.receivedAt) }).then(() => answer(), (e: unknown) => answer(String((e as Error)?.message ?? e)));
        break;
      }
      case 'kakuin-gateway-activity':
        if (this.o.activity !== undefined) replayActivity(this.o.activity, m.calls);
        break;
      case 'kakuin-gateway-poked': {
        const p = this.pokes.get(m.n);
        p?.waiting.delete(w.id);
        if (p?.waiting.size === 0) p.done();
        break;
      }
      default:
        break;
    }
  }

  private onExit(slot: Slot, w: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== w) return;
    const wasListening = slot.listening;
    slot.worker = undefined;
    slot.listening = false;
    if (slot.report !== undefined) {
      this.retired = addStats(this.retired, slot.report.stats, '', new Set(GAUGES)) as GatewayStats;
      slot.report = undefined;
    }
    const dropped = this.table.dropPrefix(`${w.id}:`);
    for (const p of [...this.pokes.values()]) {
      p.waiting.delete(w.id);
      if (p.waiting.size === 0) p.done();
    }
    // A worker that never listened failed its start: listen() reports that; nothing to restart yet.
    if (this.stopping || this.ports === undefined || (!wasListening && this.addresses === undefined)) return;
    slot.quickExits = Date.now() - slot.startedAt < RESTART_RESET_MS ? slot.quickExits + 1 : 0;
    const { min, max } = this.o.restartBackoffMs;
    const delayMs = Math.min(max, min * 2 ** Math.max(0, slot.quickExits - 1));
    this.o.logger.warn('gateway worker exited; restarting it', { slot: slot.n, code, signal, sessionsDropped: dropped, restartInMs: delayMs });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.stopping) return;
      this.restarts++;
      this.spawn(slot, this.ports!).catch((e: unknown) => this.o.logger.error('gateway worker did not start again', { slot: slot.n, error: String(e) }));
    }, delayMs);
    slot.restartTimer.unref();
  }
}
