import { expect } from 'chai';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir, opensslAsync } from '../support/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { runFactoryBatch } from '../../enrollment/factory-client.js';
import { apiAs, newFactory, opensslCsr, type Factory } from '../enrollment/support.js';

describe('factory client (kakuin enroll batch): one file per device, resumable', function () {
  this.timeout(60_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let f: Factory;

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0' } });
    f = await newFactory(svc, 'Client factory');
    await apiAs(svc, f.apiKey)('POST', '/api/v1/devices/import', { body: ['F-1', 'F-2', 'F-3', 'F/4'].map((serialNumber) => ({ serialNumber })) });
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('writes a certificate (or PKCS#12) per device; a rerun after losing a file re-fetches only that one, issuing nothing new', async () => {
    const lines = ['F-1', 'F-2', 'F/4'].map((s) => JSON.stringify({ serialNumber: s, csr: opensslCsr(tmp.dir, s.replace('/', '_'), `/serialNumber=${s.replace('/', '\\/')}`).csrPem }));
    lines.push(JSON.stringify({ serialNumber: 'F-3', keygen: { password: 'a-long-enough-password' } }));
    lines.push(JSON.stringify({ serialNumber: 'NOT-THERE', csr: opensslCsr(tmp.dir, 'nt', '/serialNumber=NOT-THERE').csrPem }));
    const inFile = path.join(tmp.dir, 'devices.ndjson');
    writeFileSync(inFile, `${lines.join('\n')}\n`);
    const outDir = path.join(tmp.dir, 'certs');
    const progress: number[] = [];
    const first = await runFactoryBatch({ url: svc.url, apiKey: f.apiKey, caPem: svc.rootPem, inFile, outDir, progress: (d) => progress.push(d) });
    expect(first).to.include({ total: 5, sent: 4, skipped: 0, written: 3 });
    // F/4 cannot be a file name: refused before sending (a path separator), the rest fail or succeed alone.
    expect(first.failed.map((x) => [x.line, x.code])).to.deep.equal([[3, 'KAKUIN_E_SERIAL_NOT_A_FILE_NAME'], [5, 'KAKUIN_E_DEVICE_NOT_REGISTERED']]);
    expect(progress).to.deep.equal([1, 2, 3, 4]);
    expect(readdirSync(outDir).sort()).to.deep.equal(['.kakuin-enroll.journal', 'F-1.pem', 'F-2.pem', 'F-3.p12', 'errors.ndjson']);
    const x509 = await opensslAsync(['x509', '-in', path.join(outDir, 'F-1.pem'), '-noout', '-subject']);
    expect(x509.stdout).to.match(/F-1/);
    // The .pem holds the chain: leaf, device CA, root.
    expect(readFileSync(path.join(outDir, 'F-1.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).to.have.length(3);
    const journal = () => readFileSync(path.join(outDir, '.kakuin-enroll.journal'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; serialNumber: string; sha256?: string });
    const f1 = journal().find((e) => e.event === 'written' && e.serialNumber === 'F-1')!;
    expect(f1.sha256).to.equal(createHash('sha256').update(new X509Certificate(readFileSync(path.join(outDir, 'F-1.pem'))).raw).digest('hex'));
    rmSync(path.join(outDir, 'F-2.pem'));
    // A journal lost (or a kill between rename and journal line): files that exist are whole and are journaled again.
    rmSync(path.join(outDir, '.kakuin-enroll.journal'));
    const second = await runFactoryBatch({ url: svc.url, apiKey: f.apiKey, caPem: svc.rootPem, inFile, outDir });
    expect(journal().filter((e) => e.event === 'written').map((e) => e.serialNumber).sort()).to.deep.equal(['F-1', 'F-2', 'F-3']);
    expect(journal().find((e) => e.serialNumber === 'F-1')!.sha256).to.equal(f1.sha256);
    expect(second).to.include({ sent: 2, skipped: 2, written: 1 });
    expect(second.keygenReissued).to.deep.equal([]);
    expect(existsSync(path.join(outDir, 'F-2.pem'))).to.equal(true);
    const issued = await apiAs(svc, svc.adminToken)('GET', '/api/v1/audit-events?type=certificate.issued&limit=1000');
    expect(issued.json.events.filter((e: { actor: string }) => e.actor === `station:${f.stationId}`)).to.have.length(3);

    // An empty file (a crash of a writer that did not fsync) does not count as done: fetched again, nothing issued.
    writeFileSync(path.join(outDir, 'F-1.pem'), '');
    const refetched = await runFactoryBatch({ url: svc.url, apiKey: f.apiKey, caPem: svc.rootPem, inFile, outDir });
    expect(refetched).to.include({ sent: 2, skipped: 2, written: 1 });
    expect(createHash('sha256').update(new X509Certificate(readFileSync(path.join(outDir, 'F-1.pem'))).raw).digest('hex')).to.equal(f1.sha256);

    // A keygen answer lost before it was written: sent again, a new key pair supersedes the earlier certificate, and the result says so.
    rmSync(path.join(outDir, 'F-3.p12'));
    const third = await runFactoryBatch({ url: svc.url, apiKey: f.apiKey, caPem: svc.rootPem, inFile, outDir });
    expect(third).to.include({ sent: 2, written: 1 });
    expect(third.keygenReissued).to.deep.equal(['F-3']);
  });
});
