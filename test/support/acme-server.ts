/**
 * kakuin with ACME for the ACME tests (test/integration/acme*.test.ts): validation connects to
 * 127.0.0.1 on two free ports (acme.validationPorts, acme.resolve), and EAB keys are made with the
 * real `kakuin acme eab create` command.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { cliMain, freePort, makeTempDir } from './index.js';
import { startTestService, type TestService } from './service.js';

export interface AcmeTestServer {
  svc: TestService;
  httpPort: number;
  tlsPort: number;
  directory: string;
  rootFile: string;
  infraFile: string;
  deviceChainFile: string;
}

/** kakuin with ACME validating on 127.0.0.1: the given names resolve there, on two free ports. */
export async function startAcmeServer(names: string[], extra: Record<string, unknown> = {}): Promise<AcmeTestServer> {
  const tmp = makeTempDir('kakuin-acme-');
  const httpPort = await freePort();
  const tlsPort = await freePort();
  writeFileSync(path.join(tmp.dir, 'kakuin.json'), JSON.stringify({
    acme: { validationPorts: { http: httpPort, tlsAlpn: tlsPort }, resolve: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])), validationTimeoutSeconds: 5, ...extra },
  }));
  const svc = await startTestService({ dataDir: tmp.dir, env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0' } });
  const stop = svc.stop;
  svc.stop = async () => { await stop(); tmp.cleanup(); };
  return {
    svc, httpPort, tlsPort, directory: `${svc.url}/acme/directory`,
    rootFile: path.join(tmp.dir, 'ca', 'root.pem'), infraFile: path.join(tmp.dir, 'ca', 'infrastructure.pem'), deviceChainFile: path.join(tmp.dir, 'ca', 'device-chain.pem'),
  };
}

/** `kakuin acme eab create` as an operator runs it; returns what it printed once. */
export function createEab(svc: TestService, names: string): { kid: string; hmac: string; stdout: string } {
  const r = spawnSync(process.execPath, [cliMain, 'acme', 'eab', 'create', '--names', names], { env: { ...process.env, ...svc.env }, encoding: 'utf8', timeout: 30_000 });
  expect(r.status, r.stderr).to.equal(0);
  const kid = /^\s*key id\s+(\S+)$/m.exec(r.stdout)?.[1];
  const hmac = /^\s*HMAC key\s+(\S+)$/m.exec(r.stdout)?.[1];
  expect(kid && hmac, r.stdout).to.be.a('string');
  return { kid: kid!, hmac: hmac!, stdout: r.stdout };
}

