/**
 * The checks and normalisations every registry adapter applies to what a caller hands the port, so
 * all adapters accept and refuse exactly the same values with the same codes (KAKUIN_E_VALIDATION):
 * serials uppercase, hashes lowercase, dates to milliseconds, limits capped. Pure functions, no
 * driver: each adapter builds its rows or documents from what these return.
 */
import { KakuinError } from '../../errors/index.js';
import type { NewAuditEvent, NewLegacyCredential } from '../port.js';


function invalid(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_VALIDATION', message);
}

/** A valid Date as integer milliseconds. */
export function toMillis(value: Date, field: string): number {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalid(`${field} must be a valid Date`);
  return value.getTime();
}

export function optionalMillis(value: Date | undefined, field: string): number | null {
  return value === undefined ? null : toMillis(value, field);
}

export function requiredText(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${field} must be a non-empty string`);
  return value;
}

export function optionalText(value: unknown, field: string): string | null {
  return value === undefined || value === null ? null : requiredText(value, field);
}

export function requiredBytes(value: unknown, field: string): Buffer {
  if (!Buffer.isBuffer(value) || value.length === 0) throw invalid(`${field} must be a non-empty Buffer`);
  return value;
}

/** Serial numbers are stored and looked up in uppercase, as `openssl x509 -serial` prints them. */
export function normalizeSerialHex(value: unknown, field = 'serialHex'): string {
  const s = requiredText(value, field).toUpperCase();
  if (!/^[0-9A-F]+$/.test(s)) throw invalid(`${field} must be hexadecimal without separators`);
  return s;
}

/** SHA-256 values (fingerprints, key hashes, token HMACs) are lowercase hex. */
export function normalizeSha256Hex(value: unknown, field: string): string {
  const s = requiredText(value, field).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) throw invalid(`${field} must be 64 hex digits (SHA-256)`);
  return s;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** Query limits: default 100; above 1000 is capped (a listing never blocks the loop for long). */
export function normalizeLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
  return Math.min(limit, MAX_LIMIT);
}

export const DEFAULT_FEED_LIMIT = 1000;
export const MAX_FEED_LIMIT = 10_000;

/** readFeed limits: default 1000; above 10000 is capped, like listing limits. */
export function normalizeFeedLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_FEED_LIMIT;
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
  return Math.min(limit, MAX_FEED_LIMIT);
}

/** A feed sequence number given by a caller (0 means "from the start"). */
export function feedSeqValue(value: unknown, field: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw invalid(`${field} must be a non-negative integer`);
  return value as number;
}

/**
 * One audit event as every adapter stores it: milliseconds, absent fields null, `details` as JSON
 * text (it must survive a JSON round trip). The field names are the SQLite columns', which the
 * MongoDB documents are built from too (registry/mongodb/documents.ts auditEventDoc).
 */
export type AuditEventValues = {
  at: number; type: string; actor: string; device_id: string | null; serial_hex: string | null; details: string | null;
};

/** The checked stored form of one audit event (see AuditEventValues). */
export function auditEventValues(event: NewAuditEvent, now: number): AuditEventValues {
  let details: string | null = null;
  if (event.details !== undefined) {
    if (event.details === null || typeof event.details !== 'object' || Array.isArray(event.details)) {
      throw invalid('audit details must be an object');
    }
    try {
      details = JSON.stringify(event.details);
    } catch (e) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'audit details must be JSON-serialisable', { cause: e });
    }
  }
  return {
    at: event.at === undefined ? now : toMillis(event.at, 'audit.at'),
    type: requiredText(event.type, 'audit.type'),
    actor: requiredText(event.actor, 'audit.actor'),
    device_id: optionalText(event.deviceId, 'audit.deviceId'),
    // Uppercase like stored serials, but not checked: an event may record a malformed serial someone sent.
    serial_hex: event.serialHex === undefined ? null : requiredText(event.serialHex, 'audit.serialHex').toUpperCase(),
    details,
  };
}

/**
 * The checked, normalised input of putLegacyCredentials (every adapter): KAKUIN_E_VALIDATION for
 * anything that is not an array of well-formed credentials with an array of audit events.
 */
export function normalizeNewLegacyCredentials(credentials: unknown, audit: unknown): NewLegacyCredential[] {
  if (!Array.isArray(credentials) || !Array.isArray(audit)) throw new KakuinError('KAKUIN_E_VALIDATION', 'credentials and audit must be arrays');
  return credentials.map((c: NewLegacyCredential, i): NewLegacyCredential => {
    if (c === null || typeof c !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', `credentials[${i}] must be an object`);
    if (c.verifierKind !== 'hmac' && c.verifierKind !== 'scrypt') throw new KakuinError('KAKUIN_E_VALIDATION', `credentials[${i}].verifierKind must be hmac or scrypt`);
    return {
      deviceId: requiredText(c.deviceId, `credentials[${i}].deviceId`), commonAuthId: requiredText(c.commonAuthId, `credentials[${i}].commonAuthId`),
      uniqueId: requiredText(c.uniqueId, `credentials[${i}].uniqueId`), verifierKind: c.verifierKind, verifier: requiredText(c.verifier, `credentials[${i}].verifier`),
    };
  });
}

export function requireObject(value: unknown, what: string): void {
  if (value === null || typeof value !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be an object`);
}

export function requireFunction(value: unknown, what: string): void {
  if (typeof value !== 'function') throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a function`);
}
