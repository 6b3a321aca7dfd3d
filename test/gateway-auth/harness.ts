/** Starting a gateway on 127.0.0.1 for tests, with a logger that keeps its lines. */
import { createDeviceGateway, type DeviceGateway, type DeviceGatewayOptions } from '../../gateway-auth/index.js';
import type { GatewayPki } from './pki.js';

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

export class MemoryLogger {
  readonly lines: LogLine[] = [];

  info(message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'info', message, fields });
  }

  warn(message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'warn', message, fields });
  }

  error(message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level: 'error', message, fields });
  }

  find(message: string): LogLine[] {
    return this.lines.filter((l) => l.message === message);
  }
}

/** The options the composition root would pass, built from the test PKI. */
export function gatewayOptions(pki: GatewayPki, logger: MemoryLogger, overrides: Partial<DeviceGatewayOptions> = {}): DeviceGatewayOptions {
  return {
    serverCertificates: [pki.server.der, pki.infraCa.der],
    serverKeyPem: pki.server.key.keyPem,
    // The station CA is trusted for the handshake on purpose: its leaves must still be refused as non-devices.
    trustAnchors: [pki.root.pem, pki.deviceCa.der, pki.stationCa.der],
    deviceIssuers: [{ id: 'device', certificate: pki.deviceCa.der }],
    registry: pki.registry,
    logger,
    ...overrides,
  };
}

export interface RunningGateway {
  gateway: DeviceGateway;
  port: number;
  logger: MemoryLogger;
  close(): Promise<void>;
}

export async function startGateway(pki: GatewayPki, overrides: Partial<DeviceGatewayOptions> = {}): Promise<RunningGateway> {
  const logger = new MemoryLogger();
  const gateway = createDeviceGateway(gatewayOptions(pki, logger, overrides));
  const { port } = await gateway.listen(0, '127.0.0.1');
  return { gateway, port, logger, close: () => gateway.close() };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
