/**
 * `kakuin enroll batch`: the factory station's command. Reads an NDJSON file of devices (one
 * `{"serialNumber", "csr"}` or `{"serialNumber", "keygen": {...}}` per line), enrolls them against a
 * remote kakuin and writes one file per device into the output directory (enrollment/factory-client.ts
 * does the work; this file is arguments, progress and the summary).
 *
 * Exit codes: 0 every item succeeded (or was done already), 1 some items failed (errors.ndjson),
 * 2 usage, 3 the server could not be reached after the retries, 130 interrupted (SIGINT/SIGTERM).
 * A rerun resumes. The API key and PKCS#12 passwords are never printed.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { KakuinError } from '../errors/index.js';
import { ERRORS_FILE, JOURNAL_FILE, runFactoryBatch } from '../enrollment/factory-client.js';

export const ENROLL_USAGE = `usage: kakuin enroll batch --in DEVICES.ndjson --out DIR --url https://HOST:PORT --cacert ROOT.pem
                          [--api-key-file FILE | --cert STATION.pem --key STATION.key] [--p12-password-file FILE]
                          [--chunk N] [--concurrency N] [--retries N] [--no-progress]

  The station authenticates with its certificate (--cert, --key: TLS client authentication) or its
  API key (--api-key-file, or the environment variable KAKUIN_STATION_API_KEY).
  Writes DIR/<serialNumber>.pem (certificate and chain) or DIR/<serialNumber>.p12 (keygen items),
  DIR/${ERRORS_FILE} (failed items) and DIR/${JOURNAL_FILE}; a rerun skips the devices done.
  Exit: 0 all enrolled, 1 some items failed, 2 usage, 3 server unreachable after retries.
`;

export const EXIT_UNREACHABLE = 3;
export const EXIT_INTERRUPTED = 130;

function usage(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_USAGE', `${message}\n\n${ENROLL_USAGE}`);
}

function integer(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw usage(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

/** A secret file's first line, without its line end. Refused when empty. */
function secretFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw usage(`cannot read ${what} file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const secret = text.split(/\r?\n/)[0].trim();
  if (secret.length === 0) throw usage(`the ${what} file ${file} is empty`);
  return secret;
}

function readable(file: string, option: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw usage(`cannot read ${option} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function enrollCommand(rest: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: rest, allowPositionals: true, strict: true,
      options: {
        in: { type: 'string' }, out: { type: 'string' }, url: { type: 'string' }, cacert: { type: 'string' },
        'api-key-file': { type: 'string' }, 'p12-password-file': { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
        chunk: { type: 'string' }, concurrency: { type: 'string' }, retries: { type: 'string' },
        'no-progress': { type: 'boolean' },
      },
    });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals[0] !== 'batch' || positionals.length !== 1) throw usage('kakuin enroll batch ...');
  if (!values.in || !values.out || !values.url || !values.cacert) throw usage('--in, --out, --url and --cacert are required');
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw usage(`--url ${JSON.stringify(values.url)} is not a URL`);
  }
  if (url.protocol !== 'https:') throw usage('--url must be https:// (the management API is HTTPS only)');
  let apiKey: string | undefined;
  let clientCertificate: { certPem: string; keyPem: string } | undefined;
  if (values.cert !== undefined || values.key !== undefined) {
    if (!values.cert || !values.key) throw usage('--cert and --key go together');
    if (values['api-key-file']) throw usage('authenticate with --cert/--key or with --api-key-file, not both');
    clientCertificate = { certPem: readable(values.cert, '--cert'), keyPem: readable(values.key, '--key') };
    try {
      new X509Certificate(clientCertificate.certPem);
      createPrivateKey(clientCertificate.keyPem);
    } catch {
      throw usage('--key must be an unencrypted PEM private key and --cert a PEM certificate');
    }
  } else {
    apiKey = values['api-key-file'] ? secretFile(values['api-key-file'], 'API key') : env.KAKUIN_STATION_API_KEY?.trim();
    if (!apiKey) throw usage('give the station API key with --api-key-file FILE or KAKUIN_STATION_API_KEY, or its certificate with --cert and --key');
  }
  const p12Password = values['p12-password-file'] ? secretFile(values['p12-password-file'], 'PKCS#12 password') : undefined;
  const caPem = readable(values.cacert, '--cacert');
  try {
    accessSync(values.in, constants.R_OK);
  } catch (e) {
    throw usage(`cannot read --in ${values.in}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const chunk = integer(values.chunk, 'chunk', 1, 10_000, 1000);
  const concurrency = integer(values.concurrency, 'concurrency', 1, 16, 2);
  const retries = integer(values.retries, 'retries', 0, 100, 5);

  const progress = progressReporter(!values['no-progress']);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result;
  try {
    result = await runFactoryBatch({
      url: url.origin, apiKey, clientCertificate, caPem, inFile: values.in, outDir: values.out, chunk, concurrency, retries, p12Password,
      signal: abort.signal, progress: progress.update,
      onRetry: ({ attempt, delayMs, reason }) => progress.log(`kakuin enroll: ${reason}; retry ${attempt}/${retries} in ${(delayMs / 1000).toFixed(1)} s`),
    });
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`devices: ${result.total} in ${values.in}; ${result.skipped} done already, ${result.sent} sent, ${result.written} written to ${values.out}, ${result.failed.length} failed`);
  if (result.failed.length > 0) {
    out(`failed items are listed in ${path.join(values.out, ERRORS_FILE)}:`);
    for (const f of result.failed.slice(0, 10)) out(`  line ${f.line}${f.serialNumber ? ` ${f.serialNumber}` : ''}: ${f.code}: ${f.message}`);
    if (result.failed.length > 10) out(`  ... and ${result.failed.length - 10} more`);
  }
  // Only the server's word (a non-empty `supersedes`) makes the note: a keygen item an earlier run
  // sent and the server refused (no certificate then) supersedes nothing.
  if (result.keygenReissued.length > 0) {
    const serials = result.keygenReissued;
    out(`note: ${serials.length} keygen device(s) had an answer from an earlier run that was never written (the server keeps no key): ` +
      `they got a new key pair now, which supersedes the earlier certificate: ${serials.slice(0, 20).join(', ')}${serials.length > 20 ? ', ...' : ''}`);
  }
  if (result.unreachable) {
    process.stderr.write(`kakuin: KAKUIN_E_SERVER_UNREACHABLE: ${result.unreachable}; rerun the same command to resume\n`);
    return EXIT_UNREACHABLE;
  }
  if (result.interrupted) {
    process.stderr.write('kakuin enroll: interrupted; rerun the same command to resume\n');
    return EXIT_INTERRUPTED;
  }
  return result.failed.length > 0 ? 1 : 0;
}

/** A cli-progress bar on a terminal, plain lines (at most one every 2 s, and the last) otherwise. */
function progressReporter(wanted: boolean): { update: (done: number, total: number) => void; log: (line: string) => void; stop: () => void } {
  if (wanted && process.stderr.isTTY) {
    let bar: cliProgress.SingleBar | undefined;
    return {
      update: (done, total) => {
        if (!bar) {
          bar = new cliProgress.SingleBar({ stream: process.stderr, format: 'enrolling [{bar}] {value}/{total} {percentage}% | eta {eta_formatted}' }, cliProgress.Presets.shades_classic);
          bar.start(total, 0);
        }
        bar.update(done);
      },
      log: (line) => {
        if (bar) bar.stop();
        bar = undefined;
        process.stderr.write(`${line}\n`);
      },
      stop: () => bar?.stop(),
    };
  }
  let last = 0;
  return {
    update: (done, total) => {
      if (!wanted) return;
      const now = Date.now();
      if (done === total || now - last >= 2000) {
        last = now;
        process.stderr.write(`enrolling: ${done}/${total}\n`);
      }
    },
    log: (line) => process.stderr.write(`${line}\n`),
    stop: () => {},
  };
}
