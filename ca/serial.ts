import { randomFillSync } from 'node:crypto';

/**
 * A certificate serial number: 16 random octets, the first in 0x01–0x7F.
 *
 * RFC 5280 §4.1.2.2: "The serial number MUST be a positive integer ... no longer than 20 octets."
 * A first octet of 0x01–0x7F keeps the INTEGER positive without a leading 0x00 and exactly 16
 * octets long, leaving 127 × 2^120 values — far above the 64 bits of entropy the CA/Browser Forum
 * asks for, so collisions are left to the registry's unique index (KAKUIN_E_SERIAL_EXISTS → retry).
 */
// Random octets are drawn in blocks: one CSPRNG call per 256 serials instead of one per serial,
// which is ~10% of the issuance hot path. Every octet is used once.
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

export function newCertificateSerial(): Buffer {
  if (poolOffset + 16 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const serial = Buffer.from(pool.subarray(poolOffset, poolOffset + 16));
  pool.fill(0, poolOffset, poolOffset + 16);
  poolOffset += 16;
  serial[0] = 1 + (serial[0] % 127);
  return serial;
}

/** Uppercase hex without separators, as `openssl x509 -serial` prints it. */
export function serialToHex(serial: Buffer): string {
  return serial.toString('hex').toUpperCase();
}

/** Accept a serial in any case, with or without `:` separators; undefined when it is not hex. */
export function normalizeSerialHex(input: string): string | undefined {
  const s = input.replace(/:/g, '').toUpperCase();
  if (s.length === 0 || s.length > 40 || !/^[0-9A-F]+$/.test(s)) return undefined;
  return s;
}
