/**
 * Anti-replay nonces (RFC 8555 §6.5): each is good for one request. Kept in this process's
 * memory, oldest dropped first past `capacity`; a nonce from another process or from before a
 * restart is refused with badNonce, which every ACME client answers by retrying with the fresh
 * nonce the refusal carries (§6.5: "the client SHOULD retry").
 */
import { randomBytes } from 'node:crypto';

export class NonceStore {
  private readonly issued = new Map<string, number>();

  constructor(private readonly lifetimeMs = 3600_000, private readonly capacity = 100_000, private readonly clock: () => number = Date.now) {}

  issue(): string {
    const nonce = randomBytes(16).toString('base64url');
    if (this.issued.size >= this.capacity) {
      const oldest = this.issued.keys().next().value;
      if (oldest !== undefined) this.issued.delete(oldest);
    }
    this.issued.set(nonce, this.clock() + this.lifetimeMs);
    return nonce;
  }

  /** True once for a nonce this store issued and that has not expired; false for anything else. */
  consume(nonce: unknown): boolean {
    if (typeof nonce !== 'string') return false;
    const expires = this.issued.get(nonce);
    if (expires === undefined) return false;
    this.issued.delete(nonce);
    return expires > this.clock();
  }
}
