/**
 * The ACME store's input checks (registry/acme.ts), shared by every adapter so that each accepts
 * and refuses the same records. The protocol rules (which status may follow which) are
 * enrollment/acme's; these only keep a malformed record out of the store.
 */
import { KakuinError } from '../../errors/index.js';
import type { AcmeAccount, AcmeAuthorization, AcmeChallenge, AcmeEabKey, AcmeOrder } from '../acme.js';

const ACCOUNT_STATUSES = ['valid', 'deactivated', 'revoked'];
const ORDER_STATUSES = ['pending', 'ready', 'processing', 'valid', 'invalid'];
const AUTHZ_STATUSES = ['pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked'];
const CHALLENGE_STATUSES = ['pending', 'processing', 'valid', 'invalid'];
const CHALLENGE_TYPES = ['http-01', 'tls-alpn-01', 'dns-01'];

function invalid(what: string): never {
  throw new KakuinError('KAKUIN_E_VALIDATION', `ACME store: ${what}`);
}

export function checkAcmeId(v: unknown, what = 'id'): string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(v)) invalid(`${what} must be 1 to 128 URL-safe characters`);
  return v;
}

function date(v: unknown, what: string): void {
  if (!(v instanceof Date) || Number.isNaN(v.getTime())) invalid(`${what} must be a valid Date`);
}

function text(v: unknown, what: string, max = 8192): void {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) invalid(`${what} must be a non-empty string of at most ${max} characters`);
}

function oneOf(v: unknown, list: string[], what: string): void {
  if (typeof v !== 'string' || !list.includes(v)) invalid(`${what} must be one of ${list.join(', ')}`);
}

export function checkAcmeEabKey(k: AcmeEabKey): void {
  checkAcmeId(k.kid, 'kid');
  if (!Array.isArray(k.names) || k.names.length === 0 || k.names.length > 100) invalid('names must list 1 to 100 patterns');
  for (const n of k.names) text(n, 'a name pattern', 253);
  date(k.createdAt, 'createdAt');
  text(k.createdBy, 'createdBy', 256);
}

export function checkAcmeAccount(a: AcmeAccount): void {
  checkAcmeId(a.id);
  oneOf(a.status, ACCOUNT_STATUSES, 'status');
  text(a.jwk, 'jwk');
  text(a.thumbprint, 'thumbprint', 128);
  if (!Array.isArray(a.contact) || a.contact.length > 10) invalid('contact must list at most 10 URLs');
  for (const c of a.contact) text(c, 'a contact', 512);
  checkAcmeId(a.eabKid, 'eabKid');
  date(a.createdAt, 'createdAt');
}

export function checkAcmeAccountChange(c: { status?: string; jwk?: string; thumbprint?: string; contact?: string[] }): void {
  if (c.status !== undefined) oneOf(c.status, ACCOUNT_STATUSES, 'status');
  if ((c.jwk === undefined) !== (c.thumbprint === undefined)) invalid('jwk and thumbprint change together');
  if (c.jwk !== undefined) text(c.jwk, 'jwk');
  if (c.thumbprint !== undefined) text(c.thumbprint, 'thumbprint', 128);
  if (c.contact !== undefined) for (const x of c.contact) text(x, 'a contact', 512);
}

export function checkAcmeOrder(o: AcmeOrder, authorizations: AcmeAuthorization[]): void {
  checkAcmeId(o.id);
  checkAcmeId(o.accountId, 'accountId');
  oneOf(o.status, ORDER_STATUSES, 'order status');
  if (!Array.isArray(o.identifiers) || o.identifiers.length === 0 || o.identifiers.length > 100) invalid('an order names 1 to 100 identifiers');
  for (const i of o.identifiers) {
    oneOf(i.type, ['dns', 'ip'], 'identifier type');
    text(i.value, 'identifier value', 253);
  }
  date(o.expiresAt, 'expiresAt');
  date(o.createdAt, 'createdAt');
  const ids = new Set(authorizations.map((a) => a.id));
  if (o.authorizationIds.length !== authorizations.length || !o.authorizationIds.every((id) => ids.has(id))) {
    invalid('the order\'s authorizationIds must be exactly the authorizations given with it');
  }
  for (const a of authorizations) checkAcmeAuthorization(a, o);
}

function checkAcmeAuthorization(a: AcmeAuthorization, o: AcmeOrder): void {
  checkAcmeId(a.id);
  if (a.orderId !== o.id || a.accountId !== o.accountId) invalid('an authorization belongs to its order and account');
  oneOf(a.status, AUTHZ_STATUSES, 'authorization status');
  date(a.expiresAt, 'expiresAt');
  checkAcmeChallenges(a.challenges);
}

export function checkAcmeChallenges(challenges: AcmeChallenge[]): void {
  if (!Array.isArray(challenges) || challenges.length > 3) invalid('an authorization has at most 3 challenges');
  for (const c of challenges) {
    checkAcmeId(c.id, 'challenge id');
    oneOf(c.type, CHALLENGE_TYPES, 'challenge type');
    checkAcmeId(c.token, 'token');
    oneOf(c.status, CHALLENGE_STATUSES, 'challenge status');
  }
}

export function checkAcmeOrderStatus(s: unknown): void {
  oneOf(s, ORDER_STATUSES, 'order status');
}

export function checkAcmeAuthorizationStatus(s: unknown): void {
  oneOf(s, AUTHZ_STATUSES, 'authorization status');
}
