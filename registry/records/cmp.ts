/**
 * The CMP store's input checks (registry/cmp.ts), shared by every adapter so each refuses the same
 * bad input the same way (KAKUIN_E_VALIDATION) before writing anything.
 */
import { KakuinError } from '../../errors/index.js';
import type { CmpSecret, CmpTransaction } from '../cmp.js';

function invalid(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_VALIDATION', message);
}

function text(value: unknown, what: string, max = 128): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) throw invalid(`${what} must be a non-empty string of at most ${max} characters`);
  return value;
}

function date(value: unknown, what: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalid(`${what} must be a valid Date`);
  return value;
}

function bytes(value: unknown, what: string, max: number): Buffer {
  if (!Buffer.isBuffer(value) || value.length === 0 || value.length > max) throw invalid(`${what} must be 1 to ${max} bytes`);
  return value;
}

/** transactionID as stored: lowercase hex of 1 to 64 octets (RFC 9483 §3.1 asks for 128 random bits). */
export function checkedTransactionId(value: unknown): string {
  if (typeof value !== 'string' || !/^([0-9a-f]{2}){1,64}$/.test(value)) throw invalid('a CMP transactionID must be lowercase hex of 1 to 64 octets');
  return value;
}

function sha256Hex(value: unknown, what: string): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw invalid(`${what} must be a SHA-256 in lowercase hex`);
  return value;
}

export function checkedCmpReference(value: unknown): string {
  return text(value, 'a CMP secret reference');
}

export function checkedCmpSecret(s: CmpSecret): CmpSecret {
  if (s === null || typeof s !== 'object') throw invalid('a CMP secret must be an object');
  const out: CmpSecret = {
    reference: checkedCmpReference(s.reference), deviceId: text(s.deviceId, 'deviceId'), manufacturerId: text(s.manufacturerId, 'manufacturerId'), issuedBy: text(s.issuedBy, 'issuedBy', 256),
    nonce: bytes(s.nonce, 'nonce', 64), createdAt: date(s.createdAt, 'createdAt'), expiresAt: date(s.expiresAt, 'expiresAt'),
  };
  if (s.transactionId !== undefined) out.transactionId = checkedTransactionId(s.transactionId);
  if (out.expiresAt.getTime() <= out.createdAt.getTime()) throw invalid('a CMP secret must expire after it is created');
  return out;
}

export function checkedCmpTransaction(t: CmpTransaction): CmpTransaction {
  if (t === null || typeof t !== 'object') throw invalid('a CMP transaction must be an object');
  const out: CmpTransaction = {
    transactionId: checkedTransactionId(t.transactionId), owner: text(t.owner, 'owner', 256), requestSha256: sha256Hex(t.requestSha256, 'requestSha256'),
    responseDer: bytes(t.responseDer, 'responseDer', 1 << 20), createdAt: date(t.createdAt, 'createdAt'), expiresAt: date(t.expiresAt, 'expiresAt'),
  };
  if (t.confirmSha256 !== undefined || t.confirmResponseDer !== undefined) {
    out.confirmSha256 = sha256Hex(t.confirmSha256, 'confirmSha256');
    out.confirmResponseDer = bytes(t.confirmResponseDer, 'confirmResponseDer', 1 << 20);
  }
  return out;
}

export function checkedConfirmation(confirmSha256: unknown, confirmResponseDer: unknown): { sha256: string; der: Buffer } {
  return { sha256: sha256Hex(confirmSha256, 'confirmSha256'), der: bytes(confirmResponseDer, 'confirmResponseDer', 1 << 20) };
}
