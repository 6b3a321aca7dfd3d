/**
 * Durable supersession (enrollment.overlapHours > 0, and station certificate rotation with an
 * overlap): the certificate to revoke later is a row in the registry (scheduleSupersede), not a
 * timer, so a restart loses nothing. The sweeper revokes due rows as `superseded` when it starts,
 * every `intervalMs`, and at the moment a row this process scheduled falls due.
 *
 * Several processes may sweep one registry: revoking is a guarded status change, so the second
 * revocation of a certificate is refused (KAKUIN_E_CERTIFICATE_STATE) and simply cleared.
 */
import type { Registry } from '../registry/port.js';
import { hasCode } from '../errors/index.js';
import type { RevocationService } from '../ca/revocation.js';

export interface SupersedeSweeperOptions {
  intervalMs: number;
  clock?: () => Date;
  onError?: (e: unknown) => void;
}

export class SupersedeSweeper {
  private interval: NodeJS.Timeout | undefined;
  private readonly wakeups = new Set<NodeJS.Timeout>();
  private running: Promise<number> | undefined;
  private closed = false;

  constructor(private readonly registry: Registry, private readonly revocation: RevocationService, private readonly options: SupersedeSweeperOptions) {}

  /** Sweeps now (rows that fell due while no process ran), then on the interval. */
  start(): void {
    if (this.interval || this.closed) return;
    this.kick();
    this.interval = setInterval(() => this.kick(), this.options.intervalMs);
    this.interval.unref();
  }

  /** A row this process scheduled: sweep when it falls due rather than at the next interval. */
  wakeAt(at: Date): void {
    if (this.closed) return;
    const delay = Math.max(0, at.getTime() - this.now().getTime()) + 50;
    // Beyond the interval the periodic sweep gets it anyway (and setTimeout caps at ~24.8 days).
    if (delay > this.options.intervalMs) return;
    const t = setTimeout(() => {
      this.wakeups.delete(t);
      this.kick();
    }, delay);
    t.unref();
    this.wakeups.add(t);
  }

  /** Revokes every due row; returns how many certificates it revoked. One sweep at a time. */
  async sweep(): Promise<number> {
    while (this.running) await this.running.catch(() => undefined);
    this.running = this.sweepOnce();
    try {
      return await this.running;
    } finally {
      this.running = undefined;
    }
  }

  close(): void {
    this.closed = true;
    if (this.interval) clearInterval(this.interval);
    for (const t of this.wakeups) clearTimeout(t);
    this.wakeups.clear();
  }

  private kick(): void {
    if (this.closed) return;
    this.sweep().catch((e) => this.options.onError?.(e));
  }

  private async sweepOnce(): Promise<number> {
    let revoked = 0;
    for (;;) {
      const due = await this.registry.listDueSupersedes(this.now(), 100);
      if (due.length === 0 || this.closed) return revoked;
      const done: string[] = [];
      for (const p of due) {
        try {
          await this.revocation.revokeCertificate(p.serialHex, { reason: 'superseded' }, p.actor);
          revoked++;
        } catch (e) {
          // Revoked meanwhile (an operator, another sweeper) or gone: nothing left to do for this row.
          if (!hasCode(e, 'KAKUIN_E_CERTIFICATE_STATE') && !hasCode(e, 'KAKUIN_E_CERTIFICATE_NOT_FOUND')) {
            await this.registry.clearSupersedes(done);
            throw e;
          }
        }
        done.push(p.serialHex);
      }
      await this.registry.clearSupersedes(done);
    }
  }

  private now(): Date {
    return (this.options.clock ?? (() => new Date()))();
  }
}
