/**
 * The service as an operator runs it: `kakuin serve` as its own process, driven with `curl` and
 * checked with `openssl`, then killed with SIGKILL to show a returned certificate was committed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { cliMain, makeTempDir, opensslOk } from '../support/index.js';
import { spawnService, type ChildService } from '../support/service.js';

function curl(args: string[], input?: string): { status: number; body: string } {
  const r = spawnSync('curl', ['-sS', '-w', '\n%{http_code}', ...args], { input, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`curl failed: ${r.stderr.toString()}`);
  const out = r.stdout.toString();
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

describe('kakuin serve as a process, with curl and openssl', function () {
  this.timeout(90_000);
  let tmp: { dir: string; cleanup: () => void };
  let env: Record<string, string>;
  let child: ChildService | undefined;

  before(() => {
    tmp = makeTempDir();
    env = {
      KAKUIN_DATA_DIR: path.join(tmp.dir, 'data'),
      KAKUIN_API_PORT: '0',
      KAKUIN_KEY_PASSPHRASE: 'process-test-passphrase',
      KAKUIN_LOG_LEVEL: 'warn',
      KAKUIN_GATEWAY_WORKERS: '1',
    };
  });

  afterEach(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    child = undefined;
  });

  after(() => tmp?.cleanup());

  it('creates a development CA on first start, enrolls an openssl CSR through curl, and survives kill -9', async () => {
    child = await spawnService(env);
    const token = /admin token \(shown once[^\n]*\n\s+(\S+)/.exec(child.stdout())?.[1];
    expect(token, child.stdout()).to.match(/^kkadm_/);
    const tokenFile = path.join(env.KAKUIN_DATA_DIR, 'secrets', 'admin-token');
    expect(readFileSync(tokenFile, 'utf8').trim()).to.equal(token);

    const root = path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem');
    const base = ['--cacert', root, '-H', `Authorization: Bearer ${token}`];
    const m = curl([...base, '-H', 'Content-Type: application/json', '--data', '{"name":"Factory One"}', `${child.url}/api/v1/manufacturers`]);
    expect(m.status, m.body).to.equal(201);
    const manufacturerId = JSON.parse(m.body).id;
    const d = curl([...base, '-H', 'Content-Type: application/json', '--data', JSON.stringify({ manufacturerId, serialNumber: 'FX-000042' }), `${child.url}/api/v1/devices`]);
    expect(d.status, d.body).to.equal(201);
    const deviceId = JSON.parse(d.body).id;

    const key = path.join(tmp.dir, 'device.key');
    const csr = path.join(tmp.dir, 'device.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/serialNumber=FX-000042', '-out', csr]);
    const issued = curl([...base, '-H', 'Content-Type: application/pkcs10', '-H', 'Accept: application/pem-certificate-chain',
      '--data-binary', `@${csr}`, `${child.url}/api/v1/devices/${deviceId}/certificates`]);
    expect(issued.status, issued.body).to.equal(201);
    // Killed the moment the answer is in: what was returned must already be committed.
    child.proc.kill('SIGKILL');
    await child.exited;

    const [leafPem, issuingPem] = issued.body.split(/(?<=-----END CERTIFICATE-----\n)/);
    const leaf = path.join(tmp.dir, 'device.pem');
    const issuing = path.join(tmp.dir, 'issuing.pem');
    writeFileSync(leaf, leafPem);
    writeFileSync(issuing, issuingPem);
    expect(opensslOk(['verify', '-CAfile', root, '-untrusted', issuing, leaf])).to.match(/device\.pem: OK/);
    const serial = opensslOk(['x509', '-in', leaf, '-noout', '-serial']).trim().replace('serial=', '');

    const registry = await openSqliteRegistry({ path: path.join(env.KAKUIN_DATA_DIR, 'kakuin.db') });
    try {
      const rec = await registry.getCertificate(serial);
      expect(rec.deviceId).to.equal(deviceId);
      expect(rec.der.equals(Buffer.from(leafPem.replace(/-----[^-]+-----|\s/g, ''), 'base64'))).to.equal(true);
      expect((await registry.getDevice(deviceId)).status).to.equal('active');
    } finally {
      await registry.close();
    }
  });

  it('restarts on the same data directory with the same CA and without printing a new token', async () => {
    const rootBefore = readFileSync(path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem'), 'utf8');
    child = await spawnService(env);
    expect(child.stdout()).not.to.match(/shown once/);
    expect(child.stdout()).to.include('admin-token');
    expect(readFileSync(path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem'), 'utf8')).to.equal(rootBefore);
    child.proc.kill('SIGTERM');
    expect(await child.exited).to.equal(0);
  });

  it('stops within seconds on SIGTERM even with connections stuck before their TLS handshake', async () => {
    child = await spawnService({ ...env, KAKUIN_GATEWAY_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_LEGACY_PORT: '0' });
    const gateway = /device gateway\s+(https:\/\/\S+)/.exec(child.stdout())?.[1];
    expect(gateway, child.stdout()).to.be.a('string');
    const { connect } = await import('node:net');
    const silent = [child.url, gateway!].map((u) => {
      const { hostname, port } = new URL(u);
      const s = connect(Number(port), hostname);
      s.on('error', () => undefined);
      return s;
    });
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    child.proc.kill('SIGTERM');
    expect(await child.exited).to.equal(0);
    expect(Date.now() - started, 'exit after SIGTERM').to.be.below(5000);
    for (const s of silent) s.destroy();
  });

  it('refuses a key passphrase shorter than 16 characters', async () => {
    const r = spawnSync(process.execPath, [cliMain, 'serve'], {
      env: { ...process.env, ...env, KAKUIN_KEY_PASSPHRASE: 'short' }, timeout: 30_000,
    });
    expect(r.status).to.equal(1);
    expect(r.stderr.toString()).to.match(/KAKUIN_E_KEY_PASSPHRASE.*at least 16/);
  });

  it('refuses to start with a wrong key passphrase, with a clear code', async () => {
    const r = spawnSync(process.execPath, [cliMain, 'serve'], {
      env: { ...process.env, ...env, KAKUIN_KEY_PASSPHRASE: 'wrong-but-long-enough-passphrase' }, timeout: 30_000,
    });
    expect(r.status).to.equal(1);
    expect(r.stderr.toString()).to.include('KAKUIN_E_KEY_PASSPHRASE');
  });
});
