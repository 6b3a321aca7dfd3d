/**
 * Proof-of-possession checks (PKCS#10 self-signature + key and algorithm policy), off the event loop.
 *
 * Verifying an ECDSA P-256 CSR costs ~130 µs of CPU, more than building and signing the
 * certificate. On the main thread that both blocks the event loop (DESIGN.md "The event loop")
 * and caps issuance at one core, so the checks run in a small pool of worker threads while the
 * main thread builds, signs and commits. `workers: 0` checks inline (tests, tiny deployments).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { readCsr, verifyCsr } from '../pkix/index.js';
import { ERROR_CATALOGUE, KakuinError, type ErrorCode } from '../errors/index.js';

export interface ProofOfPossessionVerifier {
  /** Resolves when the CSR's signature verifies and its key and algorithm are accepted. */
  verify(csrDer: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** Default pool size: every core but one, which stays with the event loop; at least one. */
export function defaultVerifierWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

export function createProofOfPossessionVerifier(workers: number): ProofOfPossessionVerifier {
  return workers <= 0 ? inlineVerifier : new WorkerPoolVerifier(workers);
}

const inlineVerifier: ProofOfPossessionVerifier = {
  async verify(csrDer) {
    verifyCsr(readCsr(csrDer));
  },
  async close() {},
};

/** What a verifier worker answers for one request. */
export interface VerifierReply {
  id: number;
  error?: { code: string; message: string };
}

/**
 * One message to a worker: several CSRs packed into one buffer of their own (transferred, not
 * copied). Posting a Buffer that is a slice of Node's shared pool would clone the whole 8 KiB pool
 * slab per CSR; and one message per CSR costs more in message passing than a batch per turn.
 */
export interface VerifierRequest {
  ids: number[];
  /** End offset of each CSR in `ders` (the first starts at 0). */
  ends: number[];
  ders: Uint8Array;
}

/** Most CSRs in one message (about 8 ms of work for P-256): batches stay short so results flow on. */
const MAX_PER_MESSAGE = 64;

interface Slot {
  worker: Worker;
  inFlight: number;
  /** Requests of this turn not yet posted. */
  queued: { id: number; der: Buffer }[];
}

interface Pending {
  resolve: () => void;
  reject: (e: unknown) => void;
  slot: Slot;
}

class WorkerPoolVerifier implements ProofOfPossessionVerifier {
  private readonly workers: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private flushScheduled = false;

  constructor(size: number) {
    for (let i = 0; i < size; i++) this.spawn();
  }

  private spawn(): void {
    const worker = new Worker(new URL('./pop-worker.js', import.meta.url));
    const slot: Slot = { worker, inFlight: 0, queued: [] };
    worker.on('message', (replies: VerifierReply[]) => {
      slot.inFlight -= replies.length;
      if (slot.inFlight === 0) worker.unref();
      for (const reply of replies) {
        const p = this.pending.get(reply.id);
        if (!p) continue;
        this.pending.delete(reply.id);
        if (!reply.error) {
          p.resolve();
          continue;
        }
        const code = (reply.error.code in ERROR_CATALOGUE ? reply.error.code : 'KAKUIN_E_INTERNAL') as ErrorCode;
        p.reject(new KakuinError(code, reply.error.message));
      }
    });
    worker.on('error', (e) => this.failWorker(slot, e));
    worker.on('exit', (code) => {
      if (!this.closed) this.failWorker(slot, new Error(`verifier worker exited with ${code}`));
    });
    // An idle worker must not keep the process alive; a busy one must (its caller awaits it).
    // Unref'd after the listeners are attached, since attaching refs the worker's port again.
    worker.unref();
    this.workers.push(slot);
  }

  /** A crashed worker fails its requests (the callers see KAKUIN_E_INTERNAL) and is replaced. */
  private failWorker(slot: Slot, cause: unknown): void {
    const i = this.workers.indexOf(slot);
    if (i < 0) return;
    this.workers.splice(i, 1);
    slot.queued = [];
    for (const [id, p] of this.pending) {
      if (p.slot === slot) {
        this.pending.delete(id);
        p.reject(new KakuinError('KAKUIN_E_INTERNAL', 'CSR verification failed', { cause }));
      }
    }
    if (!this.closed) this.spawn();
  }

  verify(csrDer: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new KakuinError('KAKUIN_E_INTERNAL', 'the CSR verifier is closed'));
    let slot = this.workers[0];
    for (const w of this.workers) if (w.inFlight < slot.inFlight) slot = w;
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      if (slot.inFlight++ === 0) slot.worker.ref();
      slot.queued.push({ id, der: csrDer });
      if (slot.queued.length >= MAX_PER_MESSAGE) this.post(slot);
      else this.scheduleFlush();
    });
  }

  /** Requests made in one turn of the event loop go out together at its end. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const slot of this.workers) if (slot.queued.length > 0) this.post(slot);
    });
  }

  private post(slot: Slot): void {
    const batch = slot.queued;
    slot.queued = [];
    let total = 0;
    for (const q of batch) total += q.der.length;
    const ders = new Uint8Array(total);
    const ends: number[] = [];
    let at = 0;
    for (const q of batch) {
      ders.set(q.der, at);
      at += q.der.length;
      ends.push(at);
    }
    const message: VerifierRequest = { ids: batch.map((q) => q.id), ends, ders };
    slot.worker.postMessage(message, [ders.buffer]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    for (const p of this.pending.values()) p.reject(new KakuinError('KAKUIN_E_INTERNAL', 'the CSR verifier was closed'));
    this.pending.clear();
  }
}
