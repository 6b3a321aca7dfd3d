/**
 * Secrets that live outside the registry (DESIGN.md "Storage"): the key store passphrase, the
 * pepper under which server-generated secrets are HMAC'd, and the first admin token. Files are
 * created with mode 0600 in a 0700 directory, written atomically.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { KakuinError } from '../errors/index.js';

export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Write a file atomically with mode 0600 (temporary file, fsync, rename). */
export function writePrivateFile(file: string, content: string | Buffer): void {
  ensurePrivateDir(path.dirname(file));
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export interface KeyPassphrase {
  passphrase: string;
  /** Where it came from, for the start-up message. */
  source: 'environment' | 'file' | 'generated';
}

/**
 * `KAKUIN_KEY_PASSPHRASE`, else the passphrase file. On a development first start (no keys yet)
 * a random passphrase is generated into the file; production sets the variable, or points
 * `keys.passphraseFile` at a file on another volume, so that the data directory alone opens no key.
 */
/**
 * Node writes encrypted PKCS#8 with PBKDF2 at a fixed 2,048 iterations, so the passphrase itself
 * must carry the strength: at least 16 characters (the generated one has 256 random bits).
 */
export const MIN_KEY_PASSPHRASE_LENGTH = 16;

function checkedPassphrase(passphrase: string, where: string): string {
  if (passphrase.length < MIN_KEY_PASSPHRASE_LENGTH) {
    throw new KakuinError('KAKUIN_E_KEY_PASSPHRASE', `the key passphrase (${where}) must be at least ${MIN_KEY_PASSPHRASE_LENGTH} characters; use a random one, e.g. \`openssl rand -base64 32\``);
  }
  return passphrase;
}

export function keyPassphrase(env: Record<string, string | undefined>, file: string, mayGenerate: boolean): KeyPassphrase {
  const fromEnv = env.KAKUIN_KEY_PASSPHRASE;
  if (fromEnv) return { passphrase: checkedPassphrase(fromEnv, 'KAKUIN_KEY_PASSPHRASE'), source: 'environment' };
  if (existsSync(file)) {
    const passphrase = readFileSync(file, 'utf8').trim();
    if (!passphrase) throw new KakuinError('KAKUIN_E_KEY_PASSPHRASE', `the key passphrase file ${file} is empty`);
    return { passphrase: checkedPassphrase(passphrase, file), source: 'file' };
  }
  if (!mayGenerate) {
    throw new KakuinError('KAKUIN_E_KEY_PASSPHRASE', `no key passphrase: set KAKUIN_KEY_PASSPHRASE or create ${file}`);
  }
  const passphrase = randomBytes(32).toString('base64url');
  writePrivateFile(file, `${passphrase}\n`);
  return { passphrase, source: 'generated' };
}

/** The pepper for HMAC'd secrets: 32 random octets, created once. Losing it invalidates every token. */
export function pepper(secretsDir: string): Buffer {
  const file = path.join(secretsDir, 'pepper');
  if (existsSync(file)) {
    const value = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
    if (value.length < 32) throw new KakuinError('KAKUIN_E_CONFIG', `${file} must hold at least 32 octets in hex`);
    return value;
  }
  const value = randomBytes(32);
  writePrivateFile(file, `${value.toString('hex')}\n`);
  return value;
}
