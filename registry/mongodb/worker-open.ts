/**
 * How a worker thread opens the registry when storage is MongoDB (ca/crl/crl-worker.ts imports the
 * module the composition root names; the SQLite twin is registry/sqlite/worker-open.ts): its own
 * read-only client on the same database, so CRL builds stream documents off the event loop.
 */
import type { Registry } from '../port.js';
import { openMongoRegistry } from './mongodb-registry.js';

export async function openRegistry(options: { uri: string; database?: string }): Promise<Registry> {
  return openMongoRegistry({ uri: options.uri, database: options.database, readonly: true });
}
