/**
 * The worker side of large-crl-writer.ts: its own write connection to the registry file, running
 * only the CRL upsert. It never migrates or changes the journal mode (the main connection opened
 * the file and made it WAL).
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CrlRow } from './records.js';
import { UPSERT_CRL_SQL } from './signed-objects.js';
import type { LargeCrlWriterSpec } from './large-crl-writer.js';

const spec = workerData as LargeCrlWriterSpec;
const db = new Database(spec.path, { fileMustExist: true, timeout: spec.busyTimeoutMs });
db.pragma(`synchronous = ${spec.synchronous}`);
db.pragma('foreign_keys = ON');
const upsert = db.prepare(UPSERT_CRL_SQL);

parentPort!.on('message', (m: { id: number; row: CrlRow & { der: Uint8Array } } | 'stop') => {
  if (m === 'stop') {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    upsert.run({ ...m.row, der: Buffer.from(m.row.der.buffer, m.row.der.byteOffset, m.row.der.byteLength) });
    parentPort!.postMessage({ id: m.id });
  } catch (e) {
    const err = e as { message?: string; code?: string };
    parentPort!.postMessage({ id: m.id, error: { message: String(err.message ?? e), code: typeof err.code === 'string' ? err.code : undefined } });
  }
});
