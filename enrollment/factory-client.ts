/**
 * The factory side of bulk enrollment (`kakuin enroll batch --in devices.ndjson --out certs/`):
 * sends the NDJSON lines to a remote kakuin's `POST /api/v1/enroll/batch` and writes one file per
 * device as results stream back: `<serialNumber>.pem` (certificate; for a `"format": "pem"` keygen item the
 * encrypted key and chain) or `<serialNumber>.p12` (keygen).
 *
 * Resumable: a device whose file exists is not sent again, and since the server answers a retried CSR
 * with the certificate it issued before, an interruption at any point loses nothing and issues
 * nothing twice. Files are written to a temporary name and renamed, so a file that exists is whole.
 */
import { createReadStream, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { KakuinError } from '../errors/index.js';

export interface FactoryBatchOptions {
  /** Base URL of the remote kakuin management API (`https://kakuin.example:8443`). */
  url: string;
  apiKey: string;
  /** PEM of the CA to trust for the API's TLS certificate (kakuin's root). */
  caPem: string;
  inFile: string;
  outDir: string;
  /** Called after each result with (done, total). */
  progress?: (done: number, total: number) => void;
}

export interface FactoryBatchResult {
  sent: number;
  skipped: number;
  written: number;
  failed: { serialNumber?: string; code: string; message: string }[];
}

/** A serial number as a file name: PrintableString minus the characters file systems dislike. */
export function certificateFileBase(serialNumber: string): string {
  return serialNumber.replace(/[^A-Za-z0-9._-]/g, '_');
}

export async function runFactoryBatch(options: FactoryBatchOptions): Promise<FactoryBatchResult> {
  mkdirSync(options.outDir, { recursive: true });
  const lines: string[] = [];
  let skipped = 0;
  for await (const line of createInterface({ input: createReadStream(options.inFile), crlfDelay: Infinity })) {
    if (line.trim().length === 0) continue;
    let serialNumber: unknown;
    try {
      serialNumber = (JSON.parse(line) as { serialNumber?: unknown }).serialNumber;
    } catch {
      serialNumber = undefined;
    }
    if (typeof serialNumber === 'string') {
      const base = path.join(options.outDir, certificateFileBase(serialNumber));
      if (existsSync(`${base}.pem`) || existsSync(`${base}.p12`)) {
        skipped++;
        continue;
      }
    }
    lines.push(line);
  }
  const result: FactoryBatchResult = { sent: lines.length, skipped, written: 0, failed: [] };
  if (lines.length === 0) return result;
  if (lines.length > 10_000) throw new KakuinError('KAKUIN_E_BATCH_TOO_LARGE', 'split the input into files of at most 10,000 devices');
  const body = `${lines.join('\n')}\n`;
  await new Promise<void>((resolve, reject) => {
    const req = https.request(new URL('/api/v1/enroll/batch', options.url), {
      method: 'POST', ca: options.caPem, agent: false,
      headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/x-ndjson', 'content-length': String(Buffer.byteLength(body)) },
    }, (res) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => reject(new Error(`kakuin answered ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 500)}`)));
        return;
      }
      res.setEncoding('utf8');
      const out = createInterface({ input: res, crlfDelay: Infinity });
      let done = 0;
      out.on('line', (l) => {
        if (l.trim().length === 0) return;
        const r = JSON.parse(l) as { serialNumber?: string; certificate?: string; pkcs12?: string; pem?: string; error?: { code: string; message: string } };
        done++;
        if (r.error || !r.serialNumber) {
          result.failed.push({ serialNumber: r.serialNumber, code: r.error?.code ?? 'KAKUIN_E_INTERNAL', message: r.error?.message ?? 'no result' });
        } else {
          const base = path.join(options.outDir, certificateFileBase(r.serialNumber));
          // A keygen result carries the (encrypted) key: PKCS#12, or the PEM bundle (key + chain) in place of the certificate.
          const [file, data] = r.pkcs12 ? [`${base}.p12`, Buffer.from(r.pkcs12, 'base64')] : [`${base}.pem`, Buffer.from(r.pem ?? r.certificate ?? '')];
          writeFileSync(`${file}.tmp`, data, { mode: 0o600 });
          renameSync(`${file}.tmp`, file);
          result.written++;
        }
        options.progress?.(done, lines.length);
      });
      out.on('close', () => resolve());
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
  return result;
}
