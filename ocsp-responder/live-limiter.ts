/**
 * Admission for live signing (requests with a nonce, several CertIDs, another CertID shape, or a
 * certificate without a pre-signed response): at most `maxConcurrent` in flight and a token bucket
 * of `ratePerSecond` with a burst of `burst`. Over either limit the request gets `tryLater`
 * (RFC 6960 §2.3), so a flood of such requests cannot take the CPU the pre-signed path needs.
 */
export interface LiveLimits {
  /** Default 64. */
  maxConcurrent?: number;
  /** Tokens per second. Default 2000. */
  ratePerSecond?: number;
  /** Bucket size. Default ratePerSecond / 10 (at least 1). */
  burst?: number;
}

export class LiveLimiter {
  readonly maxConcurrent: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  #inFlight = 0;
  #tokens: number;
  #lastRefill: number;
  readonly #clock: () => number;

  constructor(limits: LiveLimits = {}, clock: () => number = () => performance.now()) {
    this.maxConcurrent = limits.maxConcurrent ?? 64;
    this.ratePerSecond = limits.ratePerSecond ?? 2000;
    this.burst = limits.burst ?? Math.max(1, Math.floor(this.ratePerSecond / 10));
    if (!Number.isInteger(this.maxConcurrent) || this.maxConcurrent < 1) throw new RangeError('maxConcurrent must be a positive integer');
    if (!(this.ratePerSecond > 0)) throw new RangeError('ratePerSecond must be positive');
    if (!(this.burst >= 1)) throw new RangeError('burst must be at least 1');
    this.#clock = clock;
    this.#tokens = this.burst;
    this.#lastRefill = clock();
  }

  /** Takes a slot and a token, or returns false (answer tryLater). Pair every true with release(). */
  tryAcquire(): boolean {
    if (this.#inFlight >= this.maxConcurrent) return false;
    const now = this.#clock();
    const elapsed = now - this.#lastRefill;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
      this.#lastRefill = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    this.#inFlight++;
    return true;
  }

  release(): void {
    if (this.#inFlight > 0) this.#inFlight--;
  }

  get inFlight(): number {
    return this.#inFlight;
  }
}
