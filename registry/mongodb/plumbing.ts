/**
 * What every part of the MongoDB adapter shares: the client and database, the open/closed and
 * read-only state, operations in flight (close waits for them), this process's write queue, and
 * the wrappers that translate driver errors (driver-errors.ts) and run transactions.
 */
import type { ClientSession, Db, MongoClient } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import { newAuditChainId } from '../records/index.js';
import { COLLECTIONS, type IssuerDoc, type ManufacturerDoc } from './documents.js';
import { toKakuinError } from './driver-errors.js';
import { InFlight, WriteQueue } from './write-queue.js';

export class RegistryPlumbing {
  private closed = false;
  private readonly writes = new WriteQueue();
  private readonly inFlight = new InFlight();

  /** This instance's audit hash chain (registry/records/audit-chain.ts). */
  readonly auditChainId = newAuditChainId();

  constructor(readonly client: MongoClient, readonly db: Db, private readonly readonly: boolean) {}

  col<T extends object = Record<string, unknown>>(name: string) {
    return this.db.collection<T>(name);
  }

  assertOpen(): void {
    if (this.closed) throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the registry has been closed');
  }

  assertWritable(): void {
    this.assertOpen();
    // A wiring mistake, not a client's: the read-only roles (OCSP, gateway) must never write.
    if (this.readonly) throw new KakuinError('KAKUIN_E_INTERNAL', 'this registry was opened read-only and cannot write');
  }

  read<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.inFlight.track(translated(operation, fn));
  }

  /** A write of one document (atomic on its own), or of several where no transaction is needed. */
  write<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    this.assertWritable();
    return this.inFlight.track(translated(operation, fn));
  }

  /**
   * Runs `body` in one multi-document transaction, after this process's earlier ones (WriteQueue).
   * The driver retries it on transient conflicts, so `body` must not keep state across attempts.
   * A KakuinError thrown by `body` aborts it: nothing of it stays.
   */
  transaction<T>(operation: string, body: (session: ClientSession) => Promise<T>): Promise<T> {
    this.assertWritable();
    return this.inFlight.track(this.writes.run(() => this.runTransaction(operation, body)));
  }

  /**
   * Runs a streaming read. An exception thrown by the caller's callback ends the walk and reaches
   * the caller as it was thrown (it is the caller's, not the driver's); anything else is mapped.
   */
  stream<F extends (...args: never[]) => void>(operation: string, callback: F, walk: (guarded: F) => Promise<void>): Promise<void> {
    this.assertOpen();
    return this.inFlight.track(guardedWalk(operation, callback, walk));
  }

  async requireManufacturer(id: string, session?: ClientSession): Promise<void> {
    const doc = await this.col<ManufacturerDoc>(COLLECTIONS.manufacturers).findOne({ _id: id }, { session, projection: { _id: 1 } });
    if (doc === null) throw new KakuinError('KAKUIN_E_MANUFACTURER_NOT_FOUND', 'no manufacturer with that id');
  }

  async requireIssuer(id: string, session?: ClientSession): Promise<void> {
    this.assertOpen();
    let doc: unknown;
    try {
      doc = await this.col<IssuerDoc>(COLLECTIONS.issuers).findOne({ _id: id }, { session, projection: { _id: 1 } });
    } catch (e) {
      throw toKakuinError(e, { operation: 'reading an issuer' });
    }
    if (doc === null) throw new KakuinError('KAKUIN_E_ISSUER_NOT_FOUND', `no issuer ${JSON.stringify(id)} is recorded`);
  }

  /** Refuses new calls at once; lets the ones already made (a queued issuance) finish; then closes the client. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inFlight.settled();
    try {
      await this.client.close();
    } catch (e) {
      throw toKakuinError(e, { operation: 'closing the connection' });
    }
  }

  private async runTransaction<T>(operation: string, body: (session: ClientSession) => Promise<T>): Promise<T> {
    const session = this.client.startSession();
    try {
      let result: { value: T } | undefined;
      await session.withTransaction(async (s) => {
        result = { value: await body(s) };
      }, { readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' }, readPreference: 'primary' });
      if (result === undefined) throw new KakuinError('KAKUIN_E_INTERNAL', `the transaction ${operation} ended without a result`);
      return result.value;
    } catch (e) {
      throw toKakuinError(e, { operation });
    } finally {
      await session.endSession().catch(() => undefined);
    }
  }
}

async function translated<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toKakuinError(e, { operation });
  }
}

async function guardedWalk<F extends (...args: never[]) => void>(operation: string, callback: F, walk: (guarded: F) => Promise<void>): Promise<void> {
  let thrown: { error: unknown } | undefined;
  const guarded = ((...args: Parameters<F>) => {
    try {
      callback(...args);
    } catch (e) {
      thrown = { error: e };
      throw e;
    }
  }) as F;
  try {
    await walk(guarded);
  } catch (e) {
    if (thrown !== undefined && thrown.error === e) throw e;
    throw toKakuinError(e, { operation });
  }
}

/** A lookup key from a caller: only a string is ever put into a filter (an object could be an operator). */
export function key(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
