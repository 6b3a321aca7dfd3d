/**
 * Issue 16, "Pre-signed OCSP refresh at 1M certificates": one whole refresh cycle of the
 * responder's own PresignedResponses at `ocsp.validityMinutes` 2, measured in real time.
 *
 * The responder (OcspResponder: PresignedResponses + its refresh timer, validity / 32 = 3.75 s,
 * the refresh points spread between 1/4 and 1/2 of the validity by serial, cached-response.ts
 * refreshDue) starts over N certificates whose status an in-memory registry view reports: its
 * start reconciles and signs all N (the fill). From then on nothing but its timer re-signs; the
 * cycle is over once all N have been re-signed once. Measured:
 *   - signatures per CPU-second of this process during the cycle (process.cpuUsage: the responder
 *     only; the load generator is a child process), in the 5 s windows without GET load (they
 *     alternate with GET windows); the timer's sweeps over the arena count as refresh cost;
 *   - the cycle's wall time (first to last re-signature) and whether it kept up: every response
 *     re-signed before its previous nextUpdate (RFC 6960 §4.2.2.1), and the worst lag after the
 *     response's refresh point;
 *   - keep-alive GETs (RFC 6960 Appendix A.1: GET {url}/{url-encoded base64 OCSPRequest}) served
 *     by the same listener while idle (right after the fill, before anything falls due) and during
 *     the cycle: a child process with keep-alive agents, 127.0.0.1, bounded windows.
 * Not included: storing the responses (persistResponses false, as a read-only `--role ocsp` runs)
 * and the registry walk (the in-memory view hands the statuses over directly).
 *
 * `node dist/bench/ocsp-refresh-cycle.js [N]` runs it alone (default 1,000,000 × KAKUIN_BENCH_SCALE).
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SoftwareSigner } from '../hsm-adapters/software/index.js';
import { createOcspHttpServer, type FeedFactory, type Logger, OcspResponder, Publications } from '../ocsp-responder/index.js';
import type { OcspRegistryView } from '../ocsp-responder/registry-view.js';
import type { CertificateStatusRow } from '../registry/port.js';
import { nextUpdateSeconds, refreshPoint, thisUpdateSeconds } from '../ocsp-responder/cached-response.js';
import {
  basicConstraintsExt, encodeCertId, encodeName, encodeOcspRequest, extKeyUsageExt, keyIdentifier, keyUsageExt, ocspNoCheckExt, parseSpki,
} from '../pkix/index.js';
import { fixtureCertificate } from './ocsp-fixtures.js';

const VALIDITY_MS = 2 * 60_000;
const LOAD_CONNECTIONS = 16;
const WINDOW_S = 5;

const staticFeed: FeedFactory = (afterSeq) => ({ start() {}, stop() {}, poke() {}, lastSeq: afterSeq, lastSuccessAt: Date.now() });

const quietLogger: Logger = {
  info: () => undefined,
  warn: (m, f) => process.stderr.write(`warn ${m} ${JSON.stringify(f ?? {})}\n`),
  error: (m, f) => process.stderr.write(`error ${m} ${JSON.stringify(f ?? {})}\n`),
};

/** Only what the pre-signed path reads at start: N good certificates, no stored responses, no feed. */
function memoryView(issuerId: string, serials: string[]): OcspRegistryView {
  const notAfterMs = Date.now() + 365 * 86_400_000;
  const unused = (name: string) => () => Promise.reject(new Error(`${name} is not part of this benchmark`));
  return {
    latestFeedSeq: () => Promise.resolve(0),
    readFeed: unused('readFeed'),
    forEachCertificateStatus: (id: string, row: CertificateStatusRow) => {
      if (id === issuerId) for (const s of serials) row(s, 'good', undefined, undefined, undefined, notAfterMs);
      return Promise.resolve();
    },
    forEachOcspResponse: () => Promise.resolve(),
    putOcspResponses: () => Promise.resolve(),
    getLatestCrl: () => Promise.resolve(undefined),
    getCertificate: () => Promise.resolve(undefined),
    getIssuer: () => Promise.resolve(undefined),
  } as unknown as OcspRegistryView;
}

function serialHex(): string {
  const s = randomBytes(16);
  s[0] = 1 + (s[0] % 127);
  return s.toString('hex').toUpperCase();
}

