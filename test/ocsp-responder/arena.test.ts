/**
 * The response arena (ocsp-responder/response-arena.ts): every pre-signed response in a few large
 * chunks with an index in typed arrays. Unit tests with real signed responses (the responder's own
 * ResponseSigner), small chunks so growth and compaction happen at test sizes, and a colliding pair
 * of serials found by brute force; then the listener: the bytes served for a pre-signed response
 * are exactly the DER that was signed and stored, read back by openssl ocsp -respin.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  arenaKeyHash, cachedResponse, ResponseArena, ResponseSigner, prepareIdentity, type PreparedIdentity,
} from '../../ocsp-responder/index.js';
import { encodeCertId, encodeOcspRequest, type OcspCertStatus } from '../../pkix/index.js';
import {
  makeCa, makeResponder, openRegistry, putIssuer, recordLeaf, serialHexOf, setStatus, type TestCa, writeIn,
} from './fixtures.js';
import { postOcsp, run, startListener } from './http-support.js';

const { entryDer, entryStates, entryStatus, entryTail, certsTailFor, internCertsTail, KIND_CACHEABLE } = cachedResponse;

describe('ocsp-responder: response arena', function () {
  this.timeout(30_000);
  let ca: TestCa;
  let identity: PreparedIdentity;
  let tailId: number;
  const signer = new ResponseSigner();

  /** A real response, signed by the responder's own ResponseSigner. */
  async function signed(serialHex: string, status: OcspCertStatus = { status: 'good' }): Promise<cachedResponse.SignedResponse> {
    const [r] = await signer.signEach(identity, [{ serialHex, status }]);
    return r;
  }

  function serialOf(i: number, bytes = 8): string {
    return `40${i.toString(16).toUpperCase().padStart(bytes * 2 - 2, '0')}`;
  }

  before(function () {
    ca = makeCa('p256', 'Arena CA');
    identity = prepareIdentity(makeResponder(ca, 'device').identity, 3);
    tailId = internCertsTail(certsTailFor(identity.responderCertificateDer));
  });

  it('keeps a revocation\'s invalidityDate in the entry header, so a walk that finds it unchanged signs nothing and a changed one re-signs', async function () {
    const arena = new ResponseArena({ autoCompact: false });
    const revokedAt = new Date(1_700_000_000_000);
    const invalidityDate = new Date(1_699_000_000_000);
    const r = await signed('0C0FFE', { status: 'revoked', revokedAt, reason: 'keyCompromise', invalidityDate });
    arena.set('device', '0C0FFE', r, identity.epoch, KIND_CACHEABLE, tailId);
    const entry = arena.get('device', '0C0FFE')!;
    expect(entryStatus(entry)).to.deep.equal({ status: 'revoked', revokedAt, reason: 'keyCompromise', invalidityDate });
    expect(entryStates(entry, { status: 'revoked', revokedAt, reason: 'keyCompromise', invalidityDate })).to.equal(true);
    expect(entryStates(entry, { status: 'revoked', revokedAt, reason: 'keyCompromise' })).to.equal(false);
    expect(entryStates(entry, { status: 'revoked', revokedAt, reason: 'keyCompromise', invalidityDate: new Date(1_698_000_000_000) })).to.equal(false);
    const plain = await signed('0C0FFF', { status: 'revoked', revokedAt, reason: 'keyCompromise' });
    arena.set('device', '0C0FFF', plain, identity.epoch, KIND_CACHEABLE, tailId);
    expect(entryStatus(arena.get('device', '0C0FFF')!)).to.deep.equal({ status: 'revoked', revokedAt, reason: 'keyCompromise' });
    expect(entryStates(arena.get('device', '0C0FFF')!, { status: 'revoked', revokedAt, reason: 'keyCompromise', invalidityDate })).to.equal(false);
  });

  it('stores, finds and replaces responses per issuer and serial, without keeping the responder certificate in each', async function () {
    const arena = new ResponseArena({ autoCompact: false });
    const a = await signed('0A1B2C');
    const b = await signed('0A1B2C', { status: 'revoked', revokedAt: new Date(1_700_000_000_000), reason: 'keyCompromise' });
    arena.set('device', '0A1B2C', a, identity.epoch, KIND_CACHEABLE, tailId);
    arena.set('station', '0A1B2C', b, identity.epoch, KIND_CACHEABLE, tailId);
    expect(arena.size).to.equal(2);
    expect(entryDer(arena.get('device', '0A1B2C')!).equals(a.der)).to.equal(true);
    expect(entryDer(arena.get('station', '0A1B2C')!).equals(b.der)).to.equal(true);
    expect(arena.get('device', '0a1b2c'), 'hex is read case-insensitively').to.not.equal(undefined);
    expect(arena.get('device', '0A1B2D')).to.equal(undefined);
    expect(arena.get('other', '0A1B2C')).to.equal(undefined);
    expect(arena.get('device', 'not hex')).to.equal(undefined);
    // The certs tail is left out of the stored bytes and given back on the side.
    const entry = arena.get('device', '0A1B2C')!;
    expect(entryTail(entry)!.equals(certsTailFor(identity.responderCertificateDer))).to.equal(true);
    expect(entry.length).to.equal(cachedResponse.HEADER_LENGTH + a.der.length - entryTail(entry)!.length);
    expect(entry[1]).to.equal(identity.epoch);

    arena.set('device', '0A1B2C', b, identity.epoch, KIND_CACHEABLE, tailId);
    expect(arena.size).to.equal(2);
    expect(entryStatus(arena.get('device', '0A1B2C')!).status).to.equal('revoked');
    expect(entryDer(arena.get('device', '0A1B2C')!).equals(b.der)).to.equal(true);
    const stats = arena.stats();
    expect(stats.deadBytes).to.be.greaterThan(0);
    const revokedEntry = arena.get('station', '0A1B2C')!;
    expect(stats.liveBytes, 'prefix + serial + entry, twice').to.equal(2 * (8 + 3 + revokedEntry.length));
    expect(() => arena.set('device', 'XYZ', a, 0, KIND_CACHEABLE)).to.throw(RangeError);
    expect(arena.size).to.equal(2);
  });

  it('keeps a DER that does not end with the identity\'s certs whole, and serials of odd length apart from their zero-padded twins', async function () {
    const arena = new ResponseArena();
    const a = await signed('ABC');
    const b = await signed('0ABC');
    const otherTail = internCertsTail(Buffer.from([0xa0, 0x03, 0x30, 0x01, 0x00]));
    arena.set('device', 'ABC', a, 0, KIND_CACHEABLE, otherTail);
    arena.set('device', '0ABC', b, 0, KIND_CACHEABLE, tailId);
    expect(arena.size).to.equal(2);
    expect(entryTail(arena.get('device', 'ABC')!)).to.equal(undefined);
    expect(entryDer(arena.get('device', 'ABC')!).equals(a.der)).to.equal(true);
    expect(entryDer(arena.get('device', '0ABC')!).equals(b.der)).to.equal(true);
    const seen: string[] = [];
    arena.scan('device', 0, arena.slotCount, (serialHex) => {
      seen.push(serialHex);
    });
    expect(seen.sort()).to.deep.equal(['0ABC', 'ABC']);
  });

  it('grows its chunks and its index to thousands of entries, and every one stays findable', async function () {
    const arena = new ResponseArena({ chunkBytes: 4096, initialSlots: 16, autoCompact: false });
    const r = await signed('01');
    const n = 5000;
    for (let i = 0; i < n; i++) arena.set(i % 2 === 0 ? 'device' : 'station', serialOf(i), { ...r, thisUpdateMs: r.thisUpdateMs + i * 1000 }, 0, KIND_CACHEABLE, tailId);
    expect(arena.size).to.equal(n);
    const stats = arena.stats();
    expect(stats.chunks).to.be.greaterThan(100);
    expect(stats.slots).to.be.at.least(2 * n);
    for (let i = 0; i < n; i++) {
      const e = arena.get(i % 2 === 0 ? 'device' : 'station', serialOf(i));
      expect(e, `entry ${i}`).to.not.equal(undefined);
      expect(cachedResponse.thisUpdateSeconds(e!)).to.equal(Math.floor(r.thisUpdateMs / 1000) + i);
      expect(arena.get(i % 2 === 0 ? 'station' : 'device', serialOf(i))).to.equal(undefined);
    }
    let visited = 0;
    for (let slot = 0; slot >= 0;) slot = arena.scan('station', slot, 100, () => void visited++);
    expect(visited).to.equal(n / 2);
  });

  it('tells apart two serials whose hashes collide, through replacement and deletion', async function () {
    // Birthday search over random 8-byte serials for issuer number 0 (the first issuer a fresh
    // arena sees): ~5 full 32-bit collisions expected in 200,000 draws.
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined && i < 2_000_000; i++) {
      const serial = randomBytes(8);
      serial[0] = 0x40 | (serial[0] & 0x3f);
      const hex = serial.toString('hex').toUpperCase();
      const h = arenaKeyHash(0, serial);
      const other = seen.get(h);
      if (other !== undefined && other !== hex) pair = [other, hex];
      seen.set(h, hex);
    }
    expect(pair, 'a colliding pair').to.not.equal(undefined);
    const [x, y] = pair!;
    const arena = new ResponseArena({ initialSlots: 16 });
    const rx = await signed(x);
    const ry = await signed(y);
    arena.set('device', x, rx, 0, KIND_CACHEABLE, tailId);
    arena.set('device', y, ry, 0, KIND_CACHEABLE, tailId);
    expect(entryDer(arena.get('device', x)!).equals(rx.der)).to.equal(true);
    expect(entryDer(arena.get('device', y)!).equals(ry.der)).to.equal(true);
    arena.set('device', x, ry, 0, KIND_CACHEABLE, tailId); // replace the first: the second is untouched
    expect(arena.size).to.equal(2);
    expect(entryDer(arena.get('device', y)!).equals(ry.der)).to.equal(true);
    expect(arena.delete('device', x)).to.equal(true);
    expect(arena.get('device', x)).to.equal(undefined);
    expect(entryDer(arena.get('device', y)!).equals(ry.der), 'found past the tombstone').to.equal(true);
    expect(arena.delete('device', x)).to.equal(false);
    expect(arena.size).to.equal(1);
  });

  it('compacts in bounded steps: dead bytes go, live entries keep their bytes, views handed out before stay intact', async function () {
    const arena = new ResponseArena({ chunkBytes: 4096, autoCompact: false });
    const good = await signed('02');
    const revoked = await signed('02', { status: 'revoked', revokedAt: new Date(1_700_000_000_000) });
    const n = 600;
    for (let i = 0; i < n; i++) arena.set('device', serialOf(i), good, 0, KIND_CACHEABLE, tailId);
    const before = arena.get('device', serialOf(7))!;
    const beforeBytes = Buffer.from(before);
    // Replace every third: each chunk keeps two live records in three, so nothing is dropped whole.
    for (let i = 0; i < n; i += 3) arena.set('device', serialOf(i), revoked, 0, KIND_CACHEABLE, tailId);
    for (let i = 1; i < n; i += 3) arena.delete('device', serialOf(i));
    expect(arena.needsCompaction).to.equal(true);
    const chunksBefore = arena.stats().chunks;
    let steps = 0;
    while (arena.compactStep()) steps++;
    const after = arena.stats();
    expect(steps).to.be.greaterThan(0);
    expect(after.compactions).to.be.greaterThan(0);
    expect(after.chunks).to.be.lessThan(chunksBefore);
    expect(after.deadBytes).to.be.at.most(after.liveBytes * 0.34 + arena.chunkBytes);
    expect(arena.size).to.equal(n - n / 3);
    for (let i = 0; i < n; i++) {
      const e = arena.get('device', serialOf(i));
      if (i % 3 === 1) expect(e).to.equal(undefined);
      else expect(entryDer(e!).equals((i % 3 === 0 ? revoked : good).der), `entry ${i}`).to.equal(true);
    }
    expect(before.equals(beforeBytes), 'a view from before compaction still holds its bytes').to.equal(true);
  });

  it('compacts by itself after a full refresh, without holding two copies for long', async function () {
    const arena = new ResponseArena({ chunkBytes: 4096 });
    const r1 = await signed('03');
    const r2 = await signed('03', { status: 'unknown' });
    for (let i = 0; i < 300; i++) arena.set('device', serialOf(i), r1, 0, KIND_CACHEABLE, tailId);
    const chunks = arena.stats().chunks;
    for (let i = 0; i < 300; i++) arena.set('device', serialOf(i), r2, 0, KIND_CACHEABLE, tailId);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stats = arena.stats();
    expect(stats.chunks).to.be.at.most(chunks + 1);
    expect(stats.deadBytes).to.be.lessThan(2 * arena.chunkBytes);
    for (let i = 0; i < 300; i++) expect(entryStatus(arena.get('device', serialOf(i))!).status).to.equal('unknown');
    arena.close();
  });

  it('drops every response of a removed issuer and nothing else', async function () {
    const arena = new ResponseArena({ chunkBytes: 4096 });
    const r = await signed('04');
    for (let i = 0; i < 200; i++) arena.set(i < 50 ? 'gone' : 'device', serialOf(i), r, 0, KIND_CACHEABLE, tailId);
    expect(arena.deleteIssuer('gone')).to.equal(50);
    expect(arena.size).to.equal(150);
    expect(arena.get('gone', serialOf(1))).to.equal(undefined);
    expect(arena.get('device', serialOf(199))).to.not.equal(undefined);
    expect(arena.deleteIssuer('never')).to.equal(0);
  });

  it('serves a pre-signed response with exactly the bytes signed and stored, which openssl ocsp -respin verifies', async function () {
    const fx = await openRegistry();
    try {
      await putIssuer(fx.registry, 'device', ca);
      const responder = makeResponder(ca, 'device');
      const good = await recordLeaf(fx.registry, ca, 'device', 'arena-good');
      const revoked = await recordLeaf(fx.registry, ca, 'device', 'arena-revoked');
      await setStatus(fx.registry, revoked, 'revoked');
      const srv = await startListener(fx, [responder]);
      try {
        await srv.responder.waitForSeq(await fx.registry.latestFeedSeq(), 5000);
        await srv.responder.presigned.whenIdle();
        const caPem = writeIn(fx.dir, 'ca.pem', ca.certPem);
        for (const cert of [good, revoked]) {
          const stored = await fx.registry.getOcspResponse('device', serialHexOf(cert));
          expect(stored, 'stored').to.not.equal(undefined);
          const request = encodeOcspRequest([encodeCertId('sha1', ca.nameDer, ca.subjectPublicKey, cert.serial)]);
          const reply = await postOcsp(srv.port, request);
          expect(reply.status).to.equal(200);
          expect(Number(reply.headers['content-length'])).to.equal(reply.body.length);
          expect(reply.body.equals(stored!.der), 'served bytes = signed bytes').to.equal(true);
          const entry = srv.responder.presigned.get('device', serialHexOf(cert))!;
          expect(entryTail(entry), 'the responder certificate is kept once, not in the entry').to.not.equal(undefined);
          const respin = writeIn(fx.dir, `${serialHexOf(cert)}.der`, reply.body);
          const certPem = writeIn(fx.dir, `${serialHexOf(cert)}.pem`, cert.certPem);
          const ran = await run('openssl', ['ocsp', '-respin', respin, '-issuer', caPem, '-cert', certPem, '-CAfile', caPem, '-resp_text']);
          expect(ran.stdout + ran.stderr).to.include('Response verify OK');
          expect(ran.stdout).to.include(cert === good ? ': good' : ': revoked');
        }
      } finally {
        await srv.stop();
      }
    } finally {
      await fx.cleanup();
    }
  });
});
