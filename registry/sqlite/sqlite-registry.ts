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
 * Inputs are checked before they get here (CheckedRegistry, registry/records/): each
 * `<method>Checked` below only stores.
 */
import type Database from 'better-sqlite3';
import { KakuinError, type ErrorCode } from '../../errors/index.js';
import type {
  AdminToken, AuditChainHead, AuditChainLink, AuditEvent, AuditQuery, CommonAuthId, FailureCount, LegacyCredential, LegacyCredentialState, LegacyVerifierKind,
  NewLegacyCredential, PendingSupersede, Station, CertificateRecord, CertificateStatusRow, CrlRecord, Device, DeviceQuery,
  FeedEntry, Issuer, ListPage, Manufacturer, Registry, StoredOcspResponse,
} from '../port.js';
import {
  CheckedRegistry, newAuditChainId, normalizeLimit, type AuditEventValues, type CheckedCommonAuthId, type CheckedStationChange, type CrlRow,
  type OcspResponseRow, type PreparedIssuance, type PreparedStatusChange,
} from '../records/index.js';
import { CertificateStatusReader } from './certificate-status-reader.js';
import { openDatabase, resolveOptions, type ResolvedOptions, type SqliteRegistryOptions } from './connection.js';
import { toKakuinError, type ErrorContext } from './driver-errors.js';
import { GroupCommit } from './group-commit.js';
import { IssuanceWriter } from './issuance.js';
import { auditEventsQuery, devicesQuery, StatementCache } from './queries.js';
import {
  adminTokenFromRow, auditEventFromRow, certificateFromRow, deviceFromRow, feedEntryFromRow, issuerFromRow, manufacturerFromRow,
  type AdminTokenRow, type AuditEventRow, type CertificateRow, type DeviceRow, type FeedRow, type IssuerRow, type ManufacturerRow,
} from './records.js';
import { SignedObjectStore } from './signed-objects.js';
import { LegacyCredentialStore } from './legacy-credentials.js';
import { StationStore, stationFromRow } from './stations.js';
import { SqliteActivityStore } from './activity-store.js';
import { SqliteDetectionStore } from './detections.js';
import { SqliteEventCursorStore } from './event-cursors.js';
import { SqliteUserStore } from './users.js';
import { SqliteJobStore } from './jobs.js';
import { SqliteApprovalStore } from './approvals.js';
import { SqliteCmpStore } from './cmp-store.js';
import { SqliteScepStore } from './scep-store.js';
import { SqliteAcmeStore } from './acme-store.js';
import { StatusChangeWriter } from './status-change-writer.js';
import { AuditAppender } from './audit-appender.js';
import { WalCheckpointer, type WalCheckpointerOptions } from './wal-checkpointer.js';
import { LARGE_CRL_BYTES, LargeCrlWriter } from './large-crl-writer.js';
import { RecentFeedEntries } from './recent-feed.js';

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

const SYNCHRONOUS_NAMES = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const;

export class SqliteRegistry extends CheckedRegistry implements Registry {
  private closed = false;
  private readonly statements: StatementCache;
  /** This instance's audit hash chain (audit-appender.ts): every audit event it writes goes through it. */
  private readonly audit: AuditAppender;
  private readonly auditTx: Database.Transaction<(values: AuditEventValues) => { id: number; link: AuditChainLink }>;
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
  /** The users port (users.ts): people's logins and sessions, for the management API's process. */
  readonly users: SqliteUserStore;
  /** The detections port (detections.ts): templates and detections, in the writing process only. */
  readonly detections: SqliteDetectionStore;
  /** The bulk-job port (jobs.ts): frozen device sets and progress of bulk actions. */
  readonly jobs: SqliteJobStore;
  /** The approval port (approvals.ts): two-person approval of dangerous acts. */
  readonly approvals: SqliteApprovalStore;
  /** The CMP store port (registry/cmp.ts): enrollment/cmp's secrets and transactions. */
  readonly cmp: SqliteCmpStore;
  /** The SCEP store (scep-store.ts): challenges, transactions, the RA certificate. */
  readonly scep: SqliteScepStore;
  /** The ACME store port (registry/acme.ts): enrollment/acme's accounts, orders and EAB keys. */
  readonly acme: SqliteAcmeStore;
  private checkpointer: WalCheckpointer | undefined;
  /** Started by the first large CRL (large-crl-writer.ts). */
  private largeCrlWriter: LargeCrlWriter | undefined;
  /** The feed's newest entries, read once for all the followers of this process (recent-feed.ts). */
  private readonly recentFeed = new RecentFeedEntries();

