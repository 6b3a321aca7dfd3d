/** The CMP store port on SQLite (schema step 16), on the registry's own connection. */
import path from 'node:path';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { runCmpContract } from '../contract/cmp.contract.js';
import { makeTempDir } from '../support/index.js';

runCmpContract('sqlite', async () => {
  const tmp = makeTempDir('kakuin-cmp-');
  const registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
  return { store: registry.cmp, cleanup: async () => { await registry.close(); tmp.cleanup(); } };
});
