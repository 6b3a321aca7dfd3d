/**
 * Worker thread that builds CRL bodies (DESIGN.md "The event loop": CRL builds never run on the
 * event loop). It opens its own registry connection from a module named by the composition root
 * (for SQLite, a read-only connection to the same file), so `ca/` never imports an adapter.
 */
import { parentPort } from 'node:worker_threads';
import type { Registry } from '../../registry/port.js';
import { isKakuinError } from '../../errors/index.js';
import { buildCrlBody, type CrlBodyRequest } from './crl-body.js';
import { FullCrlEntries } from './full-crl-entries.js';

export interface CrlWorkerMessage {
  id: number;
  registryModule: string;
  registryOptions: unknown;
  request: CrlBodyRequest;
}

export type CrlWorkerReply =
  | { id: number; tbs: Uint8Array; entries: number; encoded?: number }
  | { id: number; error: { code?: string; message: string } };

let registry: Promise<Registry> | undefined;
/** Each issuer's full-CRL entries, kept between builds for as long as the worker lives. */
const kept = new FullCrlEntries();

parentPort!.on('message', async (msg: CrlWorkerMessage) => {
  try {
    registry ??= import(msg.registryModule).then((m: { openRegistry(o: unknown): Promise<Registry> }) => m.openRegistry(msg.registryOptions));
    const body = await buildCrlBody(await registry, msg.request, kept);
    const whole = body.tbs.byteOffset === 0 && body.tbs.byteLength === body.tbs.buffer.byteLength;
    const tbs = whole ? body.tbs : Buffer.from(body.tbs);
    const reply: CrlWorkerReply = { id: msg.id, tbs, entries: body.entries, encoded: body.encoded };
    parentPort!.postMessage(reply, [tbs.buffer as ArrayBuffer]);
  } catch (e) {
    const reply: CrlWorkerReply = { id: msg.id, error: { code: isKakuinError(e) ? e.code : undefined, message: (e as Error)?.message ?? String(e) } };
    parentPort!.postMessage(reply);
  }
});
