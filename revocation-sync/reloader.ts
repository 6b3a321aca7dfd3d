/**
 * At most one reload per `minIntervalMs`, and the first change after a quiet period reloads at
 * once (leading edge); changes during the interval are folded into one reload at its end. nginx
 * re-parses the whole CRL file on every reload, so a burst of revocations must not mean a burst of
 * reloads; a single stolen device must not wait a minute either.
 */
export class Reloader {
  private last = -Infinity;
  private running = false;
  private pending = false;
  private timer?: NodeJS.Timeout;
  reloads = 0;
  failures = 0;

  constructor(
    private readonly minIntervalMs: number,
    private readonly action: () => Promise<void>,
    private readonly onError: (e: unknown) => void,
    private readonly clock: () => number = Date.now,
  ) {}

  request(): void {
    if (this.running || this.timer) {
      this.pending = true;
      return;
    }
    const wait = this.last + this.minIntervalMs - this.clock();
    if (wait <= 0) void this.run();
    else {
      this.timer = setTimeout(() => { this.timer = undefined; void this.run(); }, wait);
      this.timer.unref();
    }
  }

  private async run(): Promise<void> {
    this.running = true;
    this.pending = false;
    this.last = this.clock();
    try {
      await this.action();
      this.reloads++;
    } catch (e) {
      this.failures++;
      this.onError(e);
    } finally {
      this.running = false;
    }
    if (this.pending) this.request();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = false;
  }
}
