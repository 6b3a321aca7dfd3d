/**
 * An in-memory stand-in for the part of the `mongodb` driver's API the adapter calls (Db,
 * Collection, cursors, sessions with withTransaction), so the whole registry contract can exercise
 * MongoRegistry's own logic here, where no MongoDB server can run. It is NOT MongoDB: it keeps
 * documents in Maps, evaluates the few query and update operators the adapter uses, enforces the
 * unique indexes the adapter declares (partial filters included) with MongoDB's duplicate-key
 * error shape and MongoDB's 16 MiB document limit, returns bytes as BSON Binary like the driver,
 * and undoes an aborted transaction.
 * Transactions are not isolated from each other (the adapter queues its own); the real run is
 * test/contract/mongodb-contract.test.ts with KAKUIN_TEST_MONGODB_URI.
 */
import { Binary, BSON, MongoServerError, ObjectId, type IndexDescription } from 'mongodb';

type Doc = Record<string, unknown>;

const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
type Filter = Record<string, unknown>;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && !Buffer.isBuffer(v)
    && !(v instanceof ObjectId) && !(v instanceof Binary) && !(v instanceof Uint8Array);
}

/** A stored copy: what the driver would serialize (undefined becomes null, bytes are copied). */
function store(v: unknown): unknown {
  if (v === undefined) return null;
  if (v instanceof Date) return new Date(v.getTime());
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (v instanceof Binary) return Buffer.from(v.buffer.subarray(0, v.position));
  if (Array.isArray(v)) return v.map(store);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, store(x)]));
  return v;
}

/** A returned copy: what the driver would deserialize (bytes come back as Binary). */
function load(v: unknown): unknown {
  if (v instanceof Date) return new Date(v.getTime());
  if (Buffer.isBuffer(v)) return new Binary(Buffer.from(v));
  if (Array.isArray(v)) return v.map(load);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, load(x)]));
  return v;
}

function get(doc: Doc, path: string): unknown {
  let v: unknown = doc;
  for (const part of path.split('.')) {
    if (!isPlainObject(v)) return undefined;
    v = v[part];
  }
  return v;
}

function setPath(doc: Doc, path: string, value: unknown): void {
  const parts = path.split('.');
  let at = doc;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(at[part])) at[part] = {};
    at = at[part] as Doc;
  }
  at[parts.at(-1)!] = value;
}

function unsetPath(doc: Doc, path: string): void {
  const parts = path.split('.');
  let at: unknown = doc;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(at)) return;
    at = at[part];
  }
  if (isPlainObject(at)) delete at[parts.at(-1)!];
}

function comparable(v: unknown): unknown {
  if (v instanceof Date) return v.getTime();
  if (v instanceof ObjectId) return v.toHexString();
  return v;
}

function compare(a: unknown, b: unknown): number {
  const x = comparable(a);
  const y = comparable(b);
  if (x === y) return 0;
  if (x === undefined || x === null) return -1;
  if (y === undefined || y === null) return 1;
  return (x as number) < (y as number) ? -1 : 1;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (a instanceof ObjectId && b instanceof ObjectId) return a.equals(b);
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => equal(a[k], b[k]));
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  return a === b;
}

function bsonType(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (v instanceof Date) return 'date';
  return typeof v;
}

function condition(value: unknown, cond: unknown): boolean {
  if (!isPlainObject(cond) || !Object.keys(cond).every((k) => k.startsWith('$'))) {
    return Array.isArray(value) ? value.some((x) => equal(x, cond)) : equal(value, cond);
  }
  return Object.entries(cond).every(([op, arg]) => {
    switch (op) {
      case '$eq': return equal(value, arg);
      case '$ne': return !equal(value, arg);
      case '$in': return (arg as unknown[]).some((x) => equal(value, x));
      case '$gt': return value !== undefined && value !== null && compare(value, arg) > 0;
      case '$gte': return value !== undefined && value !== null && compare(value, arg) >= 0;
      case '$lt': return value !== undefined && value !== null && compare(value, arg) < 0;
      case '$lte': return value !== undefined && value !== null && compare(value, arg) <= 0;
      case '$type': return bsonType(value) === arg;
      case '$exists': return (value !== undefined) === arg;
      default: throw new Error(`the fake driver does not know ${op}`);
    }
  });
}

