/**
 * Full CRL with 1,000,000 revoked entries: built in the CRL worker thread (streaming rows from a
 * read-only SQLite connection into one buffer), signed with the device CA's key, stored.
 *
 * The million revoked certificates are written straight into the SQLite file as fixture data (the
 * registry's own issuance path would spend minutes signing certificates nobody reads here).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { CrlPublisher } from '../ca/crl/crl-publisher.js';
import { WorkerCrlBodyBuilder } from '../ca/crl/crl-builder.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';
import { BENCH_URLS, type BenchCa } from './fixtures.js';

/** `count` revoked certificates of the device CA written straight into the file (fixture data), or good ones to revoke later (their serials are returned). */
export function insertRevoked(dbPath: string, count: number, status: 'revoked' | 'good' = 'revoked'): string[] {
  const serials: string[] = [];
  const db = new Database(dbPath);
  try {
    const insert = db.prepare(`INSERT INTO certificates (serial_hex, issuer_id, device_id, profile, status, der, fingerprint_sha256,
      public_key_sha256, not_before, not_after, created_at, revoked_at, reason, invalidity_date, status_seq)
      VALUES (?, 'device', NULL, 'device', ?, x'30', ?, ?, ?, ?, ?, ?, ?, NULL, 0)`);
    const now = Date.now();
    const reasons = ['keyCompromise', 'cessationOfOperation', 'superseded', 'affiliationChanged'];
    db.transaction(() => {
      const rnd = randomBytes(count * 16);
      for (let i = 0; i < count; i++) {
        const serial = rnd.subarray(i * 16, i * 16 + 16);
        serial[0] = 1 + (serial[0] % 127);
        const hex = serial.toString('hex').toUpperCase();
        const revoked = status === 'revoked';
        insert.run(hex, status, hex.toLowerCase().padEnd(64, '0'), hex.toLowerCase().padEnd(64, '1'), now - 86_400_000, now + 3650 * 86_400_000, now,
          revoked ? now - (i % 86_400) * 1000 : null, revoked ? reasons[i % 4] : null);
        if (!revoked) serials.push(hex);
      }
    })();
  } finally {
    db.close();
  }
  return serials;
}

export async function benchCrl(ca: BenchCa, entries: number): Promise<Record<string, number>> {
  const dbPath = path.join(ca.dir, 'crl-bench.db');
  const registry = await openSqliteRegistry({ path: dbPath });
  for (const issuer of [ca.hierarchy.root, ca.hierarchy.device, ca.hierarchy.infrastructure]) await registry.putIssuer({ ...issuer.record });
  insertRevoked(dbPath, entries);
  const here = path.dirname(fileURLToPath(import.meta.url));
  const builder = new WorkerCrlBodyBuilder({ module: pathToFileURL(path.join(here, '..', 'registry', 'sqlite', 'worker-open.js')).href, options: { path: dbPath } });
  let lastInfo: Record<string, unknown> = {};
  const publisher = new CrlPublisher(registry, [ca.hierarchy.device], BENCH_URLS, builder,
    { coalesceMs: 1000, fullCoalesceMs: 5000, fullValidityMs: 86_400_000, fullRebuildMs: 3600_000, deltaValidityMs: 3600_000 },
    { info: (_m, f) => { if (f?.kind === 'full') lastInfo = f; }, error: () => {} });
  try {
    (globalThis as { gc?: () => void }).gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
    const start = process.hrtime.bigint();
    const record = await publisher.publish('device', 'full');
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    if (Number(lastInfo.entries) !== entries) throw new Error(`the CRL has ${String(lastInfo.entries)} entries, expected ${entries}`);
    return {
      crl_full_entries: entries,
      crl_full_build_sign_store_s: Math.round(seconds * 100) / 100,
      crl_full_build_sign_ms: Number(lastInfo.buildMs) + Number(lastInfo.signMs),
      crl_full_store_ms: Number(lastInfo.storeMs),
      crl_full_bytes: record.der.length,
      crl_full_extra_peak_rss_mb: Math.round((peak - rssBefore) / 1048576),
    };
  } finally {
    await publisher.stop();
    await registry.close();
  }
}
