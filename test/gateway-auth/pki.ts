/**
 * A small PKI for the gateway tests and benchmark, built with pkix encoders and node:crypto keys:
 * a root; under it a device issuing CA, a station CA and an infrastructure CA; an unrelated CA
 * nobody trusts; a delegated OCSP signer of the device CA; the gateway's server certificate; and
 * device certificates recorded in a real SQLite registry (so their devices are `active`).
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  authorityKeyIdentifierExt, basicConstraintsExt, encodeCertificate, encodeName, encodeTbsCertificate, extKeyUsageExt, keyIdentifier,
  keyUsageExt, ocspNoCheckExt, subjectAltNameExt, subjectKeyIdentifierExt, toPem, type GeneralName, type KeyPurposeName,
} from '../../pkix/index.js';
import type { CrlReason } from '../../pkix/index.js';
import { openSqliteRegistry, type SqliteRegistry } from '../../registry/sqlite/index.js';
import type { DeviceStatus } from '../../registry/port.js';

const DAY = 86_400_000;

export interface TestKey {
  privateKey: KeyObject;
  spkiDer: Buffer;
  keyPem: string;
}

export interface TestCert {
  der: Buffer;
  pem: string;
  key: TestKey;
  nameDer: Buffer;
  serial: Buffer;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
}

export function makeKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKey, spkiDer: publicKey.export({ type: 'spki', format: 'der' }),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function newSerial(): Buffer {
  const s = randomBytes(16);
  s[0] = 1 + (s[0] % 127);
  return s;
}

export interface IssueSpec {
  cn: string;
  ca?: boolean;
  san?: GeneralName[];
  eku?: KeyPurposeName[];
  notBefore?: Date;
  notAfter?: Date;
  key?: TestKey;
  extra?: Buffer[];
}

/** Issues a certificate under `issuer` (self-signed when issuer is undefined). */
export function issue(issuer: TestCert | undefined, spec: IssueSpec): TestCert {
  const key = spec.key ?? makeKey();
  const nameDer = encodeName([{ type: 'O', value: 'kakuin gateway tests' }, { type: 'CN', value: spec.cn }]);
  const signer = issuer?.key ?? key;
  const serial = newSerial();
  const notBefore = spec.notBefore ?? new Date(Math.floor(Date.now() / 1000) * 1000 - DAY);
  const notAfter = spec.notAfter ?? new Date(notBefore.getTime() + 400 * DAY);
  const extensions = spec.ca
    ? [basicConstraintsExt({ ca: true }), keyUsageExt(['keyCertSign', 'cRLSign', 'digitalSignature'])]
    : [basicConstraintsExt({ ca: false }), keyUsageExt(['digitalSignature'])];
  if (spec.eku) extensions.push(extKeyUsageExt(spec.eku));
  if (spec.san) extensions.push(subjectAltNameExt(spec.san));
  extensions.push(subjectKeyIdentifierExt(keyIdentifier(key.spkiDer)), authorityKeyIdentifierExt(keyIdentifier(signer.spkiDer)));
  extensions.push(...(spec.extra ?? []));
  const tbs = encodeTbsCertificate({
    serial, signatureAlgorithm: 'ecdsa-with-SHA256', issuer: issuer?.nameDer ?? nameDer, subject: nameDer, spki: key.spkiDer,
    notBefore, notAfter, extensions,
  });
  const der = encodeCertificate(tbs, 'ecdsa-with-SHA256', sign('sha256', tbs, signer.privateKey));
  return { der, pem: toPem('CERTIFICATE', der), key, nameDer, serial, serialHex: serial.toString('hex').toUpperCase(), notBefore, notAfter };
}

export interface TestDevice {
  deviceId: string;
  cert: TestCert;
  certPath: string;
  keyPath: string;
}

export interface GatewayPki {
  dir: string;
  registry: SqliteRegistry;
  root: TestCert;
  deviceCa: TestCert;
  stationCa: TestCert;
  infraCa: TestCert;
  unknownCa: TestCert;
  ocspSigner: TestCert;
  server: TestCert;
  /** PEM files: root.pem, device-ca.pem, ocsp-signer.pem/.key, ... */
  file(name: string): string;
  /** A device in the registry with a certificate of `ca` (default the device CA), recorded unless `record: false`. */
  newDevice(o?: { ca?: TestCert; caId?: string; notBefore?: Date; notAfter?: Date; record?: boolean; deviceId?: string; key?: TestKey; writeFiles?: boolean }): Promise<TestDevice>;
  revoke(d: TestDevice, reason?: CrlReason): Promise<void>;
  hold(d: TestDevice): Promise<void>;
  release(d: TestDevice): Promise<void>;
  /** Changes only the device record (its certificates stay as they are). */
  setDeviceStatus(d: TestDevice, from: DeviceStatus[], to: DeviceStatus): Promise<void>;
  cleanup(): Promise<void>;
}

