/**
 * A batch interrupted by killing the server process (SIGKILL) mid-way, then retried against a new
 * process on the same data directory: every certificate that was returned is in the registry, the
 * retry returns the same certificates and issues only what was missing, no serial is duplicated, and
 * no device has two live identities.
 */
import { expect } from 'chai';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeTempDir } from '../support/index.js';
import { request, spawnService, type ChildService } from '../support/service.js';
import { makeP256Csrs } from '../../bench/fixtures.js';
import { toPem } from '../../pkix/index.js';

describe('batch enrollment across a server crash (kill -9 mid-batch, then retry)', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let child: ChildService | undefined;

  before(() => {
    tmp = makeTempDir();
  });

  after(async () => {
    if (child && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    tmp?.cleanup();
  });

  it('every returned certificate survives, the retry issues nothing twice, no device has two live identities', async () => {
    const env = {
      KAKUIN_DATA_DIR: path.join(tmp.dir, 'data'), KAKUIN_API_PORT: '0', KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_LEGACY_PORT: '0',
      KAKUIN_GATEWAY_WORKERS: '1', KAKUIN_KEY_PASSPHRASE: 'crash-test-passphrase', KAKUIN_LOG_LEVEL: 'error', KAKUIN_ADMIN_TOKEN: `kktest_${randomBytes(24).toString('base64url')}`,
    };
    child = await spawnService(env);
    const root = readFileSync(path.join(env.KAKUIN_DATA_DIR, 'ca', 'root.pem'), 'utf8');
    const admin = (url: string, method: string, p: string, body?: object) => request(url, root, method, p, { token: env.KAKUIN_ADMIN_TOKEN, body });
    const m = await admin(child.url, 'POST', '/api/v1/manufacturers', { name: 'Crash factory' });
    const s = await admin(child.url, 'POST', `/api/v1/manufacturers/${m.json.id}/stations`, { name: 'line-1' });
    const n = 800;
    const serials = Array.from({ length: n }, (_, i) => `CR-${i}`);
    const imp = await request(child.url, root, 'POST', '/api/v1/devices/import', { token: s.json.apiKey, body: serials.map((serialNumber) => ({ serialNumber })) });
    expect(imp.status, imp.text).to.equal(201);
    const csrs = makeP256Csrs(serials);
    const body = serials.map((serialNumber, i) => JSON.stringify({ serialNumber, csr: toPem('CERTIFICATE REQUEST', csrs[i]) })).join('\n');

    // First run: read results until some have arrived, then kill the server.
    const received: { serialNumber: string; serialHex?: string }[] = [];
    const killed = child;
    await new Promise<void>((resolve) => {
      const req = https.request(new URL('/api/v1/enroll/batch', killed.url), {
        method: 'POST', ca: root, agent: false,
        headers: { authorization: `Bearer ${s.json.apiKey}`, 'content-type': 'application/x-ndjson', 'content-length': String(Buffer.byteLength(body)) },
      }, (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            received.push(JSON.parse(buf.slice(0, nl)));
            buf = buf.slice(nl + 1);
          }
          if (received.length >= 100 && killed.proc.signalCode === null) killed.proc.kill('SIGKILL');
        });
        res.on('error', () => resolve());
        res.on('close', () => resolve());
      });
      req.on('error', () => resolve());
      req.end(body);
    });
    await killed.exited;
    expect(received.length).to.be.at.least(100);
    expect(received.length).to.be.below(n);

    // Retry the whole batch against a new process on the same data.
    child = await spawnService(env);
    const retry = await request(child.url, root, 'POST', '/api/v1/enroll/batch', { token: s.json.apiKey, body, contentType: 'application/x-ndjson' });
    const lines = retry.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).to.have.length(n);
    expect(lines.filter((l) => l.error)).to.deep.equal([]);
    const bySerial = new Map(lines.map((l) => [l.serialNumber, l]));
    for (const r of received.filter((x) => x.serialHex)) {
      expect(bySerial.get(r.serialNumber).serialHex, r.serialNumber).to.equal(r.serialHex);
      expect(bySerial.get(r.serialNumber).existing).to.equal(true);
    }
    expect(new Set(lines.map((l) => l.serialHex)).size).to.equal(n);
    // No device has two live identities, and every certificate returned before the crash is recorded as its one.
    const ids = lines.map((l) => l.deviceId as string);
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < ids.length) {
        const line = lines[next];
        const d = await admin(child!.url, 'GET', `/api/v1/devices/${ids[next++]}`);
        const live = d.json.certificates.filter((c: { status: string }) => c.status !== 'revoked');
        expect(live.map((c: { serialHex: string }) => c.serialHex), line.serialNumber).to.deep.equal([line.serialHex]);
      }
    }));
    child.proc.kill('SIGTERM');
    await child.exited;
  });
});
