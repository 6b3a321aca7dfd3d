/**
 * One gateway cluster worker for the storm bench's two-worker run (bench/storm.ts): the bench's own
 * PKI and registry file, opened read-only, as cli/gateway-worker.ts does it for `kakuin serve`.
 */
import { createDeviceGateway, serveAsGatewayWorker } from '../gateway-auth/index.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';

export interface StormWorkerPayload {
  registryPath: string;
  serverCertificatesPem: string[];
  serverKeyPem: string;
  trustAnchorsPem: string[];
  deviceCaPem: string;
  maxPendingHandshakes: number;
}

serveAsGatewayWorker(async (start) => {
  const p = start.payload as StormWorkerPayload;
  const registry = await openSqliteRegistry({ path: p.registryPath, readonly: true });
  const gateway = createDeviceGateway({
    serverCertificates: p.serverCertificatesPem, serverKeyPem: p.serverKeyPem, trustAnchors: p.trustAnchorsPem,
    deviceIssuers: [{ id: 'device', certificate: p.deviceCaPem }], registry, logger: { info() {}, warn() {}, error() {} },
    telemetry: { sink: { record: async () => {} } }, maxPendingHandshakes: p.maxPendingHandshakes,
    sessions: start.sessions, ticketKeys: start.ticketKeys, workerId: start.slot,
  });
  return { gateway, close: async () => { await gateway.close(); await registry.close(); } };
});
