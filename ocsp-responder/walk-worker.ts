/**
 * Worker thread of worker-walks.ts: opens its own registry connection from the module the
 * composition root names (for SQLite a read-only connection to the same file, as the CRL worker
 * does), walks every stored OCSP response or every certificate status of one issuer, and posts
 * the rows in packed batches (one transferred ArrayBuffer of DER per batch, typed arrays for the
 * numbers), so the event loop of the responder only unpacks and never steps SQLite itself.
 *
 * Backpressure: at most MAX_IN_FLIGHT batches are unacknowledged; a synchronous adapter (SQLite
 * walks inside one call) is held with Atomics.wait, which a worker thread may do.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Registry } from '../registry/port.js';

export interface WalkWorkerData {
  module: string;
  options: unknown;
  kind: 'ocsp' | 'status';
  issuerId?: string;
  /** Int32Array over a SharedArrayBuffer: [batches acknowledged]. */
  acks: SharedArrayBuffer;
}

export interface OcspBatch {
  kind: 'ocsp';
  issuers: string[];
  /** Index into `issuers`, one per row. */
  issuer: Uint16Array;
  serials: string[];
  der: ArrayBuffer;
  /** Row i's DER is der[offsets[i], offsets[i + 1]). */
  offsets: Uint32Array;
  /** thisUpdate, nextUpdate (ms) per row. */
  times: Float64Array;
}

export interface StatusBatch {
  kind: 'status';
  serials: string[];
  /** 0 good, 1 revoked, 2 held. */
  status: Uint8Array;
  reasons: (string | null)[];
  /** revokedAt, invalidityDate, notAfter (ms; NaN when absent) per row. */
  times: Float64Array;
}

export type WalkMessage = OcspBatch | StatusBatch | { kind: 'done'; rows: number } | { kind: 'error'; code?: string; message: string };

export const MAX_IN_FLIGHT = 4;
const BATCH_ROWS = 4096;
const STATUS_CODES: Record<string, number> = { good: 0, revoked: 1, held: 2 };

async function main(): Promise<void> {
  const d = workerData as WalkWorkerData;
  const acks = new Int32Array(d.acks);
  const registry = await import(d.module).then((m: { openRegistry(o: unknown): Promise<Registry> }) => m.openRegistry(d.options));
  let sent = 0;
  let rows = 0;
  const post = (msg: WalkMessage, transfer: ArrayBuffer[]): void => {
    for (;;) {
      const acked = Atomics.load(acks, 0);
      if (sent - acked < MAX_IN_FLIGHT) break;
      Atomics.wait(acks, 0, acked, 1000);
    }
    parentPort!.postMessage(msg, transfer);
    sent++;
  };
  try {
    if (d.kind === 'ocsp') {
      const issuerIndex = new Map<string, number>();
      const issuers: string[] = [];
      let ders: Buffer[] = [];
      let serials: string[] = [];
      let issuer = new Uint16Array(BATCH_ROWS);
      let times = new Float64Array(2 * BATCH_ROWS);
      const flush = (): void => {
        if (ders.length === 0) return;
        const n = ders.length;
        const offsets = new Uint32Array(n + 1);
        let total = 0;
        for (let i = 0; i < n; i++) {
          offsets[i] = total;
          total += ders[i].length;
        }
        offsets[n] = total;
        const packed = new Uint8Array(total);
        for (let i = 0; i < n; i++) packed.set(ders[i], offsets[i]);
        post({ kind: 'ocsp', issuers: issuers.slice(), issuer: issuer.subarray(0, n), serials, der: packed.buffer, offsets, times: times.subarray(0, 2 * n) },
          [packed.buffer, offsets.buffer, issuer.buffer, times.buffer]);
        ders = [];
        serials = [];
        issuer = new Uint16Array(BATCH_ROWS);
        times = new Float64Array(2 * BATCH_ROWS);
      };
      await registry.forEachOcspResponse(d.issuerId, (r) => {
        let k = issuerIndex.get(r.issuerId);
        if (k === undefined) {
          k = issuers.length;
          issuers.push(r.issuerId);
          issuerIndex.set(r.issuerId, k);
        }
        const i = ders.length;
        issuer[i] = k;
        times[2 * i] = r.thisUpdate.getTime();
        times[2 * i + 1] = r.nextUpdate.getTime();
        ders.push(r.der);
        serials.push(r.serialHex);
        rows++;
        if (ders.length === BATCH_ROWS) flush();
      });
      flush();
    } else {
      let serials: string[] = [];
      let reasons: (string | null)[] = [];
      let status = new Uint8Array(BATCH_ROWS);
      let times = new Float64Array(3 * BATCH_ROWS);
      const flush = (): void => {
        const n = serials.length;
        if (n === 0) return;
        post({ kind: 'status', serials, status: status.subarray(0, n), reasons, times: times.subarray(0, 3 * n) }, [status.buffer, times.buffer]);
        serials = [];
        reasons = [];
        status = new Uint8Array(BATCH_ROWS);
        times = new Float64Array(3 * BATCH_ROWS);
      };
      await registry.forEachCertificateStatus(d.issuerId!, (serialHex, st, revokedAtMs, reason, invalidityDateMs, notAfterMs) => {
        const i = serials.length;
        serials.push(serialHex);
        status[i] = STATUS_CODES[st] ?? 255;
        reasons.push(reason ?? null);
        times[3 * i] = revokedAtMs ?? NaN;
        times[3 * i + 1] = invalidityDateMs ?? NaN;
        times[3 * i + 2] = notAfterMs;
        rows++;
        if (serials.length === BATCH_ROWS) flush();
      });
      flush();
    }
    post({ kind: 'done', rows }, []);
  } catch (e) {
    parentPort!.postMessage({ kind: 'error', code: (e as { code?: string })?.code, message: (e as Error)?.message ?? String(e) } satisfies WalkMessage);
  } finally {
    await registry.close().catch(() => undefined);
  }
}

void main().catch((e: unknown) => {
  parentPort!.postMessage({ kind: 'error', message: (e as Error)?.message ?? String(e) } satisfies WalkMessage);
});
