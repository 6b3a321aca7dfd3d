/**
 * OCSP responder benchmark (issue 3): kakuin's listener in its own process, with N pre-signed
 * certificates, driven by `wrk` (Debian package) on 127.0.0.1 from another process:
 *   - GET with keep-alive (RFC 5019 form, %-encoded) and POST with keep-alive: responses/s and p99;
 *   - a new connection per request (`Connection: close`) against kakuin and, side by side, against
 *     `openssl ocsp -index ... -port ...` (one process, same certificates, POST for both since that
 *     is the form both serve): median of 3 runs each, and the ratio.
 * Without wrk it prints a line saying so and returns no figures. Benchmarks measure; tests never
 * assert speed. Run alone: `node dist/bench/ocsp.js [--json]`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOcspBenchFixture, type OcspBenchFixture } from './ocsp-fixtures.js';

export interface OcspBenchOptions {
  /** Pre-signed certificates. Default 10,000. */
  certificates?: number;
  /** Seconds per keep-alive run. Default 10. */
  seconds?: number;
  /** Seconds per new-connection run. Default 5. */
  newConnectionSeconds?: number;
  log?: (line: string) => void;
}

interface WrkResult {
  rps: number;
  p99Ms: number;
  errors: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

function wrkAvailable(): boolean {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  return r.error === undefined && /wrk/i.test(`${r.stdout}${r.stderr}`);
}

/** A wrk script that cycles through pre-formatted requests (formatted once per thread, in init). */
function wrkScript(dir: string, name: string, method: 'GET' | 'POST', items: string[], close: boolean): string {
  const luaString = (s: string): string => `"${[...Buffer.from(s, 'latin1')].map((b) => `\\${String(b).padStart(3, '0')}`).join('')}"`;
  const headers = [close ? '["Connection"]="close"' : '', method === 'POST' ? '["Content-Type"]="application/ocsp-request"' : ''].filter(Boolean).join(', ');
  const lua = [
    // wrk's default resolve() opens and closes a probe connection without sending anything; OpenSSL
    // 3.0's `ocsp -port` responder then spins on that EOF for ever. Resolve without probing.
    'wrk.resolve = function(host, service) wrk.addrs = wrk.lookup(host, service) end',
    `local items = { ${items.map(luaString).join(',\n')} }`,
    'local reqs = {}',
    'local i = 0',
    'init = function(args)',
    '  for k, v in ipairs(items) do',
    method === 'GET' ? `    reqs[k] = wrk.format("GET", v, { ${headers} })` : `    reqs[k] = wrk.format("POST", "/ocsp", { ${headers} }, v)`,
    '  end',
    'end',
    'request = function()',
    '  i = i % #reqs + 1',
    '  return reqs[i]',
    'end',
    '',
  ].join('\n');
  const p = path.join(dir, name);
  writeFileSync(p, lua);
  return p;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case 'us': return v / 1000;
    case 'ms': return v;
    case 's': return v * 1000;
    case 'm': return v * 60_000;
    default: return NaN;
  }
}

function runWrk(url: string, script: string, seconds: number, connections: number): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    proc.stderr.on('data', (c: Buffer) => { out += c.toString(); });
    proc.on('error', reject);
    proc.on('exit', () => {
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
      if (rps === null || p99 === null) {
        reject(new Error(`unexpected wrk output:\n${out}`));
        return;
      }
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const errors = (non2xx ? Number(non2xx[1]) : 0) + (sock ? Number(sock[1]) + Number(sock[3]) + Number(sock[4]) : 0);
      resolve({ rps: Math.round(Number(rps[1])), p99Ms: Math.round(toMs(p99[1], p99[2]) * 100) / 100, errors });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function startKakuin(fx: OcspBenchFixture): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [path.join(here, 'ocsp-server.js'), fx.configPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
    });
    proc.once('exit', (code) => reject(new Error(`ocsp-server exited with ${code}`)));
  });
  return { proc, port };
}

