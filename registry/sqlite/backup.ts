/**
 * Online backup of the registry file (SQLite's backup API through better-sqlite3): a consistent
 * snapshot while other connections — other processes included — keep reading and writing.
 *
 * The copy is taken in one step (every page in a single read transaction), so a writer in WAL
 * mode is never blocked and never restarts the copy; the result is switched to a rollback
 * journal so that it is one self-contained file, then checked.
 */
import Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import { DEFAULT_BUSY_TIMEOUT_MS } from './connection.js';
import { toKakuinError } from './driver-errors.js';
import { readSchemaVersion } from './schema.js';

export interface SqliteBackupResult {
  schemaVersion: number;
  /** The last revocation feed entry in the copy (0 when none). */
  latestFeedSeq: number;
  pages: number;
}

/** Copy the registry at `sourcePath` into the new file `destinationPath` and check the copy. */
export async function backupSqliteRegistry(sourcePath: string, destinationPath: string): Promise<SqliteBackupResult> {
  let source: Database.Database;
  try {
    source = new Database(sourcePath, { readonly: true, fileMustExist: true, timeout: DEFAULT_BUSY_TIMEOUT_MS });
  } catch (e) {
    throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the registry database cannot be opened for a backup',
      { cause: new Error(`opening ${sourcePath}: ${(e as Error)?.message}`, { cause: e }) });
  }
  let pages: number;
  try {
    // Returning the remaining page count copies the rest in the next step: one step in all.
    const r = await source.backup(destinationPath, { progress: ({ remainingPages }) => Math.max(remainingPages, 1) });
    pages = r.totalPages;
  } catch (e) {
    throw toKakuinError(e, { operation: 'backing up the registry' });
  } finally {
    source.close();
  }
  return checkRegistryCopy(destinationPath, { makeSelfContained: true, pages });
}

/**
 * Integrity check of a registry file that no process uses (a backup, or a restored copy before
 * start): KAKUIN_E_BACKUP_INTEGRITY when SQLite finds it damaged.
 */
export function checkRegistryCopy(file: string, options: { makeSelfContained?: boolean; pages?: number } = {}): SqliteBackupResult {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true });
  } catch (e) {
    throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `the registry copy ${file} cannot be opened`, { cause: e });
  }
  try {
    if (options.makeSelfContained) db.pragma('journal_mode = DELETE');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `the registry copy ${file} is damaged: ${String(check)}`);
    const hasFeed = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'revocation_feed'`).get() !== undefined;
    const latestFeedSeq = hasFeed ? (db.prepare('SELECT coalesce(max(seq), 0) AS seq FROM revocation_feed').get() as { seq: number }).seq : 0;
    const pages = options.pages ?? (db.pragma('page_count', { simple: true }) as number);
    return { schemaVersion: readSchemaVersion(db), latestFeedSeq, pages };
  } catch (e) {
    if (e instanceof KakuinError) throw e;
    throw new KakuinError('KAKUIN_E_BACKUP_INTEGRITY', `the registry copy ${file} is not a readable kakuin registry`, { cause: e });
  } finally {
    db.close();
  }
}
