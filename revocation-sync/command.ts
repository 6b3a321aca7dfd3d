/**
 * `kakuin revocation sync …`: parses the flags, runs the sidecar until SIGTERM/SIGINT. Reached from
 * cli/entry.ts without loading the rest of kakuin (no SQLite, no PKCS#11 on a broker's host).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { KakuinError } from '../errors/index.js';
import { execAction, haproxyAction } from './reload-actions.js';
import { Reloader } from './reloader.js';
import { RevocationSync, type SyncLogger } from './sidecar.js';

export const SYNC_USAGE = `usage: kakuin revocation sync --url URL --trust ROOT.pem --issuer ID [--issuer ID ...] (--pem-out FILE | --hashed-dir DIR)
         [--with-chain] [--exec CMD] [--min-reload-interval S] [--state-dir DIR] [--listen HOST:PORT]
         [--haproxy-socket MASTER.sock --haproxy-crl NAME [--haproxy-bufsize N]] [--poll-interval-ms MS]
`;

function usage(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_USAGE', `${message}\n\n${SYNC_USAGE}`);
}

function positiveNumber(v: string | undefined, name: string, fallback: number, min: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw usage(`--${name} must be a number ≥ ${min}`);
  return n;
}

function jsonLogger(): SyncLogger {
  const line = (level: string, message: string, fields?: Record<string, unknown>) =>
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, component: 'revocation-sync', message, ...fields })}\n`);
  return { info: (m, f) => line('info', m, f), warn: (m, f) => line('warn', m, f) };
}

export async function revocationSyncCommand(argv: string[], logger: SyncLogger = jsonLogger()): Promise<number> {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        url: { type: 'string' }, trust: { type: 'string' }, issuer: { type: 'string', multiple: true }, 'with-chain': { type: 'boolean' },
        'pem-out': { type: 'string' }, 'hashed-dir': { type: 'string' }, exec: { type: 'string' }, 'min-reload-interval': { type: 'string' }, 'state-dir': { type: 'string' },
        listen: { type: 'string' }, 'haproxy-socket': { type: 'string' }, 'haproxy-crl': { type: 'string' }, 'haproxy-bufsize': { type: 'string' },
        'poll-interval-ms': { type: 'string' },
      },
    }).values;
  } catch (e) {
    throw usage((e as Error).message);
  }
  const str = (k: string) => values[k] as string | undefined;
  const url = str('url');
  if (!url || !/^http:\/\//.test(url)) throw usage('--url must be kakuin\'s plain-HTTP listener (http://…)');
  const issuers = (values.issuer as string[] | undefined) ?? [];
  if (issuers.length === 0) throw usage('at least one --issuer is needed');
  const pemOut = str('pem-out');
  const hashedDir = str('hashed-dir');
  if (!pemOut && !hashedDir) throw usage('--pem-out or --hashed-dir (or both) is needed');
  const trust = str('trust');
  if (!trust) throw usage('--trust is needed');
  let trustPem: string;
  try {
    trustPem = readFileSync(trust, 'utf8');
  } catch (e) {
    throw usage(`--trust ${trust}: ${(e as Error).message}`);
  }
  if (Boolean(str('haproxy-socket')) !== Boolean(str('haproxy-crl'))) throw usage('--haproxy-socket and --haproxy-crl go together');
  if (str('haproxy-socket') && str('exec')) throw usage('--exec and --haproxy-socket exclude each other');
  if (str('haproxy-socket') && !pemOut) throw usage('--haproxy-socket needs --pem-out');
  const minReloadMs = positiveNumber(str('min-reload-interval'), 'min-reload-interval', 60, 0) * 1000;
  const pollIntervalMs = positiveNumber(str('poll-interval-ms'), 'poll-interval-ms', 500, 50);
  const bufsize = positiveNumber(str('haproxy-bufsize'), 'haproxy-bufsize', 16384, 1024);

  let sync: RevocationSync | undefined;
  const action = str('haproxy-socket')
    ? haproxyAction({ masterSocket: str('haproxy-socket')!, crlFile: str('haproxy-crl')!, bufsize }, () => sync!.bundle(), (m, f) => logger.info(m, f))
    : str('exec') ? execAction(str('exec')!) : undefined;
  const reload = action ? new Reloader(minReloadMs, async () => { await action(); logger.info('relying party reloaded'); }, (e) => logger.warn('reload failed', { error: String(e) })) : undefined;
  sync = new RevocationSync({ url, trustPem, issuers, withChain: values['with-chain'] === true, pemOut, hashedDir, stateDir: str('state-dir'), pollIntervalMs, reload, logger });

  let server: http.Server | undefined;
  const listen = str('listen');
  if (listen) {
    const m = /^(.*):(\d+)$/.exec(listen);
    if (!m) throw usage('--listen must be HOST:PORT');
    server = http.createServer((req, res) => {
      if (req.url === '/healthz') {
        const ok = sync!.healthy();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(`${ok ? 'ok' : 'stale'} view age ${sync!.viewAgeSeconds().toFixed(1)} s\n`);
      } else if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(sync!.metrics());
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => { server!.once('error', reject); server!.listen(Number(m[2]), m[1].replace(/^\[|\]$/g, ''), resolve); });
    const a = server.address();
    logger.info('listening', { address: typeof a === 'object' && a ? `${a.address}:${a.port}` : String(a) });
  }

  let stop: (signal: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => { stop = resolve; });
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  await sync.start();
  logger.info('following CRLs', { url, issuers: issuers.join(','), pemOut, hashedDir });
  logger.info('stopping', { signal: await stopped });
  sync.stop();
  server?.close();
  return 0;
}
