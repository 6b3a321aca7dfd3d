/** The ACME store port on SQLite (schema step 18), on the registry's own connection. */
import path from 'node:path';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { runAcmeContract } from '../contract/acme.contract.js';
import { makeTempDir } from '../support/index.js';

runAcmeContract('sqlite', async () => {
  const tmp = makeTempDir('kakuin-acme-');
  const registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
  return { store: registry.acme, cleanup: async () => { await registry.close(); tmp.cleanup(); } };
});
