/**
 * The embedded registry on one SQLite file (better-sqlite3, WAL). See DESIGN.md "Storage".
 *
 * better-sqlite3 is synchronous; every method does a few indexed statements (microseconds), so the
 * port's promises cost no worker thread. Writes of issued certificates go through the group
 * commit (group-commit.ts); a status change is one BEGIN IMMEDIATE transaction
 * (status-change-writer.ts); every other write is one short statement in autocommit. The
 * `forEach*` methods stream a whole issuer synchronously: call them on a connection of their own
 * (a read-only opening in a worker thread, as the CRL builder does), not on the event loop's.
 *
 * Listings are returned oldest first (insertion order); audit events in increasing id order.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { KakuinError, type ErrorCode } from '../../errors/index.js';
import type {
  AdminToken, AuditEvent, AuditQuery, CommonAuthId, FailureCount, LegacyCredential, LegacyCredentialState, LegacyVerifierKind,
  NewLegacyCredential, PendingSupersede, Station, CertificateRecord, CertificateStatusRow, CrlRecord, Device, DeviceQuery,
  FeedEntry, IssuanceRecord, Issuer, ListPage, Manufacturer, NewAuditEvent, NewDevice, Registry, StatusChange, StoredOcspResponse,
} from '../port.js';
import { newDeviceId } from '../ids.js';
import { checkStatusChange } from '../status-change.js';
import { CertificateStatusReader } from './certificate-status-reader.js';
import { openDatabase, resolveOptions, type ResolvedOptions, type SqliteRegistryOptions } from './connection.js';
import { toKakuinError, type ErrorContext } from './driver-errors.js';
import { GroupCommit } from './group-commit.js';
import { IssuanceWriter, prepareIssuance, type PreparedIssuance } from './issuance.js';
import { auditEventsQuery, devicesQuery, StatementCache } from './queries.js';
import {
  adminTokenFromRow, auditEventFromRow, auditEventValues, certificateFromRow, deviceFromRow, feedEntryFromRow, feedSeqValue,
  issuerFromRow, manufacturerFromRow, normalizeFeedLimit, normalizeLimit, normalizeNewLegacyCredentials, normalizeSerialHex, normalizeSha256Hex, optionalMillis, optionalText, requiredBytes,
  requiredText, toMillis, type AdminTokenRow, type AuditEventRow, type CertificateRow, type DeviceRow, type FeedRow,
  type IssuerRow, type ManufacturerRow,
} from './records.js';
import { crlRow, ocspResponseRow, SignedObjectStore } from './signed-objects.js';
import { LegacyCredentialStore } from './legacy-credentials.js';
import { StationStore, stationFromRow } from './stations.js';
import { SqliteActivityStore } from './activity-store.js';
import { SqliteEventCursorStore } from './event-cursors.js';
import { StatusChangeWriter, type PreparedStatusChange } from './status-change-writer.js';
import { WalCheckpointer, type WalCheckpointerOptions } from './wal-checkpointer.js';
import { LARGE_CRL_BYTES, LargeCrlWriter } from './large-crl-writer.js';
import { RecentFeedEntries } from './recent-feed.js';

const ISSUER_KINDS = new Set(['root', 'device', 'station', 'infrastructure', 'ocsp-signer']);

const ISSUER_NOT_FOUND = { code: 'KAKUIN_E_ISSUER_NOT_FOUND' as ErrorCode, message: 'no issuer with that id is recorded' };

/** Open (creating and migrating unless read-only) the registry file. */
export async function openSqliteRegistry(options: SqliteRegistryOptions): Promise<SqliteRegistry> {
  const resolved = resolveOptions(options);
  const { db, schemaVersion } = openDatabase(resolved);
  try {
    return new SqliteRegistry(db, resolved, schemaVersion);
  } catch (e) {
    db.close();
    throw toKakuinError(e, { operation: 'preparing statements' });
  }
}

/** What the connection actually runs with (for diagnostics and tests). */
export interface SqliteConnectionSettings {
  journalMode: string;
  synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA';
  foreignKeys: boolean;
  busyTimeoutMs: number;
  readonly: boolean;
}

function requireObject(value: unknown, what: string): void {
  if (value === null || typeof value !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be an object`);
}

function requireFunction(value: unknown, what: string): void {
  if (typeof value !== 'function') throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a function`);
}

const SYNCHRONOUS_NAMES = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const;

