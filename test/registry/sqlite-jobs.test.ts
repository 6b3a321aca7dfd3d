/** The bulk-job and approval ports' contract on SQLite (schema step 15). */
import path from 'node:path';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { runJobsContract } from '../contract/jobs.contract.js';
import { makeTempDir } from '../support/index.js';

runJobsContract('sqlite', async () => {
  const tmp = makeTempDir('kakuin-jobs-');
  const registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
  return { registry, jobs: registry.jobs, approvals: registry.approvals, cleanup: async () => { await registry.close(); tmp.cleanup(); } };
});