interface LoadResult { ok: number; errors: number; seconds: number }

/** One bounded window of keep-alive GETs from a child process (its own CPU, not this process's). */
function loadWindow(port: number, paths: string[], seconds: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--load', String(port), String(seconds)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`load generator exited with ${code}`);
        resolve(JSON.parse(out) as LoadResult);
      } catch (e) {
        reject(e);
      }
    });
    child.stdin.end(JSON.stringify(paths));
  });
}

async function loadChild(port: number, seconds: number): Promise<void> {
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  const paths = JSON.parse(input) as string[];
  const agent = new http.Agent({ keepAlive: true, maxSockets: LOAD_CONNECTIONS });
  const deadline = performance.now() + seconds * 1000;
  let ok = 0;
  let errors = 0;
  let k = 0;
  const one = (): Promise<void> => new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: paths[k++ % paths.length], agent }, (res) => {
      let bytes = 0;
      res.on('data', (d: Buffer) => { bytes += d.length; });
      res.on('end', () => {
        if (res.statusCode === 200 && res.headers['content-type'] === 'application/ocsp-response' && bytes > 0) ok++;
        else errors++;
        resolve();
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', () => { errors++; resolve(); });
  });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: LOAD_CONNECTIONS }, async () => {
    while (performance.now() < deadline) await one();
  }));
  agent.destroy();
  process.stdout.write(JSON.stringify({ ok, errors, seconds: (performance.now() - t0) / 1000 }));
}

const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

