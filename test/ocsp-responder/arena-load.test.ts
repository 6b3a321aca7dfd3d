/**
 * Loading stored responses into the arena at start (ocsp-responder/stored-response.ts): the short
 * walk that recognises this responder's own good/unknown responses must accept exactly what the
 * full parse accepts, with the same status and times; the ETag of a loaded entry, taken at its
 * first GET, is the SHA-1 of the whole DER.
 */
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { cachedResponse, prepareIdentity, type PreparedIdentity, ResponseArena, ResponseSigner } from '../../ocsp-responder/index.js';
import { usableStoredResponse } from '../../ocsp-responder/stored-response.js';
import type { OcspCertStatus } from '../../pkix/index.js';
import type { StoredOcspResponse } from '../../registry/port.js';
import { makeCa, makeResponder } from './fixtures.js';

describe('ocsp-responder: stored responses loaded into the arena', function () {
  this.timeout(30_000);
  const ca = makeCa('p256', 'Load CA');
  const identity: PreparedIdentity = prepareIdentity(makeResponder(ca, 'device').identity, 0);
  const other: PreparedIdentity = prepareIdentity(makeResponder(ca, 'device', 'another responder').identity, 0);
  const signer = new ResponseSigner();

  async function stored(serialHex: string, status: OcspCertStatus, by = identity): Promise<StoredOcspResponse> {
    const [r] = await signer.signEach(by, [{ serialHex, status }]);
    return { issuerId: 'device', serialHex, der: r.der, thisUpdate: new Date(r.thisUpdateMs), nextUpdate: new Date(r.nextUpdateMs) };
  }

  const revokedAt = new Date(1_700_000_000_000);
  const cases: [string, OcspCertStatus][] = [
    ['good', { status: 'good' }],
    ['unknown', { status: 'unknown' }],
    ['revoked with a reason', { status: 'revoked', revokedAt, reason: 'keyCompromise' }],
    ['revoked without a reason', { status: 'revoked', revokedAt }],
  ];
  for (const [name, status] of cases) {
    it(`reads a ${name} response back with its status, serial and window`, async function () {
      const row = await stored('7F01AB', status);
      const usable = usableStoredResponse(row, identity, Date.now());
      expect(usable).to.not.equal(undefined);
      expect(usable!.serialHex).to.equal('7F01AB');
      expect(usable!.response.status).to.deep.equal(status);
      expect(usable!.response.thisUpdateMs).to.equal(row.thisUpdate.getTime());
      expect(usable!.response.nextUpdateMs).to.equal(row.nextUpdate.getTime());
      expect(usable!.response.der.equals(row.der)).to.equal(true);
    });
  }

  it('refuses a response by another responder, for another serial, past nextUpdate, or with a nonce', async function () {
    expect(usableStoredResponse(await stored('7F02', { status: 'good' }, other), identity, Date.now())).to.equal(undefined);
    const row = await stored('7F03', { status: 'good' });
    expect(usableStoredResponse({ ...row, serialHex: '7F04' }, identity, Date.now())).to.equal(undefined);
    expect(usableStoredResponse(row, identity, row.nextUpdate.getTime())).to.equal(undefined);
    expect(usableStoredResponse(row, identity, row.nextUpdate.getTime() - 1000)).to.not.equal(undefined);
    const withNonce = await signer.sign(identity, [{ certIdDer: signer.presignedCertId(identity, '7F05'), status: { status: 'good' } }], { nonce: Buffer.alloc(16, 7) });
    expect(usableStoredResponse({ ...row, serialHex: '7F05', der: withNonce.der }, identity, Date.now())).to.equal(undefined);
    expect(usableStoredResponse({ ...row, der: Buffer.from('3003', 'hex') }, identity, Date.now())).to.equal(undefined);
  });

  it('trusts the DER, not the row, when the row\'s times disagree with it', async function () {
    const row = await stored('7F06', { status: 'good' });
    const shifted = { ...row, thisUpdate: new Date(row.thisUpdate.getTime() + 5000), nextUpdate: new Date(row.nextUpdate.getTime() + 5000) };
    const usable = usableStoredResponse(shifted, identity, Date.now());
    expect(usable!.response.thisUpdateMs).to.equal(row.thisUpdate.getTime());
    expect(usable!.response.nextUpdateMs).to.equal(row.nextUpdate.getTime());
  });

  it('gives a loaded entry the ETag of the whole DER, computed at its first use', async function () {
    const row = await stored('7F07', { status: 'good' });
    const usable = usableStoredResponse(row, identity, Date.now())!;
    const arena = new ResponseArena();
    const tailId = cachedResponse.internCertsTail(cachedResponse.certsTailFor(identity.responderCertificateDer));
    arena.set('device', usable.serialHex, usable.response, 0, cachedResponse.KIND_CACHEABLE, tailId, true);
    const expected = `"${createHash('sha1').update(row.der).digest('hex')}"`;
    expect(arena.get('device', '7F07')!.subarray(16, 36).equals(Buffer.alloc(20)), 'not computed at load').to.equal(true);
    expect(cachedResponse.entryEtag(arena.get('device', '7F07')!)).to.equal(expected);
    expect(arena.get('device', '7F07')!.toString('hex', 16, 36), 'kept in the arena').to.equal(expected.slice(1, -1));
    expect(cachedResponse.entryEtag(arena.get('device', '7F07')!)).to.equal(expected);
  });
});