export class SqliteRegistry implements Registry {
  private closed = false;
  private readonly statements: StatementCache;
  private readonly issuances: GroupCommit<PreparedIssuance, CertificateRecord>;
  private readonly statusChanges: Database.Transaction<(change: PreparedStatusChange, now: number) => FeedEntry[]>;
  private readonly statusReader: CertificateStatusReader;
  private readonly signedObjects: SignedObjectStore;
  private readonly legacy: LegacyCredentialStore;
  private readonly stations: StationStore;
  /** The activity port (activity-store.ts) on this connection: what the writing role uses. */
  readonly activity: SqliteActivityStore;
  /** The event-cursor port (event-cursors.ts): events out, in the writing process only. */
  readonly eventCursors: SqliteEventCursorStore;
  private checkpointer: WalCheckpointer | undefined;
  /** Started by the first large CRL (large-crl-writer.ts). */
  private largeCrlWriter: LargeCrlWriter | undefined;
  /** The feed's newest entries, read once for all the followers of this process (recent-feed.ts). */
  private readonly recentFeed = new RecentFeedEntries();

  /** Use openSqliteRegistry: it migrates the schema this constructor's statements rely on. */
  constructor(private readonly db: Database.Database, private readonly options: ResolvedOptions, private readonly version: number) {
    this.statements = new StatementCache(db);
    const writer = new IssuanceWriter(db);
    this.issuances = new GroupCommit(db, (p: PreparedIssuance) => writer.write(p), {
      toError: (e) => toKakuinError(e, { operation: 'recording an issuance' }),
      isFatal: (e) => e.code === 'KAKUIN_E_REGISTRY_UNAVAILABLE',
    });
    const statusWriter = new StatusChangeWriter(db);
    this.statusChanges = db.transaction((change: PreparedStatusChange, now: number) => statusWriter.apply(change, now));
    this.statusReader = new CertificateStatusReader(db);
    this.signedObjects = new SignedObjectStore(db);
    this.legacy = new LegacyCredentialStore(db);
    this.stations = new StationStore(db);
    this.activity = new SqliteActivityStore(db);
    this.eventCursors = new SqliteEventCursorStore(db);
  }

  connectionSettings(): SqliteConnectionSettings {
    return this.read('reading connection settings', () => ({
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: SYNCHRONOUS_NAMES[this.db.pragma('synchronous', { simple: true }) as number],
      foreignKeys: this.db.pragma('foreign_keys', { simple: true }) === 1,
      busyTimeoutMs: this.db.pragma('busy_timeout', { simple: true }) as number,
      readonly: this.db.readonly,
    }));
  }

  /**
   * Runs WAL checkpoints in a worker thread from now until close (wal-checkpointer.ts): for the
   * process that writes at high rates (the issuing CA). Idempotent; nothing to do when read-only.
   */
  checkpointInBackground(options: WalCheckpointerOptions = {}): void {
    this.assertOpen();
    if (this.options.readonly || this.checkpointer !== undefined || this.db.memory) return;
    this.checkpointer = new WalCheckpointer(this.db, { path: this.options.path, synchronous: this.options.synchronous }, options);
  }

  /** WAL checkpoints the background worker has run (0 without one). */
  get backgroundCheckpoints(): number {
    return this.checkpointer?.checkpoints ?? 0;
  }

  async schemaVersion(): Promise<number> {
    this.assertOpen();
    return this.version;
  }

  // ---- issuers ----

  async putIssuer(issuer: Omit<Issuer, 'createdAt'> & { createdAt?: Date }): Promise<Issuer> {
    requireObject(issuer, 'an issuer');
    const values = {
      id: requiredText(issuer.id, 'issuer.id'),
      kind: requiredText(issuer.kind, 'issuer.kind'),
      certificate_der: requiredBytes(issuer.certificateDer, 'issuer.certificateDer'),
      key_uri: requiredText(issuer.keyUri, 'issuer.keyUri'),
      parent_id: optionalText(issuer.parentId, 'issuer.parentId'),
      created_at: optionalMillis(issuer.createdAt, 'issuer.createdAt') ?? Date.now(),
    };
    if (!ISSUER_KINDS.has(values.kind)) throw new KakuinError('KAKUIN_E_VALIDATION', `unknown issuer kind ${JSON.stringify(values.kind)}`);
    return this.write('recording an issuer', {}, () => issuerFromRow(this.statements.get<IssuerRow>(`
      INSERT INTO issuers (id, kind, certificate_der, key_uri, parent_id, created_at)
      VALUES (:id, :kind, :certificate_der, :key_uri, :parent_id, :created_at)
      ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, certificate_der = excluded.certificate_der,
        key_uri = excluded.key_uri, parent_id = excluded.parent_id, created_at = excluded.created_at
      RETURNING *`).get(values) as IssuerRow));
  }

  async getIssuer(id: string): Promise<Issuer> {
    const row = this.read('reading an issuer', () => this.statements.get<IssuerRow>('SELECT * FROM issuers WHERE id = ?').get(id));
    if (row === undefined) throw new KakuinError('KAKUIN_E_ISSUER_NOT_FOUND', `no issuer ${JSON.stringify(id)} is recorded`);
    return issuerFromRow(row);
  }

  async listIssuers(): Promise<Issuer[]> {
    return this.read('listing issuers', () => this.statements.get<IssuerRow>('SELECT * FROM issuers ORDER BY rowid').all().map(issuerFromRow));
  }

