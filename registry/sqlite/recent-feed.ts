/**
 * The newest revocation-feed entries this connection has read, so the several followers of one
 * process (OCSP responder, CRL publisher, gateway, legacy kill switch: each polls the feed on its
 * own) read each entry from SQLite once, not once each. At enrollment rates every issuance adds
 * two entries, and four followers reading every one of them cost as much as the PoP check's key load.
 *
 * The cache is one contiguous run (from, to]: it holds every entry with a seq in that range. That
 * holds because SQLite has one writer at a time: a transaction that took seq s has committed before
 * any later one takes a larger seq, so a read that returns entries up to seq t has seen all of them
 * up to t. A read after `to` continues the run from `to`; a read before `from` goes to SQLite and
 * starts a new run. Entries are frozen: every caller gets the same objects.
 */
import type { FeedEntry } from '../port.js';

export class RecentFeedEntries {
  #entries: FeedEntry[] = [];
  #from = -1;
  #to = -1;

  /** `max`: entries kept (the oldest go first). */
  constructor(private readonly max = 20_000) {}

  /** Entries with seq > `after`, at most `limit`, in seq order; `fetch` reads SQLite (seq > its after, ascending, at most its limit). */
  read(after: number, limit: number, fetch: (after: number, limit: number) => FeedEntry[]): FeedEntry[] {
    if (after < this.#from || after > this.#to) {
      const fresh = fetch(after, limit).map((e) => Object.freeze(e));
      this.#entries = fresh.slice(); // the caller's array is the caller's
      this.#from = after;
      this.#to = fresh.length > 0 ? fresh[fresh.length - 1].seq : after;
      this.#trim();
      return fresh;
    }
    const start = this.#firstAfter(after);
    const cached = this.#entries.slice(start, start + limit);
    if (cached.length === limit) return cached;
    const more = fetch(this.#to, limit - cached.length).map((e) => Object.freeze(e));
    if (more.length === 0) return cached;
    for (const e of more) this.#entries.push(e);
    this.#to = more[more.length - 1].seq;
    this.#trim();
    return cached.length === 0 ? more : cached.concat(more);
  }

  /** Index of the first cached entry with seq > after (binary search; seqs ascend). */
  #firstAfter(after: number): number {
    let lo = 0;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#entries[mid].seq <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #trim(): void {
    const extra = this.#entries.length - this.max;
    if (extra <= 0) return;
    this.#from = this.#entries[extra - 1].seq;
    this.#entries = this.#entries.slice(extra);
  }
}
