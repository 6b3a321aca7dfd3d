/**
 * Opening the SQLite file: options checked once, connection pragmas, schema migrated (read-write)
 * or checked (read-only).
 *
 * Durability (DESIGN.md "Storage"): WAL with synchronous=NORMAL survives `kill -9` of the process
 * (a committed transaction is in the WAL, in the OS page cache); synchronous=FULL also syncs the
 * WAL on every commit, which survives power loss at the price of one fsync per group commit.
 */
import Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import { toKakuinError } from './driver-errors.js';
import { checkSchemaForReading, migrate } from './schema.js';

export interface SqliteRegistryOptions {
  /** The database file; created (read-write) when absent. */
  path: string;
  /** NORMAL (default) survives a crash of the process, FULL also a power loss. */
  synchronous?: 'NORMAL' | 'FULL';
  /** For OCSP/gateway processes: no migrations, every write refused. The file must exist. */
  readonly?: boolean;
  /** How long a statement waits for another process's lock before KAKUIN_E_REGISTRY_UNAVAILABLE. Default 5000. */
  busyTimeoutMs?: number;
}

export interface ResolvedOptions {
  path: string;
  synchronous: 'NORMAL' | 'FULL';
  readonly: boolean;
  busyTimeoutMs: number;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

function configError(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_CONFIG', `registry (sqlite): ${message}`);
}

export function resolveOptions(options: SqliteRegistryOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw configError('options must be an object');
  const { path, synchronous = 'NORMAL', readonly = false, busyTimeoutMs = DEFAULT_BUSY_TIMEOUT_MS } = options;
  if (typeof path !== 'string' || path.length === 0) throw configError('path must be a non-empty string');
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') throw configError('synchronous must be NORMAL or FULL');
  if (typeof readonly !== 'boolean') throw configError('readonly must be a boolean');
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0 || busyTimeoutMs > 2 ** 31 - 1) {
    throw configError('busyTimeoutMs must be a non-negative integer');
  }
  return Object.freeze({ path, synchronous, readonly, busyTimeoutMs });
}

/** An open connection with the schema at the version this code reads, and that version. */
export function openDatabase(options: ResolvedOptions): { db: Database.Database; schemaVersion: number } {
  let db: Database.Database;
  try {
    db = new Database(options.path, {
      readonly: options.readonly,
      fileMustExist: options.readonly,
      timeout: options.busyTimeoutMs,
    });
  } catch (e) {
    // The path is for the operator's log, not for a client: it goes into the cause.
    throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the registry database cannot be opened',
      { cause: new Error(`opening ${options.path}: ${(e as Error)?.message}`, { cause: e }) });
  }
  try {
    configureConnection(db, options);
    const schemaVersion = options.readonly ? checkSchemaForReading(db) : migrate(db);
    return { db, schemaVersion };
  } catch (e) {
    db.close();
    throw toKakuinError(e, { operation: 'opening the database' });
  }
}

function configureConnection(db: Database.Database, options: ResolvedOptions): void {
  if (!options.readonly) {
    // Persistent in the file; must be set outside a transaction. Readers of a WAL file need no pragma.
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal' && !db.memory) {
      throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE',
        `the registry database cannot use WAL journaling (got ${String(mode)}); is it on a network file system?`);
    }
  }
  db.pragma(`synchronous = ${options.synchronous}`);
  db.pragma('foreign_keys = ON');
  // Each issuance in a group commit runs in a SAVEPOINT, whose statement journal goes to a temp
  // file by default; in memory it is a few pages per record and doubles group-commit throughput.
  db.pragma('temp_store = MEMORY');
}
