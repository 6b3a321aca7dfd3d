/**
 * The activity port on SQLite: the contract on the registry's own connection and on the write
 * connection limited to activity that a read-only role opens beside its registry.
 */
import path from 'node:path';
import { expect } from 'chai';
import { openSqliteActivityStore, openSqliteRegistry } from '../../registry/sqlite/index.js';
import { runActivityContract } from '../contract/activity.contract.js';
import { makeTempDir } from '../support/index.js';

runActivityContract('sqlite (registry connection)', async () => {
  const tmp = makeTempDir('kakuin-activity-');
  const registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
  return { store: registry.activity, cleanup: async () => { await registry.close(); tmp.cleanup(); } };
});

runActivityContract('sqlite (activity-only connection beside a read-only registry)', async () => {
  const tmp = makeTempDir('kakuin-activity-');
  const file = path.join(tmp.dir, 'registry.db');
  await (await openSqliteRegistry({ path: file })).close();
  const readonly = await openSqliteRegistry({ path: file, readonly: true });
  const activity = openSqliteActivityStore({ path: file });
  return { store: activity.store, cleanup: async () => { activity.close(); await readonly.close(); tmp.cleanup(); } };
});

describe('registry/sqlite activity connection', function () {
  it('refuses a file that does not exist or is not migrated, rather than creating one', async function () {
    const tmp = makeTempDir('kakuin-activity-');
    try {
      expect(() => openSqliteActivityStore({ path: path.join(tmp.dir, 'missing.db') })).to.throw().with.property('code', 'KAKUIN_E_REGISTRY_UNAVAILABLE');
    } finally {
      tmp.cleanup();
    }
  });
});
