/**
 * `kakuin backup` while a kakuin process serves and writes the same data directory, then
 * `kakuin restore` into a new one: the restored service knows the certificates issued before the
 * backup, and a revoked one is still revoked in OCSP. A tampered backup is refused and restores nothing.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { encodeCertId, encodeOcspRequest, fromPem, parseCertificate } from '../../pkix/index.js';
import { cliMain, makeTempDir, opensslOk } from '../support/index.js';
import { ocspStatus, request, spawnService, testEnv, type ChildService } from '../support/service.js';

/** `kakuin ARGS` as a child process (async: nothing blocks while the service child runs). */
function kakuin(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliMain, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function stopChild(svc: ChildService | undefined): Promise<void> {
  if (!svc || svc.proc.exitCode !== null) return Promise.resolve();
  svc.proc.kill('SIGTERM');
  return svc.exited.then(() => undefined);
}

describe('kakuin backup and restore', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let source: ChildService | undefined;
  let restored: ChildService | undefined;
  let backupDir: string;
  let env: Record<string, string>;
  let good: { serialHex: string; certificate: string };
  let revoked: { serialHex: string; certificate: string };

  before(async () => {
    tmp = makeTempDir();
    env = testEnv(path.join(tmp.dir, 'source'), { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0' });
    source = await spawnService(env);
  });
  after(async () => {
    await stopChild(source);
    await stopChild(restored);
    tmp?.cleanup();
  });

  it('backs up while the service issues, restores into a new data directory, and the restored service keeps issued and revoked certificates', async () => {
    const rootPem = readFileSync(path.join(tmp.dir, 'source', 'ca', 'root.pem'), 'utf8');
    const api = (base: string, m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(base, rootPem, m, p, { token: env.KAKUIN_ADMIN_TOKEN, ...o });
    const mfr = await api(source!.url, 'POST', '/api/v1/manufacturers', { body: { name: 'Backup Works' } });
    const issue = async (serial: string) => {
      const dev = await api(source!.url, 'POST', '/api/v1/devices', { body: { manufacturerId: mfr.json.id, serialNumber: serial } });
      const key = path.join(tmp.dir, `${serial}.key`);
      const csr = opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/serialNumber=${serial}`]);
      const issued = await api(source!.url, 'POST', `/api/v1/devices/${dev.json.id}/certificates`, { body: csr, contentType: 'application/pkcs10' });
      expect(issued.status, issued.text).to.equal(201);
      return { deviceId: dev.json.id as string, serialHex: issued.json.serialHex as string, certificate: issued.json.certificate as string };
    };
    const first = await issue('BK-0001');
    const second = await issue('BK-0002');
    const rv = await api(source!.url, 'POST', `/api/v1/devices/${second.deviceId}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(rv.status, rv.text).to.equal(200);
    good = first;
    revoked = second;

    // The service keeps issuing (then registering devices) while the backup runs.
    const pending: { deviceId: string; csr: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const serial = `BK-I${i}`;
      const dev = await api(source!.url, 'POST', '/api/v1/devices', { body: { manufacturerId: mfr.json.id, serialNumber: serial } });
      const csr = opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(tmp.dir, `${serial}.key`), '-subj', `/serialNumber=${serial}`]);
      pending.push({ deviceId: dev.json.id, csr });
    }
    let writing = true;
    let written = 0;
    let issuedDuring = 0;
    const writer = (async () => {
      while (writing) {
        const next = pending.shift();
        const r = next
          ? await api(source!.url, 'POST', `/api/v1/devices/${next.deviceId}/certificates`, { body: next.csr, contentType: 'application/pkcs10' })
          : await api(source!.url, 'POST', '/api/v1/devices', { body: { manufacturerId: mfr.json.id, serialNumber: `BK-W${String(written).padStart(5, '0')}` } });
        expect(r.status, r.text).to.equal(201);
        if (next) issuedDuring++;
        written++;
      }
    })();
    backupDir = path.join(tmp.dir, 'backup');
    const backup = await kakuin(['backup', '--out', backupDir], env);
    writing = false;
    await writer;
    expect(backup.code, backup.stderr).to.equal(0);
    expect(issuedDuring, 'certificates issued while the backup ran').to.be.greaterThan(0);
    expect(backup.stdout).to.contain('KAKUIN_KEY_PASSPHRASE');
    const manifest = JSON.parse(readFileSync(path.join(backupDir, 'manifest.json'), 'utf8'));
    expect(manifest).to.include({ format: 'kakuin-backup', version: 1, storage: 'sqlite' });
    expect(manifest.latestFeedSeq).to.be.greaterThan(0);
    const paths = manifest.files.map((f: { path: string }) => f.path);
    expect(paths).to.include.members(['registry/kakuin.db', 'secrets/pepper', 'ca/root.pem']);
    expect(paths.some((p: string) => p.startsWith('keys/device-ca')), 'the device CA key file').to.equal(true);
    // Keys are copied as stored: still encrypted.
    const deviceKey = paths.find((p: string) => p.startsWith('keys/device-ca'));
    expect(readFileSync(path.join(backupDir, deviceKey), 'utf8')).to.contain(['ENCRYPTED', 'PRIVATE KEY'].join(' '));
    await stopChild(source);

    const target = path.join(tmp.dir, 'restored');
    const restoreEnv = { ...env, KAKUIN_DATA_DIR: target };
    const r = await kakuin(['restore', '--from', backupDir], restoreEnv);
    expect(r.code, r.stderr).to.equal(0);
    const again = await kakuin(['restore', '--from', backupDir], restoreEnv);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.contain('KAKUIN_E_RESTORE_TARGET_NOT_EMPTY');

    restored = await spawnService(restoreEnv);
    const cert = await api(restored.url, 'GET', `/api/v1/certificates/${good.serialHex}`);
    expect(cert.status, cert.text).to.equal(200);
    expect(cert.json.status).to.equal('good');
    const ocspUrl = /OCSP, CRLs\s+(http:\/\/\S+?)\/ocsp,/.exec(restored.stdout())![1];
    const deviceCa = parseCertificate(fromPem(readFileSync(path.join(target, 'ca', 'device.pem'), 'utf8'), 'CERTIFICATE')[0]);
    const ocspRequest = (pem: string) => encodeOcspRequest([
      encodeCertId('sha1', deviceCa.subject.rawDer, deviceCa.spki.subjectPublicKey, parseCertificate(fromPem(pem, 'CERTIFICATE')[0]).serial),
    ]);
    expect(await ocspStatus(ocspUrl, ocspRequest(revoked.certificate))).to.equal('revoked');
    expect(await ocspStatus(ocspUrl, ocspRequest(good.certificate))).to.equal('good');
  });

  it('in a development setup (passphrase file in the data directory) backs it up with a warning, and the restored CA opens', async () => {
    // No KAKUIN_KEY_PASSPHRASE: `init` generates the passphrase file beside the keys.
    const devEnv = { KAKUIN_DATA_DIR: path.join(tmp.dir, 'dev', 'data'), KAKUIN_LOG_LEVEL: 'error' };
    const init = await kakuin(['init'], devEnv);
    expect(init.code, init.stderr).to.equal(0);
    const out = path.join(tmp.dir, 'dev-backup');
    const b = await kakuin(['backup', '--out', out], devEnv);
    expect(b.code, b.stderr).to.equal(0);
    expect(b.stdout).to.contain('WARNING');
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    expect(manifest.files.map((f: { path: string }) => f.path)).to.include.members(['secrets/key-passphrase', 'config/kakuin.json']);
    const restoredEnv = { ...devEnv, KAKUIN_DATA_DIR: path.join(tmp.dir, 'dev', 'restored') };
    const r = await kakuin(['restore', '--from', out], restoredEnv);
    expect(r.code, r.stderr).to.equal(0);
    const before = await kakuin(['ca', 'show'], devEnv);
    const after = await kakuin(['ca', 'show'], restoredEnv);
    expect(after.code, after.stderr).to.equal(0);
    expect(after.stdout).to.contain('device (device)');
    expect(after.stdout).to.equal(before.stdout);
  });

  it('refuses a tampered backup with KAKUIN_E_BACKUP_INTEGRITY and restores nothing', async () => {
    const tampered = path.join(tmp.dir, 'tampered');
    cpSync(backupDir, tampered, { recursive: true });
    const keyFile = path.join(tampered, 'keys', readdirSync(path.join(tampered, 'keys'))[0]);
    const text = readFileSync(keyFile, 'utf8');
    writeFileSync(keyFile, text.replace(/[A-Za-z]/, (c) => (c === 'A' ? 'B' : 'A')));
    const target = path.join(tmp.dir, 'from-tampered');
    const r = await kakuin(['restore', '--from', tampered], { ...env, KAKUIN_DATA_DIR: target });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain('KAKUIN_E_BACKUP_INTEGRITY');
    expect(r.stderr).to.contain(path.relative(tampered, keyFile));
    expect(existsSync(target) ? readdirSync(target) : []).to.deep.equal([]);

    // A file slipped in that the manifest does not name is refused too.
    const extra = path.join(tmp.dir, 'extra');
    cpSync(backupDir, extra, { recursive: true });
    writeFileSync(path.join(extra, 'keys', 'file-intruder.pem'), 'x');
    const r2 = await kakuin(['restore', '--from', extra], { ...env, KAKUIN_DATA_DIR: target });
    expect(r2.code).to.equal(1);
    expect(r2.stderr).to.contain('KAKUIN_E_BACKUP_INTEGRITY');
  });
});
