/** The responder without HTTP: pre-signed and live answers, the feed, restart, refresh, rollover, limits. */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { cachedResponse, OcspResponder, type OcspResponderOptions } from '../../ocsp-responder/index.js';
import {
  encodeCertId, encodeOcspRequest, parseCertificate, parseOcspResponse, parseSpki, type ParsedOcspResponse,
  verifyOcspResponseSignature,
} from '../../pkix/index.js';
import {
  makeCa, makeResponder, newSerial, openRegistry, pollingFeed, putIssuer, recordLeaf, RecordingLogger, type RegistryFixture,
  type Responder, serialHexOf, setStatus, type TestCa, type TestCert,
} from './fixtures.js';

const ISSUER = 'device';

function certId(ca: TestCa, serial: Buffer, hash: 'sha1' | 'sha256' = 'sha1'): Buffer {
  return encodeCertId(hash, ca.nameDer, ca.subjectPublicKey, serial);
}

describe('ocsp-responder: OcspResponder', function () {
  this.timeout(20_000);
  let fx: RegistryFixture;
  let ca: TestCa;
  let responder: Responder;
  let leaf: TestCert;
  const started: OcspResponder[] = [];

  async function startResponder(extra: Partial<OcspResponderOptions> = {}): Promise<OcspResponder> {
    const r = new OcspResponder({
      registry: fx.registry, identities: [responder.identity], logger: new RecordingLogger(), ...extra, // the default feed: FeedFollower
    });
    started.push(r);
    await r.start();
    return r;
  }

  async function ask(r: OcspResponder, request: Buffer): Promise<ParsedOcspResponse> {
    const entry = await r.answer(request);
    return parseOcspResponse(cachedResponse.entryDer(entry));
  }

  function verified(resp: ParsedOcspResponse, by: Responder = responder): ParsedOcspResponse {
    expect(resp.status).to.equal('successful');
    expect(resp.responderKeyHash!.equals(by.cert.keyId), 'ResponderID byKey').to.equal(true);
    expect(resp.certs.map((c) => c.toString('hex'))).to.deep.equal([by.cert.certDer.toString('hex')]);
    expect(verifyOcspResponseSignature(resp, parseSpki(by.cert.spkiDer)), 'signature').to.equal(true);
    return resp;
  }

  beforeEach(async function () {
    fx = await openRegistry();
    ca = makeCa('p256', 'Device CA');
    await putIssuer(fx.registry, ISSUER, ca);
    responder = makeResponder(ca, ISSUER);
    leaf = await recordLeaf(fx.registry, ca, ISSUER);
  });

  afterEach(async function () {
    for (const r of started.splice(0)) await r.stop();
    await fx.cleanup();
  });

  it('pre-signs a SHA-1 response for every recorded certificate at start and answers good from it', async function () {
    const r = await startResponder();
    expect(r.presigned.size).to.equal(1);
    const before = r.metrics.presigned;
    const resp = verified(await ask(r, encodeOcspRequest([certId(ca, leaf.serial)])));
    expect(r.metrics.presigned).to.equal(before + 1);
    const single = resp.responses[0];
    expect(single.certStatus).to.deep.equal({ status: 'good' });
    expect(single.certId.rawDer.equals(certId(ca, leaf.serial))).to.equal(true);
    expect(single.thisUpdate.getTime() % 1000).to.equal(0);
    expect(resp.producedAt!.getTime()).to.equal(single.thisUpdate.getTime());
    expect(single.nextUpdate!.getTime() - single.thisUpdate.getTime()).to.equal(24 * 3600 * 1000);
    expect(await fx.registry.getOcspResponse(ISSUER, serialHexOf(leaf)), 'stored').to.not.equal(undefined);
  });

  it('answers revoked with the reason once waitForSeq resolves, held as certificateHold, and good again after release', async function () {
    const r = await startResponder();
    const req = encodeOcspRequest([certId(ca, leaf.serial)]);
    const held = await setStatus(fx.registry, leaf, 'held');
    expect(await r.waitForSeq(held, 5000)).to.equal(true);
    const h = verified(await ask(r, req)).responses[0].certStatus;
    expect(h).to.include({ status: 'revoked', reason: 'certificateHold' });
    const released = await setStatus(fx.registry, leaf, 'good');
    expect(await r.waitForSeq(released, 5000)).to.equal(true);
    expect(verified(await ask(r, req)).responses[0].certStatus).to.deep.equal({ status: 'good' });
    const revoked = await setStatus(fx.registry, leaf, 'revoked', 'keyCompromise');
    expect(await r.waitForSeq(revoked, 5000)).to.equal(true);
    const st = verified(await ask(r, req)).responses[0].certStatus;
    expect(st).to.include({ status: 'revoked', reason: 'keyCompromise' });
    const record = await fx.registry.getCertificate(serialHexOf(leaf));
    expect((st as { revokedAt: Date }).revokedAt.getTime()).to.equal(Math.floor(record.revokedAt!.getTime() / 1000) * 1000);
    const stored = parseOcspResponse((await fx.registry.getOcspResponse(ISSUER, serialHexOf(leaf)))!.der);
    expect(stored.responses[0].certStatus).to.include({ status: 'revoked', reason: 'keyCompromise' });
  });

  it('waitForSeq resolves false after its timeout when the feed never gets there', async function () {
    const r = await startResponder();
    expect(await r.waitForSeq(1_000_000, 50)).to.equal(false);
  });

  it('answers unknown for a serial it does not know and for another issuer\'s certificate with that serial', async function () {
    const otherCa = makeCa('p256', 'Station CA');
    await putIssuer(fx.registry, 'station', otherCa);
    const foreign = await recordLeaf(fx.registry, otherCa, 'station', 'station-1');
    const r = await startResponder();
    expect(verified(await ask(r, encodeOcspRequest([certId(ca, newSerial())]))).responses[0].certStatus).to.deep.equal({ status: 'unknown' });
    // The station CA's certificate asked of the device CA (same serial, device CA's hashes).
    expect(verified(await ask(r, encodeOcspRequest([certId(ca, foreign.serial)]))).responses[0].certStatus).to.deep.equal({ status: 'unknown' });
  });

  it('refuses a CertID of an issuer it does not serve with unauthorized, garbage with malformedRequest', async function () {
    const r = await startResponder();
    const stranger = makeCa('p256', 'Stranger CA');
    expect((await ask(r, encodeOcspRequest([certId(stranger, leaf.serial)]))).status).to.equal('unauthorized');
    expect((await ask(r, randomBytes(40))).status).to.equal('malformedRequest');
    const good = encodeOcspRequest([certId(ca, leaf.serial)]);
    expect((await ask(r, good.subarray(0, good.length - 3))).status).to.equal('malformedRequest');
    expect((await ask(r, Buffer.alloc(0))).status).to.equal('malformedRequest');
  });

  it('signs live and echoes a nonce, even for a pre-signed certificate', async function () {
    const r = await startResponder();
    const nonce = randomBytes(16);
    const resp = verified(await ask(r, encodeOcspRequest([certId(ca, leaf.serial)], nonce)));
    expect(resp.nonce!.equals(nonce)).to.equal(true);
    expect(resp.responses[0].certStatus).to.deep.equal({ status: 'good' });
    const entry = await r.answer(encodeOcspRequest([certId(ca, leaf.serial)], nonce));
    expect(cachedResponse.entryKind(entry)).to.equal(cachedResponse.KIND_NO_STORE);
    expect(r.metrics.liveSigned).to.equal(2);
  });

  it('answers a SHA-256 CertID with the client\'s own CertID bytes and keeps that answer', async function () {
    const r = await startResponder();
    const req = encodeOcspRequest([certId(ca, leaf.serial, 'sha256')]);
    const resp = verified(await ask(r, req));
    expect(resp.responses[0].certId.rawDer.equals(certId(ca, leaf.serial, 'sha256'))).to.equal(true);
    expect(resp.responses[0].certStatus).to.deep.equal({ status: 'good' });
    const again = await r.answer(req);
    expect(Buffer.isBuffer(again), 'answered synchronously from the live cache').to.equal(true);
    expect(r.metrics.liveCached).to.equal(1);
    // A status change drops the kept copy.
    const seq = await setStatus(fx.registry, leaf, 'revoked', 'superseded');
    await r.waitForSeq(seq, 5000);
    expect(verified(await ask(r, req)).responses[0].certStatus).to.include({ status: 'revoked', reason: 'superseded' });
  });

  it('answers several CertIDs in one response, in order', async function () {
    const second = await recordLeaf(fx.registry, ca, ISSUER, 'device-2');
    const r = await startResponder();
    await r.waitForSeq(await setStatus(fx.registry, second, 'revoked', 'cessationOfOperation'), 5000);
    const unknownSerial = newSerial();
    const resp = verified(await ask(r, encodeOcspRequest([certId(ca, leaf.serial), certId(ca, second.serial, 'sha256'), certId(ca, unknownSerial)])));
    expect(resp.responses.map((s) => s.certStatus.status)).to.deep.equal(['good', 'revoked', 'unknown']);
    expect(resp.responses[2].certId.serialHex).to.equal(unknownSerial.toString('hex').toUpperCase());
  });

  it('after a restart serves the stored responses without signing again', async function () {
    const first = await startResponder();
    expect(first.presigned.stats().signedTotal).to.equal(1);
    await first.stop();
    const second = await startResponder();
    expect(second.presigned.size).to.equal(1);
    expect(second.presigned.stats().signedTotal).to.equal(0);
    verified(await ask(second, encodeOcspRequest([certId(ca, leaf.serial)])));
  });

  it('re-signs at start what changed while it was not running', async function () {
    const first = await startResponder();
    await first.stop();
    await setStatus(fx.registry, leaf, 'revoked', 'affiliationChanged');
    const late = await recordLeaf(fx.registry, ca, ISSUER, 'late');
    const second = await startResponder();
    expect(second.presigned.stats().signedTotal).to.equal(2);
    expect(verified(await ask(second, encodeOcspRequest([certId(ca, leaf.serial)]))).responses[0].certStatus).to.include({ reason: 'affiliationChanged' });
    expect(verified(await ask(second, encodeOcspRequest([certId(ca, late.serial)]))).responses[0].certStatus).to.deep.equal({ status: 'good' });
  });

  it('re-signs every response with the new responder certificate after setIdentities (rollover)', async function () {
    for (let i = 0; i < 5; i++) await recordLeaf(fx.registry, ca, ISSUER, `extra-${i}`);
    const r = await startResponder({ batchSize: 2 });
    const next = makeResponder(ca, ISSUER, 'OCSP responder device 2');
    await r.setIdentities([next.identity]);
    expect(r.presigned.size).to.equal(6);
    verified(await ask(r, encodeOcspRequest([certId(ca, leaf.serial)])), next);
    let stored = 0;
    await fx.registry.forEachOcspResponse(ISSUER, (s) => {
      expect(parseOcspResponse(s.der).responderKeyHash!.equals(next.cert.keyId)).to.equal(true);
      stored++;
    });
    expect(stored).to.equal(6);
  });

  it('refuses an identity whose responder was not issued by the issuer, and keeps the old one', async function () {
    const r = await startResponder();
    const other = makeCa('p256', 'Other CA');
    const wrong = makeResponder(other, ISSUER);
    try {
      await r.setIdentities([{ ...wrong.identity, issuerCertificateDer: ca.certDer }]);
      expect.fail('setIdentities accepted a foreign responder');
    } catch (e) {
      expect((e as { code?: string }).code).to.equal('KAKUIN_E_CONFIG');
    }
    verified(await ask(r, encodeOcspRequest([certId(ca, leaf.serial)])));
    expect(() => new OcspResponder({
      registry: fx.registry, identities: [{ ...responder.identity, signer: wrong.identity.signer }], feed: pollingFeed(fx.registry), logger: new RecordingLogger(),
    })).to.throw().with.property('code', 'KAKUIN_E_CONFIG');
  });

  it('refreshes responses past half their validity', async function () {
    let now = Date.now();
    const r = await startResponder({ now: () => now, validityMs: 3600_000 });
    const before = parseOcspResponse(cachedResponse.entryDer(await r.answer(encodeOcspRequest([certId(ca, leaf.serial)])) as Buffer));
    now += 1800_000 + 1000;
    expect(await r.presigned.refresh()).to.equal(1);
    const after = parseOcspResponse(cachedResponse.entryDer(await r.answer(encodeOcspRequest([certId(ca, leaf.serial)])) as Buffer));
    expect(after.responses[0].thisUpdate.getTime() - before.responses[0].thisUpdate.getTime()).to.be.at.least(1800_000);
    expect(await r.presigned.refresh()).to.equal(0);
  });

  it('answers tryLater when live signing is over its rate', async function () {
    const r = await startResponder({ live: { ratePerSecond: 1, burst: 1 } });
    const statuses: string[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await ask(r, encodeOcspRequest([certId(ca, leaf.serial)], randomBytes(8)))).status);
    expect(statuses).to.deep.equal(['successful', 'tryLater', 'tryLater']);
    // The pre-signed path is not limited.
    expect((await ask(r, encodeOcspRequest([certId(ca, leaf.serial)]))).status).to.equal('successful');
  });

  it('the responder certificate is issued by the CA with id-kp-OCSPSigning and ocsp-nocheck', function () {
    const parsed = parseCertificate(responder.cert.certDer);
    const oids = parsed.extensions.map((e) => e.oid);
    expect(oids).to.include('2.5.29.37');
    expect(oids).to.include('1.3.6.1.5.5.7.48.1.5');
  });
});
