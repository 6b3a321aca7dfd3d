/**
 * The SCEP store's contract on SQLite and on the MongoDB adapter over the in-memory driver
 * stand-in (as mongodb-fake-contract.test.ts: what the adapter decides, not MongoDB's own behaviour).
 * The run against a real MongoDB is in test/contract/mongodb-contract.test.ts.
 */
import path from 'node:path';
import type { Db, MongoClient } from 'mongodb';
import { prepareSchema } from '../../registry/mongodb/connection.js';
import { MongoRegistry } from '../../registry/mongodb/index.js';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { runScepStoreContract } from '../contract/scep.contract.js';
import { makeTempDir } from '../support/index.js';
import { FakeClient, FakeDb } from './mongodb-fake-driver.js';

runScepStoreContract('sqlite', async () => {
  const tmp = makeTempDir('kakuin-scep-store-');
  const registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
  return { store: registry.scep, cleanup: async () => { await registry.close(); tmp.cleanup(); } };
});

runScepStoreContract('mongodb adapter over an in-memory driver stand-in (not a MongoDB server)', async () => {
  const db = new FakeDb();
  const version = await prepareSchema(db as unknown as Db);
  const registry = new MongoRegistry(new FakeClient() as unknown as MongoClient, db as unknown as Db, version, false);
  return { store: registry.scep, cleanup: () => registry.close() };
});