  // ---- manufacturers ----

  async createManufacturer(input: { name: string }): Promise<Manufacturer> {
    requireObject(input, 'a new manufacturer');
    const row: ManufacturerRow = { id: randomUUID(), name: requiredText(input.name, 'name'), created_at: Date.now() };
    this.write('creating a manufacturer', {}, () =>
      this.statements.get('INSERT INTO manufacturers (id, name, created_at) VALUES (:id, :name, :created_at)').run(row));
    return manufacturerFromRow(row);
  }

  async getManufacturer(id: string): Promise<Manufacturer> {
    const row = this.read('reading a manufacturer', () => this.statements.get<ManufacturerRow>('SELECT * FROM manufacturers WHERE id = ?').get(id));
    if (row === undefined) throw new KakuinError('KAKUIN_E_MANUFACTURER_NOT_FOUND', 'no manufacturer with that id');
    return manufacturerFromRow(row);
  }

  async listManufacturers(page?: ListPage): Promise<Manufacturer[]> {
    return this.read('listing manufacturers', () => this.pageOf('manufacturers', 'id', '', [], page).map((r) => manufacturerFromRow(r as unknown as ManufacturerRow)));
  }

  // ---- devices ----

  async createDevice(input: NewDevice, audit?: Omit<NewAuditEvent, 'deviceId'>): Promise<Device> {
    requireObject(input, 'a new device');
    const now = Date.now();
    const ids = input.identifiers ?? {};
    const hw = input.hardwareModuleName;
    const row: DeviceRow = {
      id: newDeviceId(now),
      manufacturer_id: requiredText(input.manufacturerId, 'manufacturerId'),
      serial_number: requiredText(input.serialNumber, 'serialNumber'),
      mac: optionalText(ids.mac, 'identifiers.mac'),
      imei: optionalText(ids.imei, 'identifiers.imei'),
      hardware_id: optionalText(ids.hardwareId, 'identifiers.hardwareId'),
      model: optionalText(input.model, 'model'),
      hw_type: hw === undefined ? null : requiredText(hw.hwType, 'hardwareModuleName.hwType'),
      hw_serial_hex: hw === undefined ? null : requiredText(hw.hwSerialHex, 'hardwareModuleName.hwSerialHex'),
      status: 'registered',
      created_at: now,
      updated_at: now,
    };
    const foreignKey = { code: 'KAKUIN_E_MANUFACTURER_NOT_FOUND' as ErrorCode, message: 'no manufacturer with that id' };
    if (audit !== undefined) requireObject(audit, 'an audit event');
    const auditValues = audit === undefined ? undefined : auditEventValues({ ...audit, deviceId: row.id }, now);
    const insertDevice = this.statements.get(`
      INSERT INTO devices (id, manufacturer_id, serial_number, mac, imei, hardware_id, model, hw_type, hw_serial_hex, status, created_at, updated_at)
      VALUES (:id, :manufacturer_id, :serial_number, :mac, :imei, :hardware_id, :model, :hw_type, :hw_serial_hex, :status, :created_at, :updated_at)`);
    const insertAudit = this.statements.get(`
      INSERT INTO audit_events (at, type, actor, device_id, serial_hex, details)
      VALUES (:at, :type, :actor, :device_id, :serial_hex, :details)`);
    // The device and its audit event commit together: a crash leaves neither or both.
    this.write('creating a device', { foreignKey }, () => this.db.transaction(() => {
      insertDevice.run(row);
      if (auditValues !== undefined) insertAudit.run(auditValues);
    }).immediate());
    return deviceFromRow(row);
  }

  async getDevice(id: string): Promise<Device> {
    const row = this.read('reading a device', () => this.statements.get<DeviceRow>('SELECT * FROM devices WHERE id = ?').get(id));
    if (row === undefined) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
    return deviceFromRow(row);
  }

  async findDevices(query: DeviceQuery): Promise<Device[]> {
    const { sql, params } = devicesQuery(query ?? {});
    return this.read('finding devices', () => {
      if (query?.afterId !== undefined && this.statements.get('SELECT 1 FROM devices WHERE id = ?').get(query.afterId) === undefined) {
        throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no device (a cursor from another list, or a typo?)');
      }
      return this.statements.get<DeviceRow>(sql).all(...params).map(deviceFromRow);
    });
  }

  // ---- certificates ----

  async recordIssuance(record: IssuanceRecord): Promise<CertificateRecord> {
    this.assertWritable();
    return this.issuances.submit(prepareIssuance(record, Date.now()));
  }