export const GATEWAY_HOST = 'gateway.kakuin.test';

export async function createGatewayPki(): Promise<GatewayPki> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-gw-'));
  const file = (name: string) => path.join(dir, name);
  const registry = await openSqliteRegistry({ path: file('registry.db') });
  const root = issue(undefined, { cn: 'kakuin test root', ca: true });
  const deviceCa = issue(root, { cn: 'kakuin test device CA', ca: true });
  const stationCa = issue(root, { cn: 'kakuin test station CA', ca: true });
  const infraCa = issue(root, { cn: 'kakuin test infrastructure CA', ca: true });
  const unknownCa = issue(undefined, { cn: 'kakuin test device CA', ca: true });
  const ocspSigner = issue(deviceCa, { cn: 'kakuin test device OCSP signer', eku: ['OCSPSigning'], extra: [ocspNoCheckExt()] });
  const server = issue(infraCa, { cn: GATEWAY_HOST, eku: ['serverAuth'], san: [{ dns: GATEWAY_HOST }, { dns: 'localhost' }, { ip: '127.0.0.1' }] });
  for (const [name, c] of Object.entries({ root, 'device-ca': deviceCa, 'station-ca': stationCa, 'infra-ca': infraCa, 'unknown-ca': unknownCa, 'ocsp-signer': ocspSigner, server })) {
    writeFileSync(file(`${name}.pem`), c.pem);
    writeFileSync(file(`${name}.key`), c.key.keyPem);
  }
  for (const [id, kind, c] of [['root', 'root', root], ['device', 'device', deviceCa], ['station', 'station', stationCa], ['infrastructure', 'infrastructure', infraCa]] as const) {
    await registry.putIssuer({ id, kind, certificateDer: c.der, keyUri: `file:${id}.key`, ...(id !== 'root' && { parentId: 'root' }) });
  }
  const manufacturerId = (await registry.createManufacturer({ name: 'gateway-tests' })).id;
  let n = 0;

  async function newDevice(o: Parameters<GatewayPki['newDevice']>[0] = {}): Promise<TestDevice> {
    const deviceId = o.deviceId ?? (await registry.createDevice({ manufacturerId, serialNumber: `GW-${++n}-${randomBytes(4).toString('hex')}` })).id;
    const cert = issue(o.ca ?? deviceCa, {
      cn: `device ${deviceId}`, eku: ['clientAuth'], san: [{ uri: `urn:kakuin:device:${deviceId}` }],
      ...(o.notBefore && { notBefore: o.notBefore }), ...(o.notAfter && { notAfter: o.notAfter }), ...(o.key && { key: o.key }),
    });
    if (o.record !== false) {
      await registry.recordIssuance({
        certificate: {
          serialHex: cert.serialHex, issuerId: o.caId ?? 'device', deviceId, profile: 'device', der: cert.der,
          fingerprintSha256: createHash('sha256').update(cert.der).digest('hex'),
          publicKeySha256: createHash('sha256').update(cert.key.spkiDer).digest('hex'),
          notBefore: cert.notBefore, notAfter: cert.notAfter,
        },
        audit: { type: 'certificate.issued', actor: 'test', deviceId, serialHex: cert.serialHex },
      });
    }
    const certPath = file(`dev-${cert.serialHex}.pem`);
    const keyPath = file(`dev-${cert.serialHex}.key`);
    if (o.writeFiles !== false) {
      writeFileSync(certPath, cert.pem);
      writeFileSync(keyPath, cert.key.keyPem);
    }
    return { deviceId, cert, certPath, keyPath };
  }

  async function certificateChange(d: TestDevice, from: ('good' | 'held')[], to: 'good' | 'held' | 'revoked', reason?: CrlReason): Promise<void> {
    await registry.applyStatusChange({
      certificates: [{
        serialHex: d.cert.serialHex, from, to,
        ...(to !== 'good' && { reason: reason ?? 'unspecified', revokedAt: new Date(Math.floor(Date.now() / 1000) * 1000) }),
      }],
      audit: [{ type: `certificate.${to}`, actor: 'test', deviceId: d.deviceId, serialHex: d.cert.serialHex }],
    });
  }

  return {
    dir, registry, root, deviceCa, stationCa, infraCa, unknownCa, ocspSigner, server, file, newDevice,
    revoke: (d, reason = 'keyCompromise') => certificateChange(d, ['good', 'held'], 'revoked', reason),
    hold: (d) => certificateChange(d, ['good'], 'held', 'certificateHold'),
    release: (d) => certificateChange(d, ['held'], 'good'),
    async setDeviceStatus(d, from, to) {
      await registry.applyStatusChange({
        device: { id: d.deviceId, from, to }, certificates: [], audit: [{ type: `device.${to}`, actor: 'test', deviceId: d.deviceId }],
      });
    },
    async cleanup() {
      await registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
