/** The users port's contract on SQLite (the registry's own connection, schema step 12). */
import path from 'node:path';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { runUsersContract } from '../contract/users.contract.js';
import { makeTempDir } from '../support/index.js';

runUsersContract('sqlite', async () => {
  const tmp = makeTempDir('kakuin-users-');
  const registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
  return { store: registry.users, registry, cleanup: async () => { await registry.close(); tmp.cleanup(); } };
});
