import { randomFillSync } from 'node:crypto';

/**
 * A certificate serial number: 16 octets, the issuance time in milliseconds (6 octets, big-endian)
 * followed by 10 random octets (80 bits from the CSPRNG).
 *
 * RFC 5280 §4.1.2.2: "The serial number MUST be a positive integer ... no longer than 20 octets."
 * A millisecond time below 2^47 (until the year 6429) keeps the first octet in 0x01–0x7F: the
 * INTEGER is positive, needs no leading 0x00 and is exactly 16 octets long. 80 random bits are
 * above the 64 bits of entropy the CA/Browser Forum asks for; a collision (two issuances in one
 * millisecond drawing the same 80 bits) is left to the registry's unique index
 * (KAKUIN_E_SERIAL_EXISTS → retry).
 *
 * Why a time prefix: the registry indexes certificates, their stored OCSP responses and their
 * status by serial. Random serials put every issuance on a random leaf page of each of those
 * indexes; time-ordered ones append, so a group commit writes a few pages instead of one per
 * certificate and index (the enrollment benchmark's WAL traffic). The time is no secret: the
 * certificate's notBefore states it.
 */
// Random octets are drawn in blocks: one CSPRNG call per 409 serials instead of one per serial.
// Every octet is used once.
const POOL_SIZE = 4096;
const RANDOM_OCTETS = 10;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

export function newCertificateSerial(now: number = Date.now()): Buffer {
  if (poolOffset + RANDOM_OCTETS > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const serial = Buffer.allocUnsafe(16);
  // Clamped: a clock before 2004 (2^40 ms) would give a first octet 0x00 (a non-minimal INTEGER).
  serial.writeUIntBE(Math.min(Math.max(Math.trunc(now), 2 ** 40), 2 ** 47 - 1), 0, 6);
  pool.copy(serial, 6, poolOffset, poolOffset + RANDOM_OCTETS);
  pool.fill(0, poolOffset, poolOffset + RANDOM_OCTETS);
  poolOffset += RANDOM_OCTETS;
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
