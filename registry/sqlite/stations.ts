/**
 * Production-line enrollment's tables (schema step 4): factory stations and re-enrollment
 * allowances. Each write that an auditor must see (station created, key rotated, station disabled,
 * re-enrollment allowed) commits with its audit event in one transaction.
 *
 * Schema step 5: station certificates (a certificates row bound to its station), the allowed
 * device profiles of each manufacturer, and pending supersessions (enrollment.overlapHours).
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import type { CertificateRecord, PendingSupersede, Station } from '../port.js';
import { certificateFromRow, type auditEventValues, type CertificateRow } from './records.js';
import { IssuanceWriter, type PreparedIssuance } from './issuance.js';
import type { AuditAppender } from './audit-appender.js';

type AuditValues = ReturnType<typeof auditEventValues>;

interface StationRow {
  id: string;
  manufacturer_id: string;
  name: string;
  key_hmac: string;
  created_at: number;
  key_rotated_at: number | null;
  key_age_from: number | null;
  disabled_at: number | null;
  max_issuances: number | null;
}

export function stationFromRow(r: StationRow): Station {
  return {
    id: r.id, manufacturerId: r.manufacturer_id, name: r.name, keyHmac: r.key_hmac, createdAt: new Date(r.created_at),
    ...(r.key_rotated_at !== null && { keyRotatedAt: new Date(r.key_rotated_at) }),
    ...(r.key_age_from !== null && { keyAgeFrom: new Date(r.key_age_from) }),
    ...(r.disabled_at !== null && { disabledAt: new Date(r.disabled_at) }),
    ...(r.max_issuances !== null && { maxIssuances: r.max_issuances }),
  };
}

export class StationStore {
  private readonly insertAudit: AuditAppender;
  private readonly byId: Database.Statement<[string], StationRow>;
  private readonly byHmac: Database.Statement<[string], StationRow>;
  private readonly ofManufacturer: Database.Statement<[string], StationRow>;
  private readonly insertStation: Database.Statement<unknown[], StationRow>;
  private readonly rotate: Database.Statement<unknown[]>;
  private readonly disable: Database.Statement<unknown[]>;
  private readonly enable: Database.Statement<unknown[]>;
  private readonly setQuota: Database.Statement<unknown[]>;
  private readonly issuedBy: Database.Statement<[string], { n: number }>;
  private readonly deviceExists: Database.Statement<[string], { id: string }>;
  private readonly upsertAllowance: Database.Statement<unknown[]>;
  private readonly allowanceOf: Database.Statement<[string], { until: number }>;
  private readonly deleteAllowance: Database.Statement<[string]>;
  readonly create: Database.Transaction<(input: { manufacturerId: string; name: string; keyHmac: string }, audit: AuditValues, now: number) => Station>;
  readonly update: Database.Transaction<(id: string, change: { keyHmac?: string; disable?: boolean; maxIssuances?: number | null }, audit: AuditValues, now: number) => Station>;
  readonly allow: Database.Transaction<(deviceId: string, until: number, audit: AuditValues, now: number) => void>;
  private readonly bindStationCertificate: Database.Statement<[string, string]>;
  private readonly stationOf: Database.Statement<[string], { station_id: string }>;
  private readonly certificatesOfStation: Database.Statement<[string], CertificateRow>;
  private readonly manufacturerExists: Database.Statement<[string], { id: string }>;
  private readonly upsertProfiles: Database.Statement<[string, string, number]>;
  private readonly profilesOf: Database.Statement<[string], { profiles: string }>;
  private readonly certificateExists: Database.Statement<[string], { serial_hex: string }>;
  private readonly upsertSupersede: Database.Statement<[string, number, string]>;
  private readonly dueSupersedes: Database.Statement<[number, number], { serial_hex: string; at: number; actor: string }>;
  private readonly deleteSupersede: Database.Statement<[string]>;
  readonly recordCertificate: Database.Transaction<(stationId: string, p: PreparedIssuance) => CertificateRecord>;
  readonly setProfiles: Database.Transaction<(manufacturerId: string, profiles: string[], audit: AuditValues, now: number) => void>;
  readonly schedule: Database.Transaction<(entries: { serialHex: string; at: number; actor: string }[]) => void>;
  readonly clearSupersedes: Database.Transaction<(serials: string[]) => void>;

  constructor(db: Database.Database, audit: AuditAppender) {
    this.insertAudit = audit;
    this.byId = db.prepare('SELECT * FROM stations WHERE id = ?');
    this.byHmac = db.prepare('SELECT * FROM stations WHERE key_hmac = ?');
    this.ofManufacturer = db.prepare('SELECT * FROM stations WHERE manufacturer_id = ? ORDER BY rowid');
    this.insertStation = db.prepare(`INSERT INTO stations (id, manufacturer_id, name, key_hmac, created_at)
      VALUES (?, ?, ?, ?, ?) RETURNING *`);
    this.rotate = db.prepare('UPDATE stations SET key_hmac = ?, key_rotated_at = ? WHERE id = ?');
    this.disable = db.prepare('UPDATE stations SET disabled_at = coalesce(disabled_at, ?) WHERE id = ?');
    this.enable = db.prepare('UPDATE stations SET disabled_at = NULL WHERE id = ?');
    this.setQuota = db.prepare('UPDATE stations SET max_issuances = ? WHERE id = ?');
    this.issuedBy = db.prepare(`SELECT count(*) AS n FROM audit_events WHERE actor = ? AND type = 'certificate.issued'`);
    this.deviceExists = db.prepare('SELECT id FROM devices WHERE id = ?');
    this.upsertAllowance = db.prepare(`INSERT INTO reenrollment_allowances (device_id, until, created_at) VALUES (?, ?, ?)
      ON CONFLICT (device_id) DO UPDATE SET until = excluded.until, created_at = excluded.created_at`);
    this.allowanceOf = db.prepare('SELECT until FROM reenrollment_allowances WHERE device_id = ?');
    this.deleteAllowance = db.prepare('DELETE FROM reenrollment_allowances WHERE device_id = ?');

    this.create = db.transaction((input, audit, now) => {
      const row = this.insertStation.get(randomUUID(), input.manufacturerId, input.name, input.keyHmac, now) as StationRow;
      this.insertAudit.run({ ...audit, details: withStation(audit.details, row.id) });
      return stationFromRow(row);
    });
    this.update = db.transaction((id, change, audit, now) => {
      if (this.byId.get(id) === undefined) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
      if (change.keyHmac !== undefined) this.rotate.run(change.keyHmac, now, id);
      if (change.disable === true) this.disable.run(now, id);
      if (change.disable === false) this.enable.run(id);
      if (change.maxIssuances !== undefined) this.setQuota.run(change.maxIssuances, id);
      this.insertAudit.run(audit);
      return stationFromRow(this.byId.get(id)!);
    });
    this.bindStationCertificate = db.prepare('INSERT INTO station_certificates (serial_hex, station_id) VALUES (?, ?)');
    this.stationOf = db.prepare('SELECT station_id FROM station_certificates WHERE serial_hex = ?');
    this.certificatesOfStation = db.prepare(`SELECT c.* FROM certificates c JOIN station_certificates s ON s.serial_hex = c.serial_hex
      WHERE s.station_id = ? ORDER BY c.created_at, c.rowid`);
    this.manufacturerExists = db.prepare('SELECT id FROM manufacturers WHERE id = ?');
    this.upsertProfiles = db.prepare(`INSERT INTO manufacturer_profiles (manufacturer_id, profiles, updated_at) VALUES (?, ?, ?)
      ON CONFLICT (manufacturer_id) DO UPDATE SET profiles = excluded.profiles, updated_at = excluded.updated_at`);
    this.profilesOf = db.prepare('SELECT profiles FROM manufacturer_profiles WHERE manufacturer_id = ?');
    this.certificateExists = db.prepare('SELECT serial_hex FROM certificates WHERE serial_hex = ?');
    this.upsertSupersede = db.prepare(`INSERT INTO pending_supersedes (serial_hex, at, actor) VALUES (?, ?, ?)
      ON CONFLICT (serial_hex) DO UPDATE SET at = excluded.at, actor = excluded.actor`);
    this.dueSupersedes = db.prepare('SELECT serial_hex, at, actor FROM pending_supersedes WHERE at <= ? ORDER BY at, serial_hex LIMIT ?');
    this.deleteSupersede = db.prepare('DELETE FROM pending_supersedes WHERE serial_hex = ?');
    const writer = new IssuanceWriter(db, audit);

    this.recordCertificate = db.transaction((stationId, p) => {
      if (this.byId.get(stationId) === undefined) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
      if (p.certificate.deviceId !== undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'a station certificate identifies no device');
      if (this.certificateExists.get(p.certificate.serialHex) !== undefined) {
        throw new KakuinError('KAKUIN_E_SERIAL_EXISTS', 'a certificate with that serial number is already recorded');
      }
      const record = writer.write(p);
      this.bindStationCertificate.run(record.serialHex, stationId);
      return record;
    });
    this.setProfiles = db.transaction((manufacturerId, profiles, audit, now) => {
      if (this.manufacturerExists.get(manufacturerId) === undefined) throw new KakuinError('KAKUIN_E_MANUFACTURER_NOT_FOUND', 'no manufacturer with that id');
      this.upsertProfiles.run(manufacturerId, JSON.stringify(profiles), now);
      this.insertAudit.run(audit);
    });
    this.schedule = db.transaction((entries) => {
      for (const e of entries) {
        if (this.certificateExists.get(e.serialHex) === undefined) {
          throw new KakuinError('KAKUIN_E_CERTIFICATE_NOT_FOUND', `no certificate with serial number ${e.serialHex}`);
        }
        this.upsertSupersede.run(e.serialHex, e.at, e.actor);
      }
    });
    this.clearSupersedes = db.transaction((serials) => {
      for (const serial of serials) this.deleteSupersede.run(serial);
    });
    this.allow = db.transaction((deviceId, until, audit, now) => {
      if (this.deviceExists.get(deviceId) === undefined) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
      this.upsertAllowance.run(deviceId, until, now);
      this.insertAudit.run(audit);
    });
  }

  get(id: string): Station | undefined {
    const row = this.byId.get(id);
    return row === undefined ? undefined : stationFromRow(row);
  }

  findByKeyHmac(keyHmac: string): Station | undefined {
    const row = this.byHmac.get(keyHmac);
    return row === undefined ? undefined : stationFromRow(row);
  }

  list(manufacturerId: string): Station[] {
    return this.ofManufacturer.all(manufacturerId).map(stationFromRow);
  }

  issuances(stationId: string): number {
    return this.issuedBy.get(`station:${stationId}`)!.n;
  }

  allowance(deviceId: string): Date | undefined {
    const row = this.allowanceOf.get(deviceId);
    return row === undefined ? undefined : new Date(row.until);
  }

  consume(deviceId: string): boolean {
    return this.deleteAllowance.run(deviceId).changes > 0;
  }

  stationOfCertificate(serialHex: string): string | undefined {
    return this.stationOf.get(serialHex)?.station_id;
  }

  certificates(stationId: string): CertificateRecord[] {
    if (this.byId.get(stationId) === undefined) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
    return this.certificatesOfStation.all(stationId).map(certificateFromRow);
  }

  profiles(manufacturerId: string): string[] | undefined {
    const row = this.profilesOf.get(manufacturerId);
    return row === undefined ? undefined : JSON.parse(row.profiles) as string[];
  }

  due(now: number, limit: number): PendingSupersede[] {
    return this.dueSupersedes.all(now, limit).map((r) => ({ serialHex: r.serial_hex, at: new Date(r.at), actor: r.actor }));
  }
}

/** The station id is assigned inside the transaction, so the audit event learns it there. */
function withStation(details: string | null, stationId: string): string {
  return JSON.stringify({ ...(details === null ? {} : JSON.parse(details) as object), stationId });
}
