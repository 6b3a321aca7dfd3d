/**
 * The factory side of bulk enrollment (`kakuin enroll batch --in devices.ndjson --out certs/`):
 * sends the NDJSON lines, in chunks of at most MAX_BATCH_LINES, to a remote kakuin's
 * `POST /api/v1/enroll/batch` and writes one file per device as results stream back:
 * `<serialNumber>.pem` (certificate and chain; for a `"format": "pem"` keygen item the encrypted key
 * and chain) or `<serialNumber>.p12` (keygen).
 *
 * Resumable: a device whose file exists is not sent again. Files are written to a temporary name and
 * renamed, so a file that exists is whole; the journal (`.kakuin-enroll.journal`, NDJSON) records each
 * written file with its certificate's fingerprint, and each keygen item before it is sent. Since the
 * server answers a retried CSR with the certificate it issued before, an interruption at any point
 * (Ctrl-C, kill -9, a dropped connection, a server restart) loses nothing and issues nothing twice
 * for CSR items. A keygen item answered but not written cannot be recovered (the server keeps no
 * key): sent again, it gets a new key pair that supersedes the earlier certificate, and the result
 * says so (`keygenReissued`) so the operator is told.
 *
 * A dropped connection or a 5xx/429 answer is retried with exponential backoff, sending only the
 * items of the chunk not yet answered; after `retries` failed attempts in a row the run stops with
 * `unreachable` set (the command exits 3). Items refused "for now" (the station's rate limit, a busy
 * registry) are sent again in later rounds with the same backoff. One bad item fails alone: it goes
 * to `failed` (and `<out>/errors.ndjson`) with its input line number and KAKUIN_E_* code.
 */
import { createHash } from 'node:crypto';
import {
  appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import path from 'node:path';
import { isKakuinError, KakuinError } from '../errors/index.js';
import { fromPem } from '../pkix/index.js';
import { MAX_BATCH_LINES } from './batch.js';
import { BatchClient, sleep, TransientError, type BatchClientOptions, type BatchResultLine } from './factory-http.js';

export const JOURNAL_FILE = '.kakuin-enroll.journal';
export const ERRORS_FILE = 'errors.ndjson';
const TEMP_FILE = /^\.[A-Za-z0-9][A-Za-z0-9._+=(),-]*\.\d+\.tmp$/;

export interface FactoryBatchOptions extends BatchClientOptions {
  /** Base URL of the remote kakuin management API (`https://kakuin.example:8443`). */
  url: string;
  /** The station's API key (sent as a bearer token), or */
  apiKey?: string;
  /** the station's certificate and key (TLS client authentication; the certificate PEM may carry its chain). */
  clientCertificate?: { certPem: string; keyPem: string };
  /** PEM of the CA to trust for the API's TLS certificate (kakuin's root). */
  caPem: string;
  inFile: string;
  outDir: string;
  /** Items per request (1 to 10,000; default 1,000). */
  chunk?: number;
  /** Requests in flight at once (default 2). */
  concurrency?: number;
  /** Failed attempts in a row before giving up (default 5); the backoff doubles from retryBaseMs (default 500 ms). */
  retries?: number;
  retryBaseMs?: number;
  /** PKCS#12 password for keygen items that carry none (`"keygen": {}`); never logged or journaled. */
  p12Password?: string;
  /** Called after each result with (done, total) of the items sent in this run. */
  progress?: (done: number, total: number) => void;
  /** Called before each retry. */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  /** Aborting stops the run: requests in flight are cut, what was written stays written. */
  signal?: AbortSignal;
}

export interface FactoryItemFailure {
  line: number;
  serialNumber?: string;
  code: string;
  message: string;
}

export interface FactoryBatchResult {
  /** Non-blank input lines. */
  total: number;
  /** Items sent to the server in this run. */
  sent: number;
  /** Items whose file existed already. */
  skipped: number;
  written: number;
  failed: FactoryItemFailure[];
  /** Keygen items given a new key pair that supersedes an earlier certificate (an earlier answer was never written). */
  keygenReissued: string[];
  /** Keygen items an earlier run sent but never wrote (from the journal): sent again in this run. */
  keygenRetried: string[];
  /** Set when the server could not be reached after the retries. */
  unreachable?: string;
  /** Set when the run was aborted (signal). */
  interrupted?: boolean;
}

interface Item {
  line: number;
  serialNumber: string;
  kind: 'csr' | 'keygen';
  text: string;
}

/** One journal line. */
type JournalEntry =
  | { event: 'written'; serialNumber: string; file: string; serialHex?: string; sha256: string; at: string }
  | { event: 'keygen-sent'; serialNumber: string; at: string };

/**
 * A serial number as a file name, or a KAKUIN_E_SERIAL_NOT_A_FILE_NAME error. Serial numbers are
 * PrintableString; of its characters, `/` is a path separator and space, `'`, `?` and `:` are trouble
 * on some file systems, so those are refused rather than mapped (mapping could make two devices share
 * a file). A leading dot (hidden files, `..`) is refused too.
 */
export function certificateFileBase(serialNumber: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._+=(),-]{0,63}$/.test(serialNumber)) {
    throw new KakuinError('KAKUIN_E_SERIAL_NOT_A_FILE_NAME',
      `serial number ${JSON.stringify(serialNumber.slice(0, 80))} cannot be a file name: use letters, digits and . _ + = ( ) , - (starting with a letter or digit, at most 64)`);
  }
  return serialNumber;
}

