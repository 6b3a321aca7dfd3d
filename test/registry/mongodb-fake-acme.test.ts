/**
 * The ACME store port's contract on the MongoDB adapter over the in-memory driver stand-in (as
 * mongodb-fake-contract.test.ts: what the adapter decides, not MongoDB's own behaviour).
 */
import type { Db, MongoClient } from 'mongodb';
import { prepareSchema } from '../../registry/mongodb/connection.js';
import { MongoRegistry } from '../../registry/mongodb/index.js';
import { runAcmeContract } from '../contract/acme.contract.js';
import { FakeClient, FakeDb } from './mongodb-fake-driver.js';

runAcmeContract('mongodb adapter over an in-memory driver stand-in (not a MongoDB server)', async () => {
  const db = new FakeDb();
  const version = await prepareSchema(db as unknown as Db);
  const registry = new MongoRegistry(new FakeClient() as unknown as MongoClient, db as unknown as Db, version, false);
  return { store: registry.acme, cleanup: () => registry.close() };
});
