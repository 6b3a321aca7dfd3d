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

interface Slot {
  worker: Worker;
  inFlight: number;
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

  constructor(size: number) {
    for (let i = 0; i < size; i++) this.spawn();
  }

  private spawn(): void {
    const worker = new Worker(new URL('./pop-worker.js', import.meta.url));
    const slot: Slot = { worker, inFlight: 0 };
    worker.on('message', (reply: VerifierReply) => {
      if (--slot.inFlight === 0) worker.unref();
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (!reply.error) return p.resolve();
      const code = (reply.error.code in ERROR_CATALOGUE ? reply.error.code : 'KAKUIN_E_INTERNAL') as ErrorCode;
      p.reject(new KakuinError(code, reply.error.message));
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
      slot.worker.postMessage({ id, der: csrDer });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
    for (const p of this.pending.values()) p.reject(new KakuinError('KAKUIN_E_INTERNAL', 'the CSR verifier was closed'));
    this.pending.clear();
  }
}