export async function runFactoryBatch(options: FactoryBatchOptions): Promise<FactoryBatchResult> {
  const chunkSize = options.chunk ?? 1000;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_BATCH_LINES) {
    throw new KakuinError('KAKUIN_E_USAGE', `the chunk size must be 1 to ${MAX_BATCH_LINES}`);
  }
  const concurrency = options.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) throw new KakuinError('KAKUIN_E_USAGE', 'the concurrency must be 1 to 16');
  mkdirSync(options.outDir, { recursive: true });
  const journalPath = path.join(options.outDir, JOURNAL_FILE);
  const errorsPath = path.join(options.outDir, ERRORS_FILE);
  const journal = readJournal(journalPath);
  const journalAppend = (e: JournalEntry) => appendFileSync(journalPath, `${JSON.stringify(e)}\n`, { mode: 0o600 });
  writeFileSync(errorsPath, '');
  // Temporary files of a run killed between write and rename: never whole, never used.
  for (const name of readdirSync(options.outDir)) if (TEMP_FILE.test(name)) rmSync(path.join(options.outDir, name), { force: true });

  const result: FactoryBatchResult = { total: 0, sent: 0, skipped: 0, written: 0, failed: [], keygenReissued: [], keygenRetried: [] };
  const fail = (f: FactoryItemFailure) => {
    result.failed.push(f);
    appendFileSync(errorsPath, `${JSON.stringify(f)}\n`);
  };

  const items: Item[] = [];
  const seen = new Map<string, number>();
  const lines = readFileSync(options.inFile, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i].replace(/\r$/, '');
    if (text.trim().length === 0) continue;
    result.total++;
    const line = i + 1;
    const item = parseItem(text, line, options.p12Password);
    if ('code' in item) {
      fail(item);
      continue;
    }
    const earlier = seen.get(item.serialNumber);
    if (earlier !== undefined) {
      fail({ line, serialNumber: item.serialNumber, code: 'KAKUIN_E_BATCH_ITEM_MALFORMED', message: `serial number already on line ${earlier}` });
      continue;
    }
    seen.set(item.serialNumber, line);
    const existing = existingFile(options.outDir, item.serialNumber);
    if (existing) {
      result.skipped++;
      // Written, then killed before the journal line: the file is whole (renamed), so record it now.
      if (journal.written.get(item.serialNumber) !== existing) {
        journalAppend({ event: 'written', serialNumber: item.serialNumber, file: existing, sha256: fileFingerprint(path.join(options.outDir, existing)), at: new Date().toISOString() });
      }
      continue;
    }
    if (item.kind === 'keygen' && journal.keygenSent.has(item.serialNumber)) result.keygenRetried.push(item.serialNumber);
    items.push(item);
  }
  result.sent = items.length;
  if (items.length === 0) return result;

  const client = new BatchClient(options);
  let currentIssuerId: string | undefined;
  const chainPem = await client.withRetries(() => client.get('/api/v1/ca/chain', (h) => {
    const id = h['kakuin-issuer-id'];
    if (typeof id === 'string' && id.length > 0) currentIssuerId = id;
  }));
  if (typeof chainPem !== 'string') {
    result.unreachable = chainPem.unreachable;
    return result;
  }

  // Chains by issuer id: a retried item may be answered with a certificate of an earlier device CA
  // (issued before a rollover), whose chain is not the current one. Fetched once per issuer.
  const chains = new Map<string, string>();
  // The CA issuing now (named by the server): its certificates are written as they arrive.
  if (currentIssuerId !== undefined) chains.set(currentIssuerId, chainPem);
  const chainOf = (r: BatchResultLine) => (r.issuerId === undefined ? chainPem : chains.get(r.issuerId));
  /** Answers whose issuer's chain is not fetched yet: written when the chunk's reply has ended. */
  let awaitingChain: { item: Item; r: BatchResultLine }[] = [];
  const fetchChains = async () => {
    const waiting = awaitingChain;
    awaitingChain = [];
    const failed = new Set<string>();
    for (const issuerId of new Set(waiting.map((w) => w.r.issuerId!))) {
      if (chains.has(issuerId)) continue;
      try {
        const pem = await client.withRetries(() => client.get(`/api/v1/ca/chain?issuer=${encodeURIComponent(issuerId)}`));
        if (typeof pem !== 'string') {
          stopped = true;
          throw pem;
        }
        chains.set(issuerId, pem);
      } catch (e) {
        if (!isKakuinError(e)) throw e;
        failed.add(issuerId);
        for (const w of waiting) {
          if (w.r.issuerId === issuerId) fail({ line: w.item.line, serialNumber: w.item.serialNumber, code: e.code, message: `the chain of the certificate: ${e.message}` });
        }
      }
    }
    // An item failed above is not written, even if another chunk fetched the same chain meanwhile.
    for (const w of waiting) if (!failed.has(w.r.issuerId!) && chains.has(w.r.issuerId!)) writeResult(w.item, w.r);
  };

  const writeResult = (item: Item, r: BatchResultLine) => {
    const base = path.join(options.outDir, item.serialNumber);
    // A keygen result carries the (encrypted) key: PKCS#12, or the PEM bundle (key + chain) in place of the certificate.
    const [file, data] = r.pkcs12 ? [`${base}.p12`, Buffer.from(r.pkcs12, 'base64')]
      : [`${base}.pem`, Buffer.from(r.pem ?? `${r.certificate ?? ''}${chainOf(r) ?? ''}`)];
    const temp = path.join(options.outDir, `.${item.serialNumber}.${process.pid}.tmp`);
    // fsync before the rename: after a power cut, a name must not point at an empty file.
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
    const leaf = r.certificate ? fromPem(r.certificate, 'CERTIFICATE')[0] : undefined;
    journalAppend({
      event: 'written', serialNumber: item.serialNumber, file: path.basename(file), serialHex: r.serialHex,
      sha256: createHash('sha256').update(leaf ?? data).digest('hex'), at: new Date().toISOString(),
    });
    // The server's word decides: a keygen item whose earlier answer was lost supersedes that certificate.
    if (item.kind === 'keygen' && (r.supersedes?.length ?? 0) > 0) result.keygenReissued.push(item.serialNumber);
    result.written++;
  };

  let done = 0;
  let stopped = false;
  /** Items the server could not take just now (rate limit, busy registry): sent again in a later round. */
  let deferred: { item: Item; failure: FactoryItemFailure }[] = [];
  const runChunk = async (chunk: Item[]) => {
    let remaining = chunk;
    for (const item of chunk) if (item.kind === 'keygen') journalAppend({ event: 'keygen-sent', serialNumber: item.serialNumber, at: new Date().toISOString() });
    const outcome = await client.withRetries(async (madeProgress) => {
      const sending = remaining;
      const answered = new Set<number>();
      try {
        await client.postBatch(sending.map((i) => i.text), (r) => {
          const item = typeof r.line === 'number' ? sending[r.line - 1] : undefined;
          if (!item || answered.has(r.line!)) return;
          answered.add(r.line!);
          madeProgress();
          if (r.error || !r.serialNumber) {
            const failure = { line: item.line, serialNumber: item.serialNumber, code: r.error?.code ?? 'KAKUIN_E_INTERNAL', message: r.error?.message ?? 'no result' };
            if (RETRYABLE_ITEM_CODES.has(failure.code)) {
              deferred.push({ item, failure });
              return;
            }
            fail(failure);
          } else if (r.pkcs12 === undefined && r.pem === undefined && chainOf(r) === undefined) {
            awaitingChain.push({ item, r });
          } else {
            writeResult(item, r);
          }
          done++;
          options.progress?.(done, items.length);
        });
      } finally {
        remaining = sending.filter((_, i) => !answered.has(i + 1));
      }
      if (remaining.length > 0) throw new TransientError(`the connection ended with ${remaining.length} items unanswered`);
      return true;
    });
    if (outcome !== true) {
      stopped = true;
      throw outcome;
    }
    if (awaitingChain.length > 0) await fetchChains();
  };
  const runRound = async (roundItems: Item[]) => {
    const chunks: Item[][] = [];
    for (let i = 0; i < roundItems.length; i += chunkSize) chunks.push(roundItems.slice(i, i + chunkSize));
    let next = 0;
    const workers = Array.from({ length: Math.min(concurrency, chunks.length) }, async () => {
      while (next < chunks.length && !stopped && !options.signal?.aborted) await runChunk(chunks[next++]);
    });
    for (const s of await Promise.allSettled(workers)) {
      if (s.status === 'fulfilled') continue;
      const reason = s.reason as unknown;
      if (reason && typeof reason === 'object' && 'unreachable' in reason) result.unreachable ??= (reason as { unreachable: string }).unreachable;
      else if (!options.signal?.aborted) throw reason;
    }
  };
  await runRound(items);
  const retries = options.retries ?? 5;
  for (let round = 1; deferred.length > 0 && round <= retries && !stopped && !options.signal?.aborted; round++) {
    const again = deferred.map((d) => d.item);
    deferred = [];
    const delayMs = Math.min((options.retryBaseMs ?? 500) * 2 ** (round - 1), 30_000);
    options.onRetry?.({ attempt: round, delayMs, reason: `${again.length} items were refused for now (rate limit or busy registry)` });
    await sleep(delayMs, options.signal);
    await runRound(again);
  }
  for (const d of deferred) fail(d.failure);
  if (options.signal?.aborted) result.interrupted = true;
  return result;
}

