/**
 * `kakuin enroll batch`: the real command (spawned asynchronously from this build) against a kakuin
 * running in this process, or as a child process where the test kills the server mid-way.
 * Files are checked with `openssl x509`, `openssl verify` and `openssl pkcs12`; the registry is read
 * through the admin API.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, toPem } from '../../pkix/index.js';
import { cliMain, freePort, makeTempDir, opensslAsync } from '../support/index.js';
import { spawnService, startTestService, testEnv, type ChildService, type TestService } from '../support/service.js';
import { apiAs, newFactory, type Factory } from '../enrollment/support.js';

const P12_PASSWORD = 'factory-p12-password-not-secret';

/** A P-256 CSR naming the device in its subject serialNumber (node:crypto + pkix: fast enough for hundreds). */
function csrPem(serialNumber: string): string {
  return csrAndKey([{ type: 'serialNumber', value: serialNumber }]).csrPem;
}

function csrAndKey(subject: Parameters<typeof encodeName>[0]): { csrPem: string; keyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const info = encodeCertificationRequestInfo(encodeName(subject), publicKey.export({ type: 'spki', format: 'der' }));
  return {
    csrPem: toPem('CERTIFICATE REQUEST', encodeCertificationRequest(info, 'ecdsa-with-SHA256', sign('sha256', info, privateKey))),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/** Every listener on a free port: other test files may run beside this one. */
const PORTS = { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0' };

interface CliRun {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function runCli(args: string[], env: Record<string, string>): CliRun {
  const child = spawn(process.execPath, [cliMain, 'enroll', 'batch', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function journalLines(outDir: string): { event: string; serialNumber: string; file?: string; sha256?: string }[] {
  const f = path.join(outDir, '.kakuin-enroll.journal');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()).flatMap((l) => {
    try {
      return [JSON.parse(l)];
    } catch {
      return [];
    }
  });
}

function hexEq(a: string, b: string): boolean {
  const n = (s: string) => s.toUpperCase().replace(/^0+/, '');
  return n(a) === n(b);
}

/**
 * Every device of `serials` has exactly one file in `outDir`, whose certificate is in the registry as
 * the device's one good certificate.
 */
async function expectOneGoodCertificateEach(svc: Pick<TestService, 'url' | 'rootPem' | 'adminToken'>, f: Factory, outDir: string, serials: string[]): Promise<void> {
  const admin = apiAs(svc as TestService, svc.adminToken);
  const files = readdirSync(outDir).filter((n) => n.endsWith('.pem') || n.endsWith('.p12'));
  expect(files.sort()).to.deep.equal(serials.map((s) => `${s}.pem`).sort());
  const devices = (await admin('GET', `/api/v1/devices?manufacturerId=${f.manufacturerId}&limit=1000`)).json.devices as { id: string; serialNumber: string }[];
  for (const serialNumber of serials) {
    const leaf = new X509Certificate(readFileSync(path.join(outDir, `${serialNumber}.pem`)));
    expect(leaf.subject).to.include(serialNumber);
    const device = devices.find((d) => d.serialNumber === serialNumber)!;
    const detail = (await admin('GET', `/api/v1/devices/${device.id}`)).json as { certificates: { serialHex: string; status: string }[] };
    const good = detail.certificates.filter((c) => c.status === 'good');
    expect(good, `${serialNumber}: ${JSON.stringify(detail.certificates)}`).to.have.length(1);
    expect(hexEq(good[0].serialHex, leaf.serialNumber), `${serialNumber}: file ${leaf.serialNumber}, registry ${good[0].serialHex}`).to.equal(true);
  }
}

async function issuedBy(svc: Pick<TestService, 'url' | 'rootPem' | 'adminToken'>, f: Factory): Promise<number> {
  const r = await apiAs(svc as TestService, svc.adminToken)('GET', '/api/v1/audit-events?type=certificate.issued&limit=1000');
  return r.json.events.filter((e: { actor: string }) => e.actor === `station:${f.stationId}`).length;
}

describe('kakuin enroll batch (the factory command)', function () {
  this.timeout(180_000);
  let tmp: { dir: string; cleanup: () => void };
  let rootFile: string;

  before(() => {
    tmp = makeTempDir();
  });
  after(() => tmp?.cleanup());

  describe('against kakuin in this process', () => {
    let svc: TestService;
    let f: Factory;
    let env: Record<string, string>;

    before(async () => {
      svc = await startTestService({ env: PORTS });
      rootFile = path.join(tmp.dir, 'root.pem');
      writeFileSync(rootFile, svc.rootPem);
      f = await newFactory(svc, 'CLI factory');
      env = { KAKUIN_STATION_API_KEY: f.apiKey };
      const serials = [...Array.from({ length: 12 }, (_, i) => `OK-${i}`), 'KG-1', 'KG-2', 'BAD-1', 'BAD-2', 'MTLS-1', 'MTLS-2',
        ...Array.from({ length: 250 }, (_, i) => `KILL-${i}`)];
      const imp = await apiAs(svc, f.apiKey)('POST', '/api/v1/devices/import', { body: serials.map((serialNumber) => ({ serialNumber })) });
      expect(imp.status, imp.text).to.equal(201);
    });
    after(async () => svc?.stop());

    it('a keygen item the server refused in an earlier run, issued now, gets no false "supersedes the earlier certificate" note', async () => {
      const inFile = path.join(tmp.dir, 'kg-refused.ndjson');
      writeFileSync(inFile, `${JSON.stringify({ serialNumber: 'KG-LATE', keygen: { password: 'an-item-password-0123' } })}\n`);
      const outDir = path.join(tmp.dir, 'kg-refused-out');
      const refused = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile], env).done;
      expect(refused.stdout, refused.stdout + refused.stderr).to.match(/1 failed/).and.include('KAKUIN_E_DEVICE_NOT_REGISTERED');
      const imp = await apiAs(svc, f.apiKey)('POST', '/api/v1/devices/import', { body: [{ serialNumber: 'KG-LATE' }] });
      expect(imp.status, imp.text).to.equal(201);
      const issued = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile], env).done;
      expect(issued.code, issued.stdout + issued.stderr).to.equal(0);
      expect(issued.stdout).to.match(/1 written/);
      expect(issued.stdout).to.not.match(/supersedes/);
    });

    it('enrolls CSR and keygen devices: one chain .pem (openssl verify) or .p12 (openssl pkcs12) each, exit 0, the API key never printed', async () => {
      const lines = Array.from({ length: 12 }, (_, i) => JSON.stringify({ serialNumber: `OK-${i}`, csr: csrPem(`OK-${i}`) }));
      lines.push(JSON.stringify({ serialNumber: 'KG-1', keygen: { password: 'an-item-password-0123' } }));
      lines.push(JSON.stringify({ serialNumber: 'KG-2', keygen: {} }));
      const inFile = path.join(tmp.dir, 'ok.ndjson');
      writeFileSync(inFile, `${lines.join('\r\n')}\r\n`);
      const pwFile = path.join(tmp.dir, 'p12-password');
      writeFileSync(pwFile, `${P12_PASSWORD}\n`);
      const outDir = path.join(tmp.dir, 'ok-out');
      const r = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile, '--p12-password-file', pwFile, '--chunk', '5'], env).done;
      expect(r.code, r.stderr + r.stdout).to.equal(0);
      expect(r.stdout).to.match(/14 sent, 14 written .* 0 failed/);
      expect(r.stderr).to.match(/enrolling: 14\/14/);
      for (const out of [r.stdout, r.stderr]) {
        expect(out).to.not.include(f.apiKey);
        expect(out).to.not.include(P12_PASSWORD);
      }
      expect(readdirSync(outDir).filter((n) => !n.startsWith('.')).sort()).to.deep.equal(
        [...Array.from({ length: 12 }, (_, i) => `OK-${i}.pem`), 'KG-1.p12', 'KG-2.p12', 'errors.ndjson'].sort());
      expect(readFileSync(path.join(outDir, 'errors.ndjson'), 'utf8')).to.equal('');
      for (let i = 0; i < 12; i++) {
        const file = path.join(outDir, `OK-${i}.pem`);
        const v = await opensslAsync(['verify', '-CAfile', rootFile, '-untrusted', file, file]);
        expect(v.status, v.stderr).to.equal(0);
        const x = await opensslAsync(['x509', '-in', file, '-noout', '-subject']);
        expect(x.stdout).to.match(new RegExp(`serialNumber\\s*=\\s*OK-${i}\\b`));
      }
      const kg1 = await opensslAsync(['pkcs12', '-info', '-nokeys', '-in', path.join(outDir, 'KG-1.p12'), '-passin', 'pass:an-item-password-0123']);
      expect(kg1.status, kg1.stderr).to.equal(0);
      expect(kg1.stdout).to.match(/serialNumber\s*=\s*KG-1/);
      const kg2 = await opensslAsync(['pkcs12', '-info', '-nokeys', '-in', path.join(outDir, 'KG-2.p12'), '-passin', `pass:${P12_PASSWORD}`]);
      expect(kg2.status, kg2.stderr).to.equal(0);
      expect(kg2.stdout).to.match(/serialNumber\s*=\s*KG-2/);
      const journal = journalLines(outDir).filter((e) => e.event === 'written');
      expect(journal.map((e) => e.serialNumber).sort()).to.deep.equal([...Array.from({ length: 12 }, (_, i) => `OK-${i}`), 'KG-1', 'KG-2'].sort());
      const ok0 = journal.find((e) => e.serialNumber === 'OK-0')!;
      expect(ok0.sha256).to.equal(new X509Certificate(readFileSync(path.join(outDir, 'OK-0.pem'))).fingerprint256.replace(/:/g, '').toLowerCase());
      const journalText = readFileSync(path.join(outDir, '.kakuin-enroll.journal'), 'utf8');
      expect(journalText).to.not.include(P12_PASSWORD);

      // A rerun finds everything done: nothing is sent, nothing issued.
      const before = await issuedBy(svc, f);
      const again = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile, '--p12-password-file', pwFile], env).done;
      expect(again.code, again.stderr).to.equal(0);
      expect(again.stdout).to.match(/14 done already, 0 sent/);
      expect(await issuedBy(svc, f)).to.equal(before);
    });

    it('bad lines fail alone into errors.ndjson with their line and KAKUIN_E_* code; exit 1; the good ones are written', async () => {
      const lines = [
        JSON.stringify({ serialNumber: 'BAD-1', csr: csrPem('BAD-1') }),
        '{"serialNumber": "BAD-2", "csr": ',
        JSON.stringify({ serialNumber: '../escape', csr: csrPem('escape') }),
        JSON.stringify({ serialNumber: 'NOT-REGISTERED', csr: csrPem('NOT-REGISTERED') }),
        JSON.stringify({ serialNumber: 'BAD-2', csr: 'not a PEM' }),
        JSON.stringify({ serialNumber: 'BAD-1', csr: csrPem('BAD-1') }),
      ];
      const inFile = path.join(tmp.dir, 'bad.ndjson');
      writeFileSync(inFile, `${lines.join('\n')}\n`);
      const outDir = path.join(tmp.dir, 'bad-out');
      const r = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile, '--no-progress'], env).done;
      expect(r.code, r.stderr + r.stdout).to.equal(1);
      expect(r.stderr).to.equal('');
      const errors = readFileSync(path.join(outDir, 'errors.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; code: string });
      expect(errors.map((e) => [e.line, e.code]).sort((a, b) => (a[0] as number) - (b[0] as number))).to.deep.equal([
        [2, 'KAKUIN_E_BATCH_ITEM_MALFORMED'],
        [3, 'KAKUIN_E_SERIAL_NOT_A_FILE_NAME'],
        [4, 'KAKUIN_E_DEVICE_NOT_REGISTERED'],
        [5, 'KAKUIN_E_PEM_MALFORMED'],
        [6, 'KAKUIN_E_BATCH_ITEM_MALFORMED'],
      ]);
      expect(readdirSync(outDir).filter((n) => !n.startsWith('.')).sort()).to.deep.equal(['BAD-1.pem', 'errors.ndjson']);
      expect(existsSync(path.join(tmp.dir, 'escape.pem'))).to.equal(false);
      expect(r.stdout).to.match(/5 failed/);
    });

    it('a station authenticates with its certificate (--cert/--key) instead of an API key', async () => {
      const { csrPem: stationCsr, keyPem } = csrAndKey([{ type: 'CN', value: 'line-1' }]);
      const issued = await apiAs(svc, svc.adminToken)('POST', `/api/v1/stations/${f.stationId}/certificate`, { body: { csr: stationCsr } });
      expect(issued.status, issued.text).to.equal(201);
      const certFile = path.join(tmp.dir, 'station.pem');
      const keyFile = path.join(tmp.dir, 'station.key');
      writeFileSync(certFile, issued.json.certificate + issued.json.chain);
      writeFileSync(keyFile, keyPem);
      const inFile = path.join(tmp.dir, 'mtls.ndjson');
      writeFileSync(inFile, ['MTLS-1', 'MTLS-2'].map((s) => JSON.stringify({ serialNumber: s, csr: csrPem(s) })).join('\n'));
      const outDir = path.join(tmp.dir, 'mtls-out');
      const before = await issuedBy(svc, f);
      const r = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile, '--cert', certFile, '--key', keyFile], {}).done;
      expect(r.code, r.stderr + r.stdout).to.equal(0);
      expect(readdirSync(outDir).filter((n) => n.endsWith('.pem')).sort()).to.deep.equal(['MTLS-1.pem', 'MTLS-2.pem']);
      expect(await issuedBy(svc, f)).to.equal(before + 2);
      // A file that is not a private key is a usage error; a wrong API key is refused by the server: exit 1, its code, nothing written.
      const notKey = await runCli(['--in', inFile, '--out', path.join(tmp.dir, 'mtls-none'), '--url', svc.url, '--cacert', rootFile, '--cert', certFile, '--key', inFile], {}).done;
      expect(notKey.code).to.equal(2);
      expect(notKey.stderr).to.match(/KAKUIN_E_USAGE: --key/);
      const wrongKey = 'kkst_this-is-not-a-station-key-000000000000';
      const refused = await runCli(['--in', inFile, '--out', path.join(tmp.dir, 'mtls-none'), '--url', svc.url, '--cacert', rootFile], { KAKUIN_STATION_API_KEY: wrongKey }).done;
      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.match(/KAKUIN_E_UNAUTHENTICATED/);
      expect(refused.stderr + refused.stdout).to.not.include(wrongKey);
      expect(readdirSync(path.join(tmp.dir, 'mtls-none')).filter((n) => n.endsWith('.pem'))).to.deep.equal([]);
    });

    it('usage errors exit 2 and name the problem', async () => {
      const inFile = path.join(tmp.dir, 'ok.ndjson');
      const outDir = path.join(tmp.dir, 'usage-out');
      const missing = await runCli(['--in', inFile, '--out', outDir, '--cacert', rootFile], env).done;
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.match(/KAKUIN_E_USAGE.*--url/);
      const big = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile, '--chunk', '10001'], env).done;
      expect(big.code).to.equal(2);
      expect(big.stderr).to.match(/--chunk/);
      const plain = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url.replace('https:', 'http:'), '--cacert', rootFile], env).done;
      expect(plain.code).to.equal(2);
      const noKey = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile], {}).done;
      expect(noKey.code).to.equal(2);
      expect(noKey.stderr).to.match(/KAKUIN_STATION_API_KEY/);
      expect(existsSync(outDir)).to.equal(false);
    });

    it('a server whose certificate does not verify against --cacert is not retried: exit 3, TLS named, nothing written', async () => {
      const otherCa = path.join(tmp.dir, 'other-ca.pem');
      const made = await opensslAsync(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(tmp.dir, 'other-ca.key'),
        '-subj', '/CN=Not kakuin', '-days', '1', '-out', otherCa]);
      expect(made.status, made.stderr).to.equal(0);
      const inFile = path.join(tmp.dir, 'tls.ndjson');
      writeFileSync(inFile, `${JSON.stringify({ serialNumber: 'OK-0', csr: csrPem('OK-0') })}\n`);
      const outDir = path.join(tmp.dir, 'tls-out');
      const r = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', otherCa], env).done;
      expect(r.code, r.stderr).to.equal(3);
      expect(r.stderr).to.match(/KAKUIN_E_SERVER_UNREACHABLE: TLS: the server's certificate does not verify/);
      expect(r.stderr).to.not.match(/retry/);
      expect(readdirSync(outDir).filter((n) => n.endsWith('.pem'))).to.deep.equal([]);
    });

    it('interrupted by Ctrl-C, then killed with SIGKILL mid-way, a rerun completes: one file per device, each the device\'s one good certificate, nothing issued twice', async () => {
      const serials = Array.from({ length: 250 }, (_, i) => `KILL-${i}`);
      const inFile = path.join(tmp.dir, 'kill.ndjson');
      writeFileSync(inFile, `${serials.map((s) => JSON.stringify({ serialNumber: s, csr: csrPem(s) })).join('\n')}\n`);
      const outDir = path.join(tmp.dir, 'kill-out');
      const args = ['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile, '--chunk', '20', '--concurrency', '1'];
      // Ctrl-C: the command stops, says so and exits 130; then a kill -9 of the rerun.
      const interrupted = runCli(args, env);
      await waitFor('the first written device', () => journalLines(outDir).length > 0);
      interrupted.child.kill('SIGINT');
      const stopped = await interrupted.done;
      expect(stopped.code, stopped.stderr).to.equal(130);
      expect(stopped.stderr).to.match(/interrupted; rerun the same command to resume/);
      const afterInterrupt = journalLines(outDir).length;
      expect(afterInterrupt).to.be.lessThan(250);
      const first = runCli(args, env);
      await waitFor('more written devices', () => journalLines(outDir).length > afterInterrupt);
      first.child.kill('SIGKILL');
      const killed = await first.done;
      expect(killed.signal).to.equal('SIGKILL');
      const writtenBefore = readdirSync(outDir).filter((n) => n.endsWith('.pem')).length;
      expect(writtenBefore).to.be.greaterThan(0).and.lessThan(250);

      const second = await runCli(args, env).done;
      expect(second.code, second.stderr + second.stdout).to.equal(0);
      expect(second.stdout).to.match(new RegExp(`${writtenBefore} done already, ${250 - writtenBefore} sent`));
      expect(readdirSync(outDir).filter((n) => n.includes('.tmp'))).to.deep.equal([]);
      await expectOneGoodCertificateEach(svc, f, outDir, serials);
      // Issued at most once per device: items the server answered before the kill were answered again from the registry.
      expect(await issuedBy(svc, f)).to.equal(14 + 1 + 2 + 250 + 1 /* the refused-keygen test issues one through f */);
    });
  });

  describe('against kakuin with a station rate limit', () => {
    let svc: TestService;
    let f: Factory;

    before(async () => {
      const config = path.join(tmp.dir, 'rate-limited.json');
      writeFileSync(config, JSON.stringify({ enrollment: { stationPerSecond: 40, stationBurst: 20 } }));
      svc = await startTestService({ env: { ...PORTS, KAKUIN_CONFIG: config } });
      f = await newFactory(svc, 'Paced factory');
      const imp = await apiAs(svc, f.apiKey)('POST', '/api/v1/devices/import', { body: Array.from({ length: 80 }, (_, i) => ({ serialNumber: `P-${i}` })) });
      expect(imp.status, imp.text).to.equal(201);
    });
    after(async () => svc?.stop());

    it('items refused as rate-limited are sent again after a pause, in the same run: all enrolled, exit 0', async () => {
      const rootFile = path.join(tmp.dir, 'paced-root.pem');
      writeFileSync(rootFile, svc.rootPem);
      const serials = Array.from({ length: 80 }, (_, i) => `P-${i}`);
      const inFile = path.join(tmp.dir, 'paced.ndjson');
      writeFileSync(inFile, serials.map((s) => JSON.stringify({ serialNumber: s, csr: csrPem(s) })).join('\n'));
      const outDir = path.join(tmp.dir, 'paced-out');
      const r = await runCli(['--in', inFile, '--out', outDir, '--url', svc.url, '--cacert', rootFile, '--no-progress'], { KAKUIN_STATION_API_KEY: f.apiKey }).done;
      expect(r.code, r.stderr + r.stdout).to.equal(0);
      expect(r.stderr).to.match(/items were refused for now \(rate limit or busy registry\); retry 1\//);
      expect(r.stdout).to.match(/80 written .* 0 failed/);
      expect(readdirSync(outDir).filter((n) => n.endsWith('.pem'))).to.have.length(80);
      expect(await issuedBy(svc, f)).to.equal(80);
    });
  });

  describe('against a kakuin process that is killed and restarted', () => {
    let child: ChildService | undefined;
    let env: Record<string, string>;
    let admin: { url: string; rootPem: string; adminToken: string };
    let f: Factory;

    before(async () => {
      const dataDir = path.join(tmp.dir, 'server-data');
      env = testEnv(dataDir, { ...PORTS, KAKUIN_API_PORT: String(await freePort()) });
      child = await spawnService(env);
      admin = { url: child.url, rootPem: readFileSync(path.join(dataDir, 'ca', 'root.pem'), 'utf8'), adminToken: env.KAKUIN_ADMIN_TOKEN };
      rootFile = path.join(tmp.dir, 'server-root.pem');
      writeFileSync(rootFile, admin.rootPem);
      f = await newFactory(admin as TestService, 'Restart factory');
      const imp = await apiAs(admin as TestService, f.apiKey)('POST', '/api/v1/devices/import', { body: Array.from({ length: 300 }, (_, i) => ({ serialNumber: `R-${i}` })) });
      expect(imp.status, imp.text).to.equal(201);
    });
    after(async () => {
      child?.proc.kill('SIGKILL');
      await child?.exited;
    });

    it('the server killed with SIGKILL mid-way and restarted: the command retries with backoff and completes, nothing issued twice', async () => {
      const serials = Array.from({ length: 300 }, (_, i) => `R-${i}`);
      const inFile = path.join(tmp.dir, 'restart.ndjson');
      writeFileSync(inFile, `${serials.map((s) => JSON.stringify({ serialNumber: s, csr: csrPem(s) })).join('\n')}\n`);
      const outDir = path.join(tmp.dir, 'restart-out');
      const run = runCli(['--in', inFile, '--out', outDir, '--url', admin.url, '--cacert', rootFile, '--chunk', '20', '--concurrency', '1', '--retries', '10', '--no-progress'],
        { KAKUIN_STATION_API_KEY: f.apiKey });
      await waitFor('the first written device', () => journalLines(outDir).length > 0);
      child!.proc.kill('SIGKILL');
      await child!.exited;
      const writtenAtKill = journalLines(outDir).length;
      await new Promise((r) => setTimeout(r, 300));
      child = await spawnService(env);
      const r = await run.done;
      expect(r.code, r.stderr + r.stdout).to.equal(0);
      expect(r.stderr).to.match(/retry 1\/10/);
      expect(writtenAtKill).to.be.lessThan(300);
      await expectOneGoodCertificateEach(admin, f, outDir, serials);
      expect(await issuedBy(admin, f)).to.equal(300);
    });

    it('exits 3 when the server cannot be reached after the retries; nothing is written', async () => {
      child!.proc.kill('SIGKILL');
      await child!.exited;
      child = undefined;
      const inFile = path.join(tmp.dir, 'unreachable.ndjson');
      writeFileSync(inFile, `${JSON.stringify({ serialNumber: 'R-X', csr: csrPem('R-X') })}\n`);
      const outDir = path.join(tmp.dir, 'unreachable-out');
      const r = await runCli(['--in', inFile, '--out', outDir, '--url', admin.url, '--cacert', rootFile, '--retries', '1'], { KAKUIN_STATION_API_KEY: f.apiKey }).done;
      expect(r.code, r.stderr).to.equal(3);
      expect(r.stderr).to.match(/KAKUIN_E_SERVER_UNREACHABLE/);
      expect(readdirSync(outDir).filter((n) => n.endsWith('.pem'))).to.deep.equal([]);
    });
  });
});
