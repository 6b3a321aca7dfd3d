/**
 * Writing one issued certificate: the certificate row, the public-key binding, the device's move
 * from `registered` to `active`, and the audit event. It runs inside a SAVEPOINT opened by the
 * group commit, so when any step refuses, the steps before it are undone and nothing else is.
 */
import type Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import type { CertificateRecord, IssuanceRecord } from '../port.js';
import {
  auditEventValues, normalizeSerialHex, normalizeSha256Hex, requiredBytes, requiredText, toMillis,
} from './records.js';

/** The column values of a valid record, computed before the group commit takes it. */
export interface PreparedIssuance {
  certificate: CertificateRecord;
  audit: ReturnType<typeof auditEventValues>;
}

/**
 * Validates and normalises a record outside any transaction, so malformed input is refused at
 * once and never occupies a place in a batch.
 */
export function prepareIssuance(record: IssuanceRecord, now: number): PreparedIssuance {
  if (record === null || typeof record !== 'object' || record.certificate === null || typeof record.certificate !== 'object') {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'an issuance record needs a certificate and an audit event');
  }
  const c = record.certificate;
  const notBefore = toMillis(c.notBefore, 'certificate.notBefore');
  const notAfter = toMillis(c.notAfter, 'certificate.notAfter');
  const certificate: CertificateRecord = {
    serialHex: normalizeSerialHex(c.serialHex, 'certificate.serialHex'),
    issuerId: requiredText(c.issuerId, 'certificate.issuerId'),
    ...(c.deviceId !== undefined && { deviceId: requiredText(c.deviceId, 'certificate.deviceId') }),
    profile: requiredText(c.profile, 'certificate.profile'),
    status: 'good',
    der: requiredBytes(c.der, 'certificate.der'),
    fingerprintSha256: normalizeSha256Hex(c.fingerprintSha256, 'certificate.fingerprintSha256'),
    publicKeySha256: normalizeSha256Hex(c.publicKeySha256, 'certificate.publicKeySha256'),
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    createdAt: new Date(now),
  };
  if (record.audit === null || typeof record.audit !== 'object') {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'an issuance record needs an audit event');
  }
  return { certificate, audit: auditEventValues(record.audit, now) };
}

export class IssuanceWriter {
  private readonly issuerExists: Database.Statement<[string]>;
  private readonly deviceExists: Database.Statement<[string]>;
  private readonly insertCertificate: Database.Statement<[Record<string, unknown>]>;
  private readonly boundDevice: Database.Statement<[string], { device_id: string }>;
  private readonly bindKey: Database.Statement<[string, string, number]>;
  private readonly activate: Database.Statement<[number, string]>;
  private readonly insertAudit: Database.Statement<[Record<string, unknown>]>;

  constructor(db: Database.Database) {
    this.issuerExists = db.prepare('SELECT 1 FROM issuers WHERE id = ?');
    this.deviceExists = db.prepare('SELECT 1 FROM devices WHERE id = ?');
    this.insertCertificate = db.prepare(`INSERT INTO certificates
      (serial_hex, issuer_id, device_id, profile, status, der, fingerprint_sha256, public_key_sha256, not_before, not_after, created_at)
      VALUES (:serial_hex, :issuer_id, :device_id, :profile, 'good', :der, :fingerprint_sha256, :public_key_sha256,
              :not_before, :not_after, :created_at)`);
    this.boundDevice = db.prepare('SELECT device_id FROM public_key_bindings WHERE public_key_sha256 = ?');
    this.bindKey = db.prepare('INSERT INTO public_key_bindings (public_key_sha256, device_id, bound_at) VALUES (?, ?, ?)');
    this.activate = db.prepare(`UPDATE devices SET status = 'active', updated_at = ? WHERE id = ? AND status = 'registered'`);
    this.insertAudit = db.prepare(`INSERT INTO audit_events (at, type, actor, device_id, serial_hex, details)
      VALUES (:at, :type, :actor, :device_id, :serial_hex, :details)`);
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
    if (c.deviceId !== undefined) {
      if (this.deviceExists.get(c.deviceId) === undefined) {
        throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
      }
      // Infrastructure certificates (TLS servers, OCSP signers) identify no device: no binding.
      const bound = this.boundDevice.get(c.publicKeySha256);
      if (bound !== undefined && bound.device_id !== c.deviceId) {
        throw new KakuinError('KAKUIN_E_PUBLIC_KEY_IN_USE', 'the public key is already bound to another device');
      }
      bindKey = bound === undefined;
    }
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
    });
    if (c.deviceId !== undefined) {
      // The primary key of public_key_bindings backs the check above (KAKUIN_E_PUBLIC_KEY_IN_USE).
      if (bindKey) this.bindKey.run(c.publicKeySha256, c.deviceId, now);
      // Only `registered` moves; the CA has checked the state before signing, and a device
      // suspended meanwhile must stay suspended.
      this.activate.run(now, c.deviceId);
    }
    this.insertAudit.run(p.audit);
    return c;
  }
}
