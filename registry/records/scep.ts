/**
 * Checks of the SCEP store's records (registry/scep.ts), shared by every adapter so that bad
 * input is refused the same way (KAKUIN_E_VALIDATION) before anything is written.
 */
import { KakuinError } from '../../errors/index.js';
import type { ScepChallenge, ScepRaIdentity, ScepTransaction } from '../scep.js';

function text(value: unknown, what: string, max = 512): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

function date(value: unknown, what: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be a valid Date`);
  return value;
}

function hex64(value: unknown, what: string): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw new KakuinError('KAKUIN_E_VALIDATION', `${what} must be 64 lowercase hex digits`);
  return value;
}

export function checkScepChallenge(c: ScepChallenge): ScepChallenge {
  if (c === null || typeof c !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', 'a SCEP challenge must be an object');
  hex64(c.hmac, 'hmac');
  text(c.deviceId, 'deviceId', 64);
  text(c.manufacturerId, 'manufacturerId', 64);
  text(c.actor, 'actor');
  date(c.createdAt, 'createdAt');
  if (date(c.expiresAt, 'expiresAt').getTime() <= c.createdAt.getTime()) throw new KakuinError('KAKUIN_E_VALIDATION', 'expiresAt must be after createdAt');
  if (c.usedAt !== undefined) date(c.usedAt, 'usedAt');
  if (c.transactionId !== undefined) text(c.transactionId, 'transactionId', 256);
  return c;
}

export function checkScepTransaction(t: ScepTransaction): ScepTransaction {
  if (t === null || typeof t !== 'object') throw new KakuinError('KAKUIN_E_VALIDATION', 'a SCEP transaction must be an object');
  text(t.transactionId, 'transactionId', 256);
  text(t.deviceId, 'deviceId', 64);
  hex64(t.publicKeySha256, 'publicKeySha256');
  if (t.status !== 'pending' && t.status !== 'issued') throw new KakuinError('KAKUIN_E_VALIDATION', 'status must be pending or issued');
  if (t.status === 'pending' && !Buffer.isBuffer(t.csrDer)) throw new KakuinError('KAKUIN_E_VALIDATION', 'a pending transaction keeps its csrDer');
  if (t.status === 'issued' && (typeof t.serialHex !== 'string' || !/^[0-9A-F]{2,64}$/.test(t.serialHex))) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'an issued transaction names its serialHex (uppercase hex)');
  }
  text(t.actor, 'actor');
  text(t.manufacturerId, 'manufacturerId', 64);
  date(t.createdAt, 'createdAt');
  date(t.updatedAt, 'updatedAt');
  return t;
}

export function checkScepRa(ra: ScepRaIdentity): ScepRaIdentity {
  if (ra === null || typeof ra !== 'object' || !Buffer.isBuffer(ra.certificateDer) || ra.certificateDer.length === 0) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'the RA identity needs its certificateDer');
  }
  text(ra.keyUri, 'keyUri', 2048);
  date(ra.createdAt, 'createdAt');
  return ra;
}

export function checkTransactionId(id: unknown): string {
  return text(id, 'transactionId', 256);
}

export function checkChallengeHmac(hmac: unknown): string {
  return hex64(hmac, 'hmac');
}
