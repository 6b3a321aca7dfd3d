/**
 * The registry walks of the responder's start in worker threads (ocsp-responder/worker-walks.ts),
 * on a read-only connection of their own to a real SQLite file: the same rows as the adapter gives
 * on the event loop, a callback's exception stops the walk, and a responder started on such a view
 * loads, reconciles and answers as one on the plain registry.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { cachedResponse, OcspResponder, withWorkerWalks } from '../../ocsp-responder/index.js';
import { encodeCertId, encodeOcspRequest, parseOcspResponse } from '../../pkix/index.js';
import type { StoredOcspResponse } from '../../registry/port.js';
import {
  makeCa, makeResponder, openRegistry, pollingFeed, putIssuer, RecordingLogger, recordLeaf, type RegistryFixture, serialHexOf, setStatus,
  type TestCa, type TestCert,
} from './fixtures.js';

const workerOpen = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'registry', 'sqlite', 'worker-open.js')).href;

describe('ocsp-responder: registry walks in worker threads', function () {
  this.timeout(30_000);
  let fx: RegistryFixture;
  let ca: TestCa;
  const certs: TestCert[] = [];

  before(async function () {
    fx = await openRegistry();
    ca = makeCa('p256', 'Walk CA');
    await putIssuer(fx.registry, 'device', ca);
    for (let i = 0; i < 12; i++) certs.push(await recordLeaf(fx.registry, ca, 'device', `walk-${i}`));
    await setStatus(fx.registry, certs[3], 'revoked', 'keyCompromise');
    await setStatus(fx.registry, certs[4], 'held');
    // Stored responses for all of them, from a responder that persists.
    const writer = new OcspResponder({ registry: fx.registry, identities: [makeResponder(ca, 'device').identity], feed: pollingFeed(fx.registry), logger: new RecordingLogger() });
    await writer.start();
    await writer.presigned.whenIdle();
    await writer.stop();
  });

  after(async function () {
    await fx.cleanup();
  });

  it('keeps the registry\'s change-stream wake-up (watchFeed) when there is one, and adds none otherwise', function () {
    const spec = { module: 'unused', options: {} };
    let woken = 0;
    let stopped = 0;
    const withWatch = withWorkerWalks({ ...fx.registry, readFeed: fx.registry.readFeed.bind(fx.registry),
      watchFeed: (wake: () => void) => { wake(); woken++; return () => { stopped++; }; } } as never, spec);
    const stop = withWatch.watchFeed!(() => { woken++; });
    stop();
    expect({ woken, stopped }).to.deep.equal({ woken: 2, stopped: 1 });
    expect(withWorkerWalks(fx.registry, spec).watchFeed, 'SQLite has no wake-up').to.equal(undefined);
  });

  it('delivers the same stored responses and certificate statuses as the adapter does', async function () {
    const view = withWorkerWalks(fx.registry, { module: workerOpen, options: { path: fx.dbPath } });
    const direct: StoredOcspResponse[] = [];
    const viaWorker: StoredOcspResponse[] = [];
    await fx.registry.forEachOcspResponse(undefined, (r) => direct.push({ ...r, der: Buffer.from(r.der) }));
    await view.forEachOcspResponse(undefined, (r) => viaWorker.push({ ...r, der: Buffer.from(r.der) }));
    expect(direct.length).to.equal(certs.length);
    expect(viaWorker).to.deep.equal(direct);
    const statuses = async (walk: typeof view.forEachCertificateStatus): Promise<unknown[]> => {
      const out: unknown[] = [];
      await walk('device', (...args) => out.push(args));
      return out;
    };
    const a = await statuses((i, r) => fx.registry.forEachCertificateStatus(i, r));
    const b = await statuses((i, r) => view.forEachCertificateStatus(i, r));
    expect(a.length).to.equal(certs.length);
    expect(b).to.deep.equal(a);
  });

  it('stops the walk with the callback\'s own exception', async function () {
    const view = withWorkerWalks(fx.registry, { module: workerOpen, options: { path: fx.dbPath } });
    const boom = new Error('callback failed');
    let seen = 0;
    const walked = view.forEachCertificateStatus('device', () => {
      seen++;
      throw boom;
    });
    let caught: unknown;
    try {
      await walked;
    } catch (e) {
      caught = e;
    }
    expect(caught).to.equal(boom);
    expect(seen).to.equal(1);
  });

  it('a responder on the worker view starts, reconciles and answers per the registry', async function () {
    const logger = new RecordingLogger();
    const view = withWorkerWalks(fx.registry, { module: workerOpen, options: { path: fx.dbPath } });
    const responder = new OcspResponder({
      registry: view, identities: [makeResponder(ca, 'device', 'responder on the worker view').identity], feed: pollingFeed(fx.registry), logger,
      persistResponses: false,
    });
    await responder.start();
    try {
      await responder.presigned.whenIdle();
      expect(responder.presigned.size).to.equal(certs.length);
      for (const [i, expected] of [[0, 'good'], [3, 'revoked'], [4, 'revoked'], [11, 'good']] as const) {
        const entry = responder.answer(encodeOcspRequest([encodeCertId('sha1', ca.nameDer, ca.subjectPublicKey, certs[i].serial)])) as Buffer;
        const parsed = parseOcspResponse(cachedResponse.entryDer(entry));
        expect(parsed.responses[0].certId.serialHex).to.equal(serialHexOf(certs[i]));
        expect(parsed.responses[0].certStatus.status, `certificate ${i}`).to.equal(expected);
      }
    } finally {
      await responder.stop();
    }
  });
});
