/**
 * The registry contract on the MongoDB adapter over an in-memory stand-in for the driver
 * (mongodb-fake-driver.ts). It exercises everything the adapter itself decides (guards, feed
 * order, seqs, error codes, unique indexes and their partial filters, documents and their
 * mapping) without a MongoDB server, which cannot run here. It says nothing about MongoDB's own
 * behaviour (isolation, write conflicts, snapshot reads): that is the run of
 * test/contract/mongodb-contract.test.ts against a replica set (KAKUIN_TEST_MONGODB_URI).
 */
import { expect } from 'chai';
import type { Db, MongoClient } from 'mongodb';
import { MONGODB_SCHEMA_VERSION, prepareSchema, readSchemaVersion } from '../../registry/mongodb/connection.js';
import { COLLECTIONS } from '../../registry/mongodb/documents.js';
import { INDEXES } from '../../registry/mongodb/indexes.js';
import { MongoRegistry } from '../../registry/mongodb/index.js';
import { expectKakuinError, runRegistryContract } from '../contract/registry.contract.js';
import { FakeClient, FakeDb } from './mongodb-fake-driver.js';

runRegistryContract('mongodb adapter over an in-memory driver stand-in (not a MongoDB server)', async () => {
  const db = new FakeDb();
  const client = new FakeClient();
  const version = await prepareSchema(db as unknown as Db);
  const registry = new MongoRegistry(client as unknown as MongoClient, db as unknown as Db, version, false);
  return { registry, cleanup: () => registry.close() };
});

describe('registry/mongodb over the driver stand-in: schema and roles', function () {
  it('creates every collection and every declared index, idempotently', async function () {
    const db = new FakeDb();
    expect(await prepareSchema(db as unknown as Db)).to.equal(MONGODB_SCHEMA_VERSION);
    expect(await prepareSchema(db as unknown as Db)).to.equal(MONGODB_SCHEMA_VERSION);
    const names = (await db.listCollections().toArray()).map((c) => c.name).sort();
    expect(names).to.deep.equal(Object.values(COLLECTIONS).sort());
    for (const [collection, specs] of Object.entries(INDEXES)) {
      expect(db.collection(collection).indexes.map((i) => i.name), collection).to.deep.equal((specs ?? []).map((s) => s.name));
    }
    expect(await db.collection(COLLECTIONS.meta).findOne({ _id: 'schema' })).to.deep.equal({ _id: 'schema', version: MONGODB_SCHEMA_VERSION });
  });

  it('upgrading a version-1 database: the keys of stations made before count their age from the upgrade; later stations from their creation', async function () {
    const db = new FakeDb();
    await prepareSchema(db as unknown as Db);
    await db.collection(COLLECTIONS.meta).updateOne({ _id: 'schema' }, { $set: { version: 1 } });
    const old = new Date(Date.now() - 400 * 86_400_000);
    await db.collection(COLLECTIONS.stations).insertOne({ _id: 'old-station', manufacturerId: 'm', name: 'old', keyHmac: 'a'.repeat(64), createdAt: old });
    const before = Date.now();
    expect(await prepareSchema(db as unknown as Db)).to.equal(MONGODB_SCHEMA_VERSION);
    const registry = new MongoRegistry(new FakeClient() as unknown as MongoClient, db as unknown as Db, MONGODB_SCHEMA_VERSION, false);
    const upgraded = await registry.getStation('old-station');
    expect(upgraded.createdAt.getTime()).to.equal(old.getTime());
    expect(upgraded.keyAgeFrom!.getTime()).to.be.within(before, Date.now());
    const m = await registry.createManufacturer({ name: 'After the upgrade' });
    const fresh = await registry.createStation({ manufacturerId: m.id, name: 'new', keyHmac: 'b'.repeat(64) }, { type: 'station.created', actor: 'test' });
    expect(fresh.keyAgeFrom).to.equal(undefined);
    // Once at version 2, a restart changes nothing.
    await prepareSchema(db as unknown as Db);
    expect((await registry.getStation(fresh.id)).keyAgeFrom).to.equal(undefined);
    await registry.close();
  });

  it('refuses a database written by a newer kakuin with KAKUIN_E_SCHEMA_TOO_NEW, for writers and readers', async function () {
    const db = new FakeDb();
    await db.collection(COLLECTIONS.meta).insertOne({ _id: 'schema', version: MONGODB_SCHEMA_VERSION + 1 });
    await expectKakuinError(prepareSchema(db as unknown as Db), 'KAKUIN_E_SCHEMA_TOO_NEW');
    await expectKakuinError(readSchemaVersion(db as unknown as Db), 'KAKUIN_E_SCHEMA_TOO_NEW');
  });

  it('a read-only role on a database no ca process has prepared is KAKUIN_E_CA_NOT_INITIALIZED, and creates nothing', async function () {
    const db = new FakeDb();
    await expectKakuinError(readSchemaVersion(db as unknown as Db), 'KAKUIN_E_CA_NOT_INITIALIZED');
    const names = (await db.listCollections().toArray()).map((c) => c.name);
    expect(names).to.not.include(COLLECTIONS.devices).and.not.include(COLLECTIONS.certificates);
    await prepareSchema(db as unknown as Db);
    expect(await readSchemaVersion(db as unknown as Db)).to.equal(MONGODB_SCHEMA_VERSION);
  });

  it('a read-only opening (OCSP, gateway, CRL worker) reads and refuses every write', async function () {
    const db = new FakeDb();
    await prepareSchema(db as unknown as Db);
    const writer = new MongoRegistry(new FakeClient() as unknown as MongoClient, db as unknown as Db, 1, false);
    const m = await writer.createManufacturer({ name: 'acme' });
    const reader = new MongoRegistry(new FakeClient() as unknown as MongoClient, db as unknown as Db, 1, true);
    expect(await reader.getManufacturer(m.id)).to.deep.equal(m);
    expect(await reader.latestFeedSeq()).to.equal(0);
    await expectKakuinError(reader.createManufacturer({ name: 'other' }), 'KAKUIN_E_INTERNAL');
    await expectKakuinError(reader.applyStatusChange({ device: { id: 'x', from: ['active'], to: 'revoked' }, certificates: [], audit: [] }), 'KAKUIN_E_INTERNAL');
    await expectKakuinError(reader.nextCrlNumber('device'), 'KAKUIN_E_INTERNAL');
    expect(await writer.listManufacturers()).to.have.length(1);
  });
});
