/**
 * Issue 21 item 3: the tamper-evident audit trail. Real SQLite files changed behind kakuin's back
 * with better-sqlite3, and the MongoDB adapter over the in-memory driver stand-in changed through
 * its collections; each edit, deletion, deleted tail, reordering and insertion is caught by the
 * verifier naming the right event. Checkpoints are signed by an audit signer certificate the real
 * infrastructure CA issued (software key store), and checked against the root certificate only.
 */
import { X509Certificate } from 'node:crypto';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import type { Db, MongoClient } from 'mongodb';
import { issueAuditSignerCertificate } from '../../ca/audit-signer.js';
import { bootstrapHierarchy } from '../../ca/hierarchy.js';
import { publicUrls } from '../../ca/urls.js';
import { KeyRing } from '../../hsm-adapters/index.js';
import { SoftwareKeyStore } from '../../hsm-adapters/software/index.js';
import {
  AuditCheckpointer, checkpointProblem, verifyAuditTrail, type AuditSigningIdentity, type CheckpointDetails,
} from '../../operations/audit/index.js';
import { isEventType } from '../../operations/events/index.js';
import type { AuditEvent, Registry } from '../../registry/port.js';
import { prepareSchema } from '../../registry/mongodb/connection.js';
import { COLLECTIONS } from '../../registry/mongodb/documents.js';
import { MongoRegistry } from '../../registry/mongodb/index.js';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { MIGRATIONS, migrate } from '../../registry/sqlite/schema.js';
import { buildRoot, makeTempDir } from '../support/index.js';
import { FakeClient, FakeDb } from '../registry/mongodb-fake-driver.js';

let identity: AuditSigningIdentity;
let roots: X509Certificate[];
let pkiDir: ReturnType<typeof makeTempDir>;

before(async function () {
  this.timeout(60_000);
  // The real hierarchy (root → infrastructure CA) issues the audit signer's certificate, as `serve` does.
  pkiDir = makeTempDir('kakuin-audit-pki-');
  const registry = await openSqliteRegistry({ path: path.join(pkiDir.dir, 'pki.db') });
  const keys = new KeyRing([new SoftwareKeyStore({ directory: path.join(pkiDir.dir, 'keys'), passphrase: 'audit-test' })]);
  const h = await bootstrapHierarchy(registry, keys, {
    organization: 'kakuin audit test', rootKeyAlgorithm: 'ecdsa-p256', issuingKeyAlgorithm: 'ecdsa-p256',
    rootValidityYears: 2, issuingValidityYears: 1, keyUriFor: (id) => `file:${id}-ca`, urls: publicUrls('http://kakuin.test:8080'), actor: 'test',
  });
  const key = await keys.generate('file:audit-signer', 'ecdsa-p256');
  const leaf = await issueAuditSignerCertificate(registry, h.infrastructure, key, { organization: 'kakuin audit test', validityDays: 30, actor: 'test' });
  identity = { signer: key, certificates: [leaf, h.infrastructure.record.certificateDer] };
  roots = [new X509Certificate(h.root.record.certificateDer)];
  await registry.close();
});

after(() => pkiDir?.cleanup());

function checkpointerFor(registry: Registry): AuditCheckpointer {
  return new AuditCheckpointer({ registry, identity: async () => identity, every: 1, minutes: 1, settleMs: 0 });
}

/**
 * The trail every case starts from, one writer: events 1–5, checkpoint 6, events 7–9,
 * checkpoint 10, events 11–12. Returns the checkpoints' details (what events out sends).
 */
async function writeTrail(registry: Registry): Promise<CheckpointDetails[]> {
  const checkpointer = checkpointerFor(registry);
  const add = (n: number) => registry.appendAuditEvent({ type: 'device.revoked', actor: 'token:alice', deviceId: `dev-${n}`, details: { reason: 'keyCompromise', n } });
  for (let i = 1; i <= 5; i++) await add(i);
  const c1 = await checkpointer.checkpoint();
  for (let i = 7; i <= 9; i++) await add(i);
  const c2 = await checkpointer.checkpoint();
  await add(11);
  await add(12);
  expect([c1.id, c2.id]).to.deep.equal([6, 10]);
  return [c1.details as unknown as CheckpointDetails, c2.details as unknown as CheckpointDetails];
}