/** Per-item answers that mean "not now" rather than "never": the item is sent again after a pause. */
const RETRYABLE_ITEM_CODES = new Set(['KAKUIN_E_STATION_RATE_LIMITED', 'KAKUIN_E_REGISTRY_UNAVAILABLE']);


function parseItem(text: string, line: number, p12Password: string | undefined): Item | FactoryItemFailure {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { line, code: 'KAKUIN_E_BATCH_ITEM_MALFORMED', message: 'the line is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { line, code: 'KAKUIN_E_BATCH_ITEM_MALFORMED', message: 'the line must be a JSON object' };
  const it = value as Record<string, unknown>;
  if (typeof it.serialNumber !== 'string') return { line, code: 'KAKUIN_E_BATCH_ITEM_MALFORMED', message: 'serialNumber must be a string' };
  const serialNumber = it.serialNumber;
  try {
    certificateFileBase(serialNumber);
  } catch (e) {
    return { line, serialNumber, code: (e as KakuinError).code, message: (e as KakuinError).message };
  }
  if (it.keygen === undefined) return { line, serialNumber, kind: 'csr', text };
  const keygen = it.keygen;
  if (typeof keygen === 'object' && keygen !== null && !Array.isArray(keygen) && (keygen as { password?: unknown }).password === undefined && p12Password !== undefined) {
    return { line, serialNumber, kind: 'keygen', text: JSON.stringify({ ...it, keygen: { ...keygen, password: p12Password } }) };
  }
  return { line, serialNumber, kind: 'keygen', text };
}

/** The device's file, if one exists and is not empty (an empty one is left by a crash of an older writer: fetched again). */
function existingFile(outDir: string, serialNumber: string): string | undefined {
  for (const ext of ['.pem', '.p12']) {
    const name = `${serialNumber}${ext}`;
    try {
      if (statSync(path.join(outDir, name)).size > 0) return name;
    } catch {
      // absent
    }
  }
  return undefined;
}

/** As journaled: the SHA-256 of the leaf certificate (the first in a .pem), of the whole file for a .p12. */
function fileFingerprint(file: string): string {
  const data = readFileSync(file);
  let leaf: Buffer | undefined;
  if (file.endsWith('.pem')) {
    try {
      leaf = fromPem(data.toString('utf8'), 'CERTIFICATE')[0];
    } catch {
      leaf = undefined;
    }
  }
  return createHash('sha256').update(leaf ?? data).digest('hex');
}

function readJournal(file: string): { written: Map<string, string>; keygenSent: Set<string> } {
  const written = new Map<string, string>();
  const keygenSent = new Set<string>();
  if (!existsSync(file)) return { written, keygenSent };
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    let e: JournalEntry;
    try {
      e = JSON.parse(l) as JournalEntry;
    } catch {
      continue; // a line cut short by a kill: the file check decides
    }
    if (e?.event === 'written') {
      written.set(e.serialNumber, e.file);
      keygenSent.delete(e.serialNumber);
    } else if (e?.event === 'keygen-sent') {
      keygenSent.add(e.serialNumber);
    }
  }
  return { written, keygenSent };
}
