/**
 * The OCSP responder process of the scale benchmark, as a `--role ocsp` process runs it: the
 * registry opened read-only, responses signed in memory only (persistResponses: false), the feed
 * followed. `node dist/bench/scale-ocsp-child.js <fixture.sqlite> <fixture.json>` prints one JSON
 * line once it listens on 127.0.0.1 (port, responses, start-up phases), and stops on SIGTERM.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SoftwareSigner } from '../hsm-adapters/software/index.js';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createOcspHttpServer, type Logger, OcspResponder, Publications, withWorkerWalks } from '../ocsp-responder/index.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';
import type { ScaleFixtureMeta } from './scale-keys.js';

const stderrLogger: Logger = {
  info: () => undefined,
  warn: (m, f) => process.stderr.write(`warn ${m} ${JSON.stringify(f ?? {})}\n`),
  error: (m, f) => process.stderr.write(`error ${m} ${JSON.stringify(f ?? {})}\n`),
};

async function main(): Promise<void> {
  const t0 = performance.now();
  const meta = JSON.parse(readFileSync(process.argv[3], 'utf8')) as ScaleFixtureMeta;
  const registry = await openSqliteRegistry({ path: process.argv[2], readonly: true });
  // The two whole-registry walks in worker threads, each on a read-only connection of its own
  // (as the CRL builder opens one); KAKUIN_SCALE_INLINE_WALKS=1 walks on the event loop instead.
  const workerOpen = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'registry', 'sqlite', 'worker-open.js')).href;
  const view = process.env.KAKUIN_SCALE_INLINE_WALKS === '1' ? registry : withWorkerWalks(registry, { module: workerOpen, options: { path: process.argv[2] } });
  const responder = new OcspResponder({
    registry: view, logger: stderrLogger, validityMs: meta.validityMs, persistResponses: false,
    identities: [{
      issuerId: 'device', issuerCertificateDer: Buffer.from(meta.caCertDerB64, 'base64'),
      responderCertificateDer: Buffer.from(meta.responderCertDerB64, 'base64'),
      signer: new SoftwareSigner('file:bench-responder', 'ecdsa-p256', createPrivateKey(meta.responderKeyPem)),
    }],
  });
  const t1 = performance.now();
  await responder.start();
  const t2 = performance.now();
  const listener = createOcspHttpServer({ responder, publications: new Publications({ registry, logger: stderrLogger }), logger: stderrLogger });
  const { port } = await listener.listen(0, '127.0.0.1');
  const stats = responder.presigned.arenaStats();
  process.stdout.write(`${JSON.stringify({
    port, responses: responder.presigned.size, signedAtStart: responder.presigned.stats().signedTotal,
    openMs: Math.round(t1 - t0), startMs: Math.round(t2 - t1), arenaBytes: stats.allocatedBytes, arenaLiveBytes: stats.liveBytes,
  })}\n`);
  process.on('SIGTERM', () => {
    void listener.close().then(() => responder.stop()).then(() => registry.close()).finally(() => process.exit(0));
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`scale-ocsp-child failed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
