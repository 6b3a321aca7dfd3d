/**
 * The registry contract on the MongoDB adapter over an in-memory stand-in for the driver
 * (mongodb-fake-driver.ts). It exercises everything the adapter itself decides (guards, feed
 * order, seqs, error codes, unique indexes and their partial filters, documents and their
 * mapping) without a MongoDB server, which cannot run here. It says nothing about MongoDB's own
 * behaviour (isolation, write conflicts, snapshot reads): that is the run of
 * test/contract/mongodb-contract.test.ts against a replica set (KAKUIN_TEST_MONGODB_URI).
 */
import type { Db, MongoClient } from 'mongodb';
import { prepareSchema } from '../../registry/mongodb/connection.js';
import { MongoRegistry } from '../../registry/mongodb/index.js';
import { runRegistryContract } from '../contract/registry.contract.js';
import { FakeClient, FakeDb } from './mongodb-fake-driver.js';

runRegistryContract('mongodb adapter over an in-memory driver stand-in (not a MongoDB server)', async () => {
  const db = new FakeDb();
  const client = new FakeClient();
  const version = await prepareSchema(db as unknown as Db);
  const registry = new MongoRegistry(client as unknown as MongoClient, db as unknown as Db, version, false);
  return { registry, cleanup: () => registry.close() };
});