  /** Use openSqliteRegistry: it migrates the schema this constructor's statements rely on. */
  constructor(private readonly db: Database.Database, private readonly options: ResolvedOptions, private readonly version: number) {
    super();
    this.statements = new StatementCache(db);
    this.audit = new AuditAppender(db, newAuditChainId());
    this.auditTx = db.transaction((values: AuditEventValues) => this.audit.append(values));
    const writer = new IssuanceWriter(db, this.audit);
    this.issuances = new GroupCommit(db, (p: PreparedIssuance) => writer.write(p), {
      toError: (e) => toKakuinError(e, { operation: 'recording an issuance' }),
      isFatal: (e) => e.code === 'KAKUIN_E_REGISTRY_UNAVAILABLE',
    });
    const statusWriter = new StatusChangeWriter(db, this.audit);
    this.statusChanges = db.transaction((change: PreparedStatusChange, now: number) => statusWriter.apply(change, now));
    this.statusReader = new CertificateStatusReader(db);
    this.signedObjects = new SignedObjectStore(db);
    this.legacy = new LegacyCredentialStore(db, this.audit);
    this.stations = new StationStore(db, this.audit);
    this.activity = new SqliteActivityStore(db);
    this.eventCursors = new SqliteEventCursorStore(db);
    this.users = new SqliteUserStore(db, this.audit);
    this.detections = new SqliteDetectionStore(db);
    this.jobs = new SqliteJobStore(db);
    this.approvals = new SqliteApprovalStore(db, this.audit);
    this.cmp = new SqliteCmpStore(db);
    this.scep = new SqliteScepStore(db);
    this.acme = new SqliteAcmeStore(db);
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

  protected async putIssuerChecked(issuer: Issuer): Promise<Issuer> {
    const values = {
      id: issuer.id, kind: issuer.kind, certificate_der: issuer.certificateDer, key_uri: issuer.keyUri, parent_id: issuer.parentId ?? null,
      created_at: issuer.createdAt.getTime(),
    };
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

  protected async createManufacturerChecked(m: Manufacturer): Promise<Manufacturer> {
    const row: ManufacturerRow = { id: m.id, name: m.name, created_at: m.createdAt.getTime() };
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

  protected async createDeviceChecked(device: Device, auditValues: AuditEventValues | undefined): Promise<Device> {
    const hw = device.hardwareModuleName;
    const row: DeviceRow = {
      id: device.id,
      manufacturer_id: device.manufacturerId,
      serial_number: device.serialNumber,
      mac: device.identifiers.mac ?? null,
      imei: device.identifiers.imei ?? null,
      hardware_id: device.identifiers.hardwareId ?? null,
      model: device.model ?? null,
      hw_type: hw?.hwType ?? null,
      hw_serial_hex: hw?.hwSerialHex ?? null,
      status: device.status,
      created_at: device.createdAt.getTime(),
      updated_at: device.updatedAt.getTime(),
    };
    const foreignKey = { code: 'KAKUIN_E_MANUFACTURER_NOT_FOUND' as ErrorCode, message: 'no manufacturer with that id' };
    const insertDevice = this.statements.get(`
      INSERT INTO devices (id, manufacturer_id, serial_number, mac, imei, hardware_id, model, hw_type, hw_serial_hex, status, created_at, updated_at)
      VALUES (:id, :manufacturer_id, :serial_number, :mac, :imei, :hardware_id, :model, :hw_type, :hw_serial_hex, :status, :created_at, :updated_at)`);
    const insertAudit = this.audit;
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

  protected async recordIssuanceChecked(prepared: PreparedIssuance): Promise<CertificateRecord> {
    this.assertWritable();
    return this.issuances.submit(prepared);
  }

  protected async getCertificateChecked(serial: string): Promise<CertificateRecord> {
    const row = this.read('reading a certificate', () =>
      this.statements.get<CertificateRow>('SELECT * FROM certificates WHERE serial_hex = ?').get(serial));
    if (row === undefined) throw new KakuinError('KAKUIN_E_CERTIFICATE_NOT_FOUND', 'no certificate with that serial number');
    return certificateFromRow(row);
  }

  async listCertificatesOfDevice(deviceId: string): Promise<CertificateRecord[]> {
    return this.read('listing certificates', () => this.statements.get<CertificateRow>(
      'SELECT * FROM certificates WHERE device_id = ? ORDER BY created_at, rowid').all(deviceId).map(certificateFromRow));
  }

  protected async findDeviceIdByPublicKeyChecked(key: string): Promise<string | undefined> {
    const row = this.read('reading a key binding', () => this.statements.get<{ device_id: string }>(
      'SELECT device_id FROM public_key_bindings WHERE public_key_sha256 = ?').get(key));
    return row?.device_id;
  }

  // ---- admin tokens ----

  protected async createAdminTokenChecked(token: AdminToken, event: AuditEventValues | undefined): Promise<AdminToken> {
    const row: AdminTokenRow = {
      id: token.id,
      name: token.name,
      token_hmac: token.tokenHmac,
      role: token.role,
      manufacturer_id: token.manufacturerId ?? null,
      created_at: token.createdAt.getTime(),
      disabled_at: null,
      expires_at: token.expiresAt?.getTime() ?? null,
      last_used_at: null,
    };
    this.write('creating an admin token', {}, () => this.db.transaction(() => {
      this.statements.get(`
        INSERT INTO admin_tokens (id, name, token_hmac, role, manufacturer_id, created_at, disabled_at, expires_at, last_used_at)
        VALUES (:id, :name, :token_hmac, :role, :manufacturer_id, :created_at, :disabled_at, :expires_at, :last_used_at)`).run(row);
      if (event) this.insertAuditEvent(event);
    }).immediate());
    return adminTokenFromRow(row);
  }

  protected async findAdminTokenByHmacChecked(hmac: string): Promise<AdminToken | undefined> {
    const row = this.read('reading an admin token', () =>
      this.statements.get<AdminTokenRow>('SELECT * FROM admin_tokens WHERE token_hmac = ?').get(hmac));
    return row === undefined ? undefined : adminTokenFromRow(row);
  }

  async listAdminTokens(page?: ListPage): Promise<AdminToken[]> {
    return this.read('listing admin tokens', () => this.pageOf('admin_tokens', 'name', '', [], page).map((r) => adminTokenFromRow(r as unknown as AdminTokenRow)));
  }

  protected async revokeAdminTokenChecked(name: string, atMs: number, event: AuditEventValues): Promise<AdminToken> {
    return this.write('revoking an admin token', {}, () => this.db.transaction(() => {
      const row = this.statements.get<AdminTokenRow>('SELECT * FROM admin_tokens WHERE name = ?').get(name);
      if (row === undefined) throw new KakuinError('KAKUIN_E_TOKEN_NOT_FOUND', 'no admin token with that name');
      if (row.disabled_at !== null) throw new KakuinError('KAKUIN_E_TOKEN_STATE', `the token ${name} was revoked at ${new Date(row.disabled_at).toISOString()}`);
      this.statements.get('UPDATE admin_tokens SET disabled_at = ? WHERE id = ?').run(atMs, row.id);
      this.insertAuditEvent(event);
      return adminTokenFromRow({ ...row, disabled_at: atMs });
    }).immediate());
  }

  protected async touchAdminTokenChecked(name: string, atMs: number): Promise<void> {
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

  protected async appendAuditEventChecked(values: AuditEventValues): Promise<AuditEvent> {
    // In its own (immediate) transaction: the id and the chain head are read under the write lock.
    const { id, link } = this.write('appending an audit event', {}, () => this.auditTx.immediate(values));
    return auditEventFromRow({ id, ...values, chain_id: link.chain, chain_seq: link.seq, prev_hash: link.prev, hash: link.hash });
  }

  private insertAuditEvent(values: AuditEventValues): void {
    this.audit.append(values);
  }

  async auditChainHeads(): Promise<AuditChainHead[]> {
    return this.read('reading the audit chain heads', () => this.audit.chainHeads());
  }

  async listAuditEvents(query: AuditQuery): Promise<AuditEvent[]> {
    const { sql, params } = auditEventsQuery(query ?? {});
    return this.read('listing audit events', () => this.statements.get<AuditEventRow>(sql).all(...params).map(auditEventFromRow));
  }

  // ---- revocation ----

  protected async applyStatusChangeChecked(prepared: PreparedStatusChange, now: number): Promise<FeedEntry[]> {
    return this.write('applying a status change', {}, () => this.statusChanges.immediate(prepared, now));
  }

  protected async readFeedChecked(after: number, n: number): Promise<FeedEntry[]> {
    const statement = this.statements.get<FeedRow>('SELECT * FROM revocation_feed WHERE seq > ? ORDER BY seq LIMIT ?');
    return this.read('reading the revocation feed', () => this.recentFeed.read(after, n, (a, k) => statement.all(a, k).map(feedEntryFromRow)));
  }

  async latestFeedSeq(): Promise<number> {
    return this.read('reading the revocation feed', () => this.statements.get<{ seq: number }>(
      'SELECT coalesce(max(seq), 0) AS seq FROM revocation_feed').get()!.seq);
  }

  protected async forEachCrlEntryChecked(issuerId: string, after: number | undefined, row: CertificateStatusRow): Promise<void> {
    this.stream('reading CRL entries', row, (guarded) => this.statusReader.crlEntries(issuerId, after, guarded));
  }

  protected async forEachCertificateStatusChecked(issuerId: string, row: CertificateStatusRow): Promise<void> {
    this.stream('reading certificate statuses', row, (guarded) => this.statusReader.everyCertificate(issuerId, guarded));
  }

  protected async nextCrlNumberChecked(id: string): Promise<bigint> {
    return this.write('reserving a CRL number', { foreignKey: ISSUER_NOT_FOUND }, () => this.signedObjects.nextCrlNumber(id));
  }

  protected async putCrlChecked(row: CrlRow): Promise<void> {
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

  protected async putOcspResponsesChecked(rows: OcspResponseRow[]): Promise<void> {
    this.write('storing OCSP responses', { foreignKey: ISSUER_NOT_FOUND }, () => this.signedObjects.putOcspResponses(rows));
  }

  async getOcspResponse(issuerId: string, serialHex: string): Promise<StoredOcspResponse | undefined> {
    const serial = typeof serialHex === 'string' ? serialHex.toUpperCase() : '';
    return this.read('reading an OCSP response', () => this.signedObjects.getOcspResponse(issuerId, serial));
  }

  protected async forEachOcspResponseChecked(issuerId: string | undefined, row: (r: StoredOcspResponse) => void): Promise<void> {
    this.stream('reading OCSP responses', row, (guarded) => this.signedObjects.forEachOcspResponse(issuerId, guarded));
  }

  // ---- legacy three-factor path ----

  protected async createCommonAuthIdChecked(values: CheckedCommonAuthId): Promise<CommonAuthId> {
    return this.write('creating a common auth ID', { foreignKey: { code: 'KAKUIN_E_MANUFACTURER_NOT_FOUND', message: 'no manufacturer with that id' } },
      () => this.legacy.createCommonAuthId(values));
  }

  async getCommonAuthId(id: string): Promise<CommonAuthId> {
    const found = this.read('reading a common auth ID', () => this.legacy.getCommonAuthId(id));
    if (found === undefined) throw new KakuinError('KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND', 'no common auth ID with that id');
    return found;
  }

  protected async putLegacyCredentialsChecked(creds: NewLegacyCredential[], events: AuditEventValues[], now: number): Promise<LegacyCredential[]> {
    return this.write('setting legacy credentials', {}, () => this.legacy.putAll.immediate(creds, events, now));
  }

  async getLegacyCredentials(deviceId: string): Promise<LegacyCredential | undefined> {
    return this.read('reading legacy credentials', () => this.legacy.get(deviceId));
  }

  async findLegacyCredentials(commonAuthId: string, uniqueId: string): Promise<LegacyCredential | undefined> {
    if (typeof commonAuthId !== 'string' || typeof uniqueId !== 'string') return undefined;
    return this.read('reading legacy credentials', () => this.legacy.find(commonAuthId, uniqueId));
  }

  protected async findLegacyVerifiersChecked(kind: LegacyVerifierKind, verifiers: string[]): Promise<{ verifier: string; deviceId: string }[]> {
    return this.read('reading legacy verifiers', () => this.legacy.findVerifiers(kind, verifiers));
  }

  protected async deleteLegacyCredentialsChecked(id: string, event: AuditEventValues, now: number): Promise<FeedEntry> {
    return this.write('deleting legacy credentials', {}, () => this.legacy.remove.immediate(id, event, now));
  }

  protected async lockLegacyCredentialsChecked(id: string, untilMs: number, event: AuditEventValues): Promise<void> {
    this.write('locking legacy credentials', {}, () => this.legacy.lockUntil.immediate(id, untilMs, event));
  }

  protected async countLegacyFailuresChecked(keys: string[], start: number, windowMs: number): Promise<FailureCount[]> {
    return this.write('counting failed legacy authentications', {}, () => this.legacy.count.immediate(keys, start, windowMs));
  }

  async listLegacyCredentialStates(): Promise<LegacyCredentialState[]> {
    return this.read('listing legacy credentials', () => this.legacy.states());
  }

  // ---- production-line enrollment (SQL in stations.ts) ----

  protected async createStationChecked(values: { manufacturerId: string; name: string; keyHmac: string }, event: AuditEventValues, now: number): Promise<Station> {
    return this.write('creating a station', { foreignKey: { code: 'KAKUIN_E_MANUFACTURER_NOT_FOUND', message: 'no manufacturer with that id' } },
      () => this.stations.create.immediate(values, event, now));
  }

  async getStation(id: string): Promise<Station> {
    const found = typeof id === 'string' ? this.read('reading a station', () => this.stations.get(id)) : undefined;
    if (found === undefined) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
    return found;
  }

  protected async findStationByKeyHmacChecked(keyHmac: string): Promise<Station | undefined> {
    return this.read('reading a station', () => this.stations.findByKeyHmac(keyHmac));
  }

  protected async listStationsChecked(id: string, page: ListPage | undefined): Promise<Station[]> {
    if (page === undefined) return this.read('listing stations', () => this.stations.list(id));
    return this.read('listing stations', () => this.pageOf('stations', 'id', 'manufacturer_id = ?', [id], page).map((r) => stationFromRow(r as never)));
  }

  protected async updateStationChecked(id: string, change: CheckedStationChange, event: AuditEventValues, now: number): Promise<Station> {
    // `disable` only when the change names it: a quota or key change leaves a disabled station disabled.
    const values = { keyHmac: change.keyHmac, disable: change.disable, maxIssuances: change.maxIssuances };
    return this.write('updating a station', {}, () => this.stations.update.immediate(id, values, event, now));
  }

  protected async countStationIssuancesChecked(stationId: string): Promise<number> {
    return this.read('counting station issuances', () => this.stations.issuances(stationId));
  }

  protected async allowReenrollmentChecked(deviceId: string, untilMs: number, event: AuditEventValues, now: number): Promise<void> {
    this.write('allowing re-enrollment', {}, () => this.stations.allow.immediate(deviceId, untilMs, event, now));
  }

  protected async getReenrollmentAllowanceChecked(deviceId: string): Promise<Date | undefined> {
    return this.read('reading a re-enrollment allowance', () => this.stations.allowance(deviceId));
  }

  protected async consumeReenrollmentAllowanceChecked(deviceId: string): Promise<boolean> {
    return this.write('consuming a re-enrollment allowance', {}, () => this.stations.consume(deviceId));
  }

  // ---- station certificates, profiles, durable supersede (SQL in stations.ts) ----

  protected async recordStationCertificateChecked(id: string, prepared: PreparedIssuance): Promise<CertificateRecord> {
    // Queued issuances first: the serial check inside the transaction must see them.
    this.assertWritable();
    this.issuances.drain();
    return this.write('recording a station certificate', {}, () => this.stations.recordCertificate.immediate(id, prepared));
  }

  protected async findStationOfCertificateChecked(serialHex: string): Promise<string | undefined> {
    return this.read('reading a station certificate', () => this.stations.stationOfCertificate(serialHex));
  }

  protected async listStationCertificatesChecked(id: string, page: ListPage | undefined): Promise<CertificateRecord[]> {
    if (page === undefined) return this.read('listing station certificates', () => this.stations.certificates(id));
    await this.getStation(id);
    // Issuance order: certificates.rowid grows with each insert (created_at may tie within a millisecond).
    return this.read('listing station certificates', () => this.pageOf('certificates', 'c.serial_hex', 's.station_id = ?', [id], page, 'c.*',
      'certificates c JOIN station_certificates s ON s.serial_hex = c.serial_hex', 'c.rowid').map((r) => certificateFromRow(r as never)));
  }

  protected async setManufacturerProfilesChecked(manufacturerId: string, profiles: string[], event: AuditEventValues, now: number): Promise<void> {
    this.write('setting manufacturer profiles', {}, () => this.stations.setProfiles.immediate(manufacturerId, profiles, event, now));
  }

  protected async getManufacturerProfilesChecked(manufacturerId: string): Promise<string[] | undefined> {
    return this.read('reading manufacturer profiles', () => this.stations.profiles(manufacturerId));
  }

  protected async scheduleSupersedeChecked(entries: PendingSupersede[]): Promise<void> {
    const values = entries.map((e) => ({ serialHex: e.serialHex, at: e.at.getTime(), actor: e.actor }));
    this.write('scheduling supersessions', {}, () => this.stations.schedule.immediate(values));
  }

  protected async listDueSupersedesChecked(nowMs: number, limit: number): Promise<PendingSupersede[]> {
    return this.read('listing due supersessions', () => this.stations.due(nowMs, limit));
  }

  protected async clearSupersedesChecked(serials: string[]): Promise<void> {
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
