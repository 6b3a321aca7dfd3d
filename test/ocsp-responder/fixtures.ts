/**
 * Fixtures of the responder tests, built without ca/: a P-256 CA and its delegated OCSP responder
 * (id-kp-OCSPSigning + ocsp-nocheck) made with pkix's encoders (test/pkix/crl-ocsp-fixtures.ts),
 * a real SQLite registry in a temporary directory, device certificates recorded with
 * recordIssuance, and status changes made with applyStatusChange.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { SoftwareSigner } from '../../hsm-adapters/software/index.js';
import { type FeedFactory, feedFollowerFactory, type Logger, type OcspSigningIdentity } from '../../ocsp-responder/index.js';
import { parseCertificate, type CrlReason } from '../../pkix/index.js';
import type { Registry } from '../../registry/port.js';
import { openSqliteRegistry, type SqliteRegistry } from '../../registry/sqlite/index.js';
import { issue, keyPem, makeCa, newSerial, type TestCa, type TestCert, writeIn } from '../pkix/crl-ocsp-fixtures.js';
import { makeTempDir } from '../support/index.js';

export { issue, keyPem, makeCa, newSerial, type TestCa, type TestCert, writeIn };

export interface Responder {
  cert: TestCert;
  identity: OcspSigningIdentity;
}

/** A delegated responder of `ca` and its identity (RFC 6960 §4.2.2.2). */
export function makeResponder(ca: TestCa, issuerId: string, cn = `OCSP responder ${issuerId}`): Responder {
  const cert = issue(ca, cn, 'ocsp-responder');
  const signer = new SoftwareSigner(`file:${cn}`, 'ecdsa-p256', cert.privateKey);
  return { cert, identity: { issuerId, issuerCertificateDer: ca.certDer, responderCertificateDer: cert.certDer, signer } };
}

export class RecordingLogger implements Logger {
  readonly lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  info(message: string, fields?: Record<string, unknown>): void { this.lines.push({ level: 'info', message, fields }); }
  warn(message: string, fields?: Record<string, unknown>): void { this.lines.push({ level: 'warn', message, fields }); }
  error(message: string, fields?: Record<string, unknown>): void { this.lines.push({ level: 'error', message, fields }); }
}

/** The registry's FeedFollower, polling fast so tests do not wait. */
export function pollingFeed(registry: Pick<Registry, 'readFeed'>, pollIntervalMs = 20): FeedFactory {
  return feedFollowerFactory(registry, { pollIntervalMs });
}

export interface RegistryFixture {
  dir: string;
  dbPath: string;
  registry: SqliteRegistry;
  cleanup(): Promise<void>;
}

export async function openRegistry(): Promise<RegistryFixture> {
  const tmp = makeTempDir('kakuin-ocsp-');
  const dbPath = path.join(tmp.dir, 'registry.db');
  const registry = await openSqliteRegistry({ path: dbPath });
  return {
    dir: tmp.dir, dbPath, registry,
    cleanup: async () => {
      await registry.close().catch(() => undefined);
      tmp.cleanup();
    },
  };
}

export async function putIssuer(registry: Registry, issuerId: string, ca: TestCa): Promise<void> {
  await registry.putIssuer({ id: issuerId, kind: 'device', certificateDer: ca.certDer, keyUri: `file:${issuerId}-ca` });
}

/** A device certificate of `ca`, recorded under `issuerId` (committed before this resolves). */
export async function recordLeaf(registry: Registry, ca: TestCa, issuerId: string, cn = 'device', serial = newSerial()): Promise<TestCert> {
  const cert = issue(ca, cn, 'leaf', serial);
  const parsed = parseCertificate(cert.certDer);
  await registry.recordIssuance({
    certificate: {
      serialHex: parsed.serialHex, issuerId, profile: 'device', der: cert.certDer,
      fingerprintSha256: createHash('sha256').update(cert.certDer).digest('hex'),
      publicKeySha256: createHash('sha256').update(cert.spkiDer).digest('hex'),
      notBefore: parsed.notBefore, notAfter: parsed.notAfter,
    },
    audit: { type: 'certificate.issued', actor: 'test', serialHex: parsed.serialHex },
  });
  return cert;
}

export function serialHexOf(cert: TestCert): string {
  return cert.serial.toString('hex').toUpperCase();
}

/** Revokes (or holds with certificateHold) a certificate; returns the feed seq of the change. */
export async function setStatus(registry: Registry, cert: TestCert, to: 'revoked' | 'held' | 'good', reason?: CrlReason): Promise<number> {
  const revokedAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 5000);
  const entries = await registry.applyStatusChange({
    certificates: [{
      serialHex: serialHexOf(cert), from: to === 'good' ? ['held'] : ['good', 'held'], to,
      ...(to === 'revoked' && { reason: reason ?? 'keyCompromise', revokedAt }),
      ...(to === 'held' && { reason: 'certificateHold', revokedAt }),
    }],
    audit: [{ type: `certificate.${to}`, actor: 'test', serialHex: serialHexOf(cert) }],
  });
  return entries[entries.length - 1].seq;
}
