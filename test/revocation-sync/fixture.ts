/**
 * What the relying-party tests share: a kakuin in this process (plain-HTTP listener on a free
 * port, full CRLs within 300 ms of a change), devices enrolled through its API, a TLS server
 * certificate for the relying party, and `kakuin revocation sync` run as a child process through
 * the real `kakuin` executable (cli/entry.js).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { buildRoot, freePort, makeTempDir, opensslOk } from '../support/index.js';
import { request, startTestService, type HttpResponse, type TestService } from '../support/service.js';

export const kakuinBin = path.join(buildRoot, 'cli', 'entry.js');

export interface RelyingPartyKakuin {
  svc: TestService;
  tmp: { dir: string; cleanup: () => void };
  httpUrl: string;
  /** root.pem and the CA file a relying party verifies clients with (root + device CA). */
  rootFile: string;
  caFile: string;
  /** A self-signed TLS server certificate and key for the relying party (clients do not check it). */
  serverCert: string;
  serverKey: string;
  api(method: string, p: string, options?: Parameters<typeof request>[4]): Promise<HttpResponse>;
  device(name: string): Promise<{ deviceId: string; serialHex: string; certFile: string; keyFile: string }>;
  revoke(serialHex: string): Promise<void>;
  stop(): Promise<void>;
}

/** `env`: further KAKUIN_* settings (an OCSP validity, a device CN) on top of the fixture's. */
export async function startRelyingPartyKakuin(options: { env?: Record<string, string> } = {}): Promise<RelyingPartyKakuin> {
  const tmp = makeTempDir('kakuin-rp-');
  const port = await freePort();
  const httpUrl = `http://127.0.0.1:${port}`;
  const svc = await startTestService({
    env: {
      KAKUIN_OCSP_PORT: String(port), KAKUIN_PUBLIC_HTTP_URL: httpUrl, KAKUIN_GATEWAY_PORT: String(await freePort()),
      KAKUIN_CRL_COALESCE_MS: '200', KAKUIN_CRL_FULL_COALESCE_MS: '300', ...options.env,
    },
  });
  const api = (method: string, p: string, options: Parameters<typeof request>[4] = {}) => request(svc.url, svc.rootPem, method, p, { token: svc.adminToken, ...options });
  const rootFile = path.join(tmp.dir, 'root.pem');
  writeFileSync(rootFile, svc.rootPem);
  const chain = await api('GET', '/api/v1/ca/chain');
  const caFile = path.join(tmp.dir, 'clients-ca.pem');
  writeFileSync(caFile, chain.text.split(/(?<=-----END CERTIFICATE-----\n)/)[0] + svc.rootPem);
  const serverKey = path.join(tmp.dir, 'server.key');
  const serverCert = path.join(tmp.dir, 'server.pem');
  opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', serverKey, '-out', serverCert, '-subj', '/CN=127.0.0.1', '-days', '2']);
  const m = await api('POST', '/api/v1/manufacturers', { body: { name: `RP ${path.basename(tmp.dir)}` } });
  const manufacturerId = m.json.id as string;
  return {
    svc, tmp, httpUrl, rootFile, caFile, serverCert, serverKey, api,
    async device(name) {
      const d = await api('POST', '/api/v1/devices', { body: { manufacturerId, serialNumber: name } });
      expect(d.status, d.text).to.equal(201);
      const keyFile = path.join(tmp.dir, `${name}.key`);
      const csr = path.join(tmp.dir, `${name}.csr`);
      opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-subj', `/serialNumber=${name}`, '-out', csr]);
      const r = await api('POST', `/api/v1/devices/${d.json.id}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
      expect(r.status, r.text).to.equal(201);
      const certFile = path.join(tmp.dir, `${name}.pem`);
      writeFileSync(certFile, r.json.certificate);
      return { deviceId: d.json.id as string, serialHex: r.json.serialHex as string, certFile, keyFile };
    },
    async revoke(serialHex) {
      const r = await api('POST', `/api/v1/certificates/${serialHex.toLowerCase()}/revoke`, { body: { reason: 'keyCompromise' } });
      expect(r.status, r.text).to.equal(200);
    },
    async stop() {
      await svc.stop();
      tmp.cleanup();
    },
  };
}

export interface Sidecar {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** `kakuin revocation sync ARGS` as a child process (the executable an operator runs). */
export function startSidecar(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Sidecar {
  const child = spawn(process.execPath, [...nodeArgs, kakuinBin, 'revocation', 'sync', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  return {
    child,
    output: () => out,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/** Polls `check` every 100 ms until it returns a value (≤ `ms`); the value and the time it took. */
export async function waitFor<T>(what: string, ms: number, check: () => T | undefined | Promise<T | undefined>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return { value: v, ms: Date.now() - started };
    if (Date.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The serials (upper-case hex) listed in a PEM bundle of CRLs, by `openssl crl` of each block. */
export function bundleSerials(file: string): Set<string> {
  const out = new Set<string>();
  if (!existsSync(file)) return out;
  for (const block of readFileSync(file, 'utf8').split(/(?<=-----END X509 CRL-----\n)/).filter((b) => b.includes('BEGIN'))) {
    for (const m of opensslOk(['crl', '-noout', '-text'], block).matchAll(/Serial Number: ([0-9A-F]+)/g)) out.add(m[1].replace(/^0+/, ''));
  }
  return out;
}

export const bare = (hex: string) => hex.toUpperCase().replace(/^0+/, '');