export function matches(doc: Doc, filter: Filter): boolean {
  return Object.entries(filter).every(([path, cond]) => condition(get(doc, path), cond));
}

function project(doc: Doc, projection: Record<string, unknown> | undefined): Doc {
  if (projection === undefined || Object.keys(projection).length === 0) return doc;
  const out: Doc = {};
  if (projection._id !== 0) out._id = doc._id;
  for (const [k, v] of Object.entries(projection)) {
    if (k !== '_id' && v && get(doc, k) !== undefined) setPath(out, k, get(doc, k));
  }
  return out;
}

function sortDocs(docs: Doc[], sort: Record<string, number> | undefined): Doc[] {
  if (sort === undefined) return docs;
  const keys = Object.entries(sort);
  return [...docs].sort((a, b) => {
    for (const [k, dir] of keys) {
      const c = compare(get(a, k), get(b, k));
      if (c !== 0) return c * dir;
    }
    return 0;
  });
}

interface Session {
  undo?: (() => void)[];
}

function applyUpdate(doc: Doc, update: Record<string, Record<string, unknown>>, inserting: boolean): void {
  for (const [op, fields] of Object.entries(update)) {
    for (const [path, arg] of Object.entries(fields)) {
      switch (op) {
        case '$set': setPath(doc, path, store(arg)); break;
        case '$setOnInsert': if (inserting) setPath(doc, path, store(arg)); break;
        case '$unset': unsetPath(doc, path); break;
        case '$inc': setPath(doc, path, ((get(doc, path) as number | undefined) ?? 0) + (arg as number)); break;
        case '$max': if (get(doc, path) === undefined || compare(arg, get(doc, path)) > 0) setPath(doc, path, store(arg)); break;
        default: throw new Error(`the fake driver does not know ${op}`);
      }
    }
  }
}

/** The equality fields of a filter, as an upsert seeds its new document with them. */
function seed(filter: Filter): Doc {
  const doc: Doc = {};
  for (const [k, v] of Object.entries(filter)) {
    if (!isPlainObject(v) || !Object.keys(v).some((x) => x.startsWith('$'))) setPath(doc, k, store(v));
  }
  return doc;
}

export class FakeCollection {
  readonly docs = new Map<string, Doc>();
  readonly indexes: IndexDescription[] = [];

  constructor(private readonly dbName: string, readonly name: string) {}

  private keyOf(id: unknown): string {
    return JSON.stringify(comparable(id));
  }

  private all(filter: Filter): Doc[] {
    return [...this.docs.values()].filter((d) => matches(d, filter));
  }

  /** Throws MongoDB's duplicate-key error when `doc` would break a unique index. */
  private checkUnique(doc: Doc, replacing: Doc | undefined): void {
    const other = this.docs.get(this.keyOf(doc._id));
    if (other !== undefined && other !== replacing) this.duplicate('_id_', { _id: 1 }, { _id: doc._id });
    for (const index of this.indexes) {
      if (!index.unique) continue;
      const partial = index.partialFilterExpression as Filter | undefined;
      if (partial !== undefined && !matches(doc, partial)) continue;
      const fields = Object.keys(index.key as Record<string, number>);
      for (const d of this.docs.values()) {
        if (d === replacing || d === other) continue;
        if (partial !== undefined && !matches(d, partial)) continue;
        if (fields.every((f) => equal(get(d, f), get(doc, f)))) {
          this.duplicate(index.name!, index.key as Record<string, number>, Object.fromEntries(fields.map((f) => [f, get(doc, f)])));
        }
      }
    }
  }

  private duplicate(index: string, keyPattern: Record<string, number>, keyValue: Doc): never {
    throw new MongoServerError({
      code: 11000, codeName: 'DuplicateKey', keyPattern, keyValue,
      errmsg: `E11000 duplicate key error collection: ${this.dbName}.${this.name} index: ${index} dup key: ${JSON.stringify(keyValue)}`,
    });
  }

