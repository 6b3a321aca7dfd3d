/**
 * Bulk enrollment: an NDJSON stream in (one `{"serialNumber", "csr", "profile"?}` per line, at most
 * MAX_BATCH_LINES), an NDJSON stream out, one line per item in input order:
 * `{"line", "serialNumber", "serialHex", "certificate", "existing"}` or `{"line", "serialNumber", "error": {code, message}}`.
 *
 * A keygen item (`"keygen": {"password"}` instead of `csr`) gets `"pkcs12"` (base64) as well; retried,
 * it gets a new key pair and supersedes the earlier keygen certificate (that key was not kept).
 *
 * Items run concurrently (a bounded window), so the issuer's group commit fills up; each item fails
 * alone. Retrying a whole batch is safe: a CSR already enrolled for its device returns the same
 * certificate (`existing: true`) and nothing new is issued.
 */
import type { Readable, Writable } from 'node:stream';
import { pemChain } from '../ca/api/representations.js';
import { KakuinError } from '../errors/index.js';
import { itemError, type EnrollmentService } from './enrollment-service.js';

export const MAX_BATCH_LINES = 10_000;
/** A line holds one CSR (an RSA-4096 CSR in PEM is under 2 KiB); anything far larger is not an item. */
const MAX_LINE_CHARS = 64 * 1024;
const WINDOW = 256;

type ItemResult = Record<string, unknown>;

export async function runBatch(
  input: Readable, output: Writable, enrollment: EnrollmentService, scope: { manufacturerId: string; actor: string },
): Promise<{ items: number; failed: number }> {
  const lines = boundedLines(input, MAX_LINE_CHARS);
  const pending: Promise<ItemResult>[] = [];
  let lineNo = 0;
  let items = 0;
  let failed = 0;
  const flushOne = async () => {
    const result = await pending.shift()!;
    if (result.error) failed++;
    if (!output.write(`${JSON.stringify(result)}\n`)) await new Promise((resolve) => output.once('drain', resolve));
  };
  for await (const line of lines) {
    lineNo++;
    if (line !== OVERLONG && line.trim().length === 0) continue;
    items++;
    // Past the limit the rest is read and dropped (not left unread: the reply goes on the same connection).
    if (items > MAX_BATCH_LINES + 1) continue;
    if (items === MAX_BATCH_LINES + 1) {
      pending.push(Promise.resolve({ line: lineNo, error: new KakuinError('KAKUIN_E_BATCH_TOO_LARGE', `a batch holds at most ${MAX_BATCH_LINES} items; this and later lines were not processed`).toJSON() }));
      continue;
    }
    pending.push(enrollItem(line, lineNo, enrollment, scope));
    if (pending.length >= WINDOW) await flushOne();
  }
  while (pending.length > 0) await flushOne();
  return { items: Math.min(items, MAX_BATCH_LINES + 1), failed };
}

/**
 * Lines of a text stream, like readline, but a line longer than `max` is not held in memory: it is
 * yielded as a marker (one per overlong line) and the rest of it skipped, so one endless line cannot
 * exhaust memory.
 */
export async function* boundedLines(input: AsyncIterable<string | Buffer>, max: number): AsyncGenerator<string | typeof OVERLONG> {
  let buf = '';
  let skipping = false;
  for await (const chunk of input) {
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

async function enrollItem(line: string | typeof OVERLONG, lineNo: number, enrollment: EnrollmentService, scope: { manufacturerId: string; actor: string }): Promise<ItemResult> {
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
    if (it.keygen !== undefined) {
      if (it.csr !== undefined) throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', 'an item has either csr or keygen, not both');
      const k = await enrollment.enrollWithKeygen({ manufacturerId: scope.manufacturerId, serialNumber: it.serialNumber, keygen: it.keygen, actor: scope.actor, profile: it.profile });
      return {
        line: lineNo, serialNumber: k.device.serialNumber, deviceId: k.device.id, serialHex: k.certificate.serialHex,
        certificate: pemChain([k.der]), pkcs12: k.pkcs12?.toString('base64'), pem: k.pem, supersedes: k.supersedes,
      };
    }
    if (typeof it.csr !== 'string' || it.csr.length === 0) throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', 'csr must be a PEM string');
    const result = await enrollment.enroll({ manufacturerId: scope.manufacturerId, serialNumber: it.serialNumber, csr: it.csr, actor: scope.actor, profile: it.profile });
    return {
      line: lineNo, serialNumber: result.device.serialNumber, deviceId: result.device.id, serialHex: result.certificate.serialHex,
      certificate: pemChain([result.der]), existing: result.existing,
    };
  } catch (e) {
    return { line: lineNo, ...(typeof serialNumber === 'string' && { serialNumber }), error: itemError(e) };
  }
}
