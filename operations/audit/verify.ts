/**
 * `kakuin audit verify` and the export's third-party check (docs/audit-trail.md): walks the trail
 * in id order, recomputes every event's hash, follows every chain's seq and prev, checks every
 * checkpoint's signature and certificate chain, and that every head a checkpoint signed (stored
 * ones and those collected off-host) is in the trail with that hash. It names the first bad event.
 *
 * Two passes, so memory stays small however long the trail: the checkpoints first (one indexed
 * query by type), then every event once, comparing each against the heads expected at its place.
 */
import type { X509Certificate } from 'node:crypto';
import {
  CHECKPOINT_EVENT_TYPE, GENESIS_PREV, LEGACY_CHAIN, hashOfHashedEvent, hashedAuditEvent,
} from '../../registry/records/index.js';
import type { AuditChainHead, AuditEvent, AuditQuery } from '../../registry/port.js';
import { checkpointProblem, type CheckpointDetails } from './checkpoint.js';

/** The stable reasons (errors/index.ts KAKUIN_E_AUDIT_*; exit code of `kakuin audit verify`). */
export type AuditProblemCode =
  | 'KAKUIN_E_AUDIT_EVENT_ALTERED'
  | 'KAKUIN_E_AUDIT_EVENT_MISSING'
  | 'KAKUIN_E_AUDIT_EVENT_REORDERED'
  | 'KAKUIN_E_AUDIT_EVENT_INSERTED'
  | 'KAKUIN_E_AUDIT_TAIL_MISSING'
  | 'KAKUIN_E_AUDIT_CHECKPOINT_INVALID';

export interface AuditProblem {
  code: AuditProblemCode;
  /** The first bad event (or the checkpoint naming a missing tail). */
  eventId?: number;
  chain?: string;
  seq?: number;
  message: string;
}

export interface AuditVerification {
  ok: boolean;
  events: number;
  chains: number;
  /** Checkpoints whose signature and certificate chain verified (stored and off-host). */
  checkpoints: number;
  /** The first problem (lowest event id) — verification stops at it. */
  problem?: AuditProblem;
}

export interface AuditTrailSource {
  listAuditEvents(query: AuditQuery): Promise<AuditEvent[]>;
}

/** A checkpoint from somewhere: the trail (with its event id) or a file collected off-host. */
export interface CheckpointCopy {
  details: unknown;
  eventId?: number;
  /** Where it came from, for messages: `event 12`, `checkpoints.ndjson line 3`. */
  source: string;
}

export interface VerifyOptions {
  roots: readonly X509Certificate[];
  /** Verify from the first event at or after this time; chains are taken up at their first event seen. */
  since?: Date;
  /** Checkpoints collected off-host (events out). */
  offHost?: CheckpointCopy[];
  pageSize?: number;
}

async function* allEvents(source: AuditTrailSource, query: Omit<AuditQuery, 'afterId' | 'limit'>, afterId: number, pageSize: number) {
  let after = afterId;
  for (;;) {
    const page = await source.listAuditEvents({ ...query, afterId: after, limit: pageSize });
    for (const e of page) yield e;
    if (page.length < pageSize) return;
    after = page[page.length - 1].id;
  }
}

interface Expectation { seq: number; hash: string; source: string; eventId?: number }

