/**
 * Group commit: concurrent writes share one transaction, so one disk sync (synchronous=FULL) or
 * one WAL append (NORMAL) serves up to `maxBatch` of them.
 *
 * - `submit` queues an item; the queue is flushed on the next `setImmediate` (every call made in
 *   the same turn of the event loop joins), or at once when `maxBatch` items are waiting.
 * - A flush runs `BEGIN IMMEDIATE`, the items, `COMMIT`. When an item throws, that transaction is
 *   rolled back and the batch runs again with each item in its own SAVEPOINT (a nested
 *   better-sqlite3 transaction): an item that throws is rolled back to its savepoint and rejected
 *   alone; the items before and after it stay in the transaction. (Refusals are rare; two
 *   statements per item are saved on every other batch.)
 * - Every promise settles only after COMMIT has returned: a resolved promise means "durable".
 * - A failure of the transaction itself (busy, I/O, COMMIT refused), or one that made SQLite roll
 *   the whole transaction back, rejects every item of the batch: none of them was recorded.
 *
 * Batches stay small (≤ 100 by default) because the flush runs synchronously on the event loop.
 */
import type Database from 'better-sqlite3';
import type { KakuinError } from '../../errors/index.js';

export const DEFAULT_MAX_BATCH = 100;

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: KakuinError) => void;
}

type Outcome<O> = { ok: true; value: O } | { ok: false; error: KakuinError };

export interface GroupCommitOptions {
  /** Most items in one transaction. */
  maxBatch?: number;
  /** Maps anything thrown to the error a caller sees. */
  toError: (e: unknown) => KakuinError;
  /** Errors that doom the whole transaction rather than one item (busy, I/O, ...). */
  isFatal: (e: KakuinError) => boolean;
  /** Called after each COMMIT with the number of items it carried (metrics, tests). */
  onCommit?: (items: number) => void;
}

export class GroupCommit<I, O> {
  private queue: Pending<I, O>[] = [];
  private flushScheduled = false;
  private readonly maxBatch: number;
  private readonly applyInSavepoint: (item: I) => O;
  private readonly runBatch: Database.Transaction<(batch: Pending<I, O>[]) => Outcome<O>[]>;
  private readonly runWhole: Database.Transaction<(batch: Pending<I, O>[]) => Outcome<O>[]>;
  /** Set when an item (not BEGIN or COMMIT) threw inside runWhole. */
  private itemThrew = false;

  constructor(private readonly db: Database.Database, apply: (item: I) => O, private readonly options: GroupCommitOptions) {
    this.maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new RangeError('maxBatch must be a positive integer');
    // Called inside runBatch, better-sqlite3 turns this into SAVEPOINT / RELEASE / ROLLBACK TO.
    this.applyInSavepoint = db.transaction(apply);
    this.runBatch = db.transaction((batch: Pending<I, O>[]) => batch.map((p) => this.applyOne(p.item)));
    this.runWhole = db.transaction((batch: Pending<I, O>[]) => batch.map((p): Outcome<O> => {
      try {
        return { ok: true, value: apply(p.item) };
      } catch (e) {
        this.itemThrew = true;
        throw e;
      }
    }));
  }

  /** Items queued and not yet flushed. */
  get pending(): number {
    return this.queue.length;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.maxBatch) {
        this.flushOne();
      } else {
        this.scheduleFlush();
      }
    });
  }

  /** Flushes everything queued, now (used by close). */
  drain(): void {
    while (this.queue.length > 0) this.flushOne();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushOne();
      // More than one batch waiting: let I/O and timers run between batches.
      if (this.queue.length > 0) this.scheduleFlush();
    });
  }

  private flushOne(): void {
    const batch = this.queue.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    let outcomes: Outcome<O>[] | undefined;
    // Nearly every batch commits whole: it is tried first without a savepoint per item (two
    // statements fewer each). When an item refuses, that transaction is rolled back entirely and
    // the batch runs again, item by item in savepoints, so each failing item fails alone. A failure
    // of the transaction itself (busy, I/O, COMMIT) or a fatal one fails the batch as before,
    // without a second try (a busy wait must not be paid twice).
    if (batch.length > 1) {
      this.itemThrew = false;
      try {
        outcomes = this.runWhole.immediate(batch);
      } catch (e) {
        const error = this.options.toError(e);
        if (!this.itemThrew || this.options.isFatal(error) || this.db.inTransaction) {
          for (const p of batch) p.reject(error);
          return;
        }
      }
    }
    try {
      outcomes ??= this.runBatch.immediate(batch);
    } catch (e) {
      const error = this.options.toError(e);
      for (const p of batch) p.reject(error);
      return;
    }
    this.options.onCommit?.(batch.length);
    outcomes.forEach((outcome, i) => {
      if (outcome.ok) batch[i].resolve(outcome.value);
      else batch[i].reject(outcome.error);
    });
  }

  private applyOne(item: I): Outcome<O> {
    try {
      return { ok: true, value: this.applyInSavepoint(item) };
    } catch (e) {
      const error = this.options.toError(e);
      // SQLite rolls the whole transaction back on some errors (I/O, full disk): then the earlier
      // items are gone too, and the batch must fail as a whole.
      if (this.options.isFatal(error) || !this.db.inTransaction) throw e;
      return { ok: false, error };
    }
  }
}
