/**
 * The NDJSON batch's total body bound (`enrollment.batchBodyLimitBytes`), over real HTTPS: a body
 * declaring a larger Content-Length is refused before anything is read; a chunked body that grows
 * past the bound gets the items read so far answered (and committed), then one
 * KAKUIN_E_BATCH_BODY_TOO_LARGE line, and nothing past the bound is enrolled. Also: the answer lines
 * come in input order when written in coalesced chunks.
 */
import { expect } from 'chai';
import https from 'node:https';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from '../support/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { apiAs, newFactory, opensslCsr, type Factory } from '../enrollment/support.js';

const LIMIT = 16 * 1024;

/** A POST whose body is sent in the given chunks with chunked transfer encoding (no Content-Length). */
function chunkedPost(svc: TestService, token: string, pathname: string, chunks: string[]): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(pathname, svc.url), {
      method: 'POST', ca: svc.rootPem, agent: false,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson', 'transfer-encoding': 'chunked' },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    // The server may close the connection before the whole body is sent: that is the point.
    req.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') reject(e); });
    (async () => {
      for (const c of chunks) {
        if (req.destroyed) return;
        req.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
      req.end();
    })().catch(reject);
  });
}

describe('enrollment batch: total body bound', function () {
  this.timeout(120_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let a: Factory;
  let station: ReturnType<typeof apiAs>;

  before(async () => {
    tmp = makeTempDir();
    const config = path.join(tmp.dir, 'kakuin-test.json');
    writeFileSync(config, JSON.stringify({ enrollment: { batchBodyLimitBytes: LIMIT } }));
    svc = await startTestService({ env: { KAKUIN_CONFIG: config } });
    a = await newFactory(svc, 'Factory limits');
    station = apiAs(svc, a.apiKey);
    const serials = Array.from({ length: 30 }, (_, i) => ({ serialNumber: `LIM-${i}` }));
    const r = await station('POST', '/api/v1/devices/import', { body: serials });
    expect(r.status, r.text).to.equal(201);
  });

  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  const line = (i: number) => `${JSON.stringify({ serialNumber: `LIM-${i}`, csr: opensslCsr(tmp.dir, `lim-${i}`, `/serialNumber=LIM-${i}`).csrPem })}\n`;
  const statusOf = async (serial: string) => {
    const r = await station('GET', `/api/v1/station/devices?serialNumber=${serial}`);
    expect(r.status, r.text).to.equal(200);
    return r.json.devices[0].status as string;
  };

  it('refuses a body that declares more than the bound, before enrolling anything', async () => {
    const body = [0, 1].map(line).join('') + ' '.repeat(LIMIT);
    const r = await station('POST', '/api/v1/enroll/batch', { body, contentType: 'application/x-ndjson' });
    expect(r.status, r.text).to.equal(413);
    expect(r.json.code).to.equal('KAKUIN_E_BATCH_BODY_TOO_LARGE');
    expect(await statusOf('LIM-0')).to.equal('registered');
  });

  it('answers the items read before a chunked body passes the bound, then one error line; nothing past it is enrolled', async () => {
    const first = [2, 3, 4].map(line);
    const tail = line(5);
    const filler = ' '.repeat(4096);
    const chunks = [...first, filler, filler, filler, filler, tail];
    const r = await chunkedPost(svc, a.apiKey, '/api/v1/enroll/batch', chunks);
    expect(r.status, r.text).to.equal(200);
    const results = r.text.trim().split('\n').map((l) => JSON.parse(l) as { line: number; serialNumber?: string; serialHex?: string; error?: { code: string } });
    expect(results.slice(0, 3).map((x) => [x.line, x.serialNumber, typeof x.serialHex])).to.deep.equal([[1, 'LIM-2', 'string'], [2, 'LIM-3', 'string'], [3, 'LIM-4', 'string']]);
    expect(results).to.have.length(4);
    expect(results[3].error?.code).to.equal('KAKUIN_E_BATCH_BODY_TOO_LARGE');
    expect(await statusOf('LIM-4')).to.equal('active');
    expect(await statusOf('LIM-5')).to.equal('registered');
  });

  it('a batch within the bound answers every line in input order, bad lines failing alone', async () => {
    const lines = [6, 7, 8].map(line);
    lines.splice(1, 0, '{"serialNumber": "LIM-9", "csr": "not a csr"}\n', 'not json\n');
    const r = await station('POST', '/api/v1/enroll/batch', { body: lines.join(''), contentType: 'application/x-ndjson' });
    expect(r.status, r.text).to.equal(200);
    const results = r.text.trim().split('\n').map((l) => JSON.parse(l) as { line: number; serialNumber?: string; error?: { code: string } });
    expect(results.map((x) => x.line)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(results.map((x) => x.error?.code ?? x.serialNumber)).to.deep.equal(['LIM-6', 'KAKUIN_E_PEM_MALFORMED', 'KAKUIN_E_BATCH_ITEM_MALFORMED', 'LIM-7', 'LIM-8']);
  });
});
