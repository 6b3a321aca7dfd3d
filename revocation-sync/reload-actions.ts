/**
 * How a relying party is told its CRL file changed: a command (`nginx -s reload`, `kill -HUP …`,
 * `systemctl restart freeradius`), or HAProxy's runtime API through its master CLI socket
 * (`haproxy -W -S PATH`): `set ssl crl-file` + `commit ssl crl-file` when the payload fits
 * `tune.bufsize` (16 KiB by default in 2.6: a larger command is dropped by HAProxy), otherwise a
 * `reload` of the master, which re-reads the file from disk.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { KakuinError } from '../errors/index.js';

export function execAction(command: string, timeoutMs = 60_000): () => Promise<void> {
  return () => new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { if (err.length < 4096) err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`--exec ${JSON.stringify(command)} ended with ${signal ?? code}: ${err.trim()}`));
    });
  });
}

/** One command on a HAProxy CLI socket; resolves with its whole answer. */
export function haproxyCommand(socketPath: string, command: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const s = net.createConnection(socketPath, () => s.end(command.endsWith('\n') ? command : `${command}\n`));
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`HAProxy CLI: no answer within ${timeoutMs} ms`)));
    s.on('data', (d: Buffer) => { out += d.toString(); });
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

export interface HaproxyTarget {
  /** The master CLI socket (`haproxy -W -S PATH`); runtime commands go to the worker as `@1 …`. */
  masterSocket: string;
  /** The crl-file name as HAProxy's configuration spells it (its path). */
  crlFile: string;
  /** tune.bufsize of that HAProxy (16384 unless configured). */
  bufsize: number;
}

/** Room kept below bufsize for the master's routing prefix and HAProxy's own framing. */
const BUFSIZE_MARGIN = 1024;

export function haproxyAction(target: HaproxyTarget, bundle: () => string, log: (m: string, f?: Record<string, unknown>) => void): () => Promise<void> {
  return async () => {
    const pem = bundle();
    const set = `@1 set ssl crl-file ${target.crlFile} <<\n${pem.trimEnd()}\n\n`;
    if (Buffer.byteLength(set) <= target.bufsize - BUFSIZE_MARGIN) {
      const a = await haproxyCommand(target.masterSocket, set);
      if (!/transaction (created|updated)/i.test(a)) throw new KakuinError('KAKUIN_E_SYNC_UPSTREAM', `HAProxy refused set ssl crl-file: ${a.trim()}`);
      const c = await haproxyCommand(target.masterSocket, `@1 commit ssl crl-file ${target.crlFile}\n`);
      if (!/Success/.test(c)) throw new KakuinError('KAKUIN_E_SYNC_UPSTREAM', `HAProxy refused commit ssl crl-file: ${c.trim()}`);
      log('HAProxy CRL updated through the runtime API', { bytes: pem.length });
    } else {
      await haproxyCommand(target.masterSocket, 'reload\n');
      log('HAProxy reloaded through the master socket (the CRL does not fit tune.bufsize)', { bytes: pem.length, bufsize: target.bufsize });
    }
  };
}
