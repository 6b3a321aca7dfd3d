/**
 * Writing one issued certificate: the certificate row, the public-key binding, the device's move
 * from `registered` to `active`, their revocation feed entries, and the audit event. It runs inside
 * a SAVEPOINT opened by the group commit, so when any step refuses, the steps before it are undone
 * and nothing else is.
 *
 * The device's status is read inside that transaction: a revocation (BEGIN IMMEDIATE as well)
 * commits either before it, and the issuance is refused, or after it, and the revocation's sweep
 * of the device's certificates finds this one. No good certificate outlives its device's revocation.
 */
import type Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import type { CertificateRecord, DeviceStatus } from '../port.js';
import type { PreparedIssuance } from '../records/prepared.js';
import { deviceAcceptsCertificates } from '../status-change.js';
import { FeedAppender } from './revocation-feed.js';
import type { AuditAppender } from './audit-appender.js';

/** Checked before the group commit takes a record (registry/records/prepared.ts); re-exported for old imports. */
export { prepareIssuance, type PreparedIssuance } from '../records/prepared.js';

export class IssuanceWriter {
  private readonly issuerExists: Database.Statement<[string]>;
  private readonly deviceStatus: Database.Statement<[string], { status: DeviceStatus }>;
  private readonly insertCertificate: Database.Statement<[Record<string, unknown>]>;
  private readonly boundDevice: Database.Statement<[string], { device_id: string }>;
  private readonly bindKey: Database.Statement<[string, string, number]>;
  private readonly activate: Database.Statement<[number, string]>;
  private readonly insertAudit: AuditAppender;
  private readonly feed: FeedAppender;

  constructor(db: Database.Database, audit: AuditAppender) {
    this.issuerExists = db.prepare('SELECT 1 FROM issuers WHERE id = ?');
    this.deviceStatus = db.prepare('SELECT status FROM devices WHERE id = ?');
    this.insertCertificate = db.prepare(`INSERT INTO certificates
      (serial_hex, issuer_id, device_id, profile, status, der, fingerprint_sha256, public_key_sha256, not_before, not_after, created_at,
       status_seq)
      VALUES (:serial_hex, :issuer_id, :device_id, :profile, 'good', :der, :fingerprint_sha256, :public_key_sha256,
              :not_before, :not_after, :created_at, :status_seq)`);
    this.boundDevice = db.prepare('SELECT device_id FROM public_key_bindings WHERE public_key_sha256 = ?');
    this.bindKey = db.prepare('INSERT INTO public_key_bindings (public_key_sha256, device_id, bound_at) VALUES (?, ?, ?)');
    this.activate = db.prepare(`UPDATE devices SET status = 'active', updated_at = ? WHERE id = ? AND status = 'registered'`);
    this.insertAudit = audit;
    this.feed = new FeedAppender(db);
  }

  /**
   * Must run inside a transaction (the group commit's savepoint). Explicit existence checks give
   * each refusal its own code; a foreign-key error could not say which reference was missing.
   */
  write(p: PreparedIssuance): CertificateRecord {
    const c = p.certificate;
    const now = c.createdAt.getTime();
    if (this.issuerExists.get(c.issuerId) === undefined) {
      throw new KakuinError('KAKUIN_E_ISSUER_NOT_FOUND', `no issuer ${JSON.stringify(c.issuerId)} is recorded`);
    }
    let bindKey = false;
    let activate = false;
    if (c.deviceId !== undefined) {
      const device = this.deviceStatus.get(c.deviceId);
      if (device === undefined) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
      if (!deviceAcceptsCertificates(device.status)) {
        throw new KakuinError('KAKUIN_E_DEVICE_STATE', `the device is ${device.status}; it cannot be given a certificate`);
      }
      // Infrastructure certificates (TLS servers, OCSP signers) identify no device: no binding.
      const bound = this.boundDevice.get(c.publicKeySha256);
      if (bound !== undefined && bound.device_id !== c.deviceId) {
        throw new KakuinError('KAKUIN_E_PUBLIC_KEY_IN_USE', 'the public key is already bound to another device');
      }
      bindKey = bound === undefined;
      activate = device.status === 'registered';
    }
    const seq = this.feed.appendRow({
      at: now, kind: 'certificate', serial_hex: c.serialHex, issuer_id: c.issuerId, device_id: c.deviceId ?? null,
      status: 'good', previous_status: null, reason: null, revoked_at: null, invalidity_date: null,
    });
    this.insertCertificate.run({
      serial_hex: c.serialHex,
      issuer_id: c.issuerId,
      device_id: c.deviceId ?? null,
      profile: c.profile,
      der: c.der,
      fingerprint_sha256: c.fingerprintSha256,
      public_key_sha256: c.publicKeySha256,
      not_before: c.notBefore.getTime(),
      not_after: c.notAfter.getTime(),
      created_at: now,
      status_seq: seq,
    });
    if (c.deviceId !== undefined) {
      // The primary key of public_key_bindings backs the check above (KAKUIN_E_PUBLIC_KEY_IN_USE).
      if (bindKey) this.bindKey.run(c.publicKeySha256, c.deviceId, now);
      // Only `registered` moves (an `active` device being renewed stays as it is).
      if (activate && this.activate.run(now, c.deviceId).changes === 1) {
        this.feed.appendRow({
          at: now, kind: 'device', serial_hex: null, issuer_id: null, device_id: c.deviceId,
          status: 'active', previous_status: 'registered', reason: null, revoked_at: null, invalidity_date: null,
        });
      }
    }
    this.insertAudit.run(p.audit);
    return c;
  }
}
