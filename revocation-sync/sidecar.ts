/**
 * The relying-party sidecar (issue 17, DESIGN.md "revocation-sync"): follows kakuin's full CRLs
 * of the chosen issuers (and, with the chain, the CRLs covering those CAs themselves) on kakuin's
 * public plain-HTTP listener, verifies each one, writes them as one PEM bundle (whole or not at
 * all) and tells the server that reads it. It imports pkix/ only: no registry, no native addon.
 *
 * Change detection is polling with conditional GETs (default every 500 ms: a change is seen
 * within the interval plus one round trip); a 304 costs a few hundred bytes, so the interval can
 * be short. Without validators from the server, each poll fetches the CRL and compares numbers.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { KakuinError } from '../errors/index.js';
import {
  fromPem, OID_CE_CRL_DISTRIBUTION_POINTS, opensslNameHash, parseCertificate, parseCrlDistributionPoints, toPem, type ParsedCertificate,
} from '../pkix/index.js';
import { writeFileAtomic } from './atomic-file.js';
import { conditionalGet, type Validators } from './fetch.js';
import { Reloader } from './reloader.js';
import { verifyCaCertificate, verifyCrl } from './verify.js';

export interface SyncLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface SyncOptions {
  /** Base URL of kakuin's plain-HTTP listener. */
  url: string;
  /** The trust anchor (the root), PEM. */
  trustPem: string;
  issuers: string[];
  withChain: boolean;
  /** The PEM bundle of all CRLs (nginx, HAProxy, Mosquitto); absent with `hashedDir` only. */
  pemOut?: string;
  /** A hashed CApath directory (FreeRADIUS `ca_path`): `<hash>.0` per CA certificate, `<hash>.r0` per CRL. */
  hashedDir?: string;
  stateDir?: string;
  pollIntervalMs: number;
  /** What to do after the bundle changed (rate-limited by the Reloader); absent: write only. */
  reload?: Reloader;
  logger: SyncLogger;
}

interface Source {
  /** kakuin's issuer id: `/crl/{name}.crl`, `/ca/{name}.cer`. */
  name: string;
  /** The CA that signs this CRL (set once its certificate is fetched and verified). */
  ca?: ParsedCertificate;
  der?: Buffer;
  number?: bigint;
  nextUpdate?: Date;
  validators: Validators;
  /** When kakuin last confirmed this view (200 verified or 304). */
  confirmedMs?: number;
  refused: number;
  fetchErrors: number;
}

interface SavedState {
  sources: Record<string, { number?: string; etag?: string; lastModified?: string }>;
}

export class RevocationSync {
  private readonly anchor: ParsedCertificate;
  private readonly sources = new Map<string, Source>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private written?: string;
  private writtenMs?: number;
  writes = 0;

  constructor(private readonly o: SyncOptions) {
    const ders = fromPem(o.trustPem, 'CERTIFICATE');
    if (ders.length !== 1) throw new KakuinError('KAKUIN_E_USAGE', '--trust must hold exactly one certificate (the root)');
    this.anchor = parseCertificate(ders[0]);
    for (const name of o.issuers) this.sources.set(name, { name, validators: {}, refused: 0, fetchErrors: 0 });
    if (o.stateDir) mkdirSync(o.stateDir, { recursive: true });
    if (o.hashedDir) mkdirSync(o.hashedDir, { recursive: true });
  }

  private base(): string {
    return this.o.url.replace(/\/+$/, '');
  }

  /** Fetches and verifies the CA certificates, loads the saved state, polls once, then keeps polling. */
  async start(): Promise<void> {
    for (const name of this.o.issuers) {
      // Unreachable now: each poll tries again (and nothing is written before it is verified).
      await this.loadCa(this.sources.get(name)!).catch((e) => this.o.logger.warn('CA certificate not loaded yet', { issuer: name, error: String(e) }));
    }
    this.loadState();
    await Promise.all([...this.sources.values()].map((s) => this.poll(s)));
    this.writeBundle();
    for (const s of this.sources.values()) this.schedule(s);
  }

  private async loadCa(source: Source): Promise<void> {
    const r = await conditionalGet(`${this.base()}/ca/${encodeURIComponent(source.name)}.cer`, {});
    if (r.status !== 'body') throw new KakuinError('KAKUIN_E_SYNC_UPSTREAM', `no CA certificate for ${source.name}`);
    const ca = verifyCaCertificate(r.body, this.anchor, `the CA certificate of ${source.name}`);
    source.ca = ca;
    if (!this.o.withChain || ca === this.anchor) return;
    // The CRL covering this CA: its own distribution point names it (RFC 5280 §4.2.1.13); signed by the anchor.
    const cdp = ca.extensions.find((e) => e.oid === OID_CE_CRL_DISTRIBUTION_POINTS);
    for (const url of cdp ? parseCrlDistributionPoints(cdp.value) : []) {
      const m = /\/crl\/([^/]+)\.crl$/.exec(new URL(url).pathname);
      if (!m) continue;
      const name = decodeURIComponent(m[1]);
      if (!this.sources.has(name)) this.sources.set(name, { name, ca: this.anchor, validators: {}, refused: 0, fetchErrors: 0 });
    }
  }

