/**
 * Runs the responder's re-signing work one batch at a time. Every batch reads the status it signs
 * when it starts and swaps its responses in when it ends, so batches never overtake each other: a
 * refresh that read `good` cannot land after the feed batch that stated `revoked`.
 * Feed batches (revocations) go before refresh, rollover and start-up batches; a batch is small
 * (DESIGN.md "The event loop"), so a revocation waits at most one batch.
 */
type Job = () => Promise<void>;

export class SigningQueue {
  readonly #urgent: Job[] = [];
  readonly #background: Job[] = [];
  #running = false;
  #idle: (() => void)[] = [];

  /** Runs `fn` after the queued work of its priority (urgent work first); resolves or rejects with it. */
  run<T>(fn: () => Promise<T>, priority: 'urgent' | 'background'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job: Job = () => fn().then(resolve, reject);
      (priority === 'urgent' ? this.#urgent : this.#background).push(job);
      if (!this.#running) void this.#drain();
    });
  }

  get pending(): number {
    return this.#urgent.length + this.#background.length + (this.#running ? 1 : 0);
  }

  /** Resolves once nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      for (;;) {
        const job = this.#urgent.shift() ?? this.#background.shift();
        if (job === undefined) break;
        await job();
        // Let I/O (the requests being served) run between batches.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.#running = false;
      const idle = this.#idle;
      this.#idle = [];
      for (const f of idle) f();
    }
  }
}