  async getCertificate(serialHex: string): Promise<CertificateRecord> {
    const serial = typeof serialHex === 'string' ? serialHex.toUpperCase() : '';
    const row = this.read('reading a certificate', () =>
      this.statements.get<CertificateRow>('SELECT * FROM certificates WHERE serial_hex = ?').get(serial));
    if (row === undefined) throw new KakuinError('KAKUIN_E_CERTIFICATE_NOT_FOUND', 'no certificate with that serial number');
    return certificateFromRow(row);
  }

  async listCertificatesOfDevice(deviceId: string): Promise<CertificateRecord[]> {
    return this.read('listing certificates', () => this.statements.get<CertificateRow>(
      'SELECT * FROM certificates WHERE device_id = ? ORDER BY created_at, rowid').all(deviceId).map(certificateFromRow));
  }

  async findDeviceIdByPublicKey(publicKeySha256: string): Promise<string | undefined> {
    const key = typeof publicKeySha256 === 'string' ? publicKeySha256.toLowerCase() : '';
    const row = this.read('reading a key binding', () => this.statements.get<{ device_id: string }>(
      'SELECT device_id FROM public_key_bindings WHERE public_key_sha256 = ?').get(key));
    return row?.device_id;
  }

  // ---- admin tokens ----

  async createAdminToken(input: { name: string; tokenHmac: string; role: 'admin'; expiresAt?: Date }, audit?: NewAuditEvent): Promise<AdminToken> {
    requireObject(input, 'an admin token');
    if (input.role !== 'admin') throw new KakuinError('KAKUIN_E_VALIDATION', 'role must be admin');
    const now = Date.now();
    const expires = optionalMillis(input.expiresAt, 'expiresAt');
    const row: AdminTokenRow = {
      id: randomUUID(),
      name: requiredText(input.name, 'name'),
      token_hmac: normalizeSha256Hex(input.tokenHmac, 'tokenHmac'),
      role: 'admin',
      created_at: now,
      disabled_at: null,
      expires_at: expires ?? null,
      last_used_at: null,
    };
    const event = audit === undefined ? undefined : auditEventValues(audit, now);
    this.write('creating an admin token', {}, () => this.db.transaction(() => {
      this.statements.get(`
        INSERT INTO admin_tokens (id, name, token_hmac, role, created_at, disabled_at, expires_at, last_used_at)
        VALUES (:id, :name, :token_hmac, :role, :created_at, :disabled_at, :expires_at, :last_used_at)`).run(row);
      if (event) this.insertAuditEvent(event);
    }).immediate());
    return adminTokenFromRow(row);
  }

  async findAdminTokenByHmac(tokenHmac: string): Promise<AdminToken | undefined> {
    const hmac = typeof tokenHmac === 'string' ? tokenHmac.toLowerCase() : '';
    const row = this.read('reading an admin token', () =>
      this.statements.get<AdminTokenRow>('SELECT * FROM admin_tokens WHERE token_hmac = ?').get(hmac));
    return row === undefined ? undefined : adminTokenFromRow(row);
  }

  async listAdminTokens(page?: ListPage): Promise<AdminToken[]> {
    return this.read('listing admin tokens', () => this.pageOf('admin_tokens', 'name', '', [], page).map((r) => adminTokenFromRow(r as unknown as AdminTokenRow)));
  }

  async revokeAdminToken(name: string, at: Date, audit: NewAuditEvent): Promise<AdminToken> {
    const atMs = toMillis(at, 'at');
    const event = auditEventValues(audit, Date.now());
    return this.write('revoking an admin token', {}, () => this.db.transaction(() => {
      const row = this.statements.get<AdminTokenRow>('SELECT * FROM admin_tokens WHERE name = ?').get(requiredText(name, 'name'));
      if (row === undefined) throw new KakuinError('KAKUIN_E_TOKEN_NOT_FOUND', 'no admin token with that name');
      if (row.disabled_at !== null) throw new KakuinError('KAKUIN_E_TOKEN_STATE', `the token ${name} was revoked at ${new Date(row.disabled_at).toISOString()}`);
      this.statements.get('UPDATE admin_tokens SET disabled_at = ? WHERE id = ?').run(atMs, row.id);
      this.insertAuditEvent(event);
      return adminTokenFromRow({ ...row, disabled_at: atMs });
    }).immediate());
  }

  async touchAdminToken(name: string, at: Date): Promise<void> {
    const atMs = toMillis(at, 'at');
    // A read-only process (OCSP, gateway roles) cannot record it; that is no reason to refuse a call.
    if (this.options.readonly) return;
    this.write('recording an admin token use', {}, () =>
      this.statements.get('UPDATE admin_tokens SET last_used_at = ? WHERE name = ? AND (last_used_at IS NULL OR last_used_at < ?)').run(atMs, name, atMs));
  }

