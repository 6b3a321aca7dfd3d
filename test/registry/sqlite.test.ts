/** The registry contract on SQLite, plus what only SQLite has: pragmas, migrations, read-only roles, kill -9. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { LATEST_SCHEMA_VERSION, openSqliteRegistry, type SqliteRegistry } from '../../registry/sqlite/index.js';
import { MIGRATIONS, migrate, readSchemaVersion } from '../../registry/sqlite/schema.js';
import { expectKakuinError, fakeCertificate, issuance, runRegistryContract } from '../contract/registry.contract.js';
import { makeTempDir } from '../support/index.js';

runRegistryContract('sqlite', async () => {
  const tmp = makeTempDir('kakuin-registry-');
  const registry = await openSqliteRegistry({ path: path.join(tmp.dir, 'registry.db') });
  return { registry, cleanup: async () => { await registry.close(); tmp.cleanup(); } };
});

describe('registry/sqlite', function () {
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

  beforeEach(function () {
    tmp = makeTempDir('kakuin-registry-sqlite-');
    file = path.join(tmp.dir, 'registry.db');
  });

  afterEach(async function () {
    for (const r of opened.splice(0)) await r.close();
    tmp.cleanup();
  });

  describe('connection', function () {
    it('runs in WAL mode with synchronous NORMAL, foreign keys on and a 5 s busy timeout by default', async function () {
      const registry = await open();
      expect(registry.connectionSettings()).to.deep.equal({
        journalMode: 'wal', synchronous: 'NORMAL', foreignKeys: true, busyTimeoutMs: 5000, readonly: false,
      });
      expect(raw((db) => db.pragma('journal_mode', { simple: true }))).to.equal('wal');
    });

    it('honours synchronous FULL and a busy timeout when asked', async function () {
      const registry = await open({ synchronous: 'FULL', busyTimeoutMs: 250 });
      expect(registry.connectionSettings()).to.include({ synchronous: 'FULL', busyTimeoutMs: 250 });
    });

    it('refuses bad options with KAKUIN_E_CONFIG', async function () {
      await expectKakuinError(openSqliteRegistry({ path: '' }), 'KAKUIN_E_CONFIG');
      await expectKakuinError(openSqliteRegistry({ path: file, synchronous: 'OFF' as 'FULL' }), 'KAKUIN_E_CONFIG');
      await expectKakuinError(openSqliteRegistry({ path: file, busyTimeoutMs: -1 }), 'KAKUIN_E_CONFIG');
      expect(existsSync(file)).to.equal(false);
    });

    it('reports a file it cannot open as KAKUIN_E_REGISTRY_UNAVAILABLE', async function () {
      await expectKakuinError(openSqliteRegistry({ path: path.join(tmp.dir, 'missing', 'dir', 'r.db') }), 'KAKUIN_E_REGISTRY_UNAVAILABLE');
    });

    it('maps a lock held by another process to KAKUIN_E_REGISTRY_UNAVAILABLE, and recovers after', async function () {
      const registry = await open({ busyTimeoutMs: 20 });
      const holder = new Database(file);
      holder.exec('BEGIN IMMEDIATE');
      try {
        await expectKakuinError(registry.createManufacturer({ name: 'Acme' }), 'KAKUIN_E_REGISTRY_UNAVAILABLE');
        await expectKakuinError(registry.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' }),
          'KAKUIN_E_REGISTRY_UNAVAILABLE');
        await expectKakuinError(registry.recordIssuance(issuance(fakeCertificate({ issuerId: 'device' }))), 'KAKUIN_E_REGISTRY_UNAVAILABLE');
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
      expect((await registry.createManufacturer({ name: 'Acme' })).name).to.equal('Acme');
    });
  });

  describe('schema migrations', function () {
    it('lists migrations in strictly increasing version order', function () {
      MIGRATIONS.forEach((m, i) => {
        if (i > 0) expect(m.version).to.be.greaterThan(MIGRATIONS[i - 1].version);
      });
    });

    it('records the version in user_version and schema_migrations, and reopening changes nothing', async function () {
      const first = await open();
      expect(await first.schemaVersion()).to.equal(LATEST_SCHEMA_VERSION);
      await first.createManufacturer({ name: 'Acme' });
      await first.close();
      const schemaBefore = raw((db) => db.prepare('SELECT name, sql FROM sqlite_schema ORDER BY name').all());
      const second = await open();
      expect(await second.schemaVersion()).to.equal(LATEST_SCHEMA_VERSION);
      expect((await second.listManufacturers()).map((m) => m.name)).to.deep.equal(['Acme']);
      await second.close();
      raw((db) => {
        expect(db.pragma('user_version', { simple: true })).to.equal(LATEST_SCHEMA_VERSION);
        const log = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
        expect(log.map((r) => r.version)).to.deep.equal(MIGRATIONS.map((m) => m.version));
        expect(db.prepare('SELECT name, sql FROM sqlite_schema ORDER BY name').all()).to.deep.equal(schemaBefore);
      });
    });

    it('step 7 makes the keys of existing stations count their age from the upgrade; stations made later count from their creation', async function () {
      const old = Date.now() - 400 * 86_400_000;
      const before = Date.now() - 1000;
      raw((db) => {
        expect(migrate(db, MIGRATIONS.slice(0, 6))).to.equal(6);
        db.prepare(`INSERT INTO manufacturers (id, name, created_at) VALUES ('m-1', 'Old Works', ?)`).run(old);
        db.prepare(`INSERT INTO stations (id, manufacturer_id, name, key_hmac, created_at) VALUES ('s-1', 'm-1', 'line', ?, ?)`).run('c'.repeat(64), old);
        expect(migrate(db, MIGRATIONS)).to.equal(LATEST_SCHEMA_VERSION);
      });
      const registry = await openSqliteRegistry({ path: file });
      try {
        const upgraded = await registry.getStation('s-1');
        expect(upgraded.createdAt.getTime()).to.equal(old);
        expect(upgraded.keyAgeFrom!.getTime()).to.be.within(before, Date.now());
        const fresh = await registry.createStation({ manufacturerId: 'm-1', name: 'new line', keyHmac: 'd'.repeat(64) }, { type: 'station.created', actor: 'test' });
        expect(fresh.keyAgeFrom).to.equal(undefined);
        expect((await registry.getStation(fresh.id)).keyAgeFrom).to.equal(undefined);
      } finally {
        await registry.close();
      }
    });

    it('step 3 rebuilds the revocation feed keeping every entry, its seq, and the AUTOINCREMENT counter', function () {
      raw((db) => {
        expect(migrate(db, MIGRATIONS.slice(0, 2))).to.equal(2);
        const insert = db.prepare(`INSERT INTO revocation_feed (at, kind, serial_hex, issuer_id, device_id, status, previous_status)
          VALUES (?, ?, ?, ?, ?, ?, ?)`);
        insert.run(1, 'certificate', 'AB', 'device', 'd-1', 'good', null);
        insert.run(2, 'device', null, null, 'd-1', 'revoked', 'active');
        // As if newer entries had been pruned: the counter is ahead of the rows.
        db.prepare(`UPDATE sqlite_sequence SET seq = 41 WHERE name = 'revocation_feed'`).run();
        const before = db.prepare('SELECT * FROM revocation_feed ORDER BY seq').all();
        expect(migrate(db, MIGRATIONS)).to.equal(LATEST_SCHEMA_VERSION);
        const after = db.prepare('SELECT seq, at, kind, serial_hex, issuer_id, device_id, status, previous_status, reason, revoked_at, invalidity_date FROM revocation_feed ORDER BY seq').all();
        expect(after).to.deep.equal(before);
        const next = db.prepare(`INSERT INTO revocation_feed (at, kind, device_id, status, previous_status, generation)
          VALUES (3, 'legacy-credentials', 'd-1', 'enabled', NULL, 1)`).run();
        expect(Number(next.lastInsertRowid)).to.equal(42);
        expect(() => db.prepare(`INSERT INTO revocation_feed (at, kind, device_id, status) VALUES (4, 'legacy-credentials', 'd-1', 'bogus')`).run())
          .to.throw(/CHECK/);
      });
    });

    it('applies only the steps a file lacks, and each once', function () {
      const steps = [
        { version: 1, name: 'one', sql: 'CREATE TABLE one (x INTEGER) STRICT' },
        { version: 2, name: 'two', sql: 'CREATE TABLE two (x INTEGER) STRICT' },
      ];
      raw((db) => {
        expect(migrate(db, steps.slice(0, 1))).to.equal(1);
        expect(migrate(db, steps)).to.equal(2);
        expect(migrate(db, steps)).to.equal(2);
        expect(readSchemaVersion(db)).to.equal(2);
        expect((db.prepare('SELECT count(*) AS c FROM schema_migrations').get() as { c: number }).c).to.equal(2);
      });
    });

    it('refuses a file stamped with a newer user_version with KAKUIN_E_SCHEMA_TOO_NEW and leaves it alone', async function () {
      await (await open()).close();
      raw((db) => db.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`));
      await expectKakuinError(openSqliteRegistry({ path: file }), 'KAKUIN_E_SCHEMA_TOO_NEW');
      await expectKakuinError(openSqliteRegistry({ path: file, readonly: true }), 'KAKUIN_E_SCHEMA_TOO_NEW');
      expect(raw((db) => db.pragma('user_version', { simple: true }))).to.equal(LATEST_SCHEMA_VERSION + 1);
    });

    it('refuses a file whose migration log names a newer version with KAKUIN_E_SCHEMA_TOO_NEW', async function () {
      await (await open()).close();
      raw((db) => db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
        .run(LATEST_SCHEMA_VERSION + 5, 'from the future', Date.now()));
      await expectKakuinError(openSqliteRegistry({ path: file }), 'KAKUIN_E_SCHEMA_TOO_NEW');
    });
  });

  describe('read-only opening (OCSP responder, gateway)', function () {
    it('refuses a missing file and a file without schema, and creates nothing', async function () {
      await expectKakuinError(openSqliteRegistry({ path: file, readonly: true }), 'KAKUIN_E_REGISTRY_UNAVAILABLE');
      expect(existsSync(file)).to.equal(false);
      raw(() => undefined); // an empty SQLite file
      await expectKakuinError(openSqliteRegistry({ path: file, readonly: true }), 'KAKUIN_E_REGISTRY_UNAVAILABLE');
      expect(raw((db) => db.prepare('SELECT count(*) AS c FROM sqlite_schema').get())).to.deep.equal({ c: 0 });
    });

    it('reads what the writer commits, also after it opened, and cannot write', async function () {
      const writer = await open();
      await writer.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' });
      const m = await writer.createManufacturer({ name: 'Acme' });
      const reader = await open({ readonly: true });
      expect(reader.connectionSettings()).to.include({ readonly: true, journalMode: 'wal' });
      expect(await reader.schemaVersion()).to.equal(LATEST_SCHEMA_VERSION);
      const d = await writer.createDevice({ manufacturerId: m.id, serialNumber: 'SN-1' });
      const cert = await writer.recordIssuance(issuance(fakeCertificate({ issuerId: 'device', deviceId: d.id })));
      expect((await reader.getCertificate(cert.serialHex)).deviceId).to.equal(d.id);
      expect((await reader.getDevice(d.id)).status).to.equal('active');

      await expectKakuinError(reader.createManufacturer({ name: 'Other' }), 'KAKUIN_E_INTERNAL');
      await expectKakuinError(reader.recordIssuance(issuance(fakeCertificate({ issuerId: 'device' }))), 'KAKUIN_E_INTERNAL');
      await expectKakuinError(reader.appendAuditEvent({ type: 'x', actor: 'cli' }), 'KAKUIN_E_INTERNAL');
      expect((await writer.listManufacturers()).map((x) => x.name)).to.deep.equal(['Acme']);
      expect(await writer.listAuditEvents({ type: 'x' })).to.deep.equal([]);
    });
  });

  describe('group commit and durability', function () {
    it('a resolved recordIssuance is visible to another connection (committed before it resolves)', async function () {
      const registry = await open();
      await registry.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' });
      const other = new Database(file, { readonly: true });
      try {
        const visible = await Promise.all(Array.from({ length: 30 }, () =>
          registry.recordIssuance(issuance(fakeCertificate({ issuerId: 'device' }))).then((r) =>
            other.prepare('SELECT 1 FROM certificates WHERE serial_hex = ?').get(r.serialHex) !== undefined)));
        expect(visible.every(Boolean)).to.equal(true);
      } finally {
        other.close();
      }
    });

    it('close commits queued issuances; they are there after reopening', async function () {
      const registry = await open();
      await registry.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' });
      const pending = Array.from({ length: 20 }, () => registry.recordIssuance(issuance(fakeCertificate({ issuerId: 'device' }))));
      await registry.close();
      const records = await Promise.all(pending);
      const again = await open();
      for (const r of records) expect((await again.getCertificate(r.serialHex)).fingerprintSha256).to.equal(r.fingerprintSha256);
    });

    it('every serial a process saw committed survives SIGKILL of that process', async function () {
      this.timeout(60_000);
      const setup = await open();
      await setup.putIssuer({ id: 'device', kind: 'device', certificateDer: Buffer.from([1]), keyUri: 'file:k' });
      const m = await setup.createManufacturer({ name: 'Acme' });
      await setup.close();
      opened.length = 0;

      const fixture = fileURLToPath(new URL('./fixtures/issue-until-killed.js', import.meta.url));
      const child = spawn(process.execPath, [fixture, file, m.id], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const enough = 1200;
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (child.exitCode === null && child.signalCode === null && stdout.split('\n').length > enough) child.kill('SIGKILL');
      });
      const signal = await exited;
      expect(signal, `the child ended by itself: ${stderr}`).to.equal('SIGKILL');

      // Only whole lines count: a line cut by the kill was never completely printed.
      const lines = stdout.split('\n').slice(0, -1);
      expect(lines.length).to.be.at.least(enough);
      const registry = await open();
      expect(raw((db) => db.pragma('integrity_check', { simple: true }))).to.equal('ok');
      for (const line of lines) {
        const [serial, deviceId] = line.split(' ');
        const cert = await registry.getCertificate(serial);
        expect(cert.deviceId).to.equal(deviceId);
      }
      const audited = new Set((await registry.listAuditEvents({ type: 'certificate.issued', limit: 1000 })).map((e) => e.serialHex));
      for (const line of lines.slice(0, 1000)) expect(audited.has(line.split(' ')[0])).to.equal(true);
    });
  });
});
