/**
 * The checked, normalised forms of the port's composite inputs, built before any transaction so
 * that malformed input is refused at once (KAKUIN_E_VALIDATION), never occupies a place in a
 * batch, and is refused identically by every adapter: an issuance record, a status change, a CRL
 * and a pre-signed OCSP response. The CRL and OCSP forms carry the SQLite column names; the
 * MongoDB documents are built from the same values (registry/mongodb/documents.ts).
 */
import { KakuinError } from '../../errors/index.js';
import type { CertificateRecord, CrlRecord, IssuanceRecord, StatusChange, StoredOcspResponse } from '../port.js';
import { checkStatusChange, type CheckedStatusChange } from '../status-change.js';
import {
  auditEventValues, feedSeqValue, normalizeSerialHex, normalizeSha256Hex, requiredBytes, requiredText, toMillis, type AuditEventValues,
} from './values.js';

function invalid(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_VALIDATION', message);
}

// ---- issuance -----------------------------------------------------------------------------------

/** A valid issuance record: the certificate as it will be stored (good, createdAt now) and its audit event. */
export interface PreparedIssuance {
  certificate: CertificateRecord;
  audit: AuditEventValues;
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

// ---- status changes -----------------------------------------------------------------------------

/** A change whose audit events are already stored values (checked before the transaction). */
export type PreparedStatusChange = Omit<CheckedStatusChange, 'audit'> & { audit: AuditEventValues[] };

/** checkStatusChange (registry/status-change.ts) plus the audit events' stored values at `now`. */
export function prepareStatusChange(change: StatusChange, now: number): PreparedStatusChange {
  const checked = checkStatusChange(change);
  return { ...checked, audit: checked.audit.map((a) => auditEventValues(a, now)) };
}

// ---- CRLs and OCSP responses --------------------------------------------------------------------

/** A checked CRL record as stored: numbers as decimal text (up to 2^159 - 1), dates as milliseconds. */
export interface CrlRow {
  issuer_id: string;
  kind: 'full' | 'delta';
  number: string;
  base_number: string | null;
  this_update: number;
  next_update: number;
  feed_seq: number;
  der: Buffer;
}

/** A checked pre-signed OCSP response as stored (serial uppercase, dates as milliseconds). */
export interface OcspResponseRow {
  issuer_id: string;
  serial_hex: string;
  der: Buffer;
  this_update: number;
  next_update: number;
}

/** RFC 5280 §5.2.3: CRLNumber ::= INTEGER (0..MAX), at most 20 octets: below 2^159 as a DER INTEGER. */
const CRL_NUMBER_LIMIT = 1n << 159n;

function crlNumber(value: unknown, field: string): string {
  if (typeof value !== 'bigint' || value < 0n || value >= CRL_NUMBER_LIMIT) {
    throw invalid(`${field} must be a bigint from 0 to 2^159 - 1 (RFC 5280 §5.2.3: at most 20 octets)`);
  }
  return value.toString();
}

function validity(thisUpdate: Date, nextUpdate: Date): { this_update: number; next_update: number } {
  const this_update = toMillis(thisUpdate, 'thisUpdate');
  const next_update = toMillis(nextUpdate, 'nextUpdate');
  if (next_update <= this_update) throw invalid('nextUpdate must be after thisUpdate');
  return { this_update, next_update };
}

/** A delta CRL names its base (RFC 5280 §5.2.4), and only a delta CRL does. */
export function crlRow(crl: CrlRecord): CrlRow {
  if (crl === null || typeof crl !== 'object') throw invalid('a CRL record must be an object');
  if (crl.kind !== 'full' && crl.kind !== 'delta') throw invalid('kind must be full or delta');
  if ((crl.kind === 'delta') !== (crl.baseNumber !== undefined)) throw invalid('a delta CRL needs baseNumber, and only a delta CRL has one');
  return {
    issuer_id: requiredText(crl.issuerId, 'issuerId'),
    kind: crl.kind,
    number: crlNumber(crl.number, 'number'),
    base_number: crl.baseNumber === undefined ? null : crlNumber(crl.baseNumber, 'baseNumber'),
    ...validity(crl.thisUpdate, crl.nextUpdate),
    feed_seq: feedSeqValue(crl.feedSeq, 'feedSeq'),
    der: requiredBytes(crl.der, 'der'),
  };
}

export function ocspResponseRow(r: StoredOcspResponse, field: string): OcspResponseRow {
  if (r === null || typeof r !== 'object') throw invalid(`${field} must be an object`);
  return {
    issuer_id: requiredText(r.issuerId, `${field}.issuerId`),
    serial_hex: normalizeSerialHex(r.serialHex, `${field}.serialHex`),
    der: requiredBytes(r.der, `${field}.der`),
    ...validity(r.thisUpdate, r.nextUpdate),
  };
}