export async function verifyAuditTrail(source: AuditTrailSource, options: VerifyOptions): Promise<AuditVerification> {
  const pageSize = options.pageSize ?? 1000;
  let startAfter = 0;
  if (options.since !== undefined) {
    const [first] = await source.listAuditEvents({ since: options.since, limit: 1 });
    startAfter = first === undefined ? Number.MAX_SAFE_INTEGER : first.id - 1;
  }
  const problems: AuditProblem[] = [];
  // Pass 1: the checkpoints, stored and off-host. Each valid one adds the heads it signed as expectations.
  const copies: CheckpointCopy[] = [...(options.offHost ?? [])];
  for await (const e of allEvents(source, { type: CHECKPOINT_EVENT_TYPE }, startAfter, pageSize)) {
    copies.push({ details: e.details, eventId: e.id, source: `event ${e.id}` });
  }
  const expected = new Map<string, Expectation[]>();
  const coverage: { through: number; heads: Map<string, number>; source: string }[] = [];
  let checkpoints = 0;
  for (const c of copies) {
    const why = checkpointProblem(c.details, options.roots);
    if (why !== undefined) {
      problems.push({ code: 'KAKUIN_E_AUDIT_CHECKPOINT_INVALID', eventId: c.eventId, message: `checkpoint (${c.source}): ${why}` });
      continue;
    }
    checkpoints++;
    const statement = (c.details as CheckpointDetails).statement;
    coverage.push({ through: statement.coveredThrough, heads: new Map(statement.heads.map((h) => [h.chain, h.seq])), source: c.source });
    for (const h of statement.heads) {
      const list = expected.get(h.chain) ?? [];
      list.push({ seq: h.seq, hash: h.hash, source: c.source, eventId: c.eventId });
      expected.set(h.chain, list);
    }
  }
  for (const list of expected.values()) list.sort((a, b) => a.seq - b.seq);
  coverage.sort((a, b) => a.through - b.through);
  let covering = 0;

  // Pass 2: every event once.
  const heads = new Map<string, { seq: number; hash: string; eventId: number }>();
  let events = 0;
  let sawChained = false;
  const partial = options.since !== undefined;
  const iterator = allEvents(source, {}, startAfter, pageSize);
  let broken: AuditProblem | undefined;
  for await (const e of iterator) {
    events++;
    let link = e.chain;
    if (link === undefined) {
      // The virtual legacy chain: only before the first chained event (docs/audit-trail.md).
      if (sawChained) {
        broken = { code: 'KAKUIN_E_AUDIT_EVENT_INSERTED', eventId: e.id, message: `event ${e.id} has no chain link but follows chained events: inserted` };
        break;
      }
      const head = heads.get(LEGACY_CHAIN);
      const seq = (head?.seq ?? 0) + 1;
      const prev = head?.hash ?? GENESIS_PREV;
      link = { chain: LEGACY_CHAIN, seq, prev, hash: hashOfHashedEvent(hashedAuditEvent(e, { chain: LEGACY_CHAIN, seq, prev })) };
    } else {
      sawChained = true;
      if (link.chain === LEGACY_CHAIN) {
        broken = { code: 'KAKUIN_E_AUDIT_EVENT_INSERTED', eventId: e.id, chain: link.chain, message: `event ${e.id} claims the virtual chain ${LEGACY_CHAIN}` };
        break;
      }
    }
    const head = heads.get(link.chain);
    const takeUp = head === undefined && partial;
    const expectedSeq = head === undefined ? 1 : head.seq + 1;
    if (!takeUp && link.seq !== expectedSeq) {
      broken = await classifyGap(e, link.chain, expectedSeq, link.seq, iterator);
      break;
    }
    if (!takeUp && link.prev !== (head?.hash ?? GENESIS_PREV)) {
      broken = { code: 'KAKUIN_E_AUDIT_EVENT_INSERTED', eventId: e.id, chain: link.chain, seq: link.seq,
        message: `event ${e.id} (chain ${link.chain}, seq ${link.seq}) does not follow the chain's previous event (prev hash differs): inserted or replaced` };
      break;
    }
    const hash = hashOfHashedEvent(hashedAuditEvent(e, link));
    if (hash !== link.hash) {
      broken = { code: 'KAKUIN_E_AUDIT_EVENT_ALTERED', eventId: e.id, chain: link.chain, seq: link.seq,
        message: `event ${e.id} (chain ${link.chain}, seq ${link.seq}) does not match its hash: altered` };
      break;
    }
    // The first checkpoint whose coverage reaches this id must list the event's chain at or past it.
    while (covering < coverage.length && coverage[covering].through < e.id) covering++;
    const cover = coverage[covering];
    if (cover !== undefined && !(link.seq <= (cover.heads.get(link.chain) ?? 0))) {
      broken = { code: 'KAKUIN_E_AUDIT_EVENT_INSERTED', eventId: e.id, chain: link.chain, seq: link.seq,
        message: `event ${e.id} (chain ${link.chain}, seq ${link.seq}) is not covered by checkpoint ${cover.source}, which covers every event up to id ${cover.through}: inserted` };
      break;
    }
    heads.set(link.chain, { seq: link.seq, hash, eventId: e.id });
    // A checkpoint signed this place of the chain: it must be this very event.
    const waiting = expected.get(link.chain);
    while (waiting !== undefined && waiting.length > 0 && waiting[0].seq <= link.seq) {
      const x = waiting.shift()!;
      if (x.seq === link.seq && x.hash !== hash) {
        broken = { code: 'KAKUIN_E_AUDIT_EVENT_ALTERED', eventId: e.id, chain: link.chain, seq: link.seq,
          message: `event ${e.id} (chain ${link.chain}, seq ${link.seq}) is not the event checkpoint ${x.source} signed: replaced` };
        break;
      }
    }
    if (broken) break;
  }
  if (broken === undefined) {
    // Heads signed by a checkpoint but never reached: the chain's tail was deleted.
    for (const [chain, list] of expected) {
      const have = heads.get(chain);
      const missing = list.find((x) => x.seq > (have?.seq ?? 0));
      if (missing === undefined) continue;
      if (partial && have === undefined) continue;
      problems.push({
        code: 'KAKUIN_E_AUDIT_TAIL_MISSING', eventId: missing.eventId, chain, seq: (have?.seq ?? 0) + 1,
        message: `chain ${chain} ends at seq ${have?.seq ?? 0}, but checkpoint ${missing.source} signed its head at seq ${missing.seq}: events after seq ${have?.seq ?? 0} were deleted`
          + (have === undefined ? '' : ` (its last event left is event ${have.eventId})`),
      });
    }
  }
  // The first bad event, by id; a missing tail (no event left to name) after them.
  if (broken) problems.push(broken);
  problems.sort((a, b) => (a.eventId ?? Number.MAX_SAFE_INTEGER) - (b.eventId ?? Number.MAX_SAFE_INTEGER));
  return { ok: problems.length === 0, events, chains: heads.size, checkpoints, ...(problems[0] !== undefined && { problem: problems[0] }) };
}

