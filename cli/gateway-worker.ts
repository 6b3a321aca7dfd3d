/**
 * The entry point of one gateway cluster worker (gateway.workers > 1; gateway-auth/cluster/). The
 * primary — `kakuin serve` or `kakuin serve --role gateway` — forks this script and sends it the
 * config, the gateway's TLS material and the CA certificates it trusts (GatewayWorkerPayload). Here
 * the gateway is built exactly as in a single process (deviceGatewayOptions), with:
 * - the registry opened read-only on a connection of its own, and the revocation feed followed
 *   from it (the kill switch holds in this worker even between the primary's pokes);
 * - device activity sent to the primary's recorder (the one writer, and the detections feed in
 *   `kakuin serve`), or its own recorder (cli/activity.ts) when the primary has none; telemetry
 *   without an upstream goes to the primary, which writes the one file;
 * - the shared session-ticket keys and the session reports going to the primary.
 * No CA key is loaded, no management listener runs.
 */
import { createDeviceGateway, jsonLinesTelemetrySink, serveAsGatewayWorker } from '../gateway-auth/index.js';
import type { KakuinConfig } from './config.js';
import { startActivity } from './activity.js';
import { deviceGatewayOptions, type GatewayWorkerPayload } from './device-gateway.js';
import { createLogger } from './logger.js';
import { openRegistry } from './wiring.js';

serveAsGatewayWorker(async (start) => {
  const p = start.payload as GatewayWorkerPayload;
  const config = p.config;
  const g = config.gateway;
  const logger = createLogger(config.log.level, `kakuin-gateway-${start.slot}`);
  const registry = await openRegistry(config, { readonly: true });
  // The primary records activity (and runs detections) when it has a recorder; else this worker writes its own.
  const activity = start.activity === undefined ? startActivity(config, registry, logger) : undefined;
  const recorder = start.activity ?? activity?.recorder;
  // Without an upstream the primary records telemetry (one file, one writer); this file only if it cannot.
  const ownSink = g.upstreamUrl || start.telemetry !== undefined ? undefined : jsonLinesTelemetrySink(g.telemetryDir, `telemetry-${process.pid}.jsonl`);
  const sink = start.telemetry ?? ownSink;
  try {
    const gateway = createDeviceGateway({
      ...deviceGatewayOptions(config, {
        tls: p.tls, registry, logger, ocspUrl: p.ocspUrl, sink, sessions: start.sessions,
        ...(recorder !== undefined && { activity: recorder }),
        trust: { deviceCas: p.deviceCas.map((ca) => ({ id: ca.id, certificateDer: Buffer.from(ca.der, 'base64') })), rootDer: Buffer.from(p.rootDer, 'base64') },
      }),
      ticketKeys: start.ticketKeys,
      workerId: start.slot,
    });
    return {
      gateway,
      close: async () => {
        await gateway.close();
        await activity?.close();
        await ownSink?.close();
        await registry.close();
      },
    };
  } catch (e) {
    await activity?.close();
    await ownSink?.close();
    await registry.close();
    throw e;
  }
});
