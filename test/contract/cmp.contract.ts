/**
 * The CMP store port's contract (registry/cmp.ts), run on every adapter: a new secret replaces the
 * device's unused one, a secret binds to one transaction only, a transactionID is recorded once
 * (the first wins, the second sees it), a certConf answer is recorded once, expired rows are
 * pruned, and bad input changes nothing.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { CmpSecret, CmpStore, CmpTransaction } from '../../registry/cmp.js';
import { expectKakuinError } from './registry-fixtures.js';

export type OpenCmpStore = () => Promise<{ store: CmpStore; cleanup: () => Promise<void> }>;

const T0 = Date.UTC(2026, 11, 8, 1, 0, 0);
const hex = (n: number) => randomBytes(n).toString('hex');

function secret(deviceId: string, over: Partial<CmpSecret> = {}): CmpSecret {
  return { reference: `cmp-${hex(8)}`, deviceId, manufacturerId: 'm1', issuedBy: 'station:s1', nonce: randomBytes(16), createdAt: new Date(T0), expiresAt: new Date(T0 + 3_600_000), ...over };
}

function transaction(over: Partial<CmpTransaction> = {}): CmpTransaction {
  return { transactionId: hex(16), owner: 'secret:r1', requestSha256: hex(32), responseDer: randomBytes(40), createdAt: new Date(T0), expiresAt: new Date(T0 + 3_600_000), ...over };
}

export function runCmpContract(adapterName: string, open: OpenCmpStore): void {
  describe(`cmp store contract: ${adapterName}`, function () {
    let store: CmpStore;
    let cleanup: () => Promise<void>;
    beforeEach(async function () {
      ({ store, cleanup } = await open());
    });
    afterEach(async function () {
      await cleanup();
    });

    it('returns a saved secret by its reference, nonce and times intact', async function () {
      const s = secret(randomUUID());
      await store.saveCmpSecret(s);
      const found = await store.findCmpSecret(s.reference);
      expect(found).to.deep.equal(s);
      expect(await store.findCmpSecret('cmp-unknown')).to.equal(undefined);
    });

    it('a new secret for a device drops its unused earlier one but keeps one a transaction used', async function () {
      const d = randomUUID();
      const used = secret(d);
      const unused = secret(d);
      await store.saveCmpSecret(used);
      expect(await store.bindCmpSecret(used.reference, 'aa01')).to.equal(true);
      await store.saveCmpSecret(unused);
      const latest = secret(d);
      await store.saveCmpSecret(latest);
      expect(await store.findCmpSecret(unused.reference)).to.equal(undefined);
      expect((await store.findCmpSecret(used.reference))?.transactionId).to.equal('aa01');
      expect(await store.findCmpSecret(latest.reference)).to.not.equal(undefined);
    });

    it('binds a secret to one transaction: the same one again is fine, another is refused', async function () {
      const s = secret(randomUUID());
      await store.saveCmpSecret(s);
      expect(await store.bindCmpSecret(s.reference, 'bb02')).to.equal(true);
      expect(await store.bindCmpSecret(s.reference, 'bb02')).to.equal(true);
      expect(await store.bindCmpSecret(s.reference, 'cc03')).to.equal(false);
      expect((await store.findCmpSecret(s.reference))?.transactionId).to.equal('bb02');
      expect(await store.bindCmpSecret('cmp-unknown', 'bb02')).to.equal(false);
    });

    it('records a transactionID once: the second save gets the first record back', async function () {
      const first = transaction();
      expect(await store.saveCmpTransaction(first)).to.equal('saved');
      const again = await store.saveCmpTransaction({ ...first, requestSha256: hex(32), responseDer: randomBytes(10) });
      expect(again).to.deep.equal(first);
      expect(await store.findCmpTransaction(first.transactionId)).to.deep.equal(first);
      expect(await store.findCmpTransaction(hex(16))).to.equal(undefined);
    });

    it('records the certConf answer of a transaction once', async function () {
      const t = transaction();
      await store.saveCmpTransaction(t);
      const sha = hex(32);
      const answer = randomBytes(20);
      expect(await store.confirmCmpTransaction(t.transactionId, sha, answer)).to.equal(true);
      expect(await store.confirmCmpTransaction(t.transactionId, hex(32), randomBytes(20))).to.equal(false);
      const found = await store.findCmpTransaction(t.transactionId);
      expect(found?.confirmSha256).to.equal(sha);
      expect(found?.confirmResponseDer?.equals(answer)).to.equal(true);
    });

    it('prunes secrets and transactions that expired, and only those', async function () {
      const old = secret(randomUUID(), { expiresAt: new Date(T0 + 1000) });
      const live = secret(randomUUID());
      const oldTx = transaction({ expiresAt: new Date(T0 + 1000) });
      const liveTx = transaction();
      await store.saveCmpSecret(old);
      await store.saveCmpSecret(live);
      await store.saveCmpTransaction(oldTx);
      await store.saveCmpTransaction(liveTx);
      expect(await store.pruneCmp(new Date(T0 + 60_000))).to.equal(2);
      expect(await store.findCmpSecret(old.reference)).to.equal(undefined);
      expect(await store.findCmpSecret(live.reference)).to.not.equal(undefined);
      expect(await store.findCmpTransaction(oldTx.transactionId)).to.equal(undefined);
      expect(await store.findCmpTransaction(liveTx.transactionId)).to.not.equal(undefined);
    });

    it('refuses bad input with KAKUIN_E_VALIDATION and records nothing', async function () {
      const d = randomUUID();
      await expectKakuinError(store.saveCmpSecret(secret(d, { expiresAt: new Date(T0 - 1) })), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.saveCmpSecret(secret(d, { nonce: Buffer.alloc(0) })), 'KAKUIN_E_VALIDATION');
      const bad = transaction({ transactionId: 'not hex' });
      await expectKakuinError(store.saveCmpTransaction(bad), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.saveCmpTransaction(transaction({ requestSha256: 'x' })), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.bindCmpSecret('cmp-x', 'XYZ'), 'KAKUIN_E_VALIDATION');
      expect(await store.pruneCmp(new Date(T0 + 10 * 3_600_000))).to.equal(0);
    });
  });
}
