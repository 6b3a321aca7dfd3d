/** Helpers shared by the enrollment tests: a test service with two manufacturers and their stations, openssl CSRs. */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { opensslOk } from '../support/index.js';
import { request, type HttpResponse, type TestService } from '../support/service.js';

export function opensslCsr(dir: string, name: string, subject: string, keyFile?: string): { csrPem: string; keyFile: string; csrFile: string } {
  const key = keyFile ?? path.join(dir, `${name}.key`);
  const csrFile = path.join(dir, `${name}.csr`);
  const keyArgs = keyFile ? ['-key', keyFile] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key];
  opensslOk(['req', '-new', ...keyArgs, '-subj', subject, '-out', csrFile]);
  return { csrPem: opensslOk(['req', '-in', csrFile]), keyFile: key, csrFile };
}

export interface Factory {
  manufacturerId: string;
  stationId: string;
  apiKey: string;
}

export function apiAs(svc: TestService, token: string) {
  return (method: string, p: string, options: Parameters<typeof request>[4] = {}): Promise<HttpResponse> =>
    request(svc.url, svc.rootPem, method, p, { token, ...options });
}

/** A manufacturer with one station, created by the admin. */
export async function newFactory(svc: TestService, name: string): Promise<Factory> {
  const admin = apiAs(svc, svc.adminToken);
  const m = await admin('POST', '/api/v1/manufacturers', { body: { name } });
  expect(m.status, m.text).to.equal(201);
  const s = await admin('POST', `/api/v1/manufacturers/${m.json.id}/stations`, { body: { name: 'line-1' } });
  expect(s.status, s.text).to.equal(201);
  return { manufacturerId: m.json.id, stationId: s.json.id, apiKey: s.json.apiKey };
}

export interface CurlResult {
  status: number;
  headers: string;
  body: string;
}

/** `curl -sS -D -` run asynchronously (a service may run in this process): status, raw headers, body. */
export function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-D', '-', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`curl exited ${code}: ${Buffer.concat(err).toString()}`));
        return;
      }
      const text = Buffer.concat(out).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const headers = text.slice(0, split);
      resolve({ status: Number(/^HTTP\/[0-9.]+ (\d+)/.exec(headers)?.[1]), headers, body: text.slice(split + 4) });
    });
  });
}
