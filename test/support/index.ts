/** Shared test support: paths, temporary directories, and the `openssl` command as an independent peer. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createSocket } from 'node:dgram';
import { createServer as createNetServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Tests run from the repository root (mocha is started there by `npm test`). */
export const repoRoot = process.cwd();

export function repoPath(...parts: string[]): string {
  return path.join(repoRoot, ...parts);
}

/**
 * The compiled output directory these tests were built into (`dist/` for `npm test`; another outDir
 * when several builds coexist): child processes run the CLI from the same build as the test.
 */
export const buildRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `<build>/cli/main.js`: the `kakuin` command of this build. */
export const cliMain = path.join(buildRoot, 'cli', 'main.js');

/** `test/vectors/<name>`: vectors kept in the project. */
export function vectorPath(...parts: string[]): string {
  return repoPath('test', 'vectors', ...parts);
}

/**
 * `../shared/vectors/<name>`: real-world inputs written by other PKI software, read in place.
 * Returns undefined where the folder is absent (a clone of the project on its own has none).
 */
export function sharedVectorsDir(name: string): string | undefined {
  const dir = path.resolve(repoRoot, '..', 'shared', 'vectors', name);
  return existsSync(dir) ? dir : undefined;
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function makeTempDir(prefix = 'kakuin-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run `openssl` with arguments (never through a shell). `input` goes to its standard input. */
export function openssl(args: string[], input?: Buffer | string): CommandResult {
  const r = spawnSync('openssl', args, { input, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

/** Like `openssl` but throws with the command's output when it exits non-zero. */
export function opensslOk(args: string[], input?: Buffer | string): string {
  const r = openssl(args, input);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Run `openssl` and return its standard output as bytes (for DER output); throws on failure. */
export function opensslBytes(args: string[], input?: Buffer | string): Buffer {
  const r = spawnSync('openssl', args, { input, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status}): ${r.stderr.toString()}`);
  return r.stdout;
}

/**
 * `openssl` without blocking the event loop: needed whenever the peer it talks to (an OCSP
 * responder, a TLS server) runs in this same process.
 */
export function opensslAsync(args: string[], input?: Buffer | string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(input);
  });
}

/** A TCP port free on 127.0.0.1 right now (for listeners whose URL must be known before they start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A UDP port free on 127.0.0.1 right now (RADIUS authentication is UDP). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A real server or client a test drives: the command that shows it is installed, and its Debian package. */
export interface Peer {
  command: string;
  args: string[];
  debian: string;
}

/**
 * Call from a `before` hook of a suite that drives real servers installed from Debian (nginx,
 * FreeRADIUS, eapol_test, Mosquitto): skips the suite with a message naming what is missing, or,
 * under KAKUIN_REQUIRE_PEERS=1 (CI sets it, having installed them), fails it.
 */
export function requirePeers(context: Mocha.Context, peers: Peer[]): void {
  const missing = peers.filter((p) => spawnSync(p.command, p.args, { stdio: 'ignore', timeout: 10_000 }).error);
  if (missing.length === 0) return;
  const why = `not installed: ${missing.map((p) => `${p.command} (Debian ${p.debian})`).join(', ')}`;
  if (process.env.KAKUIN_REQUIRE_PEERS === '1') throw new Error(`${why} — KAKUIN_REQUIRE_PEERS=1 requires these tests to run`);
  console.log(`      (skipped: ${why})`);
  context.skip();
}

export const peers = {
  nginx: { command: 'nginx', args: ['-v'], debian: 'nginx-light' },
  freeradius: { command: 'freeradius', args: ['-v'], debian: 'freeradius' },
  eapolTest: { command: 'eapol_test', args: ['-h'], debian: 'eapoltest' },
  haproxy: { command: 'haproxy', args: ['-v'], debian: 'haproxy' },
  mosquitto: { command: 'mosquitto', args: ['-h'], debian: 'mosquitto' },
  mosquittoClients: { command: 'mosquitto_pub', args: ['--help'], debian: 'mosquitto-clients' },
  lego: { command: 'lego', args: ['--version'], debian: 'lego' },
  certbot: { command: 'certbot', args: ['--version'], debian: 'certbot' },
} satisfies Record<string, Peer>;
