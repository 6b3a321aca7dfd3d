import { createHash } from 'node:crypto';
import type { IssuanceRecord } from '../registry/port.js';

/** The registry's view of one freshly signed certificate (hashes computed from the signed bytes). */
export function issuanceCertificateFields(input: {
  serialHex: string;
  issuerId: string;
  deviceId?: string;
  profile: string;
  der: Buffer;
  spkiDer: Buffer;
  notBefore: Date;
  notAfter: Date;
}): IssuanceRecord['certificate'] {
  return {
    serialHex: input.serialHex,
    issuerId: input.issuerId,
    deviceId: input.deviceId,
    profile: input.profile,
    der: input.der,
    fingerprintSha256: createHash('sha256').update(input.der).digest('hex'),
    publicKeySha256: publicKeySha256(input.spkiDer),
    notBefore: input.notBefore,
    notAfter: input.notAfter,
  };
}

/** SHA-256 over the whole SubjectPublicKeyInfo DER: the key binding's identity. */
export function publicKeySha256(spkiDer: Buffer): string {
  return createHash('sha256').update(spkiDer).digest('hex');
}

/** RFC 5280's 99991231235959Z, as a Date for the registry's notAfter column. */
export const NO_WELL_DEFINED_EXPIRATION = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));
