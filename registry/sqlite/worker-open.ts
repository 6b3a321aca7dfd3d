/**
 * How a worker thread opens the registry (ca/crl/crl-worker.ts imports this module by URL, as the
 * composition root names it): a read-only connection to the same SQLite file, so CRL builds
 * stream rows off the event loop without ever writing.
 */
import type { Registry } from '../port.js';
import { openSqliteRegistry } from './index.js';

export async function openRegistry(options: { path: string }): Promise<Registry> {
  return openSqliteRegistry({ path: options.path, readonly: true });
}
