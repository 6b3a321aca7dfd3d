/**
 * Record identifiers for devices: UUIDv7 (RFC 9562 §5.7), a 48-bit Unix time in milliseconds
 * followed by 74 random bits.
 *
 * Why not UUIDv4: devices are registered and enrolled in production order, and every index keyed
 * or led by the device id (the devices table itself, certificates by device, key bindings by
 * device, audit events by device) then receives its inserts next to the previous ones. With random
 * ids each enrollment dirtied a random leaf page of every such index: at enrollment rates that
 * was most of what a group commit wrote to the WAL, and of what a checkpoint copied back.
 *
 * What it tells: the id reveals when the device was registered (to the millisecond). It is not a
 * secret and never was one (it is in the device's certificate); 74 random bits keep ids
 * unguessable and collisions out of reach.
 */
import { randomFillSync } from 'node:crypto';

// Random octets drawn in blocks (one CSPRNG call per 512 ids); every octet is used once.
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

export function newDeviceId(now: number = Date.now()): string {
  if (poolOffset + 10 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const b = Buffer.allocUnsafe(16);
  b.writeUIntBE(Math.max(0, Math.min(Math.trunc(now), 0xffff_ffff_ffff)), 0, 6);
  pool.copy(b, 6, poolOffset, poolOffset + 10);
  pool.fill(0, poolOffset, poolOffset + 10);
  poolOffset += 10;
  b[6] = 0x70 | (b[6] & 0x0f); // version 7
  b[8] = 0x80 | (b[8] & 0x3f); // variant 10
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
