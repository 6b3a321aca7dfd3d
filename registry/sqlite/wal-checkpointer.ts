/**
 * WAL checkpoints in a worker thread. A checkpoint copies committed pages from the WAL into the
 * database file and syncs it: at enrollment rates the writer's own automatic checkpoint (every
 * 1,000 WAL pages) ran inside nearly every other group commit, on the event loop, and cost about
 * as much as writing the records themselves (bench/enrollment.ts).
 *
 * Here a second connection, in a worker thread, runs PASSIVE checkpoints every `intervalMs`. A
 * passive checkpoint never blocks the writer and never waits for readers (it copies what no reader
 * still needs and leaves the rest for the next round), and SQLite lets one connection checkpoint
 * while another writes: the writer only appends to the WAL and restarts it from the beginning once
 * a checkpoint has copied all of it. Durability is unchanged: only committed pages are copied.
 *
 * The writer keeps its own automatic checkpoint as a backstop, at `backstopPages` instead of the
 * default 1,000, so the WAL stays bounded if the worker falls behind or dies; when the worker
 * stops (or fails), the writer's previous threshold is restored.
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

export interface WalCheckpointerOptions {
  /**
   * Time between two passive checkpoints. Default 100 ms: a page written again within that time
   * (the tail pages of the appended tables and indexes, written by every group commit) is copied
   * once, not once per commit. Against 20 ms, the enrollment benchmark's server CPU fell ~5% per
   * device; 250 ms and 1 s gained nothing more.
   */
  intervalMs?: number;
  /** The writer's own automatic-checkpoint threshold while the worker runs. Default 16,384 pages (64 MiB). */
  backstopPages?: number;
  /** Called when the worker fails (the writer checkpoints by itself again). */
  onError?: (e: unknown) => void;
}

export interface WalCheckpointerSpec {
  path: string;
  synchronous: 'NORMAL' | 'FULL';
  intervalMs: number;
}

export class WalCheckpointer {
  readonly #db: Database.Database;
  readonly #worker: Worker;
  readonly #previousPages: number;
  #checkpoints = 0;
  #stopped = false;
  readonly #exited: Promise<void>;

  constructor(db: Database.Database, spec: Omit<WalCheckpointerSpec, 'intervalMs'>, options: WalCheckpointerOptions = {}) {
    const intervalMs = options.intervalMs ?? 100;
    const backstopPages = options.backstopPages ?? 16_384;
    if (!Number.isInteger(intervalMs) || intervalMs < 1) throw new RangeError('intervalMs must be a positive integer');
    if (!Number.isInteger(backstopPages) || backstopPages < 1) throw new RangeError('backstopPages must be a positive integer');
    this.#db = db;
    this.#previousPages = db.pragma('wal_autocheckpoint', { simple: true }) as number;
    const workerData: WalCheckpointerSpec = { ...spec, intervalMs };
    this.#worker = new Worker(new URL('./wal-checkpoint-worker.js', import.meta.url), { workerData });
    this.#worker.unref();
    this.#worker.on('message', (m: { checkpoints: number }) => { this.#checkpoints = m.checkpoints; });
    this.#exited = new Promise((resolve) => {
      this.#worker.once('error', (e) => {
        this.#restore();
        if (!this.#stopped) options.onError?.(e);
      });
      this.#worker.once('exit', () => {
        this.#restore();
        resolve();
      });
    });
    db.pragma(`wal_autocheckpoint = ${backstopPages}`);
  }

  /** Checkpoints the worker has run that copied pages (tests, diagnostics). */
  get checkpoints(): number {
    return this.#checkpoints;
  }

  /** Ends the worker; the writer's previous threshold is back when this resolves. */
  async stop(): Promise<void> {
    this.#stopped = true;
    // Referenced again while it winds down: an unreferenced worker alone would let the process
    // exit with this promise unsettled.
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await this.#exited;
  }

  #restore(): void {
    if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${this.#previousPages}`);
  }
}
