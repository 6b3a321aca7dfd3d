/**
 * CRLs over a MongoDB document's 16 MiB (a full CRL at a million revoked is ~47 MB) stored in
 * chunks (registry/mongodb/crl-chunks.ts), on the in-memory driver stand-in that enforces the
 * document limit like MongoDB (mongodb-fake-driver.ts). Not a MongoDB server: see
 * test/contract/mongodb-contract.test.ts for that.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Db, MongoClient } from 'mongodb';
import { prepareSchema } from '../../registry/mongodb/connection.js';
import { CRL_CHUNK_BYTES } from '../../registry/mongodb/crl-chunks.js';
import { COLLECTIONS } from '../../registry/mongodb/documents.js';
import { MongoRegistry } from '../../registry/mongodb/index.js';
import { FakeClient, FakeDb } from './mongodb-fake-driver.js';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000);

describe('registry/mongodb CRLs larger than a document (driver stand-in)', function () {
  this.timeout(30_000);
  let db: FakeDb;
  let registry: MongoRegistry;
  const crl = (number: bigint, der: Buffer) => ({ issuerId: 'device', kind: 'full' as const, number, thisUpdate: at(0), nextUpdate: at(60), feedSeq: 1, der });
  const chunkCount = () => db.collection(COLLECTIONS.crlChunks).docs.size;

  beforeEach(async () => {
    db = new FakeDb();
    await prepareSchema(db as unknown as Db);
    registry = new MongoRegistry(new FakeClient() as unknown as MongoClient, db as unknown as Db, await prepareSchema(db as unknown as Db), false);
    await registry.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' });
  });

  afterEach(async () => { await registry.close(); });

  it('the stand-in refuses a document over 16 MiB, as MongoDB does', async () => {
    let refused: unknown;
    await db.collection('scratch').insertOne({ _id: 'x', data: Buffer.alloc(17 << 20) }).catch((e) => { refused = e; });
    expect((refused as { code?: number })?.code).to.equal(10334);
  });

  it('stores a 40 MiB CRL in chunks and reads it back byte for byte', async () => {
    const der = randomBytes(40 << 20);
    await registry.putCrl(crl(5n, der));
    expect(chunkCount()).to.equal(Math.ceil(der.length / CRL_CHUNK_BYTES));
    const back = await registry.getLatestCrl('device', 'full');
    expect(back?.number).to.equal(5n);
    expect(back?.der.equals(der)).to.equal(true);
  });

  it('a newer CRL replaces the chunks of the older; an older one arriving late leaves no chunks behind', async () => {
    await registry.putCrl(crl(5n, Buffer.alloc(20 << 20, 5)));
    await registry.putCrl(crl(6n, Buffer.alloc(18 << 20, 6)));
    expect(chunkCount()).to.equal(3);
    await registry.putCrl(crl(4n, Buffer.alloc(30 << 20, 4)));
    expect(chunkCount(), 'the late older CRL\'s chunks removed').to.equal(3);
    const back = await registry.getLatestCrl('device', 'full');
    expect(back?.number).to.equal(6n);
    expect(back?.der.length).to.equal(18 << 20);
    expect(back?.der.every((b) => b === 6)).to.equal(true);
    // Back to a small CRL: stored inline, the chunks are gone.
    await registry.putCrl(crl(7n, Buffer.from([0x30, 0])));
    expect(chunkCount()).to.equal(0);
    expect((await registry.getLatestCrl('device', 'full'))?.der).to.deep.equal(Buffer.from([0x30, 0]));
  });

  it('refuses a large CRL of an unknown issuer with KAKUIN_E_ISSUER_NOT_FOUND and writes no chunks', async () => {
    let code: string | undefined;
    await registry.putCrl({ ...crl(1n, Buffer.alloc(20 << 20)), issuerId: 'nobody' }).catch((e) => { code = e.code; });
    expect(code).to.equal('KAKUIN_E_ISSUER_NOT_FOUND');
    expect(chunkCount()).to.equal(0);
  });
});
