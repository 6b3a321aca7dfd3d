import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { combineShares, splitSecret } from '../../hsm-adapters/ceremony/index.js';
import { rejectsWithCode } from '../contract/keystore.contract.js';
import { makeTempDir, cliMain } from '../support/index.js';

function subsets<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]];
  return items.flatMap((item, i) => subsets(items.slice(i + 1), size - 1).map((rest) => [item, ...rest]));
}

describe('key ceremony: split knowledge (Shamir, shamir-secret-sharing)', function () {
  this.timeout(60_000);
  const secret = Buffer.from('a master passphrase of the key store — 鍵', 'utf8');

  it('any 3 of 5 shares rebuild the secret, in any order', async function () {
    const set = await splitSecret(secret, 5, 3);
    expect(set.shares).to.have.length(5);
    for (const s of set.shares) expect(s.includes(secret.toString('base64url'))).to.equal(false);
    for (const chosen of subsets(set.shares, 3)) {
      expect((await combineShares(chosen.reverse())).equals(secret)).to.equal(true);
    }
    expect((await combineShares(set.shares)).equals(secret)).to.equal(true);
  });

  it('refuses every set of M−1 shares instead of yielding a wrong secret', async function () {
    const set = await splitSecret(secret, 5, 3);
    for (const chosen of subsets(set.shares, 2)) {
      const e = await rejectsWithCode(combineShares(chosen), 'KAKUIN_E_CEREMONY_SHARES');
      expect(e.message).to.match(/needs 3 of 5/);
    }
  });

  it('refuses shares of two different splits, a share given twice, and a damaged share', async function () {
    const a = await splitSecret(secret, 3, 2);
    const b = await splitSecret(secret, 3, 2);
    await rejectsWithCode(combineShares([a.shares[0], b.shares[1]]), 'KAKUIN_E_CEREMONY_SHARES');
    await rejectsWithCode(combineShares([a.shares[0], a.shares[0]]), 'KAKUIN_E_CEREMONY_SHARES');
    // Alter one byte of the share value (not its x coordinate): the check value catches the wrong secret.
    const parts = a.shares[1].split('.');
    const value = Buffer.from(parts[5], 'base64url');
    value[0] ^= 0x01;
    parts[5] = value.toString('base64url');
    const e = await rejectsWithCode(combineShares([a.shares[0], parts.join('.')]), 'KAKUIN_E_CEREMONY_SHARES');
    expect(e.message).to.match(/check value/);
    // Two shares of a 3-of-5 split whose threshold field was edited down to 2 pass the count check;
    // the check value still refuses what they combine to.
    const c = await splitSecret(secret, 5, 3);
    const lowered = c.shares.slice(0, 2).map((sh) => sh.replace('.3.5.', '.2.5.'));
    const e2 = await rejectsWithCode(combineShares(lowered), 'KAKUIN_E_CEREMONY_SHARES');
    expect(e2.message).to.match(/check value|do not combine/);
    await rejectsWithCode(combineShares(['not a share', a.shares[0]]), 'KAKUIN_E_CEREMONY_SHARES');
  });

  it('refuses a threshold below 2 or above the number of shares', async function () {
    await rejectsWithCode(splitSecret(secret, 3, 1), 'KAKUIN_E_USAGE');
    await rejectsWithCode(splitSecret(secret, 3, 4), 'KAKUIN_E_USAGE');
  });

  it('kakuin ceremony split/combine: the key store passphrase into 0600 share files, and back from any M', function () {
    const tmp = makeTempDir('kakuin-ceremony-');
    try {
      const passphrase = `ceremony-${randomBytes(12).toString('hex')}`;
      const env = { ...process.env, KAKUIN_DATA_DIR: path.join(tmp.dir, 'data'), KAKUIN_KEY_PASSPHRASE: passphrase, KAKUIN_LOG_LEVEL: 'error' };
      const kakuin = (...args: string[]) => {
        const r = spawnSync(process.execPath, [cliMain, ...args], { env, timeout: 30_000 });
        return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
      };
      const outDir = path.join(tmp.dir, 'shares');
      const split = kakuin('ceremony', 'split', '--shares', '4', '--threshold', '3', '--out-dir', outDir);
      expect(split.status, split.stderr).to.equal(0);
      expect(split.stdout).to.not.include(passphrase);
      const files = readdirSync(outDir).sort().map((f) => path.join(outDir, f));
      expect(files).to.have.length(4);
      for (const f of files) expect(statSync(f).mode & 0o777).to.equal(0o600);

      const two = kakuin('ceremony', 'combine', '--out', path.join(tmp.dir, 'two'), files[0], files[3]);
      expect(two.status).to.equal(1);
      expect(two.stderr).to.include('KAKUIN_E_CEREMONY_SHARES');

      const out = path.join(tmp.dir, 'rebuilt');
      const three = kakuin('ceremony', 'combine', '--out', out, files[3], files[1], files[0]);
      expect(three.status, three.stderr).to.equal(0);
      expect(readFileSync(out, 'utf8')).to.equal(passphrase);
      expect(statSync(out).mode & 0o777).to.equal(0o600);
      // Never overwrites an existing file.
      expect(kakuin('ceremony', 'combine', '--out', out, files[0], files[1], files[2]).status).to.equal(1);
    } finally {
      tmp.cleanup();
    }
  });
});
