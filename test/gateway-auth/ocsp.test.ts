/** `ocsp` status mode against `openssl ocsp` as the RFC 6960 responder. */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { utimesSync, writeFileSync } from 'node:fs';
import { ocspNoCheckExt } from '../../pkix/index.js';
import { sleep, startGateway, type RunningGateway } from './harness.js';
import { closedWithin, httpStatusOf, KeepAliveDevice, sClient } from './peers.js';
import { createGatewayPki, issue, type GatewayPki, type TestDevice } from './pki.js';
import { freePort } from '../support/index.js';

/** `YYMMDDHHMMSSZ`, as openssl's index.txt writes times. */
function indexTime(d: Date): string {
  return d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}

type IndexStatus = 'good' | 'revoked' | 'held';

/** One index.txt line: `V|R <tab> expiry <tab> revocation[,reason] <tab> serial <tab> unknown <tab> subject`. */
function indexLine(d: TestDevice, status: IndexStatus): string {
  const expiry = indexTime(d.cert.notAfter);
  const revoked = status === 'good' ? '' : `${indexTime(new Date(Date.now() - 60_000))},${status === 'held' ? 'certificateHold,holdInstructionReject' : 'keyCompromise'}`;
  return [status === 'good' ? 'V' : 'R', expiry, revoked, d.cert.serialHex, 'unknown', `/CN=device ${d.deviceId}`].join('\t');
}

