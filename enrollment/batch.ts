/**
 * Bulk enrollment: an NDJSON stream in (one `{"serialNumber", "csr", "profile"?}` per line, at most
 * MAX_BATCH_LINES), an NDJSON stream out, one line per item in input order:
 * `{"line", "serialNumber", "serialHex", "issuerId", "certificate", "existing"}` or `{"line", "serialNumber", "error": {code, message}}`.
 * `certificate` is the certificate alone; its chain is `GET /api/v1/ca/chain?issuer=<issuerId>` (a retried
 * item may answer with a certificate of an earlier device CA, from before a rollover).
 *
 * A keygen item (`"keygen": {"password"}` instead of `csr`) gets `"pkcs12"` (base64) as well; retried,
 * it gets a new key pair and supersedes the earlier keygen certificate (that key was not kept).
 *
 * Items run concurrently (a bounded window), so the issuer's group commit fills up; each item fails
 * alone. Retrying a whole batch is safe: a CSR already enrolled for its device returns the same
 * certificate (`existing: true`) and nothing new is issued.
 */
import { z } from 'zod';
import { parseInput } from '../api-schema/validation.js';
import type { Readable, Writable } from 'node:stream';
import { pemChain } from '../management-api/representations.js';
import { KakuinError } from '../errors/index.js';
import { itemError, type EnrollmentService } from './enrollment-service.js';
import { SharedReads } from './shared-reads.js';

export const MAX_BATCH_LINES = 10_000;
/** Default bound on a whole batch body (10,000 items of a few KiB fit many times over). */
export const DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024;
/** A line holds one CSR (an RSA-4096 CSR in PEM is under 2 KiB); anything far larger is not an item. */
const MAX_LINE_CHARS = 64 * 1024;
/** Items in flight: enough that the verifier pool and the group commit see large batches. */
const WINDOW = 256;
/** Answers are written in chunks of about this size (one TLS record train), not a write per line. */
const OUTPUT_CHUNK_CHARS = 32 * 1024;

type ItemResult = Record<string, unknown>;

interface InFlight {
  promise: Promise<ItemResult>;
  result?: ItemResult;
}

export interface BatchOutcome {
  items: number;
  failed: number;
  /** The body passed `maxBodyBytes`: the rest was not read, and the connection should be closed. */
  bodyTooLarge: boolean;
}

export async function runBatch(
  input: Readable, output: Writable, enrollment: EnrollmentService, scope: { manufacturerId: string; actor: string },
  options: { maxBodyBytes?: number } = {},
): Promise<BatchOutcome> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BATCH_BYTES;
  const bound = { maxBytes: maxBodyBytes, exceeded: false };
  const lines = boundedLines(input, MAX_LINE_CHARS, bound);
  const pending: InFlight[] = [];
  const shared = new SharedReads();
  let lineNo = 0;
  let items = 0;
  let failed = 0;
  let out = '';
  const write = async () => {
    const chunk = out;
    out = '';
    if (chunk.length > 0 && !output.write(chunk)) await new Promise((resolve) => output.once('drain', resolve));
  };
  const take = (r: ItemResult) => {
    if (r.error) failed++;
    out += `${JSON.stringify(r)}\n`;
  };
  /** Moves every settled item at the head into the output, in input order. */
  const collectSettled = async () => {
    while (pending.length > 0 && pending[0].result !== undefined) {
      take(pending.shift()!.result!);
      if (out.length >= OUTPUT_CHUNK_CHARS) await write();
    }
  };
  const push = (promise: Promise<ItemResult>) => {
    const entry: InFlight = { promise };
    promise.then((r) => { entry.result = r; });
    pending.push(entry);
  };
  for await (const line of lines) {
    lineNo++;
    if (line !== OVERLONG && line.trim().length === 0) continue;
    items++;
    // Past the limit the rest is read and dropped (not left unread: the reply goes on the same connection).
    if (items > MAX_BATCH_LINES + 1) continue;
    if (items === MAX_BATCH_LINES + 1) {
      push(Promise.resolve({ line: lineNo, error: new KakuinError('KAKUIN_E_BATCH_TOO_LARGE', `a batch holds at most ${MAX_BATCH_LINES} items; this and later lines were not processed`).toJSON() }));
      continue;
    }
    push(enrollItem(line, lineNo, enrollment, scope, shared));
    if (pending.length >= WINDOW) {
      take(await pending.shift()!.promise);
      await collectSettled();
    }
  }
  if (bound.exceeded) {
    push(Promise.resolve({
      line: lineNo + 1,
      error: new KakuinError('KAKUIN_E_BATCH_BODY_TOO_LARGE', `a batch body holds at most ${maxBodyBytes} bytes; this and later lines were not processed`).toJSON(),
    }));
  }
  while (pending.length > 0) {
    take(await pending.shift()!.promise);
    await collectSettled();
    if (pending.length > 0 && pending[0].result === undefined) await write();
  }
  await write();
  return { items: Math.min(items, MAX_BATCH_LINES + 1), failed, bodyTooLarge: bound.exceeded };
}

