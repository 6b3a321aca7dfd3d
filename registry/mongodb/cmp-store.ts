/**
 * The CMP store port on MongoDB (registry/cmp.ts): one document per secret (`_id` the reference)
 * and per transaction (`_id` the hex transactionID). "Bind once", "insert unless present" and
 * "confirm once" are single-document conditional updates, atomic on their own.
 */
import { KakuinError } from '../../errors/index.js';
import type { CmpSecret, CmpStore, CmpTransaction } from '../cmp.js';
import { checkedCmpReference, checkedCmpSecret, checkedCmpTransaction, checkedConfirmation, checkedTransactionId } from '../records/cmp.js';
import { COLLECTIONS, toBuffer } from './documents.js';
import type { RegistryPlumbing } from './plumbing.js';
import type { Binary } from 'mongodb';

interface SecretDoc { _id: string; deviceId: string; manufacturerId: string; issuedBy: string; nonce: Buffer | Binary; createdAt: Date; expiresAt: Date; transactionId: string | null }
interface TransactionDoc {
  _id: string; owner: string; requestSha256: string; responseDer: Buffer | Binary; confirmSha256: string | null; confirmResponseDer: Buffer | Binary | null;
  createdAt: Date; expiresAt: Date;
}

function secretOf(d: SecretDoc): CmpSecret {
  return {
    reference: d._id, deviceId: d.deviceId, manufacturerId: d.manufacturerId, issuedBy: d.issuedBy, nonce: toBuffer(d.nonce), createdAt: d.createdAt, expiresAt: d.expiresAt,
    ...(d.transactionId !== null && d.transactionId !== undefined && { transactionId: d.transactionId }),
  };
}

function transactionOf(d: TransactionDoc): CmpTransaction {
  return {
    transactionId: d._id, owner: d.owner, requestSha256: d.requestSha256, responseDer: toBuffer(d.responseDer),
    ...(d.confirmSha256 && d.confirmResponseDer && { confirmSha256: d.confirmSha256, confirmResponseDer: toBuffer(d.confirmResponseDer) }),
    createdAt: d.createdAt, expiresAt: d.expiresAt,
  };
}

export class MongoCmpStore implements CmpStore {
  constructor(private readonly p: RegistryPlumbing) {}

  private secrets() {
    return this.p.col<SecretDoc>(COLLECTIONS.cmpSecrets);
  }

  private transactions() {
    return this.p.col<TransactionDoc>(COLLECTIONS.cmpTransactions);
  }

  async saveCmpSecret(secret: CmpSecret): Promise<void> {
    const s = checkedCmpSecret(secret);
    await this.p.transaction('saving a CMP secret', async (session) => {
      await this.secrets().deleteMany({ deviceId: s.deviceId, transactionId: null }, { session });
      await this.secrets().insertOne({
        _id: s.reference, deviceId: s.deviceId, manufacturerId: s.manufacturerId, issuedBy: s.issuedBy, nonce: s.nonce, createdAt: s.createdAt, expiresAt: s.expiresAt,
        transactionId: s.transactionId ?? null,
      }, { session });
    });
  }

  async findCmpSecret(reference: string): Promise<CmpSecret | undefined> {
    const ref = checkedCmpReference(reference);
    const doc = await this.p.read('reading a CMP secret', () => this.secrets().findOne({ _id: ref }));
    return doc === null ? undefined : secretOf(doc as SecretDoc);
  }

  async bindCmpSecret(reference: string, transactionId: string): Promise<boolean> {
    const ref = checkedCmpReference(reference);
    const tx = checkedTransactionId(transactionId);
    return this.p.write('binding a CMP secret', async () => {
      const unused = await this.secrets().updateOne({ _id: ref, transactionId: null }, { $set: { transactionId: tx } });
      if (unused.matchedCount === 1) return true;
      return (await this.secrets().findOne({ _id: ref, transactionId: tx }, { projection: { _id: 1 } })) !== null;
    });
  }

  async saveCmpTransaction(transaction: CmpTransaction): Promise<'saved' | CmpTransaction> {
    const t = checkedCmpTransaction(transaction);
    return this.p.write('saving a CMP transaction', async () => {
      const r = await this.transactions().updateOne({ _id: t.transactionId }, {
        $setOnInsert: {
          owner: t.owner, requestSha256: t.requestSha256, responseDer: t.responseDer, confirmSha256: t.confirmSha256 ?? null,
          confirmResponseDer: t.confirmResponseDer ?? null, createdAt: t.createdAt, expiresAt: t.expiresAt,
        },
      }, { upsert: true });
      if (r.upsertedCount === 1) return 'saved' as const;
      const existing = await this.transactions().findOne({ _id: t.transactionId });
      if (existing === null) throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', 'the CMP transaction vanished while it was saved');
      return transactionOf(existing as TransactionDoc);
    });
  }

  async findCmpTransaction(transactionId: string): Promise<CmpTransaction | undefined> {
    const tx = checkedTransactionId(transactionId);
    const doc = await this.p.read('reading a CMP transaction', () => this.transactions().findOne({ _id: tx }));
    return doc === null ? undefined : transactionOf(doc as TransactionDoc);
  }

  async confirmCmpTransaction(transactionId: string, confirmSha256: string, confirmResponseDer: Buffer): Promise<boolean> {
    const tx = checkedTransactionId(transactionId);
    const c = checkedConfirmation(confirmSha256, confirmResponseDer);
    return this.p.write('confirming a CMP transaction', async () => {
      const r = await this.transactions().updateOne({ _id: tx, confirmSha256: null }, { $set: { confirmSha256: c.sha256, confirmResponseDer: c.der } });
      return r.matchedCount === 1;
    });
  }

  async pruneCmp(now: Date): Promise<number> {
    return this.p.write('pruning CMP records', async () => {
      const a = await this.secrets().deleteMany({ expiresAt: { $lt: now } });
      const b = await this.transactions().deleteMany({ expiresAt: { $lt: now } });
      return a.deletedCount + b.deletedCount;
    });
  }
}
