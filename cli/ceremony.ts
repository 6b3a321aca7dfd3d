/**
 * `kakuin ceremony split` / `combine`: the key ceremony with split knowledge (see
 * hsm-adapters/ceremony). Secrets and shares go to files created with mode 0600 and never
 * overwritten, not to the terminal, so they do not end up in scroll-back or shell logs.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { combineShares, splitSecret } from '../hsm-adapters/ceremony/index.js';
import { KakuinError } from '../errors/index.js';
import type { KakuinConfig } from './config.js';
import { keyPassphrase } from './secrets.js';

export const CEREMONY_USAGE = `kakuin ceremony split --shares N --threshold M --out-dir DIR [--in FILE]
kakuin ceremony combine --out FILE SHARE_FILE...`;

export async function ceremonySplit(
  config: Readonly<KakuinConfig>, env: Record<string, string | undefined>,
  options: { shares?: string; threshold?: string; outDir?: string; in?: string },
  print: (line: string) => void,
): Promise<void> {
  const count = Number(options.shares);
  const threshold = Number(options.threshold);
  if (!options.outDir || !options.shares || !options.threshold) throw new KakuinError('KAKUIN_E_USAGE', CEREMONY_USAGE);
  // Without --in: the software key store's master passphrase, read as the store reads it.
  const secret = options.in
    ? readFileSync(options.in)
    : Buffer.from(keyPassphrase(env, config.keys.passphraseFile, false).passphrase, 'utf8');
  const set = await splitSecret(secret, count, threshold);
  mkdirSync(options.outDir, { recursive: true, mode: 0o700 });
  const files = set.shares.map((share, i) => {
    const file = path.join(options.outDir!, `share-${i + 1}-of-${count}.txt`);
    writeFileSync(file, `${share}\n`, { mode: 0o600, flag: 'wx' });
    return file;
  });
  print(`split ${options.in ? options.in : 'the key store passphrase'} into ${count} shares, any ${threshold} of which rebuild it (set ${set.setId})`);
  for (const f of files) print(`  ${f}`);
  print('give each share to one custodian and delete it here');
}

export async function ceremonyCombine(options: { out?: string }, shareFiles: string[], print: (line: string) => void): Promise<void> {
  if (!options.out || shareFiles.length === 0) throw new KakuinError('KAKUIN_E_USAGE', CEREMONY_USAGE);
  // Before the shares are read: a rebuilt secret is never written over a file (flag 'wx' below too).
  if (existsSync(options.out)) {
    throw new KakuinError('KAKUIN_E_FILE_EXISTS', `${JSON.stringify(options.out)} exists already and is never overwritten; remove it or name another --out`);
  }
  const secret = await combineShares(shareFiles.map((f) => readFileSync(f, 'utf8')));
  writeFileSync(options.out, secret, { mode: 0o600, flag: 'wx' });
  print(`combined ${shareFiles.length} shares; the secret is in ${options.out} (mode 0600)`);
}
