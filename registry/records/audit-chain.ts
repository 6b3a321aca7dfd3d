/**
 * The tamper-evident audit trail's hash chains (README "Verifying the audit trail", docs/audit-trail.md).
 *
 * Every registry instance that writes (one process, one role instance) keeps its own chain, named by
 * a chain id chosen when it opens: writers never wait on each other for a chain head, and no chain
 * ever forks, because only its own writer appends to it. Each event carries its chain id, a sequence
 * number within the chain (1, 2, ...), the hash of the chain's previous event (`prev`; 64 zeros for
 * the first) and its own hash:
 *
 *   hash = lowercase hex SHA-256( UTF-8( JCS( { id, at, type, actor, deviceId?, serialHex?, details?, chain, seq, prev } ) ) )
 *
 * JCS is the JSON Canonicalization Scheme of RFC 8785 (sorted keys by UTF-16 code units, no
 * whitespace, ECMAScript number and string serialisation); `at` is ISO 8601 UTC with milliseconds;
 * absent fields are left out (never null). That object is exactly the `event` of an exported line
 * (GET /api/v1/audit-events/export), so a third party recomputes every hash with any RFC 8785
 * implementation and `sha256sum`.
 *
 * The head of a chain is read inside the same write transaction as the event it links (an indexed
 * lookup), not kept in memory: a rolled-back savepoint of a group commit rolls the head back with it.
 *
 * Events written before the chains existed (SQLite databases before migration 13, MongoDB documents
 * without chain fields) form the virtual chain `legacy`: their links are not stored but computed in
 * id order with the same rule, and checkpoints sign its head like any other's.
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import canonicalizeModule from 'canonicalize';
import type { AuditChainLink, AuditEvent } from '../port.js';
import type { AuditEventValues } from './values.js';

// canonicalize 2.x is CommonJS (`module.exports = serialize`; 3.x and later need Node 22), and its
// typings declare an ESM default: under NodeNext the default import is module.exports itself.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** `prev` of a chain's first event. */
export const GENESIS_PREV = '0'.repeat(64);

/** The virtual chain of the events written before chaining (see above). */
export const LEGACY_CHAIN = 'legacy';

/** The event a checkpoint is (operations/audit): also a type of events out. */
export const CHECKPOINT_EVENT_TYPE = 'audit.checkpoint';

/**
 * A new chain id for a writer opening now: host, process id and 48 random bits, so chains of
 * different processes (and of two registries in one process) never collide and an auditor can
 * tell which process wrote what.
 */
export function newAuditChainId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/** The object whose RFC 8785 encoding is hashed: an exported line's `event`. */
export interface HashedAuditEvent {
  id: number;
  at: string;
  type: string;
  actor: string;
  deviceId?: string;
  serialHex?: string;
  details?: Record<string, unknown>;
  chain: string;
  seq: number;
  prev: string;
}

/** RFC 8785 JSON Canonicalization of a JSON value (erdtman/canonicalize, one of the RFC's listed implementations). */
export function jcs(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('the value has no JSON form');
  return text;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function hashOfHashedEvent(e: HashedAuditEvent): string {
  return sha256Hex(jcs(e));
}

/** The hashed form of an event as the port returns it, with its link (its `hash` is not part of it). */
export function hashedAuditEvent(e: Omit<AuditEvent, 'chain'>, link: Omit<AuditChainLink, 'hash'>): HashedAuditEvent {
  return {
    id: e.id, at: e.at.toISOString(), type: e.type, actor: e.actor,
    ...(e.deviceId !== undefined && { deviceId: e.deviceId }),
    ...(e.serialHex !== undefined && { serialHex: e.serialHex }),
    ...(e.details !== undefined && { details: e.details }),
    chain: link.chain, seq: link.seq, prev: link.prev,
  };
}

/**
 * The link of a new event with stored values `v` and id `id`, after the chain's head `head`
 * (undefined: the chain's first event). One JSON parse of the (small) details, one RFC 8785
 * encoding, one SHA-256: the whole cost on the issuance path.
 */
export function linkAuditEvent(id: number, v: AuditEventValues, chain: string, head: { seq: number; hash: string } | undefined): AuditChainLink {
  const seq = head === undefined ? 1 : head.seq + 1;
  const prev = head === undefined ? GENESIS_PREV : head.hash;
  const hashed: HashedAuditEvent = {
    id, at: new Date(v.at).toISOString(), type: v.type, actor: v.actor,
    ...(v.device_id !== null && { deviceId: v.device_id }),
    ...(v.serial_hex !== null && { serialHex: v.serial_hex }),
    ...(v.details !== null && { details: JSON.parse(v.details) as Record<string, unknown> }),
    chain, seq, prev,
  };
  return { chain, seq, prev, hash: hashOfHashedEvent(hashed) };
}
