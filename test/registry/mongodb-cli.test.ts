/**
 * `kakuin` with storage.type mongodb, end to end through config and wiring: it opens MongoDB (not
 * the SQLite file), refuses a standalone server, and never prints the connection string's password.
 * The server is the fake wire-protocol one (no MongoDB can run here), so the CLI runs as a child
 * process spawned asynchronously (the fake answers from this process).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { cliMain, freePort, makeTempDir } from '../support/index.js';
import { startFakeMongo, type FakeMongo } from './mongodb-fake-server.js';

function kakuin(env: Record<string, string>, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliMain, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('kakuin with storage.type mongodb', function () {
  this.timeout(30_000);
  let tmp: ReturnType<typeof makeTempDir>;
  let fake: FakeMongo;
  let env: Record<string, string>;

  beforeEach(async function () {
    tmp = makeTempDir('kakuin-mongo-cli-');
    fake = await startFakeMongo();
    env = { KAKUIN_DATA_DIR: path.join(tmp.dir, 'data'), KAKUIN_KEY_PASSPHRASE: 'mongo-cli-test-passphrase', KAKUIN_LOG_LEVEL: 'error', KAKUIN_STORAGE_TYPE: 'mongodb' };
  });

  afterEach(async function () {
    await fake.close();
    tmp.cleanup();
  });

  it('init opens the configured MongoDB and refuses a standalone server; no SQLite file appears', async function () {
    const r = await kakuin({ ...env, KAKUIN_MONGODB_URI: `mongodb://127.0.0.1:${fake.port}/?directConnection=true&serverSelectionTimeoutMS=3000` }, 'init');
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr).to.include('KAKUIN_E_CONFIG').and.include('standalone');
    expect(fake.commands).to.include('hello');
    expect(existsSync(path.join(env.KAKUIN_DATA_DIR, 'kakuin.db'))).to.equal(false);
  });

  it('refused credentials and an unreachable server never print the password', async function () {
    const refused = await kakuin({ ...env, KAKUIN_MONGODB_URI: `mongodb://ops:Pa55-never-shown@127.0.0.1:${fake.port}/?directConnection=true&serverSelectionTimeoutMS=3000` }, 'init');
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.include('KAKUIN_E_CONFIG');
    expect(refused.stderr + refused.stdout).to.not.include('Pa55-never-shown');
    const port = await freePort();
    const gone = await kakuin({ ...env, KAKUIN_MONGODB_URI: `mongodb://ops:Pa55-never-shown@127.0.0.1:${port}/?directConnection=true&serverSelectionTimeoutMS=500` }, 'ca', 'show');
    expect(gone.status).to.equal(1);
    expect(gone.stderr).to.include('KAKUIN_E_REGISTRY_UNAVAILABLE');
    expect(gone.stderr + gone.stdout).to.not.include('Pa55-never-shown');
  });

  it('without a URI the configuration is refused before anything is opened', async function () {
    const r = await kakuin(env, 'ca', 'show');
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include('KAKUIN_E_CONFIG').and.include('storage.uri');
    expect(fake.commands).to.deep.equal([]);
  });
});
