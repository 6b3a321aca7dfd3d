/**
 * Opening the MongoDB registry: the client, the deployment check (transactions need a replica set
 * or a sharded cluster), the collections and indexes, and the schema version.
 *
 * A standalone mongod is refused (KAKUIN_E_CONFIG): without multi-document transactions a
 * revocation could be half-applied (certificate revoked, feed entry missing) or an issuance could
 * slip past a device's revocation, and the feed's seq order could differ from commit order. A
 * single-node replica set (`mongod --replSet rs0` + `rs.initiate()`) costs nothing more to run and
 * gives transactions; see docs/mongodb.md.
 */
import { MongoClient, MongoError, MongoServerError, type Db, type MongoClientOptions } from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import { COLLECTIONS, type MetaDoc } from './documents.js';
import { redactUri, toKakuinError } from './driver-errors.js';
import { INDEXES } from './indexes.js';

/** 2: stations made before API keys could expire carry `keyAgeFrom` (the upgrade's time). */
export const MONGODB_SCHEMA_VERSION = 2;

export interface MongoRegistryOptions {
  /** mongodb:// or mongodb+srv:// connection string; connection options go in its query string. */
  uri: string;
  /** Database name; default `kakuin`. */
  database?: string;
  /** The OCSP and gateway roles never write: no collection or index is created. */
  readonly?: boolean;
  /** Extra client options (tests: short server selection timeouts). */
  clientOptions?: MongoClientOptions;
}

/** Client options every kakuin connection uses: majority reads and writes, so an acknowledged revocation survives a failover. */
export const CLIENT_DEFAULTS: MongoClientOptions = {
  appName: 'kakuin',
  readConcern: { level: 'majority' },
  writeConcern: { w: 'majority', journal: true },
  readPreference: 'primary',
  retryWrites: true,
  retryReads: true,
};

/** What `hello` says about transactions: replica set members and mongos routers support them. */
export function deploymentSupportsTransactions(hello: Record<string, unknown>): boolean {
  return typeof hello.setName === 'string' || hello.msg === 'isdbgrid';
}

export interface OpenedDatabase {
  client: MongoClient;
  db: Db;
  schemaVersion: number;
}

export async function connect(options: MongoRegistryOptions): Promise<OpenedDatabase> {
  if (options === null || typeof options !== 'object' || typeof options.uri !== 'string' || !/^mongodb(\+srv)?:\/\//.test(options.uri)) {
    throw new KakuinError('KAKUIN_E_CONFIG', 'the MongoDB registry needs a mongodb:// or mongodb+srv:// connection string');
  }
  const where = redactUri(options.uri);
  let client: MongoClient;
  try {
    client = new MongoClient(options.uri, { ...CLIENT_DEFAULTS, ...options.clientOptions });
  } catch (e) {
    throw new KakuinError('KAKUIN_E_CONFIG', `the MongoDB connection string ${where} is invalid`, { cause: e });
  }
  try {
    await client.connect();
    const db = client.db(options.database ?? 'kakuin');
    const hello = await db.admin().command({ hello: 1 });
    if (!deploymentSupportsTransactions(hello)) {
      throw new KakuinError('KAKUIN_E_CONFIG', `MongoDB at ${where} is a standalone server without transactions; kakuin needs a replica set `
        + '(a single-node one is enough: mongod --replSet rs0, then rs.initiate()) or a sharded cluster (docs/mongodb.md)');
    }
    const schemaVersion = options.readonly ? await readSchemaVersion(db) : await prepareSchema(db);
    return { client, db, schemaVersion };
  } catch (e) {
    await client.close().catch(() => undefined);
    if (e instanceof KakuinError) throw e;
    if (isAuthenticationFailure(e)) {
      throw new KakuinError('KAKUIN_E_CONFIG', `MongoDB at ${where} refused kakuin's authentication (check the user and password in storage.uri)`, { cause: e });
    }
    throw toKakuinError(e, { operation: `connecting to ${where}` });
  }
}

/** AuthenticationFailed (18), or the driver's wrapper of it during the handshake. */
export function isAuthenticationFailure(e: unknown): boolean {
  return e instanceof MongoError && (e.code === 18 || e.name === 'MongoMissingCredentialsError' || (e.cause instanceof MongoError && e.cause.code === 18));
}

export async function readSchemaVersion(db: Db): Promise<number> {
  const meta = await db.collection<MetaDoc>(COLLECTIONS.meta).findOne({ _id: 'schema' });
  // As a read-only role finds a missing SQLite file (cli/roles.ts).
  if (meta === null) throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED', 'the MongoDB registry has not been created yet: start a process with the ca role (or run `kakuin init`) first');
  checkVersion(meta.version);
  return meta.version;
}

function checkVersion(version: number): void {
  if (version > MONGODB_SCHEMA_VERSION) {
    throw new KakuinError('KAKUIN_E_SCHEMA_TOO_NEW', `the MongoDB registry has schema ${version}; this kakuin knows up to ${MONGODB_SCHEMA_VERSION}`);
  }
}

/**
 * Creates the collections (a transaction cannot create one on servers before 4.4, and creating
 * them up front keeps the first transactions free of catalog conflicts) and their indexes.
 * Both are idempotent, so every writing process runs this at start.
 */
export async function prepareSchema(db: Db): Promise<number> {
  const meta = await db.collection<MetaDoc>(COLLECTIONS.meta).findOne({ _id: 'schema' });
  if (meta !== null) checkVersion(meta.version);
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  for (const name of Object.values(COLLECTIONS)) {
    if (existing.has(name)) continue;
    try {
      await db.createCollection(name);
    } catch (e) {
      // 48 NamespaceExists: another process created it a moment ago.
      if (!(e instanceof MongoServerError && e.code === 48)) throw e;
    }
  }
  for (const [name, specs] of Object.entries(INDEXES)) {
    if (specs !== undefined && specs.length > 0) await db.collection(name).createIndexes([...specs]);
  }
  if (meta !== null && meta.version < 2) {
    // Version 1 knew no key expiry: the age of the keys of its stations counts from this upgrade.
    await db.collection(COLLECTIONS.stations).updateMany({ keyAgeFrom: { $exists: false } }, { $set: { keyAgeFrom: new Date() } });
  }
  await db.collection<MetaDoc>(COLLECTIONS.meta).updateOne(
    { _id: 'schema' }, { $max: { version: MONGODB_SCHEMA_VERSION } }, { upsert: true });
  return Math.max(meta?.version ?? 0, MONGODB_SCHEMA_VERSION);
}