const offHost = (details: CheckpointDetails[]) => details.map((d, i) => ({ details: d, source: `webhook copy ${i + 1}` }));

/** One storage under test: write the trail, change it behind kakuin's back, read it again. */
interface Storage {
  open(): Promise<Registry>;
  /** Runs raw changes on the stored events, then returns a registry reading them. */
  tamper(change: (raw: RawEvents) => Promise<void> | void): Promise<Registry>;
  close(): Promise<void>;
}

/** Raw access to the stored audit events, as an attacker with the database has it. */
interface RawEvents {
  editDetails(id: number, details: string): Promise<void> | void;
  remove(ids: number[]): Promise<void> | void;
  swapIds(a: number, b: number): Promise<void> | void;
  /** A plain row (no chain fields) with the next id. Returns its id. */
  insertPlain(): Promise<number> | number;
  /**
   * A row with a self-consistent chain link of its own (an attacker who read docs/audit-trail.md),
   * slipped in right after `afterId`. Returns its id.
   */
  insertForgedAfter(afterId: number, hashOf: (id: number) => { chain: string; seq: number; prev: string; hash: string }): Promise<number> | number;
}

function sqliteStorage(): Storage {
  const tmp = makeTempDir('kakuin-audit-sqlite-');
  const file = path.join(tmp.dir, 'registry.db');
  let current: Registry | undefined;
  return {
    async open() {
      current = await openSqliteRegistry({ path: file });
      return current;
    },
    async tamper(change) {
      await current?.close();
      const db = new Database(file);
      const raw: RawEvents = {
        editDetails: (id, details) => { db.prepare('UPDATE audit_events SET details = ? WHERE id = ?').run(details, id); },
        remove: (ids) => { for (const id of ids) db.prepare('DELETE FROM audit_events WHERE id = ?').run(id); },
        swapIds: (a, b) => {
          db.transaction(() => {
            db.prepare('UPDATE audit_events SET id = -1 WHERE id = ?').run(a);
            db.prepare('UPDATE audit_events SET id = ? WHERE id = ?').run(a, b);
            db.prepare('UPDATE audit_events SET id = ? WHERE id = -1').run(b);
          })();
        },
        insertPlain: () => Number(db.prepare(`INSERT INTO audit_events (at, type, actor, device_id) VALUES (?, 'device.resumed', 'token:mallory', 'dev-3')`).run(Date.now()).lastInsertRowid),
        insertForgedAfter: (afterId, hashOf) => {
          // Make room: every later event moves up one id (in descending order, so no id collides).
          const later = db.prepare('SELECT id FROM audit_events WHERE id > ? ORDER BY id DESC').all(afterId) as { id: number }[];
          for (const { id } of later) db.prepare('UPDATE audit_events SET id = ? WHERE id = ?').run(id + 1, id);
          const id = afterId + 1;
          const link = hashOf(id);
          db.prepare(`INSERT INTO audit_events (id, at, type, actor, device_id, chain_id, chain_seq, prev_hash, hash)
            VALUES (?, ?, 'device.resumed', 'token:mallory', 'dev-3', ?, ?, ?, ?)`).run(id, FORGED_AT, link.chain, link.seq, link.prev, link.hash);
          return id;
        },
      };
      await change(raw);
      db.close();
      current = await openSqliteRegistry({ path: file, readonly: true });
      return current;
    },
    async close() {
      await current?.close();
      tmp.cleanup();
    },
  };
}

