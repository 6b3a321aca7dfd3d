/**
 * Writes an audit checkpoint (checkpoint.ts) every `every` audit events and at least every
 * `minutes` while anything was written, in the process that writes the registry. It polls the
 * chain heads (one small read: the heads table) — nothing is added to the write path.
 * Several writing processes may each run one: every checkpoint signs the heads of all chains.
 */
import type { AuditChainHead, AuditEvent, AuditQuery, NewAuditEvent } from '../../registry/port.js';
import { GENESIS_PREV, LEGACY_CHAIN, hashOfHashedEvent, hashedAuditEvent } from '../../registry/records/index.js';
import { signCheckpoint, type AuditSigningIdentity } from './checkpoint.js';

export interface CheckpointRegistry {
  appendAuditEvent(event: NewAuditEvent): Promise<AuditEvent>;
  listAuditEvents(query: AuditQuery): Promise<AuditEvent[]>;
  auditChainHeads(): Promise<AuditChainHead[]>;
}

export interface AuditCheckpointerOptions {
  registry: CheckpointRegistry;
  /** The audit signer; asked for at the first checkpoint (issuing its certificate may write), then kept. */
  identity: () => Promise<AuditSigningIdentity>;
  /** audit.checkpointEvery */
  every: number;
  /** audit.checkpointMinutes */
  minutes: number;
  pollMs?: number;
  /** Who the checkpoint event names: `system` (serve) or `cli` (`kakuin audit checkpoint`). */
  actor?: string;
  /**
   * Between reading the heads twice (ms): an event whose id was taken before the first read but
   * whose transaction committed after it (MongoDB assigns ids inside transactions) is in the second.
   * The checkpoint covers ids up to the first read's newest (CheckpointStatement.coveredThrough). Default 1000.
   */
  settleMs?: number;
  onError?: (error: unknown) => void;
  now?: () => number;
}

/**
 * The head of the virtual `legacy` chain (events written before chaining, registry/records/audit-chain.ts),
 * or undefined when there are none. They all come before the first chained event, so the walk
 * stops at the first page holding one.
 */
export async function legacyChainHead(registry: Pick<CheckpointRegistry, 'listAuditEvents'>, pageSize = 1000): Promise<AuditChainHead | undefined> {
  let head: AuditChainHead | undefined;
  let after = 0;
  for (;;) {
    const page = await registry.listAuditEvents({ afterId: after, limit: pageSize });
    for (const e of page) {
      if (e.chain !== undefined) return head;
      const seq = (head?.seq ?? 0) + 1;
      const prev = head?.hash ?? GENESIS_PREV;
      head = { chain: LEGACY_CHAIN, seq, hash: hashOfHashedEvent(hashedAuditEvent(e, { chain: LEGACY_CHAIN, seq, prev })), eventId: e.id };
    }
    if (page.length < pageSize) return head;
    after = page[page.length - 1].id;
  }
}

export class AuditCheckpointer {
  /** Checkpoints written by this process. */
  written = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private legacy: { head: AuditChainHead | undefined } | undefined;
  private identity: Promise<AuditSigningIdentity> | undefined;
  /** Total chained events (sum of seqs) at the last checkpoint, and when it was. */
  private lastTotal = -1;
  private lastAt: number;
  private readonly now: () => number;

  constructor(private readonly o: AuditCheckpointerOptions) {
    this.now = o.now ?? Date.now;
    this.lastAt = this.now();
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => { void this.tick(); }, this.o.pollMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Checks whether a checkpoint is due and writes it. Never runs twice at once. */
  async tick(): Promise<AuditEvent | undefined> {
    if (this.running) return undefined;
    const run = this.due().then((heads) => (heads ? this.write(heads) : undefined)).catch((e: unknown) => { this.o.onError?.(e); return undefined; });
    this.running = run;
    try {
      return await run;
    } finally {
      this.running = undefined;
    }
  }

  /** Writes a checkpoint now (`kakuin audit checkpoint`, tests). */
  async checkpoint(): Promise<AuditEvent> {
    return this.write(await this.o.registry.auditChainHeads());
  }

  private async due(): Promise<AuditChainHead[] | undefined> {
    const heads = await this.o.registry.auditChainHeads();
    const total = heads.reduce((n, h) => n + h.seq, 0);
    if (this.lastTotal < 0) {
      // First look after start: the baseline. What earlier processes wrote after their last
      // checkpoint is in the heads the next one signs.
      this.lastTotal = total;
      return undefined;
    }
    const since = total - this.lastTotal;
    if (since >= this.o.every) return heads;
    if (since > 0 && this.now() - this.lastAt >= this.o.minutes * 60_000) return heads;
    return undefined;
  }

  private async legacyHead(): Promise<AuditChainHead | undefined> {
    // Events before chaining never change (every writer chains now): computed once per process.
    this.legacy ??= { head: await legacyChainHead(this.o.registry) };
    return this.legacy.head;
  }

  private async write(first: AuditChainHead[]): Promise<AuditEvent> {
    const legacy = await this.legacyHead();
    const coveredThrough = Math.max(0, legacy?.eventId ?? 0, ...first.map((h) => h.eventId));
    const settle = this.o.settleMs ?? 1000;
    if (settle > 0) await new Promise((resolve) => setTimeout(resolve, settle));
    const heads = settle > 0 ? await this.o.registry.auditChainHeads() : first;
    const at = new Date(this.now());
    this.identity ??= this.o.identity().catch((e: unknown) => { this.identity = undefined; throw e; });
    const event = await this.o.registry.appendAuditEvent(await signCheckpoint(await this.identity, legacy ? [legacy, ...heads] : heads, coveredThrough, at, this.o.actor ?? 'system'));
    this.written++;
    // The checkpoint event itself is one more in its chain.
    this.lastTotal = heads.reduce((n, h) => n + h.seq, 0) + 1;
    this.lastAt = at.getTime();
    return event;
  }
}