/**
 * A chain's seq jumped from `expectedSeq` to `found` at event `e`: the events between were
 * deleted — unless the expected one appears later in the trail, which is a reordering.
 */
async function classifyGap(e: AuditEvent, chain: string, expectedSeq: number, found: number, rest: AsyncGenerator<AuditEvent>): Promise<AuditProblem> {
  if (found < expectedSeq) {
    return { code: 'KAKUIN_E_AUDIT_EVENT_REORDERED', eventId: e.id, chain, seq: found,
      message: `event ${e.id} (chain ${chain}) has seq ${found} after seq ${expectedSeq - 1}: reordered or duplicated` };
  }
  for await (const later of rest) {
    if (later.chain?.chain === chain && later.chain.seq === expectedSeq) {
      return { code: 'KAKUIN_E_AUDIT_EVENT_REORDERED', eventId: e.id, chain, seq: found,
        message: `event ${e.id} (chain ${chain}) has seq ${found} but seq ${expectedSeq} comes later, as event ${later.id}: reordered` };
    }
  }
  return { code: 'KAKUIN_E_AUDIT_EVENT_MISSING', eventId: e.id, chain, seq: expectedSeq,
    message: `chain ${chain} jumps from seq ${expectedSeq - 1} to seq ${found} at event ${e.id}: ${found - expectedSeq} event(s) before it were deleted` };
}
