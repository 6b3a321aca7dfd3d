/**
 * Open device sessions per certificate, across every gateway process that serves one port.
 *
 * A cloned device key shows as one certificate with sessions from two places at once. With
 * `gateway.workers` > 1 those two sessions may sit on two workers that do not see each other, so the
 * count lives where every worker's sessions are seen: the cluster primary (gateway-auth/cluster/),
 * fed by each worker's opened/closed reports over IPC. With one worker the same table is fed in
 * process. Either way a rule asks one question of one object: `SessionCounts.sessionsOf(certKey)`.
 *
 *   SessionReporter  what the gateway calls (gateway.ts, on admission and on close); returns at once
 *   SessionCounts    what a detection asks (the clone rule of operations/ joins here)
 *   SessionTable     the in-memory implementation of both
 */

/** One admitted connection, as the gateway reports it. */
export interface OpenedSession {
  /** Unique within the reporting process (the primary prefixes it with the worker). */
  id: string;
  /** `issuerId/serialHex` (DeviceIdentity.certKey). */
  certKey: string;
  deviceId: string;
  /** The TCP peer address; undefined if the socket had already gone. */
  remoteAddress: string | undefined;
  frontEnd: 'http' | 'mqtt' | 'tcp';
}

/** The gateway's side: called on the handshake path, so an implementation does no I/O and never throws. */
export interface SessionReporter {
  opened(session: OpenedSession): void;
  closed(id: string): void;
}

export const NO_SESSIONS: SessionReporter = Object.freeze({ opened() { /* not counted */ }, closed() { /* not counted */ } });

/** The open sessions of one certificate, grouped by source address. */
export interface CertificateSessions {
  certKey: string;
  /** Open sessions now, on every worker. */
  open: number;
  /** One row per source address, most sessions first. `workers`: the worker slots (1..N) they are on; [0] in process. */
  sources: { address: string; sessions: number; workers: number[] }[];
}

/** The query a clone-detection rule calls: how many open sessions certificate X has, from where, on which workers. */
export interface SessionCounts {
  sessionsOf(certKey: string): CertificateSessions;
  /** Certificates with at least `min` open sessions now (for a periodic sweep instead of a per-event query). */
  certificatesWithAtLeast(min: number): string[];
  /** Open sessions now, all certificates. */
  openSessions(): number;
}

interface Entry { certKey: string; address: string; worker: number }

/**
 * The table. `worker` names who reported a session (a cluster slot, 0 in process); `dropWorker`
 * forgets every session of a worker that exited (its sockets died with it).
 */
export class SessionTable implements SessionReporter, SessionCounts {
  private readonly byId = new Map<string, Entry>();
  private readonly byCert = new Map<string, Set<string>>();

  /** In-process reporting: every session is on worker 0. */
  opened(session: OpenedSession): void {
    this.openOn(0, session.id, session);
  }

  closed(id: string): void {
    this.close(id);
  }

  /** `id` must be unique across workers (the primary prefixes the worker's own id). */
  openOn(worker: number, id: string, session: Pick<OpenedSession, 'certKey' | 'remoteAddress'>): void {
    if (this.byId.has(id)) return;
    this.byId.set(id, { certKey: session.certKey, address: session.remoteAddress ?? 'unknown', worker });
    let ids = this.byCert.get(session.certKey);
    if (ids === undefined) this.byCert.set(session.certKey, (ids = new Set()));
    ids.add(id);
  }

  close(id: string): void {
    const e = this.byId.get(id);
    if (e === undefined) return;
    this.byId.delete(id);
    const ids = this.byCert.get(e.certKey);
    ids?.delete(id);
    if (ids?.size === 0) this.byCert.delete(e.certKey);
  }

  /** Forgets the sessions whose id starts with `prefix` (one exited worker's). Returns how many. */
  dropPrefix(prefix: string): number {
    let n = 0;
    for (const id of [...this.byId.keys()]) {
      if (id.startsWith(prefix)) {
        this.close(id);
        n++;
      }
    }
    return n;
  }

  sessionsOf(certKey: string): CertificateSessions {
    const ids = this.byCert.get(certKey);
    const bySource = new Map<string, { sessions: number; workers: Set<number> }>();
    for (const id of ids ?? []) {
      const e = this.byId.get(id)!;
      let s = bySource.get(e.address);
      if (s === undefined) bySource.set(e.address, (s = { sessions: 0, workers: new Set() }));
      s.sessions++;
      s.workers.add(e.worker);
    }
    const sources = [...bySource].map(([address, s]) => ({ address, sessions: s.sessions, workers: [...s.workers].sort((a, b) => a - b) }))
      .sort((a, b) => b.sessions - a.sessions || a.address.localeCompare(b.address));
    return { certKey, open: ids?.size ?? 0, sources };
  }

  certificatesWithAtLeast(min: number): string[] {
    return [...this.byCert].filter(([, ids]) => ids.size >= min).map(([certKey]) => certKey);
  }

  openSessions(): number {
    return this.byId.size;
  }
}
