/**
 * The listener in a child process (for the flood test: its memory is measured apart from the load
 * generator's). Started with `node --expose-gc listener-process.js <config.json>`; reports
 * `{ port }` over IPC, answers `{ type: 'rss' }` with its resident memory after a full GC, and
 * exits on `{ type: 'stop' }`.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SoftwareSigner } from '../../hsm-adapters/software/index.js';
import { createOcspHttpServer, OcspResponder, Publications } from '../../ocsp-responder/index.js';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { pollingFeed, RecordingLogger } from './fixtures.js';

export interface ListenerProcessConfig {
  dbPath: string;
  issuerId: string;
  caCertDerB64: string;
  responderCertDerB64: string;
  responderKeyPem: string;
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2], 'utf8')) as ListenerProcessConfig;
  const registry = await openSqliteRegistry({ path: config.dbPath });
  const signer = new SoftwareSigner('file:responder', 'ecdsa-p256', createPrivateKey(config.responderKeyPem));
  const logger = new RecordingLogger();
  const responder = new OcspResponder({
    registry, feed: pollingFeed(registry, 50), logger,
    identities: [{
      issuerId: config.issuerId, issuerCertificateDer: Buffer.from(config.caCertDerB64, 'base64'),
      responderCertificateDer: Buffer.from(config.responderCertDerB64, 'base64'), signer,
    }],
  });
  await responder.start();
  const listener = createOcspHttpServer({ responder, publications: new Publications({ registry, logger }), logger });
  const { port } = await listener.listen(0, '127.0.0.1');
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (m: { type: string }) => {
    if (m.type === 'rss') {
      if (gc) {
        gc();
        gc();
      }
      process.send!({ type: 'rss', rss: process.memoryUsage().rss, gc: gc !== undefined, errors: logger.lines.filter((l) => l.level === 'error').length });
    } else if (m.type === 'stop') {
      void listener.close().then(() => responder.stop()).then(() => registry.close()).finally(() => process.exit(0));
    }
  });
  process.send!({ type: 'ready', port });
}

main().catch((e: unknown) => {
  process.stderr.write(`listener-process failed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
