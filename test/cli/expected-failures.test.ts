/**
 * Expected failures of the `kakuin` command are one line with a KAKUIN_E_* code and what to do,
 * never a stack trace; every subcommand answers --help / -h with its usage.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { cliMain, makeTempDir } from '../support/index.js';

function runAsync(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliMain, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** One line, `kakuin: KAKUIN_E_...: ...`, and no stack frame. */
function expectOneLine(stderr: string, code: string): void {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).to.have.length(1);
  expect(lines[0]).to.match(new RegExp(`^kakuin: ${code}: `));
  expect(stderr).to.not.match(/\n\s+at /);
}

describe('kakuin command: expected failures and --help', function () {
  this.timeout(90_000);
  let tmp: { dir: string; cleanup: () => void };
  before(() => { tmp = makeTempDir(); });
  after(() => tmp.cleanup());

  it('every subcommand answers --help and -h with its usage, exit 0, without a data directory', () => {
    const env = { PATH: process.env.PATH ?? '', KAKUIN_DATA_DIR: path.join(tmp.dir, 'never-created') };
    for (const command of ['serve', 'init', 'issue', 'ca', 'token', 'user', 'backup', 'restore', 'ceremony', 'enroll']) {
      for (const flag of ['--help', '-h']) {
        const r = spawnSync(process.execPath, [cliMain, command, flag], { env, encoding: 'utf8', timeout: 30_000 });
        expect(r.status, `${command} ${flag}: ${r.stderr}`).to.equal(0);
        expect(r.stdout, `${command} ${flag}`).to.match(/usage/i).and.include(`kakuin ${command}`);
      }
    }
  });

  it('ceremony combine --out EXISTING: one line with KAKUIN_E_FILE_EXISTS, the file untouched', async () => {
    const existing = path.join(tmp.dir, 'secret.out');
    writeFileSync(existing, 'keep me');
    const share = path.join(tmp.dir, 'share.txt');
    writeFileSync(share, 'not a share\n');
    const r = await runAsync(['ceremony', 'combine', '--out', existing, share], { KAKUIN_DATA_DIR: path.join(tmp.dir, 'data-c') });
    expect(r.status).to.equal(1);
    expectOneLine(r.stderr, 'KAKUIN_E_FILE_EXISTS');
    expect(r.stderr).to.include('secret.out').and.include('remove it or name another --out');
  });

  it('a missing input file: one line with KAKUIN_E_FILE_NOT_FOUND', async () => {
    const r = await runAsync(['ceremony', 'combine', '--out', path.join(tmp.dir, 'new.out'), path.join(tmp.dir, 'no-such-share')], { KAKUIN_DATA_DIR: path.join(tmp.dir, 'data-c') });
    expect(r.status).to.equal(1);
    expectOneLine(r.stderr, 'KAKUIN_E_FILE_NOT_FOUND');
    expect(r.stderr).to.include('no-such-share');
  });

  it('a busy port: one line naming the listener and its variable (KAKUIN_E_PORT_IN_USE)', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      const r = await runAsync(['serve'], {
        KAKUIN_DATA_DIR: path.join(tmp.dir, 'data-p'), KAKUIN_KEY_PASSPHRASE: 'busy-port-test-passphrase-not-secret', KAKUIN_LOG_LEVEL: 'error',
        KAKUIN_ADMIN_TOKEN: 'kktest_busy_port_token_0123456789abcdef',
        KAKUIN_API_PORT: String(port), KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0',
      });
      expect(r.status, r.stderr).to.equal(1);
      expectOneLine(r.stderr, 'KAKUIN_E_PORT_IN_USE');
      expect(r.stderr).to.include(`:${port} is already in use`).and.include('management API').and.include('KAKUIN_API_PORT');
    } finally {
      squatter.close();
    }
  });
});