/**
 * Lines of a text stream, like readline, but a line longer than `max` is not held in memory: it is
 * yielded as a marker (one per overlong line) and the rest of it skipped, so one endless line cannot
 * exhaust memory.
 *
 * With `bound`, reading stops before the chunk that would take the input past `bound.maxBytes`
 * bytes: that chunk and the unfinished line before it are dropped, and `bound.exceeded` is set.
 */
export async function* boundedLines(
  input: AsyncIterable<string | Buffer>, max: number, bound?: { maxBytes: number; exceeded: boolean },
): AsyncGenerator<string | typeof OVERLONG> {
  let buf = '';
  let skipping = false;
  let total = 0;
  // Iterated by hand: leaving a `for await` early would destroy the input stream (for a request, its
  // socket, before the answer is written). Past the bound the input is simply no longer read.
  const chunks = input[Symbol.asyncIterator]();
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
    const chunk = next.value;
    if (bound) {
      total += typeof chunk === 'string' ? Buffer.byteLength(chunk, 'utf8') : chunk.length;
      if (total > bound.maxBytes) {
        bound.exceeded = true;
        return;
      }
    }
    buf += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (skipping) skipping = false;
      else yield line.length > max ? OVERLONG : line;
    }
    if (!skipping && buf.length > max) {
      yield OVERLONG;
      skipping = true;
    }
    if (skipping) buf = '';
  }
  if (!skipping && buf.length > 0) yield buf.length > max ? OVERLONG : buf;
}

export const OVERLONG: unique symbol = Symbol('overlong line');

/** The names a batch line may use (as POST /api/v1/enroll, without manufacturerId: the batch names it once). */
const anything = z.unknown().optional();
const BATCH_ITEM_NAMES = z.strictObject({ serialNumber: anything, csr: anything, keygen: anything, profile: anything });
const BATCH_KEYGEN_NAMES = z.strictObject({ password: anything, format: anything, legacy: anything });

async function enrollItem(
  line: string | typeof OVERLONG, lineNo: number, enrollment: EnrollmentService, scope: { manufacturerId: string; actor: string }, shared: SharedReads,
): Promise<ItemResult> {
  let serialNumber: unknown;
  try {
    if (line === OVERLONG) throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', `a line holds at most ${MAX_LINE_CHARS} characters`);
    let item: unknown;
    try {
      item = JSON.parse(line);
    } catch {
      throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', 'the line is not valid JSON');
    }
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', 'the line must be a JSON object');
    const it = item as Record<string, unknown>;
    serialNumber = it.serialNumber;
    // Only the names are checked here (a typo fails its line alone); the values are the domain's to judge, with its codes.
    parseInput(BATCH_ITEM_NAMES, it, { place: 'body' });
    if (typeof it.keygen === 'object' && it.keygen !== null && !Array.isArray(it.keygen)) parseInput(BATCH_KEYGEN_NAMES, it.keygen, { place: 'body', at: ['keygen'] });
    if (it.keygen !== undefined) {
      if (it.csr !== undefined) throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', 'an item has either csr or keygen, not both');
      const k = await enrollment.enrollWithKeygen({ manufacturerId: scope.manufacturerId, serialNumber: it.serialNumber, keygen: it.keygen, actor: scope.actor, profile: it.profile });
      return {
        line: lineNo, serialNumber: k.device.serialNumber, deviceId: k.device.id, serialHex: k.certificate.serialHex, issuerId: k.certificate.issuerId,
        certificate: pemChain([k.der]), pkcs12: k.pkcs12?.toString('base64'), pem: k.pem, supersedes: k.supersedes,
      };
    }
    if (typeof it.csr !== 'string' || it.csr.length === 0) throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', 'csr must be a PEM string');
    const result = await enrollment.enroll({ manufacturerId: scope.manufacturerId, serialNumber: it.serialNumber, csr: it.csr, actor: scope.actor, profile: it.profile }, shared);
    return {
      line: lineNo, serialNumber: result.device.serialNumber, deviceId: result.device.id, serialHex: result.certificate.serialHex, issuerId: result.certificate.issuerId,
      certificate: pemChain([result.der]), existing: result.existing,
    };
  } catch (e) {
    return { line: lineNo, ...(typeof serialNumber === 'string' && { serialNumber }), error: itemError(e) };
  }
}