  /**
   * A page of a short list (ListPage): rows of `table` matching `where`, in rowid order, after the
   * row whose `keyColumn` is `page.afterKey`.
   */
  private pageOf(table: string, keyColumn: string, where: string, params: unknown[], page: ListPage | undefined, select = '*', from = table, rowid = 'rowid'): Record<string, unknown>[] {
    const conditions = where === '' ? [] : [where];
    const values = [...params];
    if (page?.afterKey !== undefined) {
      const anchor = this.statements.get<{ r: number }>(`SELECT ${rowid} AS r FROM ${from} WHERE ${[...conditions, `${keyColumn} = ?`].join(' AND ')}`).get(...params, page.afterKey);
      if (anchor === undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no item of this list (a cursor from another list, or a typo?)');
      conditions.push(`${rowid} > ?`);
      values.push(anchor.r);
    }
    let limit = '';
    if (page?.limit !== undefined) {
      limit = ' LIMIT ?';
      values.push(normalizeLimit(page.limit));
    }
    const whereSql = conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`;
    return this.statements.get<Record<string, unknown>>(`SELECT ${select} FROM ${from}${whereSql} ORDER BY ${rowid}${limit}`).all(...values);
  }

  // ---- audit ----

  async appendAuditEvent(event: NewAuditEvent): Promise<AuditEvent> {
    requireObject(event, 'an audit event');
    const values = auditEventValues(event, Date.now());
    const result = this.write('appending an audit event', {}, () => this.statements.get(`
      INSERT INTO audit_events (at, type, actor, device_id, serial_hex, details)
      VALUES (:at, :type, :actor, :device_id, :serial_hex, :details)`).run(values));
    return auditEventFromRow({ id: Number(result.lastInsertRowid), ...values });
  }

  private insertAuditEvent(values: ReturnType<typeof auditEventValues>): void {
    this.statements.get(`
      INSERT INTO audit_events (at, type, actor, device_id, serial_hex, details)
      VALUES (:at, :type, :actor, :device_id, :serial_hex, :details)`).run(values);
  }

  async listAuditEvents(query: AuditQuery): Promise<AuditEvent[]> {
    const { sql, params } = auditEventsQuery(query ?? {});
    return this.read('listing audit events', () => this.statements.get<AuditEventRow>(sql).all(...params).map(auditEventFromRow));
  }

  // ---- revocation ----

  async applyStatusChange(change: StatusChange): Promise<FeedEntry[]> {
    const checked = checkStatusChange(change);
    const now = Date.now();
    const prepared: PreparedStatusChange = { ...checked, audit: checked.audit.map((a) => auditEventValues(a, now)) };
    return this.write('applying a status change', {}, () => this.statusChanges.immediate(prepared, now));
  }

  async readFeed(afterSeq: number, limit?: number): Promise<FeedEntry[]> {
    const after = feedSeqValue(afterSeq, 'afterSeq');
    const n = normalizeFeedLimit(limit);
    const statement = this.statements.get<FeedRow>('SELECT * FROM revocation_feed WHERE seq > ? ORDER BY seq LIMIT ?');
    return this.read('reading the revocation feed', () => this.recentFeed.read(after, n, (a, k) => statement.all(a, k).map(feedEntryFromRow)));
  }

  async latestFeedSeq(): Promise<number> {
    return this.read('reading the revocation feed', () => this.statements.get<{ seq: number }>(
      'SELECT coalesce(max(seq), 0) AS seq FROM revocation_feed').get()!.seq);
  }

  async forEachCrlEntry(issuerId: string, options: { changedAfterSeq?: number }, row: CertificateStatusRow): Promise<void> {
    requiredText(issuerId, 'issuerId');
    requireObject(options, 'options');
    requireFunction(row, 'row');
    const after = options.changedAfterSeq === undefined ? undefined : feedSeqValue(options.changedAfterSeq, 'changedAfterSeq');
    this.stream('reading CRL entries', row, (guarded) => this.statusReader.crlEntries(issuerId, after, guarded));
  }

  async forEachCertificateStatus(issuerId: string, row: CertificateStatusRow): Promise<void> {
    requiredText(issuerId, 'issuerId');
    requireFunction(row, 'row');
    this.stream('reading certificate statuses', row, (guarded) => this.statusReader.everyCertificate(issuerId, guarded));
  }

  async nextCrlNumber(issuerId: string): Promise<bigint> {
    const id = requiredText(issuerId, 'issuerId');
    return this.write('reserving a CRL number', { foreignKey: ISSUER_NOT_FOUND }, () => this.signedObjects.nextCrlNumber(id));
  }

  async putCrl(crl: CrlRecord): Promise<void> {
    const row = crlRow(crl);
    const context = { operation: 'storing a CRL', foreignKey: ISSUER_NOT_FOUND };
    // A large CRL is written by a worker on its own connection, off the event loop (large-crl-writer.ts).
    if (row.der.length >= LARGE_CRL_BYTES && !this.db.memory) {
      this.assertWritable();
      this.largeCrlWriter ??= new LargeCrlWriter({ path: this.options.path, synchronous: this.options.synchronous, busyTimeoutMs: this.options.busyTimeoutMs });
      if (this.largeCrlWriter.usable) {
        try {
          await this.largeCrlWriter.put(row);
          return;
        } catch (e) {
          if (this.largeCrlWriter.usable) throw toKakuinError(e, context);
          // The worker itself is gone: write inline below, as without it.
        }
      }
    }
    this.write(context.operation, { foreignKey: ISSUER_NOT_FOUND }, () => this.signedObjects.putCrl(row));
  }

  async getLatestCrl(issuerId: string, kind: 'full' | 'delta'): Promise<CrlRecord | undefined> {
    return this.read('reading a CRL', () => this.signedObjects.getLatestCrl(issuerId, kind));
  }

  async putOcspResponses(responses: StoredOcspResponse[]): Promise<void> {
    if (!Array.isArray(responses)) throw new KakuinError('KAKUIN_E_VALIDATION', 'responses must be an array');
    const rows = responses.map((r, i) => ocspResponseRow(r, `responses[${i}]`));
    if (rows.length === 0) return;
    this.write('storing OCSP responses', { foreignKey: ISSUER_NOT_FOUND }, () => this.signedObjects.putOcspResponses(rows));
  }

  async getOcspResponse(issuerId: string, serialHex: string): Promise<StoredOcspResponse | undefined> {
    const serial = typeof serialHex === 'string' ? serialHex.toUpperCase() : '';
    return this.read('reading an OCSP response', () => this.signedObjects.getOcspResponse(issuerId, serial));
  }

  async forEachOcspResponse(issuerId: string | undefined, row: (r: StoredOcspResponse) => void): Promise<void> {
    if (issuerId !== undefined) requiredText(issuerId, 'issuerId');
    requireFunction(row, 'row');
    this.stream('reading OCSP responses', row, (guarded) => this.signedObjects.forEachOcspResponse(issuerId, guarded));
  }

  // ---- legacy three-factor path ----

  async createCommonAuthId(input: { name: string; manufacturerId?: string; usualHoursUtc?: string }): Promise<CommonAuthId> {
    requireObject(input, 'a new common auth ID');
    const values = {
      name: requiredText(input.name, 'name'),
      manufacturerId: optionalText(input.manufacturerId, 'manufacturerId') ?? undefined,
      usualHoursUtc: optionalText(input.usualHoursUtc, 'usualHoursUtc') ?? undefined,
    };
    return this.write('creating a common auth ID', { foreignKey: { code: 'KAKUIN_E_MANUFACTURER_NOT_FOUND', message: 'no manufacturer with that id' } },
      () => this.legacy.createCommonAuthId(values));
  }

  async getCommonAuthId(id: string): Promise<CommonAuthId> {
    const found = this.read('reading a common auth ID', () => this.legacy.getCommonAuthId(id));
    if (found === undefined) throw new KakuinError('KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND', 'no common auth ID with that id');
    return found;
  }

  async putLegacyCredentials(credentials: NewLegacyCredential[], audit: NewAuditEvent[]): Promise<LegacyCredential[]> {
    const creds = normalizeNewLegacyCredentials(credentials, audit);
    const now = Date.now();
    const events = audit.map((a) => auditEventValues(a, now));
    return this.write('setting legacy credentials', {}, () => this.legacy.putAll.immediate(creds, events, now));
  }

  async getLegacyCredentials(deviceId: string): Promise<LegacyCredential | undefined> {
    return this.read('reading legacy credentials', () => this.legacy.get(deviceId));
  }

  async findLegacyCredentials(commonAuthId: string, uniqueId: string): Promise<LegacyCredential | undefined> {
    if (typeof commonAuthId !== 'string' || typeof uniqueId !== 'string') return undefined;
    return this.read('reading legacy credentials', () => this.legacy.find(commonAuthId, uniqueId));
  }

  async findLegacyVerifiers(kind: LegacyVerifierKind, verifiers: string[]): Promise<{ verifier: string; deviceId: string }[]> {
    if (!Array.isArray(verifiers)) throw new KakuinError('KAKUIN_E_VALIDATION', 'verifiers must be an array');
    return this.read('reading legacy verifiers', () => this.legacy.findVerifiers(kind, verifiers));
  }

  async deleteLegacyCredentials(deviceId: string, audit: NewAuditEvent): Promise<FeedEntry> {
    const id = requiredText(deviceId, 'deviceId');
    const now = Date.now();
    const event = auditEventValues(audit, now);
    return this.write('deleting legacy credentials', {}, () => this.legacy.remove.immediate(id, event, now));
  }

  async lockLegacyCredentials(deviceId: string, until: Date, audit: NewAuditEvent): Promise<void> {
    const id = requiredText(deviceId, 'deviceId');
    const untilMs = optionalMillis(until, 'until');
    if (untilMs === undefined || untilMs === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'until is required');
    const event = auditEventValues(audit, Date.now());
    this.write('locking legacy credentials', {}, () => this.legacy.lockUntil.immediate(id, untilMs, event));
  }

  async countLegacyFailures(keys: string[], windowStart: Date, windowMs: number): Promise<FailureCount[]> {
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) throw new KakuinError('KAKUIN_E_VALIDATION', 'keys must be strings');
    const start = optionalMillis(windowStart, 'windowStart');
    if (start === undefined || start === null || !Number.isSafeInteger(windowMs) || windowMs < 1) throw new KakuinError('KAKUIN_E_VALIDATION', 'windowStart and windowMs are required');
    return this.write('counting failed legacy authentications', {}, () => this.legacy.count.immediate(keys, start, windowMs));
  }

  async listLegacyCredentialStates(): Promise<LegacyCredentialState[]> {
    return this.read('listing legacy credentials', () => this.legacy.states());
  }

  // ---- production-line enrollment (SQL in stations.ts) ----

  async createStation(input: { manufacturerId: string; name: string; keyHmac: string }, audit: NewAuditEvent): Promise<Station> {
    requireObject(input, 'a new station');
    const values = {
      manufacturerId: requiredText(input.manufacturerId, 'manufacturerId'), name: requiredText(input.name, 'name'),
      keyHmac: normalizeSha256Hex(input.keyHmac, 'keyHmac'),
    };
    const now = Date.now();
    const event = auditEventValues(audit, now);
    return this.write('creating a station', { foreignKey: { code: 'KAKUIN_E_MANUFACTURER_NOT_FOUND', message: 'no manufacturer with that id' } },
      () => this.stations.create.immediate(values, event, now));
  }

  async getStation(id: string): Promise<Station> {
    const found = typeof id === 'string' ? this.read('reading a station', () => this.stations.get(id)) : undefined;
    if (found === undefined) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
    return found;
  }

  async findStationByKeyHmac(keyHmac: string): Promise<Station | undefined> {
    if (typeof keyHmac !== 'string') return undefined;
    return this.read('reading a station', () => this.stations.findByKeyHmac(keyHmac.toLowerCase()));
  }

  async listStations(manufacturerId: string, page?: ListPage): Promise<Station[]> {
    const id = requiredText(manufacturerId, 'manufacturerId');
    if (page === undefined) return this.read('listing stations', () => this.stations.list(id));
    return this.read('listing stations', () => this.pageOf('stations', 'id', 'manufacturer_id = ?', [id], page).map((r) => stationFromRow(r as never)));
  }

  async updateStation(id: string, change: { keyHmac?: string; disable?: boolean; maxIssuances?: number | null }, audit: NewAuditEvent): Promise<Station> {
    requireObject(change, 'a station change');
    const q = change.maxIssuances;
    if (q !== undefined && q !== null && (!Number.isSafeInteger(q) || q < 0)) throw new KakuinError('KAKUIN_E_VALIDATION', 'maxIssuances must be a non-negative integer or null');
    const values = {
      keyHmac: change.keyHmac === undefined ? undefined : normalizeSha256Hex(change.keyHmac, 'keyHmac'), disable: change.disable === true, maxIssuances: q,
    };
    const now = Date.now();
    const event = auditEventValues(audit, now);
    return this.write('updating a station', {}, () => this.stations.update.immediate(requiredText(id, 'id'), values, event, now));
  }

  async countStationIssuances(stationId: string): Promise<number> {
    return this.read('counting station issuances', () => this.stations.issuances(requiredText(stationId, 'stationId')));
  }

  async allowReenrollment(deviceId: string, until: Date, audit: NewAuditEvent): Promise<void> {
    const untilMs = optionalMillis(until, 'until');
    if (untilMs === undefined || untilMs === null) throw new KakuinError('KAKUIN_E_VALIDATION', 'until is required');
    const now = Date.now();
    const event = auditEventValues(audit, now);
    this.write('allowing re-enrollment', {}, () => this.stations.allow.immediate(requiredText(deviceId, 'deviceId'), untilMs, event, now));
  }

  async getReenrollmentAllowance(deviceId: string): Promise<Date | undefined> {
    return this.read('reading a re-enrollment allowance', () => this.stations.allowance(requiredText(deviceId, 'deviceId')));
  }

  async consumeReenrollmentAllowance(deviceId: string): Promise<boolean> {
    return this.write('consuming a re-enrollment allowance', {}, () => this.stations.consume(requiredText(deviceId, 'deviceId')));
  }

  // ---- station certificates, profiles, durable supersede (SQL in stations.ts) ----

  async recordStationCertificate(stationId: string, record: IssuanceRecord): Promise<CertificateRecord> {
    const id = requiredText(stationId, 'stationId');
    const prepared = prepareIssuance(record, Date.now());
    // Queued issuances first: the serial check inside the transaction must see them.
    this.assertWritable();
    this.issuances.drain();
    return this.write('recording a station certificate', {}, () => this.stations.recordCertificate.immediate(id, prepared));
  }

  async findStationOfCertificate(serialHex: string): Promise<string | undefined> {
    if (typeof serialHex !== 'string') return undefined;
    return this.read('reading a station certificate', () => this.stations.stationOfCertificate(serialHex.toUpperCase()));
  }

  async listStationCertificates(stationId: string, page?: ListPage): Promise<CertificateRecord[]> {
    const id = requiredText(stationId, 'stationId');
    if (page === undefined) return this.read('listing station certificates', () => this.stations.certificates(id));
    await this.getStation(id);
    // Issuance order: certificates.rowid grows with each insert (created_at may tie within a millisecond).
    return this.read('listing station certificates', () => this.pageOf('certificates', 'c.serial_hex', 's.station_id = ?', [id], page, 'c.*',
      'certificates c JOIN station_certificates s ON s.serial_hex = c.serial_hex', 'c.rowid').map((r) => certificateFromRow(r as never)));
  }

  async setManufacturerProfiles(manufacturerId: string, profiles: string[], audit: NewAuditEvent): Promise<void> {
    if (!Array.isArray(profiles) || profiles.length === 0 || profiles.length > 32
      || !profiles.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 64)) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'profiles must be a list of 1 to 32 profile names');
    }
    const now = Date.now();
    const event = auditEventValues(audit, now);
    this.write('setting manufacturer profiles', {}, () =>
      this.stations.setProfiles.immediate(requiredText(manufacturerId, 'manufacturerId'), [...new Set(profiles)], event, now));
  }

  async getManufacturerProfiles(manufacturerId: string): Promise<string[] | undefined> {
    return this.read('reading manufacturer profiles', () => this.stations.profiles(requiredText(manufacturerId, 'manufacturerId')));
  }

  async scheduleSupersede(entries: PendingSupersede[]): Promise<void> {
    if (!Array.isArray(entries)) throw new KakuinError('KAKUIN_E_VALIDATION', 'entries must be a list');
    const values = entries.map((e) => {
      requireObject(e, 'a pending supersession');
      return { serialHex: normalizeSerialHex(e.serialHex), at: toMillis(e.at, 'at'), actor: requiredText(e.actor, 'actor') };
    });
    this.write('scheduling supersessions', {}, () => this.stations.schedule.immediate(values));
  }

  async listDueSupersedes(now: Date, limit?: number): Promise<PendingSupersede[]> {
    const nowMs = toMillis(now, 'now');
    return this.read('listing due supersessions', () => this.stations.due(nowMs, normalizeLimit(limit)));
  }

  async clearSupersedes(serialHexes: string[]): Promise<void> {
    if (!Array.isArray(serialHexes)) throw new KakuinError('KAKUIN_E_VALIDATION', 'serialHexes must be a list');
    const serials = serialHexes.map((s) => normalizeSerialHex(s));
    this.write('clearing supersessions', {}, () => this.stations.clearSupersedes.immediate(serials));
  }

  /** Commits whatever issuances are still queued, then closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.options.readonly) this.issuances.drain();
    this.closed = true;
    await this.largeCrlWriter?.stop();
    await this.checkpointer?.stop();
    try {
      this.db.close();
    } catch (e) {
      throw toKakuinError(e, { operation: 'closing the database' });
    }
  }

  // ---- plumbing ----

  private assertOpen(): void {
    if (this.closed) throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the registry has been closed');
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.options.readonly) {
      // A wiring mistake, not a client's: the read-only roles (OCSP, gateway) must never write.
      throw new KakuinError('KAKUIN_E_INTERNAL', 'this registry was opened read-only and cannot write');
    }
  }

  private read<T>(operation: string, fn: () => T): T {
    this.assertOpen();
    try {
      return fn();
    } catch (e) {
      throw toKakuinError(e, { operation });
    }
  }

  /**
   * Runs a streaming read. An exception thrown by the caller's callback ends the walk and reaches
   * the caller as it was thrown (it is the caller's, not the driver's); anything else is mapped.
   */
  private stream<F extends (...args: never[]) => void>(operation: string, callback: F, walk: (guarded: F) => void): void {
    this.assertOpen();
    let thrown: { error: unknown } | undefined;
    const guarded = ((...args: Parameters<F>) => {
      try {
        callback(...args);
      } catch (e) {
        thrown = { error: e };
        throw e;
      }
    }) as F;
    try {
      walk(guarded);
    } catch (e) {
      if (thrown !== undefined && thrown.error === e) throw e;
      throw toKakuinError(e, { operation });
    }
  }

  private write<T>(operation: string, context: Omit<ErrorContext, 'operation'>, fn: () => T): T {
    this.assertWritable();
    try {
      return fn();
    } catch (e) {
      throw toKakuinError(e, { operation, ...context });
    }
  }
}
