/** Set-up shared by the benchmarks: a CA in a temporary data directory, devices, and CSRs. */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KeyRing } from '../hsm-adapters/index.js';
import { SoftwareKeyStore } from '../hsm-adapters/software/index.js';
import { bootstrapHierarchy, type CaHierarchy } from '../ca/hierarchy.js';
import { publicUrls } from '../ca/urls.js';
import { encodeCertificationRequest, encodeCertificationRequestInfo } from '../pkix/csr-encode.js';
import { encodeName } from '../pkix/index.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';
import type { Registry } from '../registry/port.js';

export interface BenchCa {
  dir: string;
  dbPath: string;
  keys: KeyRing;
  hierarchy: CaHierarchy;
  cleanup(): void;
}

export const BENCH_URLS = publicUrls('http://localhost:8080');

/** A bench CA; `options` put its keys elsewhere (the HSM bench: a SoftHSM2 token). */
export async function createBenchCa(options: { keys?: (dir: string) => KeyRing; keyUriFor?: (id: string) => string } = {}): Promise<BenchCa> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-'));
  const dbPath = path.join(dir, 'kakuin.db');
  const registry = await openSqliteRegistry({ path: dbPath });
  const keys = options.keys?.(dir) ?? new KeyRing([new SoftwareKeyStore({ directory: path.join(dir, 'keys'), passphrase: 'bench-passphrase' })]);
  const hierarchy = await bootstrapHierarchy(registry, keys, {
    organization: 'kakuin bench', rootKeyAlgorithm: 'ecdsa-p384', issuingKeyAlgorithm: 'ecdsa-p256',
    rootValidityYears: 20, issuingValidityYears: 10, keyUriFor: options.keyUriFor ?? ((id) => `file:${id}-ca`), urls: BENCH_URLS, actor: 'bench',
  });
  await registry.close();
  return { dir, dbPath, keys, hierarchy, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Copy the CA's issuer records into a fresh registry file (one per measured run). */
export async function freshRegistry(ca: BenchCa, name: string, synchronous: 'NORMAL' | 'FULL'): Promise<{ registry: Registry; dbPath: string }> {
  const dbPath = path.join(ca.dir, `${name}.db`);
  const registry = await openSqliteRegistry({ path: dbPath, synchronous });
  for (const issuer of [ca.hierarchy.root, ca.hierarchy.device, ca.hierarchy.infrastructure]) {
    await registry.putIssuer({ ...issuer.record });
  }
  return { registry, dbPath };
}

/** Register `count` devices of one manufacturer; returns their ids in order. */
export async function registerDevices(registry: Registry, count: number, prefix: string): Promise<{ manufacturerId: string; deviceIds: string[]; serials: string[] }> {
  const m = await registry.createManufacturer({ name: `Bench ${prefix}` });
  const deviceIds: string[] = [];
  const serials: string[] = [];
  for (let i = 0; i < count; i++) {
    const serialNumber = `${prefix}-${String(i).padStart(7, '0')}`;
    deviceIds.push((await registry.createDevice({ manufacturerId: m.id, serialNumber })).id);
    serials.push(serialNumber);
  }
  return { manufacturerId: m.id, deviceIds, serials };
}

/** `count` P-256 PKCS#10 requests (DER), each with its own key, subject serialNumber = serials[i]. */
export function makeP256Csrs(serials: string[]): Buffer[] {
  return serials.map((serialNumber) => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const info = encodeCertificationRequestInfo(encodeName([{ type: 'serialNumber', value: serialNumber }]), spki);
    return encodeCertificationRequest(info, 'ecdsa-with-SHA256', sign('sha256', info, privateKey));
  });
}

/** Run `work(i)` for i in [0, n) with at most `concurrency` in flight; returns elapsed seconds. */
export async function runConcurrent(n: number, concurrency: number, work: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) {
      const i = next++;
      await work(i);
    }
  }));
  return Number(process.hrtime.bigint() - start) / 1e9;
}
