/**
 * Helpers shared by the registry contract files: error assertions, plausible certificates, and the
 * small steps (a manufacturer, a device, an issuance) most contract tests start with.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { KakuinError, type ErrorCode } from '../../errors/index.js';
import type { CertificateRecord, Device, IssuanceRecord, NewDevice, Registry } from '../../registry/port.js';

export type OpenRegistry = () => Promise<{ registry: Registry; cleanup: () => Promise<void> }>;

/** Asserts that `promise` rejects with a KakuinError carrying `code`; returns the error. */
export async function expectKakuinError(promise: Promise<unknown>, code: ErrorCode): Promise<KakuinError> {
  let outcome: unknown;
  try {
    outcome = await promise;
  } catch (e) {
    expect(e, `expected ${code}, got ${String(e)}`).to.be.instanceOf(KakuinError);
    expect((e as KakuinError).code, (e as Error).message).to.equal(code);
    return e as KakuinError;
  }
  throw new Error(`expected rejection with ${code}, but it resolved to ${JSON.stringify(outcome)}`);
}

export function randomSerialHex(): string {
  // 16 octets with the top bit clear: a positive INTEGER as RFC 5280 §4.1.2.2 requires.
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex').toUpperCase();
}

export function randomKeyHash(): string {
  return randomBytes(32).toString('hex');
}

/** A plausible certificate to record: random DER stand-in, its fingerprint, a random key hash. */
export function fakeCertificate(fields: {
  issuerId: string; deviceId?: string; serialHex?: string; publicKeySha256?: string; profile?: string;
}): IssuanceRecord['certificate'] {
  const der = randomBytes(300);
  const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
  return {
    serialHex: fields.serialHex ?? randomSerialHex(),
    issuerId: fields.issuerId,
    ...(fields.deviceId !== undefined && { deviceId: fields.deviceId }),
    profile: fields.profile ?? 'device',
    der,
    fingerprintSha256: createHash('sha256').update(der).digest('hex'),
    publicKeySha256: fields.publicKeySha256 ?? randomKeyHash(),
    notBefore,
    notAfter: new Date(notBefore.getTime() + 365 * 24 * 3600 * 1000),
  };
}

export function issuance(certificate: IssuanceRecord['certificate'], actor = 'token:station-1'): IssuanceRecord {
  return {
    certificate,
    audit: { type: 'certificate.issued', actor, deviceId: certificate.deviceId, serialHex: certificate.serialHex, details: { profile: certificate.profile } },
  };
}

/** The issuer every contract test records certificates under. */
export const ISSUER_ID = 'device';

/** Steps bound to the registry of the running test (`get` is called each time: beforeEach replaces it). */
export function contractSteps(get: () => Registry) {
  return {
    async manufacturer(name = `acme-${randomUUID()}`): Promise<string> {
      return (await get().createManufacturer({ name })).id;
    },
    async device(manufacturerId: string, extra: Partial<NewDevice> = {}): Promise<Device> {
      return get().createDevice({ manufacturerId, serialNumber: `SN-${randomUUID()}`, ...extra });
    },
    async issue(fields: Parameters<typeof fakeCertificate>[0] = { issuerId: ISSUER_ID }): Promise<CertificateRecord> {
      return get().recordIssuance(issuance(fakeCertificate(fields)));
    },
  };
}
