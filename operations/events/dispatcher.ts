/**
 * Sends the audit trail out to one destination, in order, at least once (README "Events").
 *
 * The destination's cursor (registry/event-cursors.ts) names the last audit event id it has taken.
 * The dispatcher reads the audit events after it (pages of `pageSize`, ascending id), skips those
 * whose type does not go out or that the destination's filter leaves out, delivers the others one
 * at a time, and saves the cursor every `saveEveryMs` or `saveEveryEvents` deliveries, whichever
 * comes first, and whenever it goes idle. A crash therefore re-sends at most what was delivered in
 * the last `saveEveryMs`, and never more than `saveEveryEvents` (the receiver drops a
 * duplicate by its X-Kakuin-Event-Id) and never skips an event. A failed delivery is retried with
 * exponential backoff for as long as it takes: events behind it wait, so their order holds.
 *
 * A destination added to a running fleet starts at the newest audit event (it does not replay
 * years of history); its cursor is saved at once, so what happens after its first start is sent.
 */
import type { AuditEvent } from '../../registry/port.js';
import type { EventCursorStore } from '../../registry/event-cursors.js';
import { eventFromAudit, type EventType, type KakuinEvent } from './event.js';

export interface EventDestination {
  /** Names the cursor: kind and URL (`webhook:https://...`). */
  readonly name: string;
  deliver(event: KakuinEvent): Promise<void>;
  close(): void;
}

export interface EventDispatcherOptions {
  audit: { listAuditEvents(query: { afterId: number; limit: number }): Promise<AuditEvent[]> };
  cursors: EventCursorStore;
  destination: EventDestination;
  filter: (type: EventType) => boolean;
  /** How often the audit trail is read when there is nothing to send (ms). */
  pollMs?: number;
  /** The cursor is saved at most this often while delivering (ms); also on idle and at stop. */
  saveEveryMs?: number;
  /** …and after this many deliveries at the latest, so a crash re-sends at most this many. */
  saveEveryEvents?: number;
  backoff?: { initialMs: number; maxMs: number };
  pageSize?: number;
  /** Each failed attempt (logged by the caller as KAKUIN_E_EVENT_DELIVERY). */
  onDeliveryError?: (error: unknown, event: KakuinEvent, attempt: number, retryInMs: number) => void;
  /** Reading the audit trail or saving the cursor failed; retried at the next poll. */
  onStoreError?: (error: unknown) => void;
  now?: () => number;
}

export class EventDispatcher {
  delivered = 0;
  private cursor: number | undefined;
  private savedCursor: number | undefined;
  private lastSave = 0;
  private sinceSave = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private readonly now: () => number;

  constructor(private readonly o: EventDispatcherOptions) {
    this.now = o.now ?? Date.now;
  }

  get name(): string {
    return this.o.destination.name;
  }

  /** The last audit event id delivered (or skipped) in this process; undefined before start. */
  position(): number | undefined {
    return this.cursor;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Read the audit trail now instead of at the next poll (a status change just committed). */
  wake(): void {
    this.wakeUp?.();
  }

  /** Stops after the delivery in progress (a retry wait ends at once) and saves the cursor. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    await this.loop;
    this.o.destination.close();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    }).then(() => { this.wakeUp = undefined; });
  }

  private async save(force: boolean): Promise<void> {
    if (this.cursor === undefined || this.cursor === this.savedCursor) return;
    if (!force && this.now() - this.lastSave < (this.o.saveEveryMs ?? 1000) && this.sinceSave < (this.o.saveEveryEvents ?? 100)) return;
    const at = this.cursor;
    await this.o.cursors.saveEventCursor(this.name, at);
    this.savedCursor = at;
    this.lastSave = this.now();
    this.sinceSave = 0;
  }

  private async run(): Promise<void> {
    const pollMs = this.o.pollMs ?? 500;
    while (!this.stopped) {
      try {
        if (this.cursor === undefined) {
          const saved = await this.o.cursors.readEventCursor(this.name);
          if (saved === undefined) {
            this.cursor = await this.o.cursors.latestAuditEventId();
            await this.save(true);
          } else {
            this.cursor = this.savedCursor = saved;
            this.lastSave = this.now();
          }
        }
        const page = await this.o.audit.listAuditEvents({ afterId: this.cursor, limit: this.o.pageSize ?? 500 });
        for (const a of page) {
          const event = eventFromAudit(a);
          if (event !== undefined && this.o.filter(event.type)) {
            if (!(await this.deliverUntilTaken(event))) break;
            this.delivered++;
            this.sinceSave++;
          }
          this.cursor = a.id;
          await this.save(false);
        }
        if (page.length === 0) {
          await this.save(true);
          if (!this.stopped) await this.sleep(pollMs);
        }
      } catch (e) {
        this.o.onStoreError?.(e);
        if (!this.stopped) await this.sleep(pollMs);
      }
    }
    try {
      await this.save(true);
    } catch (e) {
      this.o.onStoreError?.(e);
    }
  }

  /** True once delivered; false when stopped first (the event stays after the cursor). */
  private async deliverUntilTaken(event: KakuinEvent): Promise<boolean> {
    const { initialMs, maxMs } = this.o.backoff ?? { initialMs: 1000, maxMs: 60_000 };
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.o.destination.deliver(event);
        return true;
      } catch (e) {
        const wait = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 30));
        this.o.onDeliveryError?.(e, event, attempt, wait);
        // While it waits, the cursor saved is the last event actually taken.
        await this.save(true).catch((s: unknown) => this.o.onStoreError?.(s));
        await this.sleep(wait);
      }
    }
    return false;
  }
}
