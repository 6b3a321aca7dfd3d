/**
 * What only the SQLite adapter has for revocation (issue 3): the migration of a version-1 file,
 * read-only connections (OCSP responder, gateway, CRL worker) reading while the writer commits, a
 * second connection following the feed, and streaming a large CRL without an object per row.
 */
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { FeedFollower } from '../../registry/feed-follower.js';
import type { CertificateRecord, FeedEntry, Registry } from '../../registry/port.js';
import { CRL_ENTRY_QUERIES } from '../../registry/sqlite/certificate-status-reader.js';
import { LATEST_SCHEMA_VERSION, openSqliteRegistry, type SqliteRegistry } from '../../registry/sqlite/index.js';
import { MIGRATIONS, migrate, readSchemaVersion } from '../../registry/sqlite/schema.js';
import { expectKakuinError, fakeCertificate, issuance } from '../contract/registry.contract.js';
import { makeTempDir } from '../support/index.js';

const at = (s: number) => new Date(Date.UTC(2030, 0, 1) + s * 1000);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function crlSerials(registry: Registry, issuerId: string, changedAfterSeq?: number): Promise<string[]> {
  const out: string[] = [];
  await registry.forEachCrlEntry(issuerId, changedAfterSeq === undefined ? {} : { changedAfterSeq }, (serial) => out.push(serial));
  return out.sort();
}

function revokeNow(serialHex: string) {
  return { certificates: [{ serialHex, from: ['good' as const, 'held' as const], to: 'revoked' as const, reason: 'keyCompromise' as const, revokedAt: at(1) }], audit: [] };
}

