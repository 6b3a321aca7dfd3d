/**
 * The detections port's contract on SQLite (a file registry, schema step 14) and on the MongoDB
 * adapter over the in-memory driver stand-in (what the adapter decides, not MongoDB's behaviour;
 * the real-server run is test/contract/mongodb-contract.test.ts with KAKUIN_TEST_MONGODB_URI).
 */
import path from 'node:path';
import type { Db, MongoClient } from 'mongodb';
import { prepareSchema } from '../../registry/mongodb/connection.js';
import { MongoRegistry } from '../../registry/mongodb/index.js';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { runDetectionsContract } from '../contract/detections.contract.js';
import { makeTempDir } from '../support/index.js';
import { FakeClient, FakeDb } from './mongodb-fake-driver.js';

runDetectionsContract('sqlite', async () => {
  const tmp = makeTempDir('kakuin-detections-');
  const registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
  return {
    store: registry.detections,
    cleanup: async () => {
      await registry.close();
      tmp.cleanup();
    },
  };
});

runDetectionsContract('mongodb adapter over an in-memory driver stand-in (not a MongoDB server)', async () => {
  const db = new FakeDb();
  const version = await prepareSchema(db as unknown as Db);
  const registry = new MongoRegistry(new FakeClient() as unknown as MongoClient, db as unknown as Db, version, false);
  return { store: registry.detections, cleanup: () => registry.close() };
});
