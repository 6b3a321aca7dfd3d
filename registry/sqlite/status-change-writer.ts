/**
 * Applying a checked StatusChange inside one `BEGIN IMMEDIATE` transaction: every guard is read
 * under the write lock, so nothing can change between the check and the write, and any refusal
 * rolls back everything the change had done so far (rows, feed entries, audit events).
 *
 * Order of the work, and so of the feed entries: the listed certificates as given, then the device,
 * then the device's certificates (oldest first). Listed certificates go first so that a change may
 * revoke one certificate with its own reason and sweep the device's others: the swept rows are
 * those still in the sweep's `from` once the listed ones are done.
 */
import type Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import type { CertificateStatus, CrlReason, DeviceStatus, FeedEntry } from '../port.js';
import type { PreparedStatusChange } from '../records/prepared.js';
import { certificateOutcome, deviceOutcome, type CheckedTransition } from '../status-change.js';
import { FeedAppender } from './revocation-feed.js';
import type { AuditAppender } from './audit-appender.js';
import { jobStepSettled } from '../records/jobs.js';
import { decommissionJson } from './records.js';

export type { PreparedStatusChange } from '../records/prepared.js';

interface CertificateStateRow {
  serial_hex: string;
  issuer_id: string;
  device_id: string | null;
  status: CertificateStatus;
}

export class StatusChangeWriter {
  private readonly certificate: Database.Statement<[string], CertificateStateRow>;
  private readonly certificatesOfDevice: Database.Statement<[string], CertificateStateRow>;
  private readonly device: Database.Statement<[string], { status: DeviceStatus }>;
  private readonly setRevokedOrHeld: Database.Statement<unknown[]>;
  private readonly setReleased: Database.Statement<unknown[]>;
  private readonly setDevice: Database.Statement<unknown[]>;
  private readonly insertAudit: AuditAppender;
  private readonly setDecommission: Database.Statement<unknown[]>;
  private readonly settleStep: Database.Statement<unknown[]>;
  private readonly countActed: Database.Statement<unknown[]>;
  private readonly feed: FeedAppender;

  constructor(db: Database.Database, audit: AuditAppender) {
    const columns = 'serial_hex, issuer_id, device_id, status';
    this.certificate = db.prepare(`SELECT ${columns} FROM certificates WHERE serial_hex = ?`);
    this.certificatesOfDevice = db.prepare(`SELECT ${columns} FROM certificates WHERE device_id = ? ORDER BY created_at, rowid`);
    this.device = db.prepare('SELECT status FROM devices WHERE id = ?');
    this.setRevokedOrHeld = db.prepare(`UPDATE certificates
      SET status = ?, reason = ?, revoked_at = ?, invalidity_date = ?, status_seq = ? WHERE serial_hex = ?`);
    // Leaving hold clears the CRL entry's fields; released_seq puts it on the next delta as removeFromCRL.
    this.setReleased = db.prepare(`UPDATE certificates
      SET status = 'good', reason = NULL, revoked_at = NULL, invalidity_date = NULL, status_seq = ?, released_seq = ?
      WHERE serial_hex = ?`);
    this.setDevice = db.prepare('UPDATE devices SET status = ?, updated_at = ? WHERE id = ?');
    this.insertAudit = audit;
    this.setDecommission = db.prepare('UPDATE devices SET decommission = ? WHERE id = ?');
    // Only a pending step moves: a step settled before (a crashed run's commit) refuses the change.
    this.settleStep = db.prepare(`UPDATE bulk_job_devices SET outcome = 'acted', settled_at = ?
      WHERE job_id = ? AND device_id = ? AND outcome = 'pending'`);
    this.countActed = db.prepare('UPDATE bulk_jobs SET acted = acted + 1, updated_at = ? WHERE id = ?');
    this.feed = new FeedAppender(db);
  }

  /** Must run inside a BEGIN IMMEDIATE transaction; throws (and the caller rolls back) on any refusal. */
  apply(change: PreparedStatusChange, now: number): FeedEntry[] {
    const entries: FeedEntry[] = [];
    for (const t of change.certificates) {
      const row = this.certificate.get(t.serialHex);
      if (row === undefined) throw new KakuinError('KAKUIN_E_CERTIFICATE_NOT_FOUND', `no certificate with serial number ${t.serialHex}`);
      this.transition(row, t, now, entries);
    }
    const d = change.device;
    if (d !== undefined) {
      const device = this.device.get(d.id);
      if (device === undefined) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
      if (deviceOutcome(device.status, d) === 'apply') {
        this.setDevice.run(d.to, now, d.id);
        if (d.decommission !== undefined) this.setDecommission.run(decommissionJson(d.decommission), d.id);
        entries.push(this.feed.append({
          at: now, kind: 'device', serial_hex: null, issuer_id: null, device_id: d.id, status: d.to,
          previous_status: device.status, reason: null, revoked_at: null, invalidity_date: null,
        }));
      }
      const sweep = d.certificates;
      if (sweep !== undefined) {
        // Read under the write lock: a certificate committed a moment ago is in this list.
        for (const row of this.certificatesOfDevice.all(d.id)) {
          if (sweep.from.has(row.status)) this.transition(row, sweep, now, entries);
        }
      }
    }
    const step = change.jobStep;
    if (step !== undefined) {
      if (this.settleStep.run(now, step.jobId, step.deviceId).changes !== 1) throw jobStepSettled();
      this.countActed.run(now, step.jobId);
    }
    for (const audit of change.audit) this.insertAudit.run(audit);
    return entries;
  }

  private transition(row: CertificateStateRow, t: CheckedTransition, now: number, entries: FeedEntry[]): void {
    if (certificateOutcome(row.serial_hex, row.status, t) === 'unchanged') return;
    const reason: CrlReason | null = t.reason ?? null;
    const revokedAt = t.revokedAt?.getTime() ?? null;
    const invalidityDate = t.invalidityDate?.getTime() ?? null;
    const entry = this.feed.append({
      at: now, kind: 'certificate', serial_hex: row.serial_hex, issuer_id: row.issuer_id, device_id: row.device_id,
      status: t.to, previous_status: row.status, reason, revoked_at: revokedAt, invalidity_date: invalidityDate,
    });
    if (t.to === 'good') {
      this.setReleased.run(entry.seq, entry.seq, row.serial_hex);
    } else {
      this.setRevokedOrHeld.run(t.to, reason, revokedAt, invalidityDate, entry.seq, row.serial_hex);
    }
    entries.push(entry);
  }
}