interface Responder {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `openssl ocsp -index ... -port P -rsigner ... -rkey ... -CA ...` and waits until it listens. */
async function startOpensslOcsp(pki: GatewayPki, index: string, signer: string, extra: string[] = []): Promise<Responder> {
  const port = await freePort();
  const child = spawn('openssl', [
    'ocsp', '-index', index, '-port', String(port), '-rsigner', pki.file(`${signer}.pem`), '-rkey', pki.file(`${signer}.key`),
    '-CA', pki.file('device-ca.pem'), '-ignore_err', ...extra,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`openssl ocsp did not start: ${err}`)), 5_000);
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (/waiting for OCSP client connections/i.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`openssl ocsp exited: ${err}`)));
  });
  return {
    url: `http://127.0.0.1:${port}/`,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('gateway-auth: ocsp status mode against openssl ocsp', function () {
  let pki: GatewayPki;
  let devices: Record<'good' | 'good2' | 'revoked' | 'held' | 'unlisted', TestDevice>;
  let index: string;
  let responder: Responder;
  let gw: RunningGateway;
  let indexWrites = 0;

  function writeIndex(statuses: Partial<Record<keyof typeof devices, IndexStatus>>): void {
    const lines = Object.entries(statuses).map(([name, status]) => indexLine(devices[name as keyof typeof devices], status!));
    writeFileSync(index, `${lines.join('\n')}\n`);
    // openssl ocsp reloads index.txt when its mtime changes (whole seconds): every write gets a
    // later mtime than the one before, so a reload can never be missed.
    indexWrites += 1;
    const t = new Date(Math.floor(Date.now() / 1000) * 1000 + 5_000 + indexWrites * 2_000);
    utimesSync(index, t, t);
  }

  before(async function () {
    pki = await createGatewayPki();
    devices = {
      good: await pki.newDevice(), good2: await pki.newDevice(), revoked: await pki.newDevice(), held: await pki.newDevice(),
      unlisted: await pki.newDevice(),
    };
    index = pki.file('index.txt');
    writeIndex({ good: 'good', good2: 'good', revoked: 'revoked', held: 'held' });
    responder = await startOpensslOcsp(pki, index, 'ocsp-signer');
    gw = await startGateway(pki, {
      // A generous request timeout: `openssl ocsp -port` (OpenSSL 3.0) spins forever on a connection
      // closed without a request, so a client-side abort under load would wedge the responder.
      statusSource: 'ocsp', ocsp: { url: responder.url, recheckIntervalMs: 200, timeoutMs: 10_000 }, telemetry: { sink: { record: async () => {} } },
    });
  });

  after(async function () {
    await gw?.close();
    await responder?.stop();
    await pki?.cleanup();
  });

  const client = (d: TestDevice, port = gw.port) => sClient(port, { certPath: d.certPath, keyPath: d.keyPath, caPath: pki.file('root.pem') });
  const lastRefusal = (g: RunningGateway = gw) => g.logger.find('gateway refused a device connection').at(-1)?.fields.reason;

  it('admits a device the responder reports good (delegated responder with id-kp-OCSPSigning)', async function () {
    expect(httpStatusOf((await client(devices.good)).stdout)).to.equal(200);
    expect(gw.gateway.readiness()).to.include({ ready: true, statusSource: 'ocsp' });
  });

  it('refuses revoked, held and unknown certificates (no HTTP response)', async function () {
    expect(httpStatusOf((await client(devices.revoked)).stdout)).to.equal(undefined);
    expect(lastRefusal()).to.equal('certificate revoked (OCSP)');
    expect(httpStatusOf((await client(devices.held)).stdout)).to.equal(undefined);
    expect(lastRefusal()).to.equal('certificate held (OCSP)');
    expect(httpStatusOf((await client(devices.unlisted)).stdout)).to.equal(undefined);
    expect(lastRefusal()).to.match(/does not know the certificate/);
  });

  it('closes a connected device once the responder reports it revoked (5 s ceiling)', async function () {
    const device = new KeepAliveDevice(gw.port, devices.good2.certPath, devices.good2.keyPath, pki.file('root.pem'));
    try {
      const res = await device.request('GET', '/healthz');
      expect(res.status).to.equal(200);
      const t0 = performance.now();
      writeIndex({ good: 'good', good2: 'revoked', revoked: 'revoked', held: 'held' });
      const ms = await closedWithin(res.socket, t0, 5_000);
      console.log(`      index.txt changed → connection closed (recheck every 200 ms): ${ms.toFixed(0)} ms`);
    } finally {
      device.destroy();
    }
  });

  it('accepts answers signed by the CA itself (ResponderID byKey)', async function () {
    const byCa = await startOpensslOcsp(pki, index, 'device-ca', ['-resp_key_id']);
    const other = await startGateway(pki, { statusSource: 'ocsp', ocsp: { url: byCa.url }, telemetry: { sink: { record: async () => {} } } });
    try {
      expect(httpStatusOf((await client(devices.good, other.port)).stdout)).to.equal(200);
    } finally {
      await other.close();
      await byCa.stop();
    }
  });

  it('fails closed on answers from a responder the device CA did not authorize', async function () {
    const rogue = issue(pki.stationCa, { cn: 'rogue OCSP signer', eku: ['OCSPSigning'], extra: [ocspNoCheckExt()] });
    writeFileSync(pki.file('rogue.pem'), rogue.pem);
    writeFileSync(pki.file('rogue.key'), rogue.key.keyPem);
    const bad = await startOpensslOcsp(pki, index, 'rogue');
    const other = await startGateway(pki, { statusSource: 'ocsp', ocsp: { url: bad.url }, telemetry: { sink: { record: async () => {} } } });
    try {
      expect(httpStatusOf((await client(devices.good, other.port)).stdout)).to.equal(undefined);
      expect(lastRefusal(other)).to.match(/not signed by the CA or a delegated responder/);
      await sleep(10);
      expect(other.gateway.readiness()).to.include({ statusSource: 'ocsp' });
    } finally {
      await other.close();
      await bad.stop();
    }
  });

  it('fails closed when the responder is unreachable and nothing is cached', async function () {
    const other = await startGateway(pki, {
      statusSource: 'ocsp', ocsp: { url: `http://127.0.0.1:${await freePort()}/`, timeoutMs: 500 }, statusGraceMs: 1_000,
      telemetry: { sink: { record: async () => {} } },
    });
    try {
      expect(httpStatusOf((await client(devices.good, other.port)).stdout)).to.equal(undefined);
      expect(lastRefusal(other)).to.match(/no usable OCSP answer/);
      expect(other.gateway.readiness()).to.include({ ready: false });
    } finally {
      await other.close();
    }
  });
});
