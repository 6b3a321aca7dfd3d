/**
 * External account binding keys (RFC 8555 §7.3.4) and the names each may get.
 *
 * The HMAC key is never stored. It is derived from the pepper kept outside the database
 * (DESIGN.md "Storage": server-generated secrets of 128 bits or more live under the pepper):
 * HMAC-SHA-256(pepper, "kakuin acme eab v1" || 0x00 || kid). The operator is shown it once, at
 * `kakuin acme eab create`; newAccount re-derives it to verify the binding's MAC. A copied database
 * therefore holds nothing that makes a MAC, and losing the pepper invalidates every unused key
 * (as it does every token). Revoking a key is recorded (its kid then binds nothing).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { KakuinError } from '../../errors/index.js';
import type { AcmeEabKey, AcmeStore } from '../../registry/acme.js';
import type { NewAuditEvent } from '../../registry/port.js';

export type AuditSink = (event: NewAuditEvent) => Promise<unknown>;

export function eabHmacKey(pepper: Buffer, kid: string): Buffer {
  return createHmac('sha256', pepper).update('kakuin acme eab v1\0').update(kid, 'utf8').digest();
}

/** A DNS name as ACME identifiers carry it: lowercase LDH labels, at most 253 characters, at least two labels. */
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function isDnsName(name: string): boolean {
  if (name.length > 253) return false;
  const labels = name.split('.');
  return labels.length >= 2 && labels.every((l) => LABEL.test(l)) && !/^[0-9]+$/.test(labels[labels.length - 1]);
}

/**
 * A name pattern: a DNS name where `*` may stand inside one label for one or more letters, digits
 * or hyphens (`broker-*.example.internal`, `*.mqtt.example.internal`), or an IP address exactly.
 * A `*` never spans a dot, so `*.example.internal` does not allow `a.b.example.internal`.
 */
export function checkNamePattern(pattern: string): string {
  const p = pattern.trim().toLowerCase();
  if (isIP(p)) return p;
  const probe = p.replace(/\*/g, 'x');
  if (!isDnsName(probe) || /\*\*/.test(p)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `${JSON.stringify(pattern)} is not a name pattern: a DNS name with * inside a label (broker-*.example.internal) or an IP address`);
  }
  return p;
}

function patternRegExp(pattern: string): RegExp {
  const escaped = pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[a-z0-9-]+');
  return new RegExp(`^${escaped}$`);
}

/**
 * Whether one of the patterns allows `name`. A wildcard identifier (`*.example.internal`, RFC 8555
 * §7.1.3) is allowed only by a pattern that allows every name it covers: the same wildcard.
 */
export function nameAllowed(patterns: readonly string[], name: string): boolean {
  const n = name.toLowerCase();
  return patterns.some((p) => (n.startsWith('*.') ? p === n : patternRegExp(p).test(n)));
}

export interface CreatedEabKey {
  kid: string;
  /** base64url, as certbot's --eab-hmac-key and lego's --hmac take it. Shown once. */
  hmacKey: string;
  names: string[];
}

export async function createEabKey(
  store: AcmeStore, audit: AuditSink, pepper: Buffer, names: readonly string[], actor: string, now = new Date(),
): Promise<CreatedEabKey> {
  if (!Array.isArray(names) || names.length === 0 || names.length > 100 || !names.every((n) => typeof n === 'string')) throw new KakuinError('KAKUIN_E_VALIDATION', 'an EAB key needs 1 to 100 name patterns (--names)');
  const checked = [...new Set(names.map(checkNamePattern))];
  const kid = randomBytes(16).toString('base64url');
  await store.createEabKey({ kid, names: checked, createdAt: now, createdBy: actor });
  await audit({ type: 'acme.eab.created', actor, details: { kid, names: checked } });
  return { kid, hmacKey: eabHmacKey(pepper, kid).toString('base64url'), names: checked };
}

/** Revokes a key: it binds no new account, and its account may order nothing more. */
export async function revokeEabKey(store: AcmeStore, audit: AuditSink, kid: string, actor: string, now = new Date()): Promise<AcmeEabKey> {
  const key = await store.eabKey(kid);
  if (key === undefined) throw new KakuinError('KAKUIN_E_ACME_EAB_NOT_FOUND', `no EAB key ${JSON.stringify(kid)}`);
  if (await store.revokeEabKey(kid, now)) await audit({ type: 'acme.eab.revoked', actor, details: { kid, accountId: key.accountId } });
  return (await store.eabKey(kid))!;
}

/** What an EAB key looks like in lists (never a key). */
export function eabKeyJson(k: AcmeEabKey) {
  return {
    kid: k.kid, names: k.names, createdAt: k.createdAt.toISOString(), createdBy: k.createdBy,
    ...(k.revokedAt !== undefined && { revokedAt: k.revokedAt.toISOString() }), ...(k.accountId !== undefined && { accountId: k.accountId }),
  };
}
