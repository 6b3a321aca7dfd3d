/** Where CRL bodies are built: a dedicated worker thread (the default) or inline (tests, tools). */
import { Worker } from 'node:worker_threads';
import type { Registry } from '../../registry/port.js';
import { ERROR_CATALOGUE, KakuinError, type ErrorCode } from '../../errors/index.js';
import { buildCrlBody, type CrlBody, type CrlBodyRequest } from './crl-body.js';
import { FullCrlEntries } from './full-crl-entries.js';
import type { CrlWorkerMessage, CrlWorkerReply } from './crl-worker.js';

export interface CrlBodyBuilder {
  build(request: CrlBodyRequest): Promise<CrlBody>;
  close(): Promise<void>;
}

/** Builds on the calling thread, keeping full-CRL entries between builds as the worker does. */
export function inlineCrlBodyBuilder(registry: Pick<Registry, 'forEachCrlEntry' | 'latestFeedSeq'>): CrlBodyBuilder {
  const kept = new FullCrlEntries();
  return { build: (request) => buildCrlBody(registry, request, kept), close: async () => kept.forget() };
}

/**
 * How a worker reaches the registry: a module exporting `openRegistry(options): Promise<Registry>`
 * and its (structured-clone friendly) options, chosen by the composition root.
 */
export interface WorkerRegistrySpec {
  module: string;
  options: unknown;
}

export class WorkerCrlBodyBuilder implements CrlBodyBuilder {
  private worker?: Worker;
  private readonly pending = new Map<number, { resolve: (b: CrlBody) => void; reject: (e: unknown) => void }>();
  private nextId = 1;

  constructor(private readonly registrySpec: WorkerRegistrySpec) {}

  private start(): Worker {
    const worker = new Worker(new URL('./crl-worker.js', import.meta.url));
    worker.on('message', (reply: CrlWorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) {
        const code = (reply.error.code && reply.error.code in ERROR_CATALOGUE ? reply.error.code : 'KAKUIN_E_INTERNAL') as ErrorCode;
        p.reject(new KakuinError(code, `CRL build failed: ${reply.error.message}`));
      } else {
        p.resolve({ tbs: Buffer.from(reply.tbs.buffer, reply.tbs.byteOffset, reply.tbs.byteLength), entries: reply.entries, encoded: reply.encoded });
      }
    });
    const fail = (cause: unknown) => {
      this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new KakuinError('KAKUIN_E_INTERNAL', 'the CRL worker stopped', { cause }));
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`CRL worker exited with ${code}`)));
    worker.unref();
    return worker;
  }

  build(request: CrlBodyRequest): Promise<CrlBody> {
    this.worker ??= this.start();
    const worker = this.worker;
    const id = this.nextId++;
    return new Promise<CrlBody>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      const msg: CrlWorkerMessage = { id, registryModule: this.registrySpec.module, registryOptions: this.registrySpec.options, request };
      worker.postMessage(msg);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
