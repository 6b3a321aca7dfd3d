/**
 * Issue 8, the 1M-scale figures (KAKUIN_BENCH_SCALE multiplies the 1,000,000 devices):
 *
 *   (a) registry lookups through the port (async API) by certificate serial (getCertificate) and
 *       by device identifier (findDevices by serialNumber, by mac), random keys, one at a time —
 *       target ≥ 100,000/s each;
 *   (b) an OCSP responder process (registry read-only, persistResponses: false, its start's two
 *       registry walks in worker threads: as `serve --role ocsp` runs it) over 1,000,000 stored
 *       pre-signed responses: time from spawn to the first correct answer for a random serial, its
 *       CPU time and its peak RSS (VmHWM) — targets ≤ 10 s, ≤ 1 GB; then the same with the walks
 *       on the event loop, for comparison.
 *
 * The fixture — N devices, N real certificates signed by a bench CA (pkix + node:crypto, in
 * worker threads), N pre-signed OCSP responses signed by the responder's own ResponseSigner — is
 * built once into `.bench-tmp/scale-<N>.sqlite` and reused until its responses pass half their
 * validity (30 days: a responder would re-sign them all at start). The registry's schema comes
 * from openSqliteRegistry (migrations); the rows go in directly in SQL, in ONE transaction on a
 * second better-sqlite3 connection (the port's recordIssuance group commit runs ~4-5k/s: 4 min
 * for 1M). Not filled: public_key_bindings, audit events and feed entries (nothing here reads them).
 *
 * `node dist/bench/scale.js [--json]` runs this benchmark alone.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  basicConstraintsExt, encodeCertId, encodeName, encodeOcspRequest,
  extKeyUsageExt, keyIdentifier, keyUsageExt, ocspNoCheckExt, parseCertificate, parseOcspResponse, parseSpki,
  verifyOcspResponseSignature,
} from '../pkix/index.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';
import type { Registry } from '../registry/port.js';
import { scaleDevice, type ScaleBatch, type ScaleDevice, type ScaleFixtureMeta, type ScaleWorkerData } from './scale-keys.js';
import type { LookupWorkerData } from './scale-lookup-worker.js';
import { fixtureCertificate } from './ocsp-fixtures.js';

const DAY = 86_400_000;
const VALIDITY_MS = 30 * DAY;
const here = path.dirname(fileURLToPath(import.meta.url));

export interface ScaleFixture {
  dbPath: string;
  metaPath: string;
  meta: ScaleFixtureMeta;
  reused: boolean;
}

/** The fixture for `devices`, built unless a usable one is cached. */
export async function scaleFixture(devices: number, log: (line: string) => void): Promise<ScaleFixture> {
  const dir = path.resolve('.bench-tmp');
  mkdirSync(dir, { recursive: true });
  const dbPath = path.join(dir, `scale-${devices}.sqlite`);
  const metaPath = path.join(dir, `scale-${devices}.json`);
  if (existsSync(dbPath) && existsSync(metaPath)) {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as ScaleFixtureMeta;
    if (meta.devices === devices && Date.now() < meta.builtAtMs + meta.validityMs / 2 - DAY) {
      log(`  fixture ${path.relative(process.cwd(), dbPath)} reused (built in ${meta.buildSeconds} s on ${new Date(meta.builtAtMs).toISOString()})`);
      // A fixture made by an older kakuin gets this one's migrations (the readers open it read-only).
      await (await openSqliteRegistry({ path: dbPath })).close();
      return { dbPath, metaPath, meta, reused: true };
    }
  }
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${dbPath}${suffix}`, { force: true });
  rmSync(metaPath, { force: true });
  const started = performance.now();
  const nowMs = Date.now();

  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caSpki = caKeys.publicKey.export({ type: 'spki', format: 'der' });
  const caName = encodeName([{ type: 'O', value: 'kakuin scale bench' }, { type: 'CN', value: 'Device CA' }]);
  const caKeyId = keyIdentifier(caSpki);
  const caDer = fixtureCertificate({
    issuerName: caName, issuerKey: caKeys.privateKey, issuerKeyId: caKeyId, subject: caName, spki: caSpki, serial: Buffer.from([0x01, 0x01]), days: 3650,
    extensions: [basicConstraintsExt({ ca: true }), keyUsageExt(['digitalSignature', 'keyCertSign', 'cRLSign'])],
  });
  const rKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const responderDer = fixtureCertificate({
    issuerName: caName, issuerKey: caKeys.privateKey, issuerKeyId: caKeyId,
    subject: encodeName([{ type: 'O', value: 'kakuin scale bench' }, { type: 'CN', value: 'Device CA OCSP responder' }]),
    spki: rKeys.publicKey.export({ type: 'spki', format: 'der' }), serial: Buffer.from([0x01, 0x02]), days: 365,
    extensions: [basicConstraintsExt({ ca: false }), keyUsageExt(['digitalSignature']), extKeyUsageExt(['OCSPSigning']), ocspNoCheckExt()],
  });

  // Schema (all migrations) and the issuer and manufacturer records through the port.
  const registry = await openSqliteRegistry({ path: dbPath });
  await registry.putIssuer({ id: 'device', kind: 'device', certificateDer: caDer, keyUri: 'file:scale-ca' });
  const manufacturer = await registry.createManufacturer({ name: 'Scale Devices Ltd' });
  await registry.close();

  const db = new Database(dbPath);
  db.pragma('journal_mode = DELETE'); // one huge transaction: no WAL of the whole file
  db.pragma('synchronous = OFF');
  const insertDevice = db.prepare(`INSERT INTO devices (id, manufacturer_id, serial_number, mac, model, status, created_at, updated_at)
    VALUES (?, ?, ?, ?, 'scale-sensor', 'active', ?, ?)`);
  const insertCertificate = db.prepare(`INSERT INTO certificates (serial_hex, issuer_id, device_id, profile, status, der, fingerprint_sha256,
    public_key_sha256, not_before, not_after, created_at) VALUES (?, 'device', ?, 'device', 'good', ?, ?, ?, ?, ?, ?)`);
  const insertOcsp = db.prepare('INSERT INTO ocsp_responses (issuer_id, serial_hex, der, this_update, next_update) VALUES (\'device\', ?, ?, ?, ?)');
  const notBefore = nowMs - DAY;
  const notAfter = nowMs + 365 * DAY;
  const insertBatch = (b: ScaleBatch): void => {
    for (let k = 0; k < b.index.length; k++) {
      const dev = scaleDevice(b.index[k]);
      insertDevice.run(dev.id, manufacturer.id, dev.serialNumber, dev.mac, nowMs, nowMs);
      insertCertificate.run(dev.serialHex, dev.id, asBuffer(b.certDer[k]), b.fingerprint[k], b.publicKeySha256[k], notBefore, notAfter, nowMs);
      insertOcsp.run(dev.serialHex, asBuffer(b.ocspDer[k]), b.thisUpdate, b.nextUpdate);
    }
  };

  const workers = Math.max(1, Math.min(availableParallelism(), 8));
  const base: Omit<ScaleWorkerData, 'start' | 'end'> = {
    caCertDerB64: caDer.toString('base64'), caKeyPem: caKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    responderCertDerB64: responderDer.toString('base64'), responderKeyPem: rKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    spkiTemplateB64: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    validityMs: VALIDITY_MS, nowMs,
  };
  let inserted = 0;
  let lastReport = performance.now();
  db.exec('BEGIN');
  try {
    await Promise.all(Array.from({ length: workers }, (_, w) => new Promise<void>((resolve, reject) => {
      const start = Math.floor((devices * w) / workers);
      const end = Math.floor((devices * (w + 1)) / workers);
      const worker = new Worker(path.join(here, 'scale-worker.js'), { workerData: { ...base, start, end } satisfies ScaleWorkerData });
      worker.on('message', (m: ScaleBatch | { done: true } | { error: string }) => {
        if ('error' in m) {
          reject(new Error(`scale worker: ${m.error}`));
          return;
        }
        if ('done' in m) {
          void worker.terminate();
          resolve();
          return;
        }
        insertBatch(m);
        inserted += m.index.length;
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          log(`    ${inserted.toLocaleString('en')} / ${devices.toLocaleString('en')} devices (${((lastReport - started) / 1000).toFixed(0)} s)`);
        }
      });
      worker.on('error', reject);
    })));
    db.exec('COMMIT');
  } catch (e) {
    db.exec('ROLLBACK');
    db.close();
    throw e;
  }
  db.pragma('journal_mode = WAL');
  db.close();
  const meta: ScaleFixtureMeta = {
    devices, builtAtMs: nowMs, validityMs: VALIDITY_MS, caCertDerB64: base.caCertDerB64, responderCertDerB64: base.responderCertDerB64,
    responderKeyPem: base.responderKeyPem, buildSeconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  };
  writeFileSync(metaPath, JSON.stringify(meta));
  log(`  fixture built in ${meta.buildSeconds} s (${workers} worker threads): ${path.relative(process.cwd(), dbPath)}`);
  return { dbPath, metaPath, meta, reused: false };
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Lookups per second of wall time, one at a time through the port, each result checked; and per
 * CPU second of this process (what one core does when it is not shared with anything else).
 */
async function lookupsPerSecond(count: number, devices: number, lookup: (d: ScaleDevice) => Promise<boolean>): Promise<{ wall: number; cpu: number }> {
  // The keys are derived before the clock starts: deriving one (a SHA-256) costs a few µs itself.
  const picks: ScaleDevice[] = new Array(count);
  for (let k = 0; k < count; k++) picks[k] = scaleDevice(Math.floor(Math.random() * devices));
  for (let k = 0; k < Math.min(2000, count); k++) await lookup(picks[k]); // warm the statement caches
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let k = 0; k < count; k++) {
    if (!(await lookup(picks[k]))) throw new Error(`lookup of device ${picks[k].serialNumber} returned the wrong record`);
  }
  const cpu = process.cpuUsage(cpu0);
  return { wall: Math.round(count / ((performance.now() - t0) / 1000)), cpu: Math.round(count / ((cpu.user + cpu.system) / 1e6)) };
}

/**
 * Aggregate lookups per second over `connections` read-only connections, one worker thread each,
 * started together: what the registry file serves to several role processes at once.
 */
async function parallelLookupsPerSecond(dbPath: string, kind: LookupWorkerData['kind'], count: number, devices: number, connections: number): Promise<number> {
  const workers = Array.from({ length: connections }, () => new Worker(path.join(here, 'scale-lookup-worker.js'), {
    workerData: { dbPath, kind, count, devices } satisfies LookupWorkerData,
  }));
  try {
    const next = (w: Worker): Promise<{ ready?: boolean; ms?: number; error?: string }> => new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    const ready = await Promise.all(workers.map(next));
    const failed = ready.find((m) => m.error !== undefined);
    if (failed) throw new Error(failed.error);
    const t0 = performance.now();
    const done = workers.map(next);
    for (const w of workers) w.postMessage('go');
    const results = await Promise.all(done);
    const bad = results.find((m) => m.error !== undefined);
    if (bad) throw new Error(bad.error);
    return Math.round((count * connections) / ((performance.now() - t0) / 1000));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function post(port: number, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/ocsp', method: 'POST', agent: false, headers: { 'Content-Type': 'application/ocsp-request', 'Content-Length': body.length } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve(Buffer.concat(parts)));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU seconds (user + system) a process has used so far: what its start costs on an idle machine. */
function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100 on Linux)
}

function procStatusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]);
}

interface ChildReady {
  port: number;
  responses: number;
  signedAtStart: number;
  openMs: number;
  startMs: number;
  arenaBytes: number;
  arenaLiveBytes: number;
}

/** (b): spawn → first correct answer, peak RSS, then a few hundred more random answers checked. */
async function ocspProcess(fixture: ScaleFixture, log: (line: string) => void, inlineWalks: boolean): Promise<Record<string, number>> {
  const { meta } = fixture;
  const ca = parseCertificate(Buffer.from(meta.caCertDerB64, 'base64'));
  const responderSpki = parseCertificate(Buffer.from(meta.responderCertDerB64, 'base64')).spki;
  const caKey = parseSpki(ca.spki.rawDer).subjectPublicKey;
  const request = (i: number): Buffer => encodeOcspRequest([encodeCertId('sha1', ca.subject.rawDer, caKey, scaleDevice(i).serial)]);
  const check = (i: number, der: Buffer, verify: boolean): boolean => {
    const parsed = parseOcspResponse(der);
    const single = parsed.responses[0];
    if (parsed.status !== 'successful' || single?.certId.serialHex !== scaleDevice(i).serialHex || single.certStatus.status !== 'good') return false;
    return !verify || verifyOcspResponseSignature(parsed, responderSpki);
  };

  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(here, 'scale-ocsp-child.js'), fixture.dbPath, fixture.metaPath], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, KAKUIN_SCALE_INLINE_WALKS: inlineWalks ? '1' : '0' },
  });
  try {
    const ready = await new Promise<ChildReady>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as ChildReady);
      });
      child.on('exit', (code) => reject(new Error(`the OCSP child exited with ${code} before listening`)));
    });
    const first = Math.floor(Math.random() * meta.devices);
    const answer = await post(ready.port, request(first));
    const firstAnswerMs = performance.now() - t0;
    if (!check(first, answer, true)) throw new Error('the first OCSP answer is not a correct good answer for the serial asked');
    const peakRssKb = procStatusKb(child.pid!, 'VmHWM');
    const cpuSeconds = procCpuSeconds(child.pid!);
    const more = 500;
    for (let k = 0; k < more; k++) {
      const i = Math.floor(Math.random() * meta.devices);
      if (!check(i, await post(ready.port, request(i)), k < 20)) throw new Error(`wrong OCSP answer for device ${i}`);
    }
    const peakAfterKb = procStatusKb(child.pid!, 'VmHWM');
    const rssKb = procStatusKb(child.pid!, 'VmRSS');
    log(inlineWalks
      ? '  the same, with both registry walks on the event loop (no worker threads), for comparison'
      : `  OCSP responder process over ${ready.responses.toLocaleString('en')} stored responses (read-only registry, persistResponses false, registry walks in worker threads as the ocsp role runs them)`);
    log(`    spawn → first correct answer  ${(firstAnswerMs / 1000).toFixed(2)} s  (target ≤ 10 s; responder.start ${(ready.startMs / 1000).toFixed(2)} s, re-signed at start ${ready.signedAtStart})`);
    log(`    CPU time of the responder     ${cpuSeconds.toFixed(2)} s until then (user + system, all threads)`);
    log(`    peak RSS (VmHWM)              ${Math.round(peakRssKb / 1024)} MB at the first answer, ${Math.round(peakAfterKb / 1024)} MB after ${more} more checked answers, RSS now ${Math.round(rssKb / 1024)} MB  (target ≤ 1 GB)`);
    log(`    arena                         ${(ready.arenaBytes / 1048576).toFixed(0)} MiB allocated, ${(ready.arenaLiveBytes / ready.responses).toFixed(0)} bytes per response live (responder certificate kept once)`);
    const figures: Record<string, number> = {
      scale_ocsp_responses: ready.responses,
      scale_ocsp_first_answer_s: Number((firstAnswerMs / 1000).toFixed(2)),
      scale_ocsp_responder_start_s: Number((ready.startMs / 1000).toFixed(2)),
      scale_ocsp_first_answer_cpu_s: Number(cpuSeconds.toFixed(2)),
      scale_ocsp_peak_rss_mb: Math.round(Math.max(peakRssKb, peakAfterKb) / 1024),
      scale_ocsp_arena_mb: Math.round(ready.arenaBytes / 1048576),
      scale_ocsp_arena_bytes_per_response: Math.round(ready.arenaLiveBytes / ready.responses),
    };
    if (!inlineWalks) return figures;
    return {
      scale_ocsp_inline_walks_first_answer_s: figures.scale_ocsp_first_answer_s,
      scale_ocsp_inline_walks_first_answer_cpu_s: figures.scale_ocsp_first_answer_cpu_s,
      scale_ocsp_inline_walks_peak_rss_mb: figures.scale_ocsp_peak_rss_mb,
    };
  } finally {
    child.kill('SIGTERM');
  }
}

export async function benchScale(scale: number, log: (line: string) => void): Promise<Record<string, number>> {
  const devices = Math.max(10_000, Math.round(1_000_000 * scale));
  log(`  ${devices.toLocaleString('en')} devices, certificates and pre-signed OCSP responses in SQLite`);
  const fixture = await scaleFixture(devices, log);
  const figures: Record<string, number> = { scale_devices: devices };
  if (!fixture.reused) figures.scale_fixture_build_s = fixture.meta.buildSeconds;

  const registry: Registry = await openSqliteRegistry({ path: fixture.dbPath, readonly: true });
  try {
    const count = Math.max(20_000, Math.min(200_000, devices / 5));
    const bySerial = await lookupsPerSecond(count, devices, async (d) => {
      return (await registry.getCertificate(d.serialHex)).deviceId === d.id;
    });
    const bySerialNumber = await lookupsPerSecond(count, devices, async (d) => {
      const found = await registry.findDevices({ serialNumber: d.serialNumber });
      return found.length === 1 && found[0].id === d.id;
    });
    const byMac = await lookupsPerSecond(count, devices, async (d) => {
      const found = await registry.findDevices({ mac: d.mac });
      return found.length === 1 && found[0].id === d.id;
    });
    log(`  registry lookups through the port, random keys, one at a time (${count.toLocaleString('en')} each; target ≥ 100,000/s)`);
    const line = (r: { wall: number; cpu: number }): string => `${r.wall.toLocaleString('en')} /s  (${r.cpu.toLocaleString('en')} per CPU second)`;
    log(`    getCertificate(serial)         ${line(bySerial)}`);
    log(`    findDevices({ serialNumber })  ${line(bySerialNumber)}`);
    log(`    findDevices({ mac })           ${line(byMac)}`);
    Object.assign(figures, {
      scale_lookup_certificate_by_serial_per_s: bySerial.wall,
      scale_lookup_certificate_by_serial_per_cpu_s: bySerial.cpu,
      scale_lookup_device_by_serial_number_per_s: bySerialNumber.wall,
      scale_lookup_device_by_serial_number_per_cpu_s: bySerialNumber.cpu,
      scale_lookup_device_by_mac_per_s: byMac.wall,
      scale_lookup_device_by_mac_per_cpu_s: byMac.cpu,
    });
  } finally {
    await registry.close();
  }
  const connections = Math.max(2, availableParallelism());
  const parallelCount = Math.max(20_000, Math.min(100_000, devices / 10));
  const parallel = {
    serial: await parallelLookupsPerSecond(fixture.dbPath, 'serial', parallelCount, devices, connections),
    serialNumber: await parallelLookupsPerSecond(fixture.dbPath, 'serialNumber', parallelCount, devices, connections),
    mac: await parallelLookupsPerSecond(fixture.dbPath, 'mac', parallelCount, devices, connections),
  };
  log(`  the same over ${connections} read-only connections at once (one worker thread each, as several role processes read one file; ${parallelCount.toLocaleString('en')} lookups each)`);
  log(`    getCertificate(serial)         ${parallel.serial.toLocaleString('en')} /s in all`);
  log(`    findDevices({ serialNumber })  ${parallel.serialNumber.toLocaleString('en')} /s in all`);
  log(`    findDevices({ mac })           ${parallel.mac.toLocaleString('en')} /s in all`);
  Object.assign(figures, {
    scale_lookup_connections: connections,
    scale_lookup_certificate_by_serial_all_connections_per_s: parallel.serial,
    scale_lookup_device_by_serial_number_all_connections_per_s: parallel.serialNumber,
    scale_lookup_device_by_mac_all_connections_per_s: parallel.mac,
  });

  Object.assign(figures, await ocspProcess(fixture, log, false));
  Object.assign(figures, await ocspProcess(fixture, log, true));
  // Figures of a shared machine are only as good as its idle time: say how busy it was.
  figures.scale_loadavg_1m = Number(loadavg()[0].toFixed(1));
  log(`  load average (1 min) at the end: ${figures.scale_loadavg_1m} on ${availableParallelism()} CPUs`);
  return figures;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const json = process.argv.includes('--json');
  const log = (line: string): void => {
    if (!json) process.stdout.write(`${line}\n`);
  };
  benchScale(Number(process.env.KAKUIN_BENCH_SCALE ?? '1'), log).then((figures) => {
    if (json) process.stdout.write(`${JSON.stringify(figures)}\n`);
  }, (e: unknown) => {
    process.stderr.write(`scale bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
