/**
 * The encoded revokedCertificates of each issuer's full CRL, kept in memory (in the CRL worker
 * thread) between builds, so a change costs its own entries plus one re-sign instead of a walk of
 * every revoked certificate (issue 17: a full CRL lists a revocation within seconds at 1M entries).
 *
 * After one walk of the registry at feed seq S, a build at seq S' asks the registry only for the
 * certificates changed after S (the delta query, served by an index) and appends the new ones.
 * Entries are never rewritten in place: a change to an entry already listed (a held certificate
 * released or revoked for good) makes the next build walk the registry again — rare, and correct by
 * construction. Every serial appended since the walk, and every held one, is remembered, so a change
 * seen twice (the delta query may return rows committed after S') is appended once.
 */
import { RevokedEntriesWriter } from '../../pkix/index.js';
import type { CertificateStatusRow, Registry } from '../../registry/port.js';

type Listed = 'revoked' | 'held';
type CrlRows = Pick<Registry, 'forEachCrlEntry' | 'latestFeedSeq'>;

interface IssuerEntries {
  /** Every change up to this feed seq is in `writer`. */
  feedSeq: number;
  writer: RevokedEntriesWriter;
  /** Held serials (they may change again) and serials appended since the walk (seen-twice guard). */
  recent: Map<string, Listed>;
}

export interface FullEntries {
  entries: Buffer;
  count: number;
  /** 'walk': every revoked row read; 'append': only the changes since the previous build. */
  mode: 'walk' | 'append';
  /** Entries encoded by this build. */
  encoded: number;
}

export class FullCrlEntries {
  private readonly issuers = new Map<string, IssuerEntries>();

  /**
   * The entries of `issuerId`'s full CRL reflecting at least every change up to `feedSeq` (read by
   * the caller before this call). `walk` forces a walk of the registry (the periodic rebuild).
   */
  async entries(registry: CrlRows, issuerId: string, feedSeq: number, thisUpdateMs: number, walk = false): Promise<FullEntries> {
    const kept = this.issuers.get(issuerId);
    if (kept && !walk && kept.feedSeq <= feedSeq) {
      const appended = await this.append(registry, issuerId, kept, feedSeq, thisUpdateMs);
      if (appended !== undefined) return { entries: kept.writer.view(), count: kept.writer.count, mode: 'append', encoded: appended };
    }
    this.issuers.delete(issuerId);
    const writer = new RevokedEntriesWriter();
    const recent = new Map<string, Listed>();
    await registry.forEachCrlEntry(issuerId, {}, (serialHex, status, revokedAtMs, reason, invalidityDateMs) => {
      if (status === 'held') recent.set(serialHex, 'held');
      addEntry(writer, serialHex, status, revokedAtMs, reason, invalidityDateMs, thisUpdateMs);
    });
    // Keep the walk only when no CRL change committed while it ran: a row changed after `feedSeq`
    // may or may not be in it, and the next append could not tell. Issuance also moves the feed (a
    // factory line: thousands a second) but lists nothing, so the CRL rows after `feedSeq` decide.
    let keep = (await registry.latestFeedSeq()) === feedSeq;
    if (!keep) {
      let changed = 0;
      await registry.forEachCrlEntry(issuerId, { changedAfterSeq: feedSeq }, () => { changed++; });
      keep = changed === 0;
    }
    if (keep) this.issuers.set(issuerId, { feedSeq, writer, recent });
    return { entries: writer.view(), count: writer.count, mode: 'walk', encoded: writer.count };
  }

  /** Appends the changes after `kept.feedSeq`; undefined when a listed entry changed (walk instead). */
  private async append(registry: CrlRows, issuerId: string, kept: IssuerEntries, feedSeq: number, thisUpdateMs: number): Promise<number | undefined> {
    const changes: Parameters<CertificateStatusRow>[] = [];
    await registry.forEachCrlEntry(issuerId, { changedAfterSeq: kept.feedSeq }, (...row) => { changes.push(row); });
    for (const [serialHex, status] of changes) {
      const listed = kept.recent.get(serialHex);
      // Released from hold, or held → revoked: the listed entry would have to go or change.
      if (listed === 'held' && status !== 'held') return undefined;
    }
    let appended = 0;
    for (const [serialHex, status, revokedAtMs, reason, invalidityDateMs] of changes) {
      // 'good' and not listed: held and released between two builds, or a release already handled.
      if (status === 'good' || kept.recent.has(serialHex)) continue;
      kept.recent.set(serialHex, status === 'held' ? 'held' : 'revoked');
      addEntry(kept.writer, serialHex, status, revokedAtMs, reason, invalidityDateMs, thisUpdateMs);
      appended++;
    }
    kept.feedSeq = feedSeq;
    return appended;
  }

  forget(issuerId?: string): void {
    if (issuerId === undefined) this.issuers.clear();
    else this.issuers.delete(issuerId);
  }
}

function addEntry(writer: RevokedEntriesWriter, ...[serialHex, status, revokedAtMs, reason, invalidityDateMs, thisUpdateMs]: [
  string, string, number | undefined, Parameters<CertificateStatusRow>[3], number | undefined, number,
]): void {
  writer.add(serialHex, revokedAtMs ?? thisUpdateMs, status === 'held' ? 'certificateHold' : reason, invalidityDateMs);
}
