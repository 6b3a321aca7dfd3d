/**
 * People's passwords, stored as scrypt (RFC 7914) hashes with a per-user random salt. The cost
 * parameters are written into each hash (`scrypt$ln=15,r=8,p=1$<salt>$<hash>`), so raising
 * `users.passwordKdfCost` later applies to passwords set from then on while the older hashes still
 * verify. Hashing runs on libuv's thread pool (async scrypt), never on the event loop (DESIGN.md
 * "The event loop"); the comparison is constant-time.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { KakuinError } from '../errors/index.js';

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const BLOCK_SIZE = 8;
const PARALLELISM = 1;
/** OWASP names N = 2^17 (128 MiB per login); 2^15 (32 MiB; 0.1–0.3 s of one libuv thread on the 2-core machine) is the default. */
export const DEFAULT_PASSWORD_KDF_COST = 15;
export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 1024;

function scrypt(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password.normalize('NFC'), salt, KEY_LENGTH, options, (e, key) => (e ? reject(e) : resolve(key)));
  });
}

/** scrypt needs 128·N·r octets; Node's default limit (32 MiB) is just below N = 2^15, r = 8. */
function params(ln: number, r: number, p: number): ScryptOptions {
  return { N: 2 ** ln, r, p, maxmem: 256 * 2 ** ln * r };
}

export function checkPasswordStrength(password: string): string {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    throw new KakuinError('KAKUIN_E_PASSWORD_WEAK', `a password is ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`, { field: 'password' });
  }
  return password;
}

/** A random password for people to copy once: 20 characters of base64url (120 bits). */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}

export async function hashPassword(password: string, cost = DEFAULT_PASSWORD_KDF_COST): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await scrypt(password, salt, params(cost, BLOCK_SIZE, PARALLELISM));
  return `scrypt$ln=${cost},r=${BLOCK_SIZE},p=${PARALLELISM}$${salt.toString('base64')}$${key.toString('base64')}`;
}

const HASH = /^scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

/** Whether the password matches the stored hash (with the parameters the hash names). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = HASH.exec(stored);
  if (!m) throw new KakuinError('KAKUIN_E_INTERNAL', 'a stored password hash is not in the scrypt$ln=..,r=..,p=..$salt$hash form');
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const expected = Buffer.from(m[5], 'base64');
  const key = await scrypt(password, Buffer.from(m[4], 'base64'), { ...params(ln, r, p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * A hash of a random password at the given cost: what an unknown user name is checked against,
 * so that a login for a name nobody has costs the same time as one for a real user.
 */
export async function decoyHash(cost = DEFAULT_PASSWORD_KDF_COST): Promise<string> {
  return hashPassword(generatePassword(), cost);
}
