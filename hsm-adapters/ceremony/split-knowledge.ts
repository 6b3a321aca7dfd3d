/**
 * Split knowledge for the key ceremony: a secret (the software key store's master passphrase, or a
 * wrapped key backup) is split into N shares of which any M reconstruct it, with Shamir's scheme
 * from the audited `shamir-secret-sharing` package (Cure53 and Zellic audits).
 *
 * Shamir's scheme itself gives no warning: M−1 shares, or shares of two different splits, "combine"
 * into a wrong secret. So every share carries the set it belongs to, the threshold, and a check value
 * of the secret; combining refuses too few shares, mixed sets and a result that misses the check.
 *
 * The check value is scrypt(secret, set id), not a plain hash: each custodian holds it, and for a
 * passphrase a fast hash would be an offline guessing oracle.
 *
 * Share text: `kakuin-share-1.<set>.<threshold>.<count>.<check>.<share>` (base64url fields), one line.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { combine, split } from 'shamir-secret-sharing';
import { KakuinError } from '../../errors/index.js';

const scrypt = promisify(scryptCb) as (secret: Buffer, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

const PREFIX = 'kakuin-share-1';
/** Shamir over GF(256) in that package: at most 255 shares, a threshold of at least 2. */
const MAX_SHARES = 255;
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export interface ShareSet {
  /** Random identifier shared by all shares of one split. */
  setId: string;
  threshold: number;
  count: number;
  /** One line of text per share, to be handed to one custodian each. */
  shares: string[];
}

export async function splitSecret(secret: Buffer, count: number, threshold: number): Promise<ShareSet> {
  if (!Number.isInteger(count) || !Number.isInteger(threshold) || threshold < 2 || threshold > count || count > MAX_SHARES) {
    throw new KakuinError('KAKUIN_E_USAGE', `need 2 ≤ threshold ≤ shares ≤ ${MAX_SHARES} (got threshold ${threshold}, shares ${count})`);
  }
  if (secret.length === 0) throw new KakuinError('KAKUIN_E_USAGE', 'the secret to split is empty');
  const set = randomBytes(9);
  const check = await checkValue(secret, set);
  const raw = await split(new Uint8Array(secret), count, threshold);
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  return {
    setId: b64(set), threshold, count,
    shares: raw.map((share) => [PREFIX, b64(set), threshold, count, b64(check), b64(share)].join('.')),
  };
}

interface ParsedShare {
  set: string;
  threshold: number;
  count: number;
  check: Buffer;
  share: Buffer;
}

function parseShare(text: string, index: number): ParsedShare {
  const parts = text.trim().split('.');
  const fail = (why: string) => new KakuinError('KAKUIN_E_CEREMONY_SHARES', `share ${index + 1} ${why}`);
  if (parts.length !== 6 || parts[0] !== PREFIX) throw fail(`is not a ${PREFIX} share`);
  const [, set, t, n, check, share] = parts;
  const threshold = Number(t);
  const count = Number(n);
  if (!/^\d+$/.test(t) || !/^\d+$/.test(n) || threshold < 2 || threshold > count || count > MAX_SHARES) throw fail('has a bad threshold or count');
  const bytes = (s: string) => (/^[A-Za-z0-9_-]+$/.test(s) ? Buffer.from(s, 'base64url') : undefined);
  const c = bytes(check);
  const v = bytes(share);
  if (!c || c.length !== 32 || !v || v.length < 2) throw fail('is damaged');
  return { set, threshold, count, check: c, share: v };
}

/**
 * Rebuild the secret from shares of one set. Refuses (KAKUIN_E_CEREMONY_SHARES) fewer shares than
 * the threshold, a share given twice, shares of different sets, and any result whose check value
 * differs (a damaged or forged share), so a wrong secret is never returned.
 */
export async function combineShares(texts: readonly string[]): Promise<Buffer> {
  if (texts.length === 0) throw new KakuinError('KAKUIN_E_CEREMONY_SHARES', 'no shares given');
  const shares = texts.map(parseShare);
  const first = shares[0];
  for (const s of shares) {
    if (s.set !== first.set || s.threshold !== first.threshold || s.count !== first.count || !s.check.equals(first.check)) {
      throw new KakuinError('KAKUIN_E_CEREMONY_SHARES', 'the shares come from different splits');
    }
  }
  // The x coordinate is the last byte of each share (shamir-secret-sharing's layout).
  const xs = new Set(shares.map((s) => s.share[s.share.length - 1]));
  if (xs.size !== shares.length) throw new KakuinError('KAKUIN_E_CEREMONY_SHARES', 'the same share was given twice');
  if (shares.length < first.threshold) {
    throw new KakuinError('KAKUIN_E_CEREMONY_SHARES', `${shares.length} share(s) given; this split needs ${first.threshold} of ${first.count}`);
  }
  let secret: Buffer;
  try {
    secret = Buffer.from(await combine(shares.map((s) => new Uint8Array(s.share))));
  } catch (cause) {
    throw new KakuinError('KAKUIN_E_CEREMONY_SHARES', `the shares do not combine: ${(cause as Error).message}`, { cause });
  }
  const check = await checkValue(secret, Buffer.from(first.set, 'base64url'));
  if (!timingSafeEqual(check, first.check)) {
    throw new KakuinError('KAKUIN_E_CEREMONY_SHARES', 'the combined secret does not match the check value: a share is damaged or forged');
  }
  return secret;
}

function checkValue(secret: Buffer, set: Buffer): Promise<Buffer> {
  return scrypt(secret, Buffer.concat([Buffer.from('kakuin ceremony check value\0'), set]), 32, SCRYPT);
}
