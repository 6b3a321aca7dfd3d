/**
 * The SCEP store's contract (registry/scep.ts), run on every adapter: one live challenge per
 * device, a challenge used once (a retry of the same transaction excepted), transactions replaced
 * whole, the RA identity written once, and bad input refused without a write.
 */
import { createHash, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { ScepChallenge, ScepStore, ScepTransaction } from '../../registry/scep.js';
import { expectKakuinError } from './registry-fixtures.js';

export type OpenScepStore = () => Promise<{ store: ScepStore; cleanup: () => Promise<void> }>;

const T0 = Date.UTC(2026, 11, 8, 1, 0, 0);
const hmac = (s: string) => createHash('sha256').update(s).digest('hex');

function challenge(deviceId: string, secret: string, c: Partial<ScepChallenge> = {}): ScepChallenge {
  return { hmac: hmac(secret), deviceId, manufacturerId: 'm1', actor: 'station:s1', createdAt: new Date(T0), expiresAt: new Date(T0 + 3_600_000), ...c };
}

function transaction(id: string, t: Partial<ScepTransaction> = {}): ScepTransaction {
  return {
    transactionId: id, deviceId: 'd1', publicKeySha256: hmac('key'), status: 'pending', csrDer: Buffer.from([0x30, 0x00]),
    actor: 'station:s1', manufacturerId: 'm1', createdAt: new Date(T0), updatedAt: new Date(T0), ...t,
  };
}

export function runScepStoreContract(adapterName: string, open: OpenScepStore): void {
  describe(`SCEP store contract: ${adapterName}`, function () {
    let store: ScepStore;
    let cleanup: () => Promise<void>;
    beforeEach(async function () {
      ({ store, cleanup } = await open());
    });
    afterEach(async function () {
      await cleanup();
    });

    it('finds a stored challenge by its HMAC and nothing by another', async function () {
      const d = randomUUID();
      await store.putScepChallenge(challenge(d, 'one'));
      const found = await store.findScepChallenge(hmac('one'));
      expect(found?.deviceId).to.equal(d);
      expect(found?.expiresAt.getTime()).to.equal(T0 + 3_600_000);
      expect(found?.usedAt).to.equal(undefined);
      expect(await store.findScepChallenge(hmac('other'))).to.equal(undefined);
    });

    it('a new challenge for a device retires its unused one, not a used one nor another device\'s', async function () {
      const d = randomUUID();
      const e = randomUUID();
      await store.putScepChallenge(challenge(d, 'first'));
      await store.putScepChallenge(challenge(e, 'other-device'));
      await store.putScepChallenge(challenge(d, 'second'));
      expect(await store.findScepChallenge(hmac('first'))).to.equal(undefined);
      expect(await store.findScepChallenge(hmac('other-device'))).to.not.equal(undefined);
      expect(await store.useScepChallenge(hmac('second'), 'tx-1', new Date(T0 + 1000))).to.equal(true);
      await store.putScepChallenge(challenge(d, 'third'));
      expect((await store.findScepChallenge(hmac('second')))?.transactionId).to.equal('tx-1');
    });

    it('uses a challenge once: the same transaction again is a retry, another transaction is refused', async function () {
      await store.putScepChallenge(challenge(randomUUID(), 'once'));
      expect(await store.useScepChallenge(hmac('once'), 'tx-a', new Date(T0 + 1000))).to.equal(true);
      expect(await store.useScepChallenge(hmac('once'), 'tx-a', new Date(T0 + 2000))).to.equal(true);
      expect(await store.useScepChallenge(hmac('once'), 'tx-b', new Date(T0 + 3000))).to.equal(false);
      const c = await store.findScepChallenge(hmac('once'));
      expect(c?.transactionId).to.equal('tx-a');
      expect(c?.usedAt?.getTime()).to.equal(T0 + 1000);
      expect(await store.useScepChallenge(hmac('never-issued'), 'tx-c', new Date(T0))).to.equal(false);
    });

    it('replaces a transaction whole: pending with its CSR, then issued with its serial', async function () {
      await store.putScepTransaction(transaction('tx-p'));
      const pending = await store.getScepTransaction('tx-p');
      expect(pending?.status).to.equal('pending');
      expect(pending?.csrDer?.equals(Buffer.from([0x30, 0x00]))).to.equal(true);
      await store.putScepTransaction(transaction('tx-p', { status: 'issued', csrDer: undefined, serialHex: '0A1B', updatedAt: new Date(T0 + 5000) }));
      const issued = await store.getScepTransaction('tx-p');
      expect(issued?.status).to.equal('issued');
      expect(issued?.serialHex).to.equal('0A1B');
      expect(issued?.csrDer).to.equal(undefined);
      expect(issued?.updatedAt.getTime()).to.equal(T0 + 5000);
      expect(await store.getScepTransaction('tx-none')).to.equal(undefined);
    });

    it('stores the RA identity once: a second one does not replace the first', async function () {
      expect(await store.getScepRa()).to.equal(undefined);
      const first = await store.putScepRaIfAbsent({ certificateDer: Buffer.from('first'), keyUri: 'file:scep-ra-1', createdAt: new Date(T0) });
      expect(first.keyUri).to.equal('file:scep-ra-1');
      const second = await store.putScepRaIfAbsent({ certificateDer: Buffer.from('second'), keyUri: 'file:scep-ra-2', createdAt: new Date(T0 + 1) });
      expect(second.keyUri).to.equal('file:scep-ra-1');
      expect((await store.getScepRa())?.certificateDer.toString()).to.equal('first');
    });

    it('refuses bad records with KAKUIN_E_VALIDATION and writes nothing', async function () {
      const d = randomUUID();
      await expectKakuinError(store.putScepChallenge(challenge(d, 'bad', { hmac: 'not-hex' })), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.putScepChallenge(challenge(d, 'bad', { expiresAt: new Date(T0 - 1) })), 'KAKUIN_E_VALIDATION');
      expect(await store.findScepChallenge(hmac('bad'))).to.equal(undefined);
      await expectKakuinError(store.putScepTransaction(transaction('tx-bad', { status: 'pending', csrDer: undefined })), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.putScepTransaction(transaction('tx-bad', { status: 'issued', serialHex: undefined })), 'KAKUIN_E_VALIDATION');
      expect(await store.getScepTransaction('tx-bad')).to.equal(undefined);
      await expectKakuinError(store.getScepTransaction(''), 'KAKUIN_E_VALIDATION');
    });
  });
}