async function startOpenssl(fx: OcspBenchFixture): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const proc = spawn('openssl', [
    'ocsp', '-index', fx.indexTxt, '-port', String(port), '-rsigner', fx.responderPem, '-rkey', fx.responderKey, '-CA', fx.caPem, '-ndays', '1',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Wait for its "waiting for OCSP client connections" line, not with a probe connection: a
  // connection closed without a request stalls OpenSSL 3.0's responder (see wrkScript).
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`openssl ocsp did not start: ${out}`)), 10_000);
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (out.includes('waiting for OCSP client connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`openssl ocsp exited with ${code}: ${out}`));
    });
  });
  proc.stdout!.resume();
  proc.stderr!.resume();
  return { proc, port };
}

function stop(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) {
      resolve();
      return;
    }
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function benchOcsp(options: OcspBenchOptions = {}): Promise<Record<string, number>> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  if (!wrkAvailable()) {
    log('  ocsp: wrk is not installed (Debian package `wrk`): no OCSP figures');
    return {};
  }
  const count = options.certificates ?? 10_000;
  const seconds = options.seconds ?? 10;
  const ncSeconds = options.newConnectionSeconds ?? 5;
  const fx = await createOcspBenchFixture(count);
  const sample = fx.requests.slice(0, 1000);
  const getScript = wrkScript(fx.dir, 'get.lua', 'GET', sample.map((r) => `/ocsp/${encodeURIComponent(r.toString('base64'))}`), false);
  const postScript = wrkScript(fx.dir, 'post.lua', 'POST', sample.map((r) => r.toString('latin1')), false);
  const postCloseScript = wrkScript(fx.dir, 'post-close.lua', 'POST', sample.map((r) => r.toString('latin1')), true);
  const figures: Record<string, number> = {};
  const kakuin = await startKakuin(fx);
  let openssl: { proc: ChildProcess; port: number } | undefined;
  try {
    const base = `http://127.0.0.1:${kakuin.port}`;
    await runWrk(base, getScript, 2, 64); // warm-up (JIT)
    const get = await runWrk(base, getScript, seconds, 64);
    const post = await runWrk(base, postScript, seconds, 64);
    figures.ocsp_get_keepalive_responses_per_s = get.rps;
    figures.ocsp_get_keepalive_p99_ms = get.p99Ms;
    figures.ocsp_post_keepalive_responses_per_s = post.rps;
    figures.ocsp_post_p99_ms = post.p99Ms;
    log(`  GET keep-alive (64 connections, ${count} pre-signed)   ${get.rps.toLocaleString('en')} responses/s, p99 ${get.p99Ms} ms${get.errors ? `, ${get.errors} errors` : ''}`);
    log(`  POST keep-alive (64 connections)                   ${post.rps.toLocaleString('en')} responses/s, p99 ${post.p99Ms} ms${post.errors ? `, ${post.errors} errors` : ''}`);
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < 3; i++) {
      ours.push((await runWrk(base, postCloseScript, ncSeconds, 16)).rps);
      // A fresh responder per run: connections wrk leaves unsent at the end of a run would stall it (see wrkScript).
      openssl = await startOpenssl(fx);
      theirs.push((await runWrk(`http://127.0.0.1:${openssl.port}`, postCloseScript, ncSeconds, 16)).rps);
      await stop(openssl.proc);
      openssl = undefined;
    }
    figures.ocsp_new_connection_kakuin_responses_per_s = median(ours);
    figures.ocsp_new_connection_openssl_responses_per_s = median(theirs);
    figures.ocsp_new_connection_ratio = Math.round((median(ours) / Math.max(1, median(theirs))) * 100) / 100;
    log(`  new connection per request, POST (median of 3): kakuin ${median(ours).toLocaleString('en')}/s [${ours.join(', ')}], `
      + `openssl ocsp ${median(theirs).toLocaleString('en')}/s [${theirs.join(', ')}], ratio ${figures.ocsp_new_connection_ratio}x`);
  } finally {
    if (openssl) await stop(openssl.proc);
    await stop(kakuin.proc);
    fx.cleanup();
  }
  return figures;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const json = process.argv.includes('--json');
  benchOcsp({ log: json ? () => undefined : undefined }).then((f) => {
    if (json) process.stdout.write(`${JSON.stringify(f)}\n`);
  }, (e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