function mongoStorage(): Storage {
  const db = new FakeDb();
  let registry: MongoRegistry | undefined;
  const events = () => db.collection(COLLECTIONS.auditEvents);
  return {
    async open() {
      const version = await prepareSchema(db as unknown as Db);
      registry = new MongoRegistry(new FakeClient() as unknown as MongoClient, db as unknown as Db, version, false);
      return registry;
    },
    async tamper(change) {
      const raw: RawEvents = {
        editDetails: async (id, details) => { await events().updateOne({ _id: id }, { $set: { details } }); },
        remove: async (ids) => { for (const id of ids) await events().deleteOne({ _id: id }); },
        swapIds: async (a, b) => {
          const da = (await events().findOne({ _id: a }))!;
          const dbb = (await events().findOne({ _id: b }))!;
          await events().deleteOne({ _id: a });
          await events().deleteOne({ _id: b });
          await events().insertOne({ ...plain(da), _id: b });
          await events().insertOne({ ...plain(dbb), _id: a });
        },
        insertPlain: async () => {
          await events().insertOne({ _id: 13, at: new Date(), type: 'device.resumed', actor: 'token:mallory', deviceId: 'dev-3' });
          return 13;
        },
        insertForgedAfter: async (afterId, hashOf) => {
          // MongoDB ids are numbers: one between two events needs no renumbering.
          const id = afterId + 0.5;
          await events().insertOne({ _id: id, at: new Date(FORGED_AT), type: 'device.resumed', actor: 'token:mallory', deviceId: 'dev-3', chain: hashOf(id) });
          return id;
        },
      };
      await change(raw);
      return registry!;
    },
    async close() {
      await registry?.close();
    },
  };
}

const FORGED_AT = Date.UTC(2026, 11, 8, 1, 0, 0);

/** The driver stand-in hands back Binary for bytes; audit documents hold none, so a shallow copy is the document. */
function plain(d: Record<string, unknown>): Record<string, unknown> {
  return { ...d };
}

/** A chain link an attacker computes for a forged event (the published encoding, no secret). */
async function forgedLink(id: number, chain: string, seq: number, prev: string) {
  const { hashOfHashedEvent } = await import('../../registry/records/index.js');
  const event = { id, at: new Date(FORGED_AT).toISOString(), type: 'device.resumed', actor: 'token:mallory', deviceId: 'dev-3', chain, seq, prev };
  return { chain, seq, prev, hash: hashOfHashedEvent(event) };
}