describe('registry/sqlite revocation', function () {
  let tmp: ReturnType<typeof makeTempDir>;
  let file: string;
  const opened: SqliteRegistry[] = [];

  async function open(options: Partial<Parameters<typeof openSqliteRegistry>[0]> = {}): Promise<SqliteRegistry> {
    const registry = await openSqliteRegistry({ path: file, ...options });
    opened.push(registry);
    return registry;
  }

  function raw<T>(fn: (db: Database.Database) => T): T {
    const db = new Database(file);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  }

  /** A writer with issuer `device`, one active device and `n` good certificates. */
  async function writerWith(n: number): Promise<{ writer: SqliteRegistry; certs: CertificateRecord[]; deviceId: string }> {
    const writer = await open();
    await writer.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' });
    const m = await writer.createManufacturer({ name: 'Acme' });
    const d = await writer.createDevice({ manufacturerId: m.id, serialNumber: 'SN-1' });
    const certs: CertificateRecord[] = [];
    for (let i = 0; i < n; i++) certs.push(await writer.recordIssuance(issuance(fakeCertificate({ issuerId: 'device', deviceId: d.id }))));
    return { writer, certs, deviceId: d.id };
  }

  /** `n` revoked certificates of `issuerId` written directly (recordIssuance would take minutes for 200,000). */
  function insertRevoked(n: number, issuerId = 'device'): void {
    raw((db) => {
      const insert = db.prepare(`INSERT INTO certificates (serial_hex, issuer_id, device_id, profile, status, der, fingerprint_sha256,
        public_key_sha256, not_before, not_after, created_at, revoked_at, reason, status_seq)
        VALUES (?, ?, NULL, 'device', 'revoked', ?, ?, ?, 0, ?, 0, ?, 'keyCompromise', 0)`);
      const der = Buffer.alloc(400, 0x30);
      const hash = '0'.repeat(64);
      db.transaction(() => {
        for (let i = 0; i < n; i++) {
          insert.run(`7F${i.toString(16).padStart(30, '0').toUpperCase()}`, issuerId, der, hash, hash, at(86_400 * 365).getTime(), at(i % 1000).getTime());
        }
      })();
    });
  }

  beforeEach(function () {
    tmp = makeTempDir('kakuin-registry-revocation-');
    file = path.join(tmp.dir, 'registry.db');
  });

  afterEach(async function () {
    for (const r of opened.splice(0)) await r.close();
    tmp.cleanup();
  });

  it('migrates a version-1 file forward: every row survives with status_seq 0, the feed starts empty', async function () {
    raw((db) => {
      expect(migrate(db, MIGRATIONS.slice(0, 1))).to.equal(1);
      db.exec(`
        INSERT INTO issuers (id, kind, certificate_der, key_uri, parent_id, created_at) VALUES ('device', 'device', x'01', 'file:k', NULL, 1);
        INSERT INTO manufacturers (id, name, created_at) VALUES ('m1', 'Acme', 1);
        INSERT INTO devices (id, manufacturer_id, serial_number, status, created_at, updated_at) VALUES ('d1', 'm1', 'SN-1', 'active', 1, 2);
        INSERT INTO certificates (serial_hex, issuer_id, device_id, profile, status, der, fingerprint_sha256, public_key_sha256,
          not_before, not_after, created_at) VALUES ('0A', 'device', 'd1', 'device', 'good', x'3001', '${'a'.repeat(64)}', '${'b'.repeat(64)}', 1, 9000000000000, 3);
        INSERT INTO certificates (serial_hex, issuer_id, device_id, profile, status, der, fingerprint_sha256, public_key_sha256,
          not_before, not_after, created_at, revoked_at, reason) VALUES ('0B', 'device', 'd1', 'device', 'revoked', x'3002', '${'c'.repeat(64)}',
          '${'b'.repeat(64)}', 1, 9000000000000, 4, 5000, 'superseded');
        INSERT INTO public_key_bindings (public_key_sha256, device_id, bound_at) VALUES ('${'b'.repeat(64)}', 'd1', 3);
        INSERT INTO audit_events (at, type, actor, device_id, serial_hex) VALUES (3, 'certificate.issued', 'cli', 'd1', '0A');
      `);
    });
    // A read-only process cannot migrate: it waits for a read-write one.
    await expectKakuinError(openSqliteRegistry({ path: file, readonly: true }), 'KAKUIN_E_REGISTRY_UNAVAILABLE');

    const registry = await open();
    expect(await registry.schemaVersion()).to.equal(LATEST_SCHEMA_VERSION);
    expect(raw((db) => readSchemaVersion(db))).to.equal(LATEST_SCHEMA_VERSION);
    expect(raw((db) => db.prepare('SELECT serial_hex, status_seq, released_seq FROM certificates ORDER BY serial_hex').all()))
      .to.deep.equal([{ serial_hex: '0A', status_seq: 0, released_seq: null }, { serial_hex: '0B', status_seq: 0, released_seq: null }]);
    expect((await registry.getDevice('d1')).status).to.equal('active');
    expect(await registry.getCertificate('0A')).to.deep.include({ status: 'good', deviceId: 'd1' });
    const old = await registry.getCertificate('0b');
    expect(old).to.deep.include({ status: 'revoked', reason: 'superseded' });
    expect(old.revokedAt?.getTime()).to.equal(5000);
    expect(await registry.findDeviceIdByPublicKey('b'.repeat(64))).to.equal('d1');
    expect(await registry.listAuditEvents({})).to.have.length(1);

    expect(await registry.latestFeedSeq()).to.equal(0);
    expect(await registry.readFeed(0)).to.deep.equal([]);
    expect(await crlSerials(registry, 'device')).to.deep.equal(['0B']);
    expect(await crlSerials(registry, 'device', 0)).to.deep.equal([]);

    const [revoked] = await registry.applyStatusChange(revokeNow('0A'));
    expect(revoked.seq).to.equal(1);
    expect(await crlSerials(registry, 'device', 0)).to.deep.equal(['0A']);
    expect(await crlSerials(registry, 'device')).to.deep.equal(['0A', '0B']);
    const fresh = await registry.recordIssuance(issuance(fakeCertificate({ issuerId: 'device' })));
    expect((await registry.readFeed(1)).map((e) => [e.seq, e.serialHex, e.status])).to.deep.equal([[2, fresh.serialHex, 'good']]);
    expect(await registry.nextCrlNumber('device')).to.equal(1n);
  });

  it('a read-only opening answers every revocation read and refuses every revocation write', async function () {
    const { writer, certs: [a, b, c] } = await writerWith(3);
    await writer.applyStatusChange(revokeNow(a.serialHex));
    await writer.applyStatusChange({ certificates: [{ serialHex: b.serialHex, from: ['good'], to: 'held', reason: 'certificateHold', revokedAt: at(2) }], audit: [] });
    const crl = { issuerId: 'device', kind: 'full' as const, number: 2n ** 70n, thisUpdate: at(0), nextUpdate: at(60), feedSeq: 5, der: Buffer.from([0x30, 0]) };
    await writer.putCrl(crl);
    const ocsp = { issuerId: 'device', serialHex: c.serialHex, der: Buffer.from([0x30, 1]), thisUpdate: at(0), nextUpdate: at(60) };
    await writer.putOcspResponses([ocsp]);

    const reader = await open({ readonly: true });
    expect(await reader.readFeed(0)).to.deep.equal(await writer.readFeed(0));
    expect(await reader.latestFeedSeq()).to.equal(await writer.latestFeedSeq());
    expect(await crlSerials(reader, 'device')).to.deep.equal([a.serialHex, b.serialHex].sort());
    expect(await crlSerials(reader, 'device', 0)).to.deep.equal([a.serialHex, b.serialHex].sort());
    let statuses = 0;
    await reader.forEachCertificateStatus('device', () => statuses++);
    expect(statuses).to.equal(3);
    expect(await reader.getLatestCrl('device', 'full')).to.deep.equal(crl);
    expect(await reader.getOcspResponse('device', c.serialHex)).to.deep.equal(ocsp);
    const stored: unknown[] = [];
    await reader.forEachOcspResponse(undefined, (r) => stored.push(r));
    expect(stored).to.deep.equal([ocsp]);

    await writer.applyStatusChange(revokeNow(c.serialHex));
    expect(await crlSerials(reader, 'device')).to.have.length(3);

    await expectKakuinError(reader.applyStatusChange(revokeNow(c.serialHex)), 'KAKUIN_E_INTERNAL');
    await expectKakuinError(reader.nextCrlNumber('device'), 'KAKUIN_E_INTERNAL');
    await expectKakuinError(reader.putCrl({ ...crl, number: crl.number + 1n }), 'KAKUIN_E_INTERNAL');
    await expectKakuinError(reader.putOcspResponses([ocsp]), 'KAKUIN_E_INTERNAL');
    expect((await writer.getLatestCrl('device', 'full'))?.number).to.equal(crl.number);
  });

  it('a read-only connection in a worker thread streams one snapshot while the writer commits', async function () {
    this.timeout(30_000);
    const { writer, certs: [late] } = await writerWith(1);
    insertRevoked(500);
    const seqBefore = await writer.latestFeedSeq();
    const signal = new SharedArrayBuffer(4);
    let commitMs = Infinity;
    const worker = new Worker(new URL('./fixtures/crl-reader-worker.js', import.meta.url), { workerData: { path: file, issuerId: 'device', signal } });
    const done = new Promise<{ type: string; rows?: number; latestFeedSeq?: number; message?: string }>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('message', async (msg: { type: string }) => {
        if (msg.type === 'first-row') {
          // The worker holds its read snapshot, mid-walk: this commit must neither wait for it nor show up in it.
          const started = performance.now();
          try {
            await writer.applyStatusChange(revokeNow(late.serialHex));
            commitMs = performance.now() - started;
          } finally {
            Atomics.store(new Int32Array(signal), 0, 1);
            Atomics.notify(new Int32Array(signal), 0);
          }
        } else {
          resolve(msg);
        }
      });
    });
    const result = await done;
    await worker.terminate();
    expect(result, result.message).to.deep.include({ type: 'done', rows: 500 });
    expect(commitMs, 'the commit waited for the reader').to.be.below(1000);
    // A new statement sees the commit.
    expect(result.latestFeedSeq).to.equal(seqBefore + 1);
    expect(await crlSerials(writer, 'device')).to.have.length(501);
  });

  it('a second connection following the feed sees each commit within 200 ms', async function () {
    const { writer, certs } = await writerWith(6);
    const reader = await open({ readonly: true });
    const arrivals = new Map<number, number>();
    const delivered: FeedEntry[] = [];
    const follower = new FeedFollower(reader, {
      afterSeq: await reader.latestFeedSeq(),
      pollIntervalMs: 100,
      onEntries: (entries) => {
        const now = performance.now();
        for (const e of entries) arrivals.set(e.seq, now);
        delivered.push(...entries);
      },
    });
    follower.start();
    try {
      const latencies: number[] = [];
      for (const [i, c] of certs.entries()) {
        await sleep(37 * i % 100); // commit at different points of the poll cycle
        const [entry] = await writer.applyStatusChange(revokeNow(c.serialHex));
        const committedAt = performance.now();
        while (!arrivals.has(entry.seq) && performance.now() - committedAt < 1000) await sleep(5);
        expect(arrivals.has(entry.seq), `entry ${entry.seq} never arrived`).to.equal(true);
        latencies.push(arrivals.get(entry.seq)! - committedAt);
      }
      expect(Math.max(...latencies), latencies.map((l) => l.toFixed(0)).join(', ')).to.be.below(200);
      expect(delivered.map((e) => e.serialHex)).to.deep.equal(certs.map((c) => c.serialHex));
      expect(follower.lastSeq).to.equal(await writer.latestFeedSeq());
      expect(Date.now() - follower.lastSuccessAt!.getTime()).to.be.below(500);
    } finally {
      await follower.stop();
    }
  });

  it('CRL queries walk the partial covering indexes, never the certificates table', async function () {
    await (await open()).close();
    opened.length = 0;
    raw((db) => {
      const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('device', 0) as { detail: string }[]).map((r) => r.detail).join('; ');
      const withoutSeq = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('device') as { detail: string }[]).map((r) => r.detail).join('; ');
      expect(withoutSeq(CRL_ENTRY_QUERIES.full)).to.match(/USING COVERING INDEX certificates_on_crl \(issuer_id=\?\)/);
      expect(plan(CRL_ENTRY_QUERIES.changedAfter)).to.match(/USING COVERING INDEX certificates_on_crl \(issuer_id=\? AND status_seq>\?\)/);
      expect(plan(CRL_ENTRY_QUERIES.releasedAfter)).to.match(/USING COVERING INDEX certificates_released \(issuer_id=\? AND released_seq>\?\)/);
    });
  });

  it('two connections reserving CRL numbers never get the same one', async function () {
    const a = await open();
    await a.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' });
    const b = await open();
    const numbers = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).nextCrlNumber('device')));
    expect(new Set(numbers.map(String)).size).to.equal(40);
    expect(numbers.reduce((m, n) => (n > m ? n : m), 0n)).to.equal(40n);
  });

  it('forEachCrlEntry streams 200,000 revoked rows with no object kept per row', async function () {
    this.timeout(120_000);
    const setup = await open();
    await setup.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' });
    insertRevoked(200_000);
    const reader = await open({ readonly: true });
    // With --expose-gc the retained heap is measured; without it only the rows are counted.
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const base = process.memoryUsage().heapUsed;
    let rows = 0;
    let malformed = 0;
    let retained = 0;
    await reader.forEachCrlEntry('device', {}, (serial, status, revokedAtMs, reason, invalidityDateMs, notAfterMs) => {
      rows++;
      if (serial.length !== 32 || status !== 'revoked' || reason !== 'keyCompromise' || revokedAtMs === undefined
        || invalidityDateMs !== undefined || notAfterMs <= 0) malformed++;
      if (gc !== undefined && rows % 25_000 === 0) {
        gc();
        retained = Math.max(retained, process.memoryUsage().heapUsed - base);
      }
    });
    expect(rows).to.equal(200_000);
    expect(malformed).to.equal(0);
    // An object per row (a 32-character serial and five fields) would retain well over 20 MB.
    if (gc !== undefined) expect(retained, `${retained} bytes retained`).to.be.below(4 * 1024 * 1024);
  });
});