  private put(doc: Doc, previous: Doc | undefined, session: Session | undefined): void {
    // MongoDB's BSON document limit (16 MiB): the driver refuses a larger document.
    const size = BSON.calculateObjectSize(doc);
    if (size > MAX_BSON_OBJECT_SIZE) {
      throw new MongoServerError({ code: 10334, codeName: 'BSONObjectTooLarge', errmsg: `BSONObj size: ${size} is invalid. Size must be between 0 and 16793600(16MB)` });
    }
    this.checkUnique(doc, previous);
    const k = this.keyOf(doc._id);
    if (previous !== undefined) this.docs.delete(this.keyOf(previous._id));
    this.docs.set(k, doc);
    session?.undo?.push(() => {
      this.docs.delete(k);
      if (previous !== undefined) this.docs.set(this.keyOf(previous._id), previous);
    });
  }

  private remove(doc: Doc, session: Session | undefined): void {
    const k = this.keyOf(doc._id);
    this.docs.delete(k);
    session?.undo?.push(() => { this.docs.set(k, doc); });
  }

  async createIndexes(specs: IndexDescription[]): Promise<string[]> {
    for (const s of specs) if (!this.indexes.some((i) => i.name === s.name)) this.indexes.push(s);
    return specs.map((s) => s.name!);
  }

  async findOne(filter: Filter, options: { projection?: Record<string, unknown> } = {}): Promise<Doc | null> {
    const found = this.all(filter)[0];
    return found === undefined ? null : load(project(found, options.projection)) as Doc;
  }

  find(filter: Filter = {}, options: { projection?: Record<string, unknown>; sort?: Record<string, number> } = {}) {
    let sort = options.sort;
    let limit: number | undefined;
    const results = () => {
      const docs = sortDocs(this.all(filter), sort);
      return (limit === undefined ? docs : docs.slice(0, limit)).map((d) => load(project(d, options.projection)) as Doc);
    };
    let pending: Doc[] | undefined;
    const cursor = {
      sort(s: Record<string, number>) { sort = s; return cursor; },
      limit(n: number) { limit = n; return cursor; },
      async toArray() { return results(); },
      async next() { pending ??= results(); return pending.shift() ?? null; },
      async *[Symbol.asyncIterator]() { for (const d of results()) yield d; },
    };
    return cursor;
  }

  async countDocuments(filter: Filter): Promise<number> {
    return this.all(filter).length;
  }

  async insertOne(doc: Doc, options: { session?: Session } = {}) {
    this.put(store(doc) as Doc, undefined, options.session);
    return { acknowledged: true, insertedId: doc._id };
  }

  async insertMany(docs: Doc[], options: { session?: Session } = {}) {
    for (const d of docs) await this.insertOne(d, options);
    return { acknowledged: true, insertedCount: docs.length };
  }

  async replaceOne(filter: Filter, replacement: Doc, options: { upsert?: boolean; session?: Session } = {}) {
    const found = this.all(filter)[0];
    if (found === undefined) {
      if (!options.upsert) return { matchedCount: 0, modifiedCount: 0, upsertedCount: 0 };
      this.put({ ...seed(filter), ...(store(replacement) as Doc) }, undefined, options.session);
      return { matchedCount: 0, modifiedCount: 0, upsertedCount: 1 };
    }
    this.put({ _id: found._id, ...(store(replacement) as Doc) }, found, options.session);
    return { matchedCount: 1, modifiedCount: 1, upsertedCount: 0 };
  }

  async updateOne(filter: Filter, update: Record<string, Record<string, unknown>>, options: { upsert?: boolean; session?: Session } = {}) {
    const result = await this.update(filter, update, options);
    return { matchedCount: result.matched ? 1 : 0, modifiedCount: result.matched ? 1 : 0, upsertedCount: result.matched ? 0 : result.doc === null ? 0 : 1 };
  }

  async updateMany(filter: Filter, update: Record<string, Record<string, unknown>>, options: { session?: Session } = {}) {
    const found = this.all(filter);
    for (const d of found) {
      const doc = store(d) as Doc;
      applyUpdate(doc, update, false);
      this.put(doc, d, options.session);
    }
    return { matchedCount: found.length, modifiedCount: found.length };
  }

  async findOneAndUpdate(filter: Filter, update: Record<string, Record<string, unknown>>, options: { upsert?: boolean; session?: Session; returnDocument?: 'after' | 'before' } = {}) {
    const result = await this.update(filter, update, options);
    if (options.returnDocument !== 'after') throw new Error('the fake driver returns documents after the update only');
    return result.doc === null ? null : load(result.doc) as Doc;
  }

