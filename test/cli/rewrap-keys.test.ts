/**
 * `kakuin ca rewrap-keys`: a data directory whose key files were written at a lower cost (as an
 * earlier kakuin's PBKDF2 files are weaker) is rewritten in place under scrypt at keys.kdfCost; the
 * CA keys stay the same (openssl reads them back against the CA certificates) and kakuin still opens them.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { cliMain, makeTempDir, opensslOk } from '../support/index.js';
import { testEnv } from '../support/service.js';

describe('kakuin ca rewrap-keys', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let env: Record<string, string>;
  const kakuin = (extra: Record<string, string>, ...args: string[]) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...process.env, ...env, ...extra }, timeout: 60_000 });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const keysDir = () => path.join(env.KAKUIN_DATA_DIR, 'keys');
  const costOf = (file: string) => /:scrypt\s*\n(?:.*\n){2}.*INTEGER\s+:([0-9A-F]+)/.exec(opensslOk(['asn1parse', '-in', file]))?.[1];

  before(() => {
    tmp = makeTempDir('kakuin-rewrap-');
    env = { ...testEnv(path.join(tmp.dir, 'data')), KAKUIN_ORGANIZATION: 'Rewrap Test' };
  });
  after(() => tmp?.cleanup());

  it('rewrites every key file below keys.kdfCost, keeps the keys, and a second run has nothing to do', () => {
    expect(kakuin({ KAKUIN_KEY_KDF_COST: '10' }, 'init').status).to.equal(0);
    const files = readdirSync(keysDir()).filter((f) => f.endsWith('.key.pem'));
    expect(files.length).to.be.at.least(4);
    for (const f of files) expect(costOf(path.join(keysDir(), f)), f).to.equal('0400');
    const rootPublic = opensslOk(['x509', '-in', path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem'), '-noout', '-pubkey']);

    const r = kakuin({ KAKUIN_KEY_KDF_COST: '14' }, 'ca', 'rewrap-keys');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`${files.length} key file(s) rewritten under scrypt (N = 2^14), 0 already`);
    for (const f of files) expect(costOf(path.join(keysDir(), f)), f).to.equal('4000');
    const rootKey = files.find((f) => f.startsWith('root'))!;
    expect(opensslOk(['pkey', '-in', path.join(keysDir(), rootKey), '-passin', `pass:${env.KAKUIN_KEY_PASSPHRASE}`, '-pubout'])).to.equal(rootPublic);
    expect(readdirSync(keysDir()).filter((f) => f.startsWith('.'))).to.deep.equal([]);

    const again = kakuin({ KAKUIN_KEY_KDF_COST: '14' }, 'ca', 'rewrap-keys');
    expect(again.stdout).to.include(`0 key file(s) rewritten under scrypt (N = 2^14), ${files.length} already`);
    const show = kakuin({}, 'ca', 'show');
    expect(show.status, show.stderr).to.equal(0);
    expect(show.stdout).to.include('(root)');
  });

  it('refuses a wrong passphrase in one line (KAKUIN_E_KEY_PASSPHRASE) and a stray argument (usage, exit 2)', () => {
    const wrong = kakuin({ KAKUIN_KEY_PASSPHRASE: 'not the passphrase' }, 'ca', 'rewrap-keys');
    expect(wrong.status).to.equal(1);
    expect(wrong.stderr).to.match(/^kakuin: KAKUIN_E_KEY_PASSPHRASE: /);
    expect(kakuin({}, 'ca', 'rewrap-keys', 'root').status).to.equal(2);
  });
});