export async function benchOcspRefreshCycle(count: number, log: (l: string) => void): Promise<Record<string, number>> {
  // The CA and the delegated responder (RFC 6960 §4.2.2.2), made directly with node:crypto.
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caSpki = caKeys.publicKey.export({ type: 'spki', format: 'der' });
  const caName = encodeName([{ type: 'O', value: 'kakuin bench' }, { type: 'CN', value: 'Device CA' }]);
  const caKeyId = keyIdentifier(caSpki);
  const caDer = fixtureCertificate({
    issuerName: caName, issuerKey: caKeys.privateKey, issuerKeyId: caKeyId, subject: caName, spki: caSpki, serial: Buffer.from([1, 1]), days: 3650,
    extensions: [basicConstraintsExt({ ca: true }), keyUsageExt(['digitalSignature', 'keyCertSign', 'cRLSign'])],
  });
  const rKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rDer = fixtureCertificate({
    issuerName: caName, issuerKey: caKeys.privateKey, issuerKeyId: caKeyId, subject: encodeName([{ type: 'CN', value: 'OCSP responder' }]),
    spki: rKeys.publicKey.export({ type: 'spki', format: 'der' }), serial: Buffer.from([1, 2]), days: 90,
    extensions: [basicConstraintsExt({ ca: false }), keyUsageExt(['digitalSignature']), extKeyUsageExt(['OCSPSigning']), ocspNoCheckExt()],
  });
  const serials = Array.from({ length: count }, serialHex);
  const registry = memoryView('device', serials);
  const responder = new OcspResponder({
    registry, feed: staticFeed, logger: quietLogger, validityMs: VALIDITY_MS, persistResponses: false,
    identities: [{
      issuerId: 'device', issuerCertificateDer: caDer, responderCertificateDer: rDer,
      signer: new SoftwareSigner('file:bench-responder', 'ecdsa-p256', rKeys.privateKey),
    }],
  });
  const listener = createOcspHttpServer({ responder, publications: new Publications({ registry, logger: quietLogger }), logger: quietLogger });
  const caKey = parseSpki(caSpki).subjectPublicKey;
  const paths = serials.slice(0, Math.min(2000, count)).map((s) =>
    `/ocsp/${encodeURIComponent(encodeOcspRequest([encodeCertId('sha1', caName, caKey, Buffer.from(s, 'hex'))]).toString('base64'))}`);
  try {
    // The fill: the responder's start signs every certificate's response (reconcile).
    const fillCpu0 = process.cpuUsage();
    const fill0 = performance.now();
    await responder.start();
    await responder.presigned.whenIdle();
    const fillSeconds = (performance.now() - fill0) / 1000;
    const fillCpu = cpuSeconds(process.cpuUsage(fillCpu0));
    const signedAfterFill = Number(responder.presigned.stats().signedTotal);
    if (responder.presigned.size !== count || signedAfterFill !== count) {
      // A fill longer than 1/4 of the validity overlaps the first refresh points: one cycle cannot be told apart.
      throw new Error(`fill of ${count} took ${fillSeconds.toFixed(1)} s and signed ${signedAfterFill} for ${responder.presigned.size} responses: too many certificates to measure one cycle at 2 minutes here`);
    }
    const prevThis = new Uint32Array(count);
    const prevNext = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const e = responder.presigned.get('device', serials[i])!;
      prevThis[i] = thisUpdateSeconds(e);
      prevNext[i] = nextUpdateSeconds(e);
    }
    log(`  fill (start reconcile): ${count.toLocaleString('en')} responses signed in ${fillSeconds.toFixed(1)} s, ${Math.round(count / fillCpu).toLocaleString('en')} per CPU-second`);

    const { port } = await listener.listen(0, '127.0.0.1');
    // Idle: nothing is due before 1/4 of the validity (30 s) after the first signature of the fill.
    const firstDueMs = Math.min(...Array.from(prevThis.subarray(0, 1000))) * 1000 + VALIDITY_MS / 4;
    await loadWindow(port, paths, 2); // warm-up (JIT, connections), not counted
    const idleFits = Date.now() + WINDOW_S * 1000 < firstDueMs;
    const idle = await loadWindow(port, paths, WINDOW_S);
    const signedIdle = Number(responder.presigned.stats().signedTotal) - signedAfterFill;
    const idleRps = Math.round(idle.ok / idle.seconds);
    log(`  keep-alive GET idle (${LOAD_CONNECTIONS} connections, ${WINDOW_S} s): ${idleRps.toLocaleString('en')}/s${idle.errors ? `, ${idle.errors} errors` : ''}${idleFits ? '' : `, NOT idle: ${signedIdle} re-signed meanwhile`}`);

    // The cycle: wait until every response has been re-signed once by the refresh timer, GETs running.
    const cycleCpu0 = process.cpuUsage();
    // Each response's first re-signature, read from its entry's thisUpdate: a scan every second
    // (re-signing one response twice takes ≥ 30 s, so none is missed); its own time is kept apart.
    const firstResign = new Uint32Array(count);
    let remaining = count;
    let firstAt: number | undefined;
    let lastAt: number | undefined;
    let scanMs = 0;
    const scan = (): void => {
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        if (firstResign[i] !== 0) continue;
        const e = responder.presigned.get('device', serials[i]);
        if (e === undefined) continue;
        const t = thisUpdateSeconds(e);
        if (t > prevThis[i]) {
          firstResign[i] = t;
          remaining--;
          firstAt ??= Date.now();
        }
      }
      if (remaining === 0) lastAt ??= Date.now();
      scanMs += performance.now() - t0;
    };
    const poll = setInterval(scan, 1000);
    const maxWaitMs = fillSeconds * 1000 + VALIDITY_MS; // past every nextUpdate: not keeping up by then is a result
    const cycleStart = Date.now();
    let busyOk = 0;
    let busyErrors = 0;
    let busySeconds = 0;
    let quietSigned = 0;
    let quietCpu = 0;
    // GET windows alternate with quiet ones: the quiet windows' CPU is the refresh alone (timer
    // sweeps over the arena + signing + swapping), the GET windows show what serving gets meanwhile.
    for (let k = 0; lastAt === undefined && Date.now() - cycleStart < maxWaitMs; k++) {
      const signed0 = Number(responder.presigned.stats().signedTotal);
      const cpu0 = process.cpuUsage();
      const scan0 = scanMs;
      const wasCycling = firstAt !== undefined;
      if (k % 2 === 0) {
        const w = await loadWindow(port, paths, WINDOW_S);
        if (wasCycling || firstAt !== undefined) {
          busyOk += w.ok;
          busyErrors += w.errors;
          busySeconds += w.seconds;
        }
      } else {
        await new Promise((resolve) => setTimeout(resolve, WINDOW_S * 1000));
        const n = Number(responder.presigned.stats().signedTotal) - signed0;
        if (n > 0) {
          quietSigned += n;
          quietCpu += cpuSeconds(process.cpuUsage(cpu0)) - (scanMs - scan0) / 1000;
        }
      }
    }
    clearInterval(poll);
    const cycleCpu = cpuSeconds(process.cpuUsage(cycleCpu0)) - scanMs / 1000;
    await responder.presigned.stop(); // no further sweep: the check below reads one cycle
    const resigned = Number(responder.presigned.stats().signedTotal) - signedAfterFill; // incl. any re-signed twice meanwhile

    let missing = 0;
    let late = 0;
    let worstLagS = 0;
    let minMarginS = Infinity;
    for (let i = 0; i < count; i++) {
      const t = firstResign[i];
      if (t === 0) {
        missing++;
        continue;
      }
      if (t >= prevNext[i]) late++;
      minMarginS = Math.min(minMarginS, prevNext[i] - t);
      const due = prevThis[i] + (prevNext[i] - prevThis[i]) * refreshPoint(serials[i]);
      worstLagS = Math.max(worstLagS, t - due);
    }
    const cycleWallS = firstAt !== undefined && lastAt !== undefined ? (lastAt - firstAt) / 1000 : NaN;
    const perCpuSigningOnly = quietCpu > 0 ? Math.round(quietSigned / quietCpu) : 0;
    const busyRps = busySeconds > 0 ? Math.round(busyOk / busySeconds) : 0;
    const keptUp = missing === 0 && late === 0 ? 1 : 0;
    log(`  refresh cycle at validity 2 min: ${(count - remaining).toLocaleString('en')} of ${count.toLocaleString('en')} re-signed (${resigned.toLocaleString('en')} signatures in all, some twice), first to last ${cycleWallS.toFixed(1)} s; ${perCpuSigningOnly.toLocaleString('en')} signatures per CPU-second of the responder in the windows without GETs (${quietSigned.toLocaleString('en')} signatures)`);
    log(`  kept up: ${keptUp ? 'yes' : 'NO'} (${missing} not re-signed, ${late} re-signed at/after their nextUpdate; smallest margin before nextUpdate ${Number.isFinite(minMarginS) ? minMarginS : 'n/a'} s, worst lag after the refresh point ${worstLagS.toFixed(0)} s)`);
    log(`  keep-alive GET during the cycle: ${busyRps.toLocaleString('en')}/s over ${busySeconds.toFixed(0)} s${busyErrors ? `, ${busyErrors} errors` : ''} (idle ${idleRps.toLocaleString('en')}/s, ${idleRps > 0 ? Math.round((100 * busyRps) / idleRps) : 0} %)`);
    const needed = (1_000_000 / (0.375 * VALIDITY_MS / 1000));
    log(`  1,000,000 certificates at 2 min need ${Math.round(needed).toLocaleString('en')} signatures/s on average = ${(needed / perCpuSigningOnly).toFixed(2)} cores at this rate`);
    return {
      ocsp_cycle_certificates: count,
      ocsp_cycle_fill_s: Number(fillSeconds.toFixed(1)),
      ocsp_cycle_signatures_per_cpu_s: perCpuSigningOnly,
      ocsp_cycle_responder_cpu_s_incl_gets: Number(cycleCpu.toFixed(1)),
      ocsp_cycle_wall_s: Number(cycleWallS.toFixed(1)),
      ocsp_cycle_kept_up_bool: keptUp,
      ocsp_cycle_late_responses: late + missing,
      ocsp_cycle_worst_lag_s: Math.round(worstLagS),
      ocsp_cycle_get_idle_per_s: idleRps,
      ocsp_cycle_get_during_per_s: busyRps,
      ocsp_cycle_1m_cores_needed: Number((needed / perCpuSigningOnly).toFixed(2)),
    };
  } finally {
    await listener.close().catch(() => undefined);
    await responder.stop().catch(() => undefined);
  }
}

const runAlone = import.meta.url === pathToFileURL(process.argv[1] ?? '').href;
if (runAlone && process.argv[2] === '--load') {
  loadChild(Number(process.argv[3]), Number(process.argv[4])).catch((e: unknown) => {
    process.stderr.write(`load failed: ${String(e)}\n`);
    process.exit(1);
  });
} else if (runAlone) {
  const n = Number(process.argv[2] ?? Math.round(1_000_000 * Number(process.env.KAKUIN_BENCH_SCALE ?? '1')));
  benchOcspRefreshCycle(n, (l) => process.stdout.write(`${l}\n`)).catch((e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