  private schedule(s: Source): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers = this.timers.filter((x) => x !== t);
      this.poll(s).then(() => this.writeBundle()).catch((e) => this.o.logger.warn('writing the CRL bundle failed', { error: String(e) }))
        .finally(() => this.schedule(s));
    }, this.o.pollIntervalMs);
    this.timers.push(t);
  }

  /** One conditional GET of the source's CRL; a verified higher-numbered CRL replaces the one in use. */
  private async poll(s: Source): Promise<void> {
    try {
      if (!s.ca) await this.loadCa(s);
      const r = await conditionalGet(`${this.base()}/crl/${encodeURIComponent(s.name)}.crl`, s.der ? s.validators : {});
      if (r.status === 'unchanged') {
        s.confirmedMs = Date.now();
        return;
      }
      const crl = verifyCrl(r.body, s.ca!, s.number, `the CRL of ${s.name}`);
      s.confirmedMs = Date.now();
      s.validators = r.validators;
      if (s.number !== undefined && crl.crlNumber === s.number && s.der) return;
      s.der = crl.rawDer;
      s.number = crl.crlNumber;
      s.nextUpdate = crl.nextUpdate;
      this.saveState(s);
      this.o.logger.info('new CRL', { issuer: s.name, number: crl.crlNumber.toString(), entries: crl.entryCount, bytes: r.body.length });
    } catch (e) {
      if (e instanceof KakuinError && e.code === 'KAKUIN_E_CRL_UNVERIFIED') s.refused++;
      else s.fetchErrors++;
      this.o.logger.warn('CRL not taken', { issuer: s.name, error: String((e as Error)?.message ?? e) });
    }
  }

  /** The bundle once every CRL is in; written (atomically) only when it differs from what was written. */
  private writeBundle(): void {
    const all = [...this.sources.values()];
    if (all.some((s) => !s.der)) return;
    // Chain CRLs first (root), then the issuers' own: a stable order, so equal content means equal bytes.
    const ordered = [...all.filter((s) => !this.o.issuers.includes(s.name)), ...this.o.issuers.map((n) => this.sources.get(n)!)];
    const pem = ordered.map((s) => toPem('X509 CRL', s.der!)).join('');
    if (pem === this.written) return;
    if (this.o.pemOut) writeFileAtomic(this.o.pemOut, pem);
    if (this.o.hashedDir) this.writeHashedDir(ordered);
    this.written = pem;
    this.writtenMs = Date.now();
    this.writes++;
    this.o.logger.info('CRL bundle written', { file: this.o.pemOut ?? this.o.hashedDir, crls: ordered.map((s) => `${s.name}#${s.number}`).join(' ') });
    this.o.reload?.request();
  }

  /**
   * The CApath layout OpenSSL's X509_LOOKUP_hash_dir reads (`openssl rehash`): each CA certificate
   * (the anchor and every verified issuer) as `<subject hash>.N`, each CRL as `<issuer hash>.rN`;
   * N counts distinct names that share a hash. Each file is replaced whole (temp + rename), CRLs
   * after the CA certificates, so a server starting meanwhile never reads half a file.
   */
  private writeHashedDir(ordered: Source[]): void {
    const dir = this.o.hashedDir!;
    const cas = new Map<string, ParsedCertificate>([[this.anchor.rawDer.toString('base64'), this.anchor]]);
    for (const s of ordered) if (s.ca) cas.set(s.ca.rawDer.toString('base64'), s.ca);
    const suffixes = new Map<string, Map<string, number>>();
    const fileFor = (ca: ParsedCertificate, crl: boolean) => {
      const hash = opensslNameHash(ca.subject);
      const names = suffixes.get(hash) ?? new Map<string, number>();
      suffixes.set(hash, names);
      const key = ca.subject.rawDer.toString('base64');
      if (!names.has(key)) names.set(key, names.size);
      return path.join(dir, `${hash}.${crl ? 'r' : ''}${names.get(key)}`);
    };
    for (const ca of cas.values()) this.writeIfChanged(fileFor(ca, false), toPem('CERTIFICATE', ca.rawDer));
    for (const s of ordered) this.writeIfChanged(fileFor(s.ca!, true), toPem('X509 CRL', s.der!));
  }

  private writeIfChanged(file: string, content: string): void {
    if (existsSync(file) && readFileSync(file, 'utf8') === content) return;
    writeFileAtomic(file, content);
  }

  bundle(): string {
    return this.written ?? '';
  }

  // ---- state dir: the numbers in use and the CRLs, so a restart never goes back and misses nothing ----

  private loadState(): void {
    const dir = this.o.stateDir;
    if (!dir || !existsSync(path.join(dir, 'state.json'))) return;
    const saved = JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as SavedState;
    for (const [name, st] of Object.entries(saved.sources ?? {})) {
      const s = this.sources.get(name);
      const file = path.join(dir, `${encodeURIComponent(name)}.crl`);
      if (!s || !s.ca || !existsSync(file)) continue;
      try {
        const crl = verifyCrl(readFileSync(file), s.ca, st.number === undefined ? undefined : BigInt(st.number), `the saved CRL of ${name}`);
        Object.assign(s, { der: crl.rawDer, number: crl.crlNumber, nextUpdate: crl.nextUpdate, validators: { etag: st.etag, lastModified: st.lastModified } });
      } catch (e) {
        this.o.logger.warn('saved CRL ignored', { issuer: name, error: String(e) });
      }
    }
  }

  private saveState(changed: Source): void {
    const dir = this.o.stateDir;
    if (!dir) return;
    writeFileAtomic(path.join(dir, `${encodeURIComponent(changed.name)}.crl`), changed.der!);
    const state: SavedState = { sources: {} };
    for (const s of this.sources.values()) {
      if (s.number !== undefined) state.sources[s.name] = { number: s.number.toString(), etag: s.validators.etag, lastModified: s.validators.lastModified };
    }
    writeFileAtomic(path.join(dir, 'state.json'), JSON.stringify(state, null, 2));
  }

  // ---- health and metrics ----

  /** Seconds since the oldest confirmation among the CRLs (Infinity before the first). */
  viewAgeSeconds(now = Date.now()): number {
    let oldest = Infinity;
    let all = true;
    for (const s of this.sources.values()) {
      if (s.confirmedMs === undefined) all = false;
      else oldest = Math.min(oldest, s.confirmedMs);
    }
    return all && this.written !== undefined ? (now - oldest) / 1000 : Infinity;
  }

  healthy(): boolean {
    return this.viewAgeSeconds() <= Math.max(10, (10 * this.o.pollIntervalMs) / 1000);
  }

  metrics(): string {
    const now = Date.now();
    const lines = [
      '# HELP kakuin_sync_view_age_seconds Seconds since kakuin last confirmed the CRL in use (200 verified or 304).',
      '# TYPE kakuin_sync_view_age_seconds gauge',
    ];
    const each = (fn: (s: Source) => string | undefined) => { for (const s of this.sources.values()) { const l = fn(s); if (l) lines.push(l); } };
    each((s) => s.confirmedMs === undefined ? undefined : `kakuin_sync_view_age_seconds{issuer="${s.name}"} ${((now - s.confirmedMs) / 1000).toFixed(3)}`);
    lines.push('# HELP kakuin_sync_crl_number CRL number in use.', '# TYPE kakuin_sync_crl_number gauge');
    each((s) => s.number === undefined ? undefined : `kakuin_sync_crl_number{issuer="${s.name}"} ${s.number}`);
    lines.push('# HELP kakuin_sync_crl_next_update_timestamp_seconds nextUpdate of the CRL in use.', '# TYPE kakuin_sync_crl_next_update_timestamp_seconds gauge');
    each((s) => s.nextUpdate === undefined ? undefined : `kakuin_sync_crl_next_update_timestamp_seconds{issuer="${s.name}"} ${Math.floor(s.nextUpdate.getTime() / 1000)}`);
    lines.push('# HELP kakuin_sync_refused_total Fetched CRLs refused (signature, issuer, delta, lower number).', '# TYPE kakuin_sync_refused_total counter');
    each((s) => `kakuin_sync_refused_total{issuer="${s.name}"} ${s.refused}`);
    lines.push('# HELP kakuin_sync_fetch_errors_total Fetches that failed.', '# TYPE kakuin_sync_fetch_errors_total counter');
    each((s) => `kakuin_sync_fetch_errors_total{issuer="${s.name}"} ${s.fetchErrors}`);
    lines.push('# TYPE kakuin_sync_bundle_writes_total counter', `kakuin_sync_bundle_writes_total ${this.writes}`);
    if (this.writtenMs !== undefined) lines.push('# TYPE kakuin_sync_bundle_written_timestamp_seconds gauge', `kakuin_sync_bundle_written_timestamp_seconds ${(this.writtenMs / 1000).toFixed(3)}`);
    if (this.o.reload) {
      lines.push('# TYPE kakuin_sync_reloads_total counter', `kakuin_sync_reloads_total ${this.o.reload.reloads}`);
      lines.push('# TYPE kakuin_sync_reload_failures_total counter', `kakuin_sync_reload_failures_total ${this.o.reload.failures}`);
    }
    return `${lines.join('\n')}\n`;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.o.reload?.stop();
  }
}
