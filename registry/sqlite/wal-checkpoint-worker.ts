/**
 * The worker side of wal-checkpointer.ts: its own connection to the registry file, running only
 * `PRAGMA wal_checkpoint(PASSIVE)`. It writes nothing else and never migrates or changes the
 * journal mode (the writer opened the file and made it WAL).
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { WalCheckpointerSpec } from './wal-checkpointer.js';

const spec = workerData as WalCheckpointerSpec;
const db = new Database(spec.path, { fileMustExist: true });
db.pragma(`synchronous = ${spec.synchronous}`);
// A checkpoint that finds the checkpoint lock taken (the writer's backstop) skips its round.
db.pragma('busy_timeout = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let checkpoints = 0;
let last = { log: -1, checkpointed: -1 };

const timer = setInterval(() => {
  try {
    const row = checkpoint.get() as { busy: number; log: number; checkpointed: number };
    // An idle WAL reports the same counts again: only a round that copied something is counted.
    if (row.checkpointed > 0 && (row.log !== last.log || row.checkpointed !== last.checkpointed)) {
      parentPort!.postMessage({ checkpoints: ++checkpoints });
    }
    last = row;
  } catch (e) {
    // Busy (another checkpoint runs): the next round tries again. Anything else ends the worker,
    // and the writer checkpoints by itself again.
    if ((e as { code?: string }).code !== 'SQLITE_BUSY') throw e;
  }
}, spec.intervalMs);

parentPort!.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort!.close();
});
