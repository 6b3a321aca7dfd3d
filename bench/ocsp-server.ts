/**
 * kakuin's OCSP listener as its own process for bench/ocsp.ts, so the load generator never shares
 * its event loop: `node dist/bench/ocsp-server.js <config.json>` prints `{"port":N}` on one line
 * once it listens on 127.0.0.1, and stops on SIGTERM. The feed is not followed (nothing changes
 * during a benchmark); the pre-signed responses come from the registry at start.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SoftwareSigner } from '../hsm-adapters/software/index.js';
import { createOcspHttpServer, type FeedFactory, type Logger, OcspResponder, Publications } from '../ocsp-responder/index.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';

export interface OcspServerConfig {
  dbPath: string;
  issuerId: string;
  caCertDerB64: string;
  responderCertDerB64: string;
  responderKeyPem: string;
}

const staticFeed: FeedFactory = (afterSeq) => ({
  start() {}, stop() {}, poke() {}, lastSeq: afterSeq, lastSuccessAt: Date.now(),
});

const stderrLogger: Logger = {
  info: () => undefined,
  warn: (m, f) => process.stderr.write(`warn ${m} ${JSON.stringify(f ?? {})}\n`),
  error: (m, f) => process.stderr.write(`error ${m} ${JSON.stringify(f ?? {})}\n`),
};

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2], 'utf8')) as OcspServerConfig;
  const registry = await openSqliteRegistry({ path: config.dbPath });
  const responder = new OcspResponder({
    registry, feed: staticFeed, logger: stderrLogger,
    identities: [{
      issuerId: config.issuerId, issuerCertificateDer: Buffer.from(config.caCertDerB64, 'base64'),
      responderCertificateDer: Buffer.from(config.responderCertDerB64, 'base64'),
      signer: new SoftwareSigner('file:bench-responder', 'ecdsa-p256', createPrivateKey(config.responderKeyPem)),
    }],
  });
  await responder.start();
  const listener = createOcspHttpServer({ responder, publications: new Publications({ registry, logger: stderrLogger }), logger: stderrLogger });
  const { port } = await listener.listen(0, '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ port, responses: responder.presigned.size })}\n`);
  process.on('SIGTERM', () => {
    void listener.close().then(() => responder.stop()).then(() => registry.close()).finally(() => process.exit(0));
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`ocsp-server failed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