  private async update(filter: Filter, update: Record<string, Record<string, unknown>>, options: { upsert?: boolean; session?: Session }): Promise<{ matched: boolean; doc: Doc | null }> {
    const found = this.all(filter)[0];
    if (found === undefined) {
      if (!options.upsert) return { matched: false, doc: null };
      const doc = seed(filter);
      applyUpdate(doc, update, true);
      this.put(doc, undefined, options.session);
      return { matched: false, doc };
    }
    const doc = store(found) as Doc;
    applyUpdate(doc, update, false);
    this.put(doc, found, options.session);
    return { matched: true, doc };
  }

  async deleteOne(filter: Filter, options: { session?: Session } = {}) {
    const found = this.all(filter)[0];
    if (found !== undefined) this.remove(found, options.session);
    return { deletedCount: found === undefined ? 0 : 1 };
  }

  async deleteMany(filter: Filter, options: { session?: Session } = {}) {
    const found = this.all(filter);
    for (const d of found) this.remove(d, options.session);
    return { deletedCount: found.length };
  }

  async bulkWrite(ops: { replaceOne: { filter: Filter; replacement: Doc; upsert?: boolean } }[], options: { session?: Session } = {}) {
    for (const op of ops) await this.replaceOne(op.replaceOne.filter, op.replaceOne.replacement, { upsert: op.replaceOne.upsert, session: options.session });
    return { ok: 1 };
  }

  aggregate(pipeline: Record<string, unknown>[]) {
    const run = () => {
      let docs: Doc[] = [...this.docs.values()];
      for (const stage of pipeline) {
        const [op, arg] = Object.entries(stage)[0] as [string, Record<string, unknown>];
        if (op === '$match') docs = docs.filter((d) => matches(d, arg));
        else if (op === '$sort') docs = sortDocs(docs, arg as Record<string, number>);
        else if (op === '$lookup') {
          const from = this.db!.collection(arg.from as string);
          docs = docs.map((d) => ({
            ...d,
            [arg.as as string]: [...from.docs.values()].filter((f) => equal(get(f, arg.foreignField as string), get(d, arg.localField as string)))
              .map((f) => project(f, ((arg.pipeline as Record<string, Record<string, unknown>>[] | undefined)?.[0]?.$project))),
          }));
        } else if (op === '$unwind') {
          const field = (stage.$unwind as unknown as string).slice(1);
          docs = docs.flatMap((d) => (get(d, field) as Doc[]).map((x) => ({ ...d, [field]: x })));
        } else if (op === '$project') {
          docs = docs.map((d) => {
            const out: Doc = {};
            if (arg._id !== 0) out._id = d._id;
            for (const [k, v] of Object.entries(arg)) {
              if (k === '_id') continue;
              if (typeof v === 'string' && v.startsWith('$')) out[k] = get(d, v.slice(1));
              else if (v === 1) out[k] = get(d, k);
            }
            return out;
          });
        } else throw new Error(`the fake driver does not know ${op}`);
      }
      return docs.map((d) => load(d) as Doc);
    };
    return { toArray: async () => run() };
  }

  db?: FakeDb;
}

export class FakeDb {
  private readonly collections = new Map<string, FakeCollection>();

  constructor(readonly databaseName = 'kakuin_fake') {}

  collection(name: string): FakeCollection {
    let c = this.collections.get(name);
    if (c === undefined) {
      c = new FakeCollection(this.databaseName, name);
      c.db = this;
      this.collections.set(name, c);
    }
    return c;
  }

  listCollections() {
    return { toArray: async () => [...this.collections.keys()].map((name) => ({ name })) };
  }

  async createCollection(name: string): Promise<FakeCollection> {
    return this.collection(name);
  }

  admin() {
    return { command: async () => ({ isWritablePrimary: true, setName: 'fake-rs', ok: 1 }) };
  }
}

export class FakeClient {
  closed = false;

  startSession() {
    const session: Session & { withTransaction: (fn: (s: unknown) => Promise<unknown>) => Promise<void>; endSession: () => Promise<void> } = {
      async withTransaction(fn) {
        session.undo = [];
        try {
          await fn(session);
        } catch (e) {
          for (const undo of session.undo.reverse()) undo();
          throw e;
        } finally {
          session.undo = undefined;
        }
      },
      async endSession() {},
    };
    return session;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
