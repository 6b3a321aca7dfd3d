/** The `kakuin` command as an operator types it. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { makeTempDir, opensslOk, cliMain } from '../support/index.js';

describe('kakuin command', function () {
  this.timeout(60_000);
  let tmp: { dir: string; cleanup: () => void };
  let env: Record<string, string>;
  const kakuin = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  before(() => {
    tmp = makeTempDir();
    env = { KAKUIN_DATA_DIR: path.join(tmp.dir, 'data'), KAKUIN_KEY_PASSPHRASE: 'cli-test-passphrase', KAKUIN_LOG_LEVEL: 'error' };
  });
  after(() => tmp.cleanup());

  it('refuses commands before init with KAKUIN_E_CA_NOT_INITIALIZED', () => {
    const r = kakuin('ca', 'show');
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include('KAKUIN_E_CA_NOT_INITIALIZED');
  });

  it('init creates the hierarchy and a config file; a second init refuses to overwrite', () => {
    const r = kakuin('init');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('root.pem');
    const root = path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem');
    const chain = path.join(env.KAKUIN_DATA_DIR, 'ca', 'device-chain.pem');
    expect(opensslOk(['verify', '-CAfile', root, chain])).to.include('OK');
    expect(JSON.parse(readFileSync(path.join(env.KAKUIN_DATA_DIR, 'kakuin.json'), 'utf8'))).to.have.property('publicHttpUrl');
    const again = kakuin('init');
    expect(again.status).to.equal(1);
    expect(again.stderr).to.include('KAKUIN_E_CA_EXISTS');
    expect(readFileSync(root, 'utf8')).to.equal(readFileSync(root, 'utf8'));
  });

  it('ca show lists root, device and infrastructure CAs with their keys', () => {
    const r = kakuin('ca', 'show');
    expect(r.status, r.stderr).to.equal(0);
    for (const id of ['root (root)', 'device (device)', 'infrastructure (infrastructure)']) expect(r.stdout).to.include(id);
    expect(r.stdout).to.include('file:root-ca');
    expect(r.stdout).to.match(/P-384/);
  });

  it('token create prints a new named token once and stores only its HMAC', async () => {
    const r = kakuin('token', 'create', '--name', 'alice');
    expect(r.status, r.stderr).to.equal(0);
    const token = r.stdout.trim().split('\n').pop()!;
    expect(token).to.match(/^kkadm_[A-Za-z0-9_-]{43}$/);
    const db = readFileSync(path.join(env.KAKUIN_DATA_DIR, 'kakuin.db'));
    expect(db.includes(Buffer.from(token))).to.equal(false);
    const dup = kakuin('token', 'create', '--name', 'alice');
    expect(dup.status).to.equal(1);
    expect(dup.stderr).to.include('KAKUIN_E_TOKEN_EXISTS');
  });

  it('issue --device --csr writes a chain openssl verifies', async () => {
    const registry = await openSqliteRegistry({ path: path.join(env.KAKUIN_DATA_DIR, 'kakuin.db') });
    let deviceId: string;
    try {
      const m = await registry.createManufacturer({ name: 'CLI Works' });
      deviceId = (await registry.createDevice({ manufacturerId: m.id, serialNumber: 'CLI-1' })).id;
    } finally {
      await registry.close();
    }
    const csr = path.join(tmp.dir, 'cli.csr');
    const out = path.join(tmp.dir, 'cli.pem');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(tmp.dir, 'cli.key'), '-subj', '/serialNumber=CLI-1', '-out', csr]);
    const r = kakuin('issue', '--device', deviceId, '--csr', csr, '--out', out);
    expect(r.status, r.stderr).to.equal(0);
    const root = path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem');
    const issuing = path.join(env.KAKUIN_DATA_DIR, 'ca', 'device.pem');
    expect(opensslOk(['verify', '-CAfile', root, '-untrusted', issuing, out])).to.include('OK');
    const bad = kakuin('issue', '--device', deviceId);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.include('KAKUIN_E_USAGE');
  });

  it('stops quietly with status 0 when the reader of its output goes away (kakuin ca show | head)', () => {
    // `true` exits before kakuin has started, so every write of `ca show` meets a closed pipe (EPIPE).
    const r = spawnSync('bash', ['-c', 'set -o pipefail; "$0" "$1" ca show | true', process.execPath, cliMain], {
      env: { ...process.env, ...env }, timeout: 30_000,
    });
    expect(r.stderr.toString()).to.equal('');
    expect(r.status).to.equal(0);
  });
});
