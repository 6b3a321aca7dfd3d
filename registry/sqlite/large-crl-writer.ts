/**
 * Stores large CRLs from a worker thread with its own connection, so the event loop keeps serving
 * while SQLite writes them. A full CRL at a million revoked entries is ~47 MB; one synchronous
 * INSERT of it held the main thread for ~240 ms (bench/crl-fresh.ts), and the gateway and the
 * OCSP responder in the same process waited. In WAL mode readers on the main connection are not
 * blocked by the worker's write; a write on the main connection that meets it waits for the lock
 * (busy timeout) as it would for any other writer.
 *
 * The row is copied into the message (one memcpy, a few ms at 47 MB): the caller keeps its Buffer.
 * If the worker fails, the caller writes inline again (SqliteRegistry falls back).
 */
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CrlRow } from './records.js';

/** CRLs at least this large go through the worker: below it the write costs less than the hand-off. */
export const LARGE_CRL_BYTES = 1 << 20;

export interface LargeCrlWriterSpec {
  path: string;
  synchronous: 'NORMAL' | 'FULL';
  busyTimeoutMs: number;
}

type Reply = { id: number; error?: { message: string; code?: string } };

export class LargeCrlWriter {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: unknown) => void }>();
  readonly #exited: Promise<void>;
  #next = 0;
  #failed: unknown;

  constructor(spec: LargeCrlWriterSpec) {
    this.#worker = new Worker(new URL('./large-crl-writer-worker.js', import.meta.url), { workerData: spec });
    this.#worker.unref();
    this.#worker.on('message', (m: Reply) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) this.#worker.unref();
      // Rebuilt as the driver's own error, so the registry maps it as it maps any other.
      if (m.error) p.reject(m.error.code ? new Database.SqliteError(m.error.message, m.error.code) : new Error(m.error.message));
      else p.resolve();
    });
    this.#exited = new Promise((resolve) => {
      this.#worker.once('error', (e) => { this.#failed = e; this.#rejectAll(e); });
      this.#worker.once('exit', () => { this.#failed ??= new Error('the CRL writer worker exited'); this.#rejectAll(this.#failed); resolve(); });
    });
  }

  /** False once the worker has failed or exited: the caller writes inline. */
  get usable(): boolean {
    return this.#failed === undefined;
  }

  put(row: CrlRow): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = this.#next++;
      this.#pending.set(id, { resolve, reject });
      // Referenced while a write is in flight: the process must not exit with it unsettled.
      this.#worker.ref();
      this.#worker.postMessage({ id, row });
    });
  }

  async stop(): Promise<void> {
    if (this.#failed === undefined) {
      this.#worker.ref();
      this.#worker.postMessage('stop');
    }
    await this.#exited;
  }

  #rejectAll(e: unknown): void {
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }
}
