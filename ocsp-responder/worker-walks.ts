/**
 * The responder's two whole-registry walks — every stored response (start) and every certificate
 * status of an issuer (reconciliation) — in worker threads, each on a registry connection of its
 * own opened from the module the composition root names (the CRL builder's WorkerRegistrySpec).
 * DESIGN.md "Storage": the forEach* walks of the SQLite adapter are synchronous and belong on a
 * connection of their own. With a million certificates each walk steps SQLite for seconds; here
 * they run on other cores, side by side, while the event loop only unpacks rows and fills the
 * arena (issue 8: a responder over 1,000,000 responses answers within 10 s of its start).
 *
 * The rows reach the callbacks on the calling thread, in order, as the port promises; an exception
 * thrown by a callback stops the worker and rejects the walk with that exception.
 */
import { Worker } from 'node:worker_threads';
import { ERROR_CATALOGUE, type ErrorCode, KakuinError } from '../errors/index.js';
import type { CertificateStatus, CertificateStatusRow, StoredOcspResponse } from '../registry/port.js';
import type { OcspRegistryView } from './registry-view.js';
import type { OcspBatch, StatusBatch, WalkMessage, WalkWorkerData } from './walk-worker.js';

/** The module a worker opens its own registry connection with (`openRegistry(options)`), and its options. */
export interface WalkRegistrySpec {
  module: string;
  options: unknown;
}

const STATUS_NAMES: CertificateStatus[] = ['good', 'revoked', 'held'];

/** `view`, with forEachOcspResponse and forEachCertificateStatus run in worker threads. */
export function withWorkerWalks(view: OcspRegistryView, spec: WalkRegistrySpec): OcspRegistryView {
  return {
    readFeed: (afterSeq, limit) => view.readFeed(afterSeq, limit),
    // The change-stream wake-up (MongoDB) stays with the registry it came from.
    ...(view.watchFeed !== undefined && { watchFeed: (wake: () => void) => view.watchFeed!(wake) }),
    latestFeedSeq: () => view.latestFeedSeq(),
    putOcspResponses: (responses) => view.putOcspResponses(responses),
    getLatestCrl: (issuerId, kind) => view.getLatestCrl(issuerId, kind),
    getCertificate: (serialHex) => view.getCertificate(serialHex),
    getIssuer: (id) => view.getIssuer(id),
    forEachOcspResponse: (issuerId, row) => walk(spec, 'ocsp', issuerId, (m) => ocspRows(m as OcspBatch, row)),
    forEachCertificateStatus: (issuerId, row) => walk(spec, 'status', issuerId, (m) => statusRows(m as StatusBatch, row)),
  };
}

function ocspRows(b: OcspBatch, row: (r: StoredOcspResponse) => void): void {
  const der = Buffer.from(b.der);
  for (let i = 0; i < b.serials.length; i++) {
    row({
      issuerId: b.issuers[b.issuer[i]], serialHex: b.serials[i], der: der.subarray(b.offsets[i], b.offsets[i + 1]),
      thisUpdate: new Date(b.times[2 * i]), nextUpdate: new Date(b.times[2 * i + 1]),
    });
  }
}

function statusRows(b: StatusBatch, row: CertificateStatusRow): void {
  for (let i = 0; i < b.serials.length; i++) {
    const t = b.times;
    row(b.serials[i], STATUS_NAMES[b.status[i]], Number.isNaN(t[3 * i]) ? undefined : t[3 * i],
      (b.reasons[i] ?? undefined) as Parameters<CertificateStatusRow>[3], Number.isNaN(t[3 * i + 1]) ? undefined : t[3 * i + 1], t[3 * i + 2]);
  }
}

function walk(spec: WalkRegistrySpec, kind: 'ocsp' | 'status', issuerId: string | undefined, deliver: (m: WalkMessage) => void): Promise<void> {
  const acks = new SharedArrayBuffer(4);
  const counter = new Int32Array(acks);
  const data: WalkWorkerData = { module: spec.module, options: spec.options, kind, issuerId, acks };
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const worker = new Worker(new URL('./walk-worker.js', import.meta.url), { workerData: data });
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      if (error === undefined) resolve();
      else reject(error);
    };
    worker.on('message', (m: WalkMessage) => {
      if (settled) return;
      if (m.kind === 'done') {
        finish();
        return;
      }
      if (m.kind === 'error') {
        const code = (m.code !== undefined && m.code in ERROR_CATALOGUE ? m.code : 'KAKUIN_E_REGISTRY_UNAVAILABLE') as ErrorCode;
        finish(new KakuinError(code, `reading the registry in a worker failed: ${m.message}`));
        return;
      }
      try {
        deliver(m);
      } catch (e) {
        finish(e); // the caller's exception, as it was thrown
        return;
      }
      Atomics.add(counter, 0, 1);
      Atomics.notify(counter, 0);
    });
    worker.on('error', (e) => finish(new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the registry walk worker failed', { cause: e })));
    worker.on('exit', (code) => finish(new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', `the registry walk worker exited with ${code}`)));
  });
}