for (const [name, make] of [['SQLite file (changed with better-sqlite3)', sqliteStorage], ['MongoDB adapter over the driver stand-in', mongoStorage]] as const) {
  describe(`audit trail tampering is caught: ${name}`, function () {
    this.timeout(30_000);
    let storage: Storage;
    let checkpoints: CheckpointDetails[];
    let trail: AuditEvent[];

    beforeEach(async () => {
      storage = make();
      const registry = await storage.open();
      checkpoints = await writeTrail(registry);
      trail = await registry.listAuditEvents({ limit: 1000 });
    });
    afterEach(() => storage.close());

    it('a clean trail verifies: 12 events in one chain, both checkpoints, also with the off-host copies', async () => {
      const registry = await storage.tamper(() => {});
      const result = await verifyAuditTrail(registry, { roots, offHost: offHost(checkpoints) });
      expect(result).to.deep.equal({ ok: true, events: 12, chains: 1, checkpoints: 4 });
      expect(new Set(trail.map((e) => e.chain!.chain)).size).to.equal(1);
      expect(trail.map((e) => e.chain!.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    });

    it('an edited row: KAKUIN_E_AUDIT_EVENT_ALTERED names it', async () => {
      const registry = await storage.tamper((raw) => raw.editDetails(3, JSON.stringify({ reason: 'superseded', n: 3 })));
      const { ok, problem } = await verifyAuditTrail(registry, { roots });
      expect(ok).to.equal(false);
      expect(problem).to.include({ code: 'KAKUIN_E_AUDIT_EVENT_ALTERED', eventId: 3, seq: 3, chain: trail[0].chain!.chain });
    });

    it('a deleted row: KAKUIN_E_AUDIT_EVENT_MISSING names the event after the gap and the missing seq', async () => {
      const registry = await storage.tamper((raw) => raw.remove([3]));
      const { problem } = await verifyAuditTrail(registry, { roots });
      expect(problem).to.include({ code: 'KAKUIN_E_AUDIT_EVENT_MISSING', eventId: 4, seq: 3 });
    });

    it('a deleted tail (with its checkpoint): only the off-host checkpoint copies reveal it, as KAKUIN_E_AUDIT_TAIL_MISSING', async () => {
      const registry = await storage.tamper((raw) => raw.remove([9, 10, 11, 12]));
      // What is left is a consistent trail: nothing stored can tell (docs/audit-trail.md says so).
      expect((await verifyAuditTrail(registry, { roots })).ok).to.equal(true);
      const { ok, problem } = await verifyAuditTrail(registry, { roots, offHost: offHost(checkpoints) });
      expect(ok).to.equal(false);
      expect(problem).to.include({ code: 'KAKUIN_E_AUDIT_TAIL_MISSING', chain: trail[0].chain!.chain, seq: 9 });
      expect(problem!.message).to.contain('webhook copy 2').and.contain('its last event left is event 8');
    });

    it('two rows reordered (ids swapped): KAKUIN_E_AUDIT_EVENT_REORDERED names the first', async () => {
      const registry = await storage.tamper((raw) => raw.swapIds(3, 4));
      const { problem } = await verifyAuditTrail(registry, { roots });
      expect(problem).to.include({ code: 'KAKUIN_E_AUDIT_EVENT_REORDERED', eventId: 3 });
    });

    it('a row inserted without a chain link: KAKUIN_E_AUDIT_EVENT_INSERTED names it', async () => {
      let id = 0;
      const registry = await storage.tamper(async (raw) => { id = await raw.insertPlain(); });
      const { problem } = await verifyAuditTrail(registry, { roots });
      expect(problem).to.include({ code: 'KAKUIN_E_AUDIT_EVENT_INSERTED', eventId: id });
    });

    it('a row slipped into the history with a correct hash in a chain of its own: the checkpoint covering that id catches it', async () => {
      let id = 0;
      const registry = await storage.tamper(async (raw) => {
        id = await raw.insertForgedAfter(3, (newId) => forgedLinkSync(newId));
      });
      const { problem } = await verifyAuditTrail(registry, { roots });
      expect(problem).to.include({ code: 'KAKUIN_E_AUDIT_EVENT_INSERTED', eventId: id, chain: 'mallory:1:000000' });
      expect(problem!.message).to.contain('not covered by checkpoint');
    });

    it('a checkpoint whose signed heads were rewritten: KAKUIN_E_AUDIT_CHECKPOINT_INVALID names it', async () => {
      const forged = structuredClone(checkpoints[0]);
      forged.statement.heads[0].seq = 4;
      expect(checkpointProblem(forged, roots)).to.equal('the checkpoint signature does not verify');
      const registry = await storage.tamper(() => {});
      const { problem } = await verifyAuditTrail(registry, { roots, offHost: [{ details: forged, source: 'syslog copy' }] });
      expect(problem).to.include({ code: 'KAKUIN_E_AUDIT_CHECKPOINT_INVALID' });
      expect(problem!.message).to.contain('syslog copy');
    });

    it('a checkpoint is refused against another root (its signer does not chain to it)', async () => {
      const otherRoot = new X509Certificate(identity.certificates[0]);
      expect(checkpointProblem(checkpoints[0], [otherRoot])).to.equal('the signer certificate does not chain to a trusted root');
    });
  });
}

let forgedCache: Map<number, { chain: string; seq: number; prev: string; hash: string }> | undefined;
function forgedLinkSync(id: number) {
  return forgedCache!.get(id)!;
}
before(async () => {
  // Precompute the forged links for the ids the two storages use (3 + 1 on SQLite, 3.5 on MongoDB).
  forgedCache = new Map();
  for (const id of [4, 3.5]) forgedCache.set(id, await forgedLink(id, 'mallory:1:000000', 1, '0'.repeat(64)));
});

describe('audit hash chains of concurrent writers on one SQLite file', function () {
  this.timeout(60_000);
  let tmp: ReturnType<typeof makeTempDir>;
  before(() => { tmp = makeTempDir('kakuin-audit-concurrent-'); });
  after(() => tmp.cleanup());

  it('two registries in this process and one in another process each keep their own chain, and the whole trail verifies', async () => {
    const file = path.join(tmp.dir, 'registry.db');
    const a = await openSqliteRegistry({ path: file });
    const b = await openSqliteRegistry({ path: file });
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      const { openSqliteRegistry } = await import(${JSON.stringify(pathToFileURL(path.join(buildRoot, 'registry', 'sqlite', 'index.js')).href)});
      const r = await openSqliteRegistry({ path: ${JSON.stringify(file)}, busyTimeoutMs: 10000 });
      for (let i = 0; i < 60; i++) await r.appendAuditEvent({ type: 'certificate.issued', actor: 'station:child', serialHex: i.toString(16) });
      await r.close();
    `], { stdio: ['ignore', 'inherit', 'inherit'] });
    const childDone = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      writes.push(a.appendAuditEvent({ type: 'device.suspended', actor: 'token:a', deviceId: `a-${i}` }));
      writes.push(b.appendAuditEvent({ type: 'device.resumed', actor: 'token:b', deviceId: `b-${i}` }));
    }
    await Promise.all(writes);
    expect(await childDone).to.equal(0);
    await checkpointerFor(a).checkpoint();
    const events = await a.listAuditEvents({ limit: 1000 });
    const byChain = new Map<string, number[]>();
    for (const e of events) byChain.set(e.chain!.chain, [...(byChain.get(e.chain!.chain) ?? []), e.chain!.seq]);
    expect(byChain.size).to.equal(3);
    for (const seqs of byChain.values()) expect(seqs).to.deep.equal(seqs.map((_, i) => i + 1));
    expect([...byChain.values()].map((s) => s.length).sort()).to.deep.equal([60, 60, 61]);
    const heads = await a.auditChainHeads();
    expect(heads.map((h) => h.seq).sort()).to.deep.equal([60, 60, 61]);
    const result = await verifyAuditTrail(a, { roots });
    expect(result).to.deep.equal({ ok: true, events: 181, chains: 3, checkpoints: 1 });
    await a.close();
    await b.close();
  });
});

describe('audit events written before migration 13 (the virtual legacy chain)', function () {
  this.timeout(30_000);
  it('are chained by verification in id order, signed by the first checkpoint, and an edit of one is caught', async () => {
    const tmp = makeTempDir('kakuin-audit-legacy-');
    try {
      const file = path.join(tmp.dir, 'registry.db');
      const db = new Database(file);
      migrate(db, MIGRATIONS.filter((m) => m.version < 13));
      for (let i = 1; i <= 4; i++) {
        db.prepare(`INSERT INTO audit_events (at, type, actor, device_id, details) VALUES (?, 'device.registered', 'cli', ?, ?)`).run(Date.UTC(2026, 0, i), `old-${i}`, JSON.stringify({ i }));
      }
      db.close();
      const registry = await openSqliteRegistry({ path: file });
      await registry.appendAuditEvent({ type: 'device.revoked', actor: 'cli', deviceId: 'old-1' });
      const checkpoint = await checkpointerFor(registry).checkpoint();
      const heads = (checkpoint.details as unknown as CheckpointDetails).statement.heads;
      expect(heads.map((h) => [h.chain === 'legacy' ? 'legacy' : 'writer', h.seq, h.eventId]).sort()).to.deep.equal([['legacy', 4, 4], ['writer', 1, 5]]);
      expect(await verifyAuditTrail(registry, { roots })).to.deep.equal({ ok: true, events: 6, chains: 2, checkpoints: 1 });
      await registry.close();
      const raw = new Database(file);
      raw.prepare('UPDATE audit_events SET actor = ? WHERE id = 2').run('token:mallory');
      raw.close();
      const reread = await openSqliteRegistry({ path: file, readonly: true });
      // Legacy events carry no hash of their own: the edit shows where the checkpoint signed the legacy head.
      expect((await verifyAuditTrail(reread, { roots })).problem).to.include({ code: 'KAKUIN_E_AUDIT_EVENT_ALTERED', chain: 'legacy', eventId: 4 });
      await reread.close();
    } finally {
      tmp.cleanup();
    }
  });
});

describe('audit checkpoints are an event type of events out', function () {
  it('audit.checkpoint goes out (webhooks, syslog), so copies are kept off-host', () => {
    expect(isEventType('audit.checkpoint')).to.equal(true);
  });
});
