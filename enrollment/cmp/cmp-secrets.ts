/**
 * One-time CMP MAC secrets (RFC 9483 §3.2 MAC-based protection; RFC 9810 §5.1.3.1 PasswordBasedMac):
 * a station obtains one for a pre-registered device (POST /api/v1/devices/{id}/cmp-secret) and gives
 * it to the device's `openssl cmp -ref <reference> -secret pass:<secret>`. It serves one transaction.
 *
 * The registry stores a random nonce, not the secret: the secret is HMAC-SHA-256(pepper, label ||
 * nonce), 144 bits in base64url (DESIGN.md "Secrets": server-generated, 128 bits or more, peppered).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { CmpSecret, CmpStore } from '../../registry/cmp.js';
import type { Device } from '../../registry/port.js';

const LABEL = Buffer.from('kakuin cmp secret v1\0', 'latin1');

/** The secret a nonce stands for: what the client types after `pass:`, and (as UTF-8) the MAC key input. */
export function cmpSecretOf(pepper: Buffer, nonce: Buffer): string {
  return createHmac('sha256', pepper).update(LABEL).update(nonce).digest().subarray(0, 18).toString('base64url');
}

export interface IssuedCmpSecret {
  reference: string;
  secret: string;
  expiresAt: Date;
}

export async function issueCmpSecret(store: CmpStore, pepper: Buffer, device: Device, issuedBy: string, lifetimeMs: number, now: Date): Promise<IssuedCmpSecret> {
  const nonce = randomBytes(16);
  const record: CmpSecret = {
    reference: `cmp-${randomBytes(9).toString('base64url')}`, deviceId: device.id, manufacturerId: device.manufacturerId, issuedBy,
    nonce, createdAt: now, expiresAt: new Date(now.getTime() + lifetimeMs),
  };
  await store.pruneCmp(now);
  await store.saveCmpSecret(record);
  return { reference: record.reference, secret: cmpSecretOf(pepper, nonce), expiresAt: record.expiresAt };
}
