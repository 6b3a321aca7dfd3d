/**
 * TOTP (RFC 6238) over HOTP (RFC 4226 §5.3): HMAC-SHA-1, 6 digits, 30-second steps from the Unix
 * epoch — what every authenticator app reads from an `otpauth://totp/` URI (Google Authenticator's
 * Key Uri Format). Checked against RFC 6238 Appendix B (test/vectors/rfc6238-sha1.json).
 *
 * The secret (160 bits, RFC 4226 §4 R6 recommends it) is stored encrypted: AES-256-GCM under a key
 * derived with HKDF-SHA-256 from the pepper file, which lives outside the database (DESIGN.md
 * "Storage"), and bound to the user name (unique, never renamed) as associated data, so a copied database yields no
 * secret and a secret copied onto another user's row does not decrypt.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { KakuinError } from '../errors/index.js';

export const TOTP_STEP_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** RFC 6238 §5.2: one step either side absorbs clock drift and typing time. */
export const TOTP_WINDOW = 1;

/** The RFC 6238 time step of a Unix time in milliseconds. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_STEP_SECONDS);
}

/** HOTP (RFC 4226 §5.3) of a counter: dynamic truncation of HMAC-SHA-1, `digits` decimal digits. */
export function hotp(secret: Buffer, counter: number, digits = TOTP_DIGITS): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', secret).update(message).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = (mac.readUInt32BE(offset) & 0x7fff_ffff) % 10 ** digits;
  return String(binary).padStart(digits, '0');
}

export function totp(secret: Buffer, nowMs: number, digits = TOTP_DIGITS): string {
  return hotp(secret, totpStep(nowMs), digits);
}

/**
 * The step whose code `code` is, within ±TOTP_WINDOW of now, or undefined. Every candidate is
 * compared (constant-time), so the time taken does not say which step matched.
 */
export function matchTotp(secret: Buffer, code: string, nowMs: number): number | undefined {
  if (!/^[0-9]{6}$/.test(code)) return undefined;
  const now = totpStep(nowMs);
  let matched: number | undefined;
  for (let step = now - TOTP_WINDOW; step <= now + TOTP_WINDOW; step++) {
    if (timingSafeEqual(Buffer.from(hotp(secret, step)), Buffer.from(code)) && matched === undefined) matched = step;
  }
  return matched;
}

export function newTotpSecret(): Buffer {
  return randomBytes(20);
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 §6 base32 without padding, as otpauth URIs carry the secret. */
export function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** `otpauth://totp/kakuin:alice?secret=...&issuer=kakuin&algorithm=SHA1&digits=6&period=30` */
export function otpauthUri(secret: Buffer, userName: string, issuer = 'kakuin'): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(userName)}`;
  return `otpauth://totp/${label}?secret=${base32(secret)}&issuer=${encodeURIComponent(issuer)}&algorithm=SHA1&digits=${TOTP_DIGITS}&period=${TOTP_STEP_SECONDS}`;
}

const SEALED_VERSION = 1;

/** Seals and opens TOTP secrets under a key derived from the pepper (see the header). */
export class TotpSecretBox {
  private readonly key: Buffer;

  constructor(pepper: Buffer) {
    this.key = Buffer.from(hkdfSync('sha256', pepper, Buffer.alloc(0), 'kakuin totp secret v1', 32));
  }

  seal(secret: Buffer, userName: string): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(`kakuin-totp:${userName}`));
    const sealed = Buffer.concat([cipher.update(secret), cipher.final()]);
    return Buffer.concat([Buffer.from([SEALED_VERSION]), iv, cipher.getAuthTag(), sealed]);
  }

  open(sealed: Buffer, userName: string): Buffer {
    try {
      if (sealed[0] !== SEALED_VERSION || sealed.length < 1 + 12 + 16 + 1) throw new Error('unknown sealed-secret version');
      const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(1, 13));
      decipher.setAAD(Buffer.from(`kakuin-totp:${userName}`));
      decipher.setAuthTag(sealed.subarray(13, 29));
      return Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()]);
    } catch (e) {
      throw new KakuinError('KAKUIN_E_INTERNAL', 'a stored TOTP secret does not decrypt (another pepper, or an altered row)', { cause: e });
    }
  }
}
