/**
 * The SCEP store (registry/scep.ts) on MongoDB: a challenge is a document keyed by its HMAC, a
 * transaction by its transactionID, the RA identity one document `ra`. Using a challenge is one
 * conditional update (unused, or used by the same transaction), atomic on its own.
 */
import type { Binary } from 'mongodb';
import { checkChallengeHmac, checkScepChallenge, checkScepRa, checkScepTransaction, checkTransactionId } from '../records/scep.js';
import type { ScepChallenge, ScepRaIdentity, ScepStore, ScepTransaction, ScepTransactionStatus } from '../scep.js';
import { COLLECTIONS, toBuffer } from './documents.js';
import type { RegistryPlumbing } from './plumbing.js';

interface ChallengeDoc { _id: string; deviceId: string; manufacturerId: string; actor: string; createdAt: Date; expiresAt: Date; usedAt?: Date; transactionId?: string }
interface TransactionDoc {
  _id: string; deviceId: string; publicKeySha256: string; status: ScepTransactionStatus; csrDer?: Buffer | Binary;
  actor: string; manufacturerId: string; serialHex?: string; createdAt: Date; updatedAt: Date;
}
interface RaDoc { _id: string; certificateDer: Buffer | Binary; keyUri: string; createdAt: Date }

export class MongoScepStore implements ScepStore {
  constructor(private readonly p: RegistryPlumbing) {}

  async putScepChallenge(c: ScepChallenge): Promise<void> {
    checkScepChallenge(c);
    await this.p.transaction('storing a SCEP challenge', async (session) => {
      const col = this.p.col<ChallengeDoc>(COLLECTIONS.scepChallenges);
      // One live challenge per device: issuing a new one retires the unused ones.
      await col.deleteMany({ deviceId: c.deviceId, usedAt: { $exists: false } }, { session });
      await col.insertOne({
        _id: c.hmac, deviceId: c.deviceId, manufacturerId: c.manufacturerId, actor: c.actor, createdAt: c.createdAt, expiresAt: c.expiresAt,
        ...(c.usedAt !== undefined && { usedAt: c.usedAt }), ...(c.transactionId !== undefined && { transactionId: c.transactionId }),
      }, { session });
    });
  }

  async findScepChallenge(hmac: string): Promise<ScepChallenge | undefined> {
    checkChallengeHmac(hmac);
    return this.p.read('reading a SCEP challenge', async () => {
      const d = await this.p.col<ChallengeDoc>(COLLECTIONS.scepChallenges).findOne({ _id: hmac });
      if (d === null) return undefined;
      return {
        hmac: d._id, deviceId: d.deviceId, manufacturerId: d.manufacturerId, actor: d.actor, createdAt: d.createdAt, expiresAt: d.expiresAt,
        ...(d.usedAt !== undefined && { usedAt: d.usedAt }), ...(d.transactionId !== undefined && { transactionId: d.transactionId }),
      };
    });
  }

  async useScepChallenge(hmac: string, transactionId: string, at: Date): Promise<boolean> {
    checkChallengeHmac(hmac);
    checkTransactionId(transactionId);
    return this.p.write('using a SCEP challenge', async () => {
      const col = this.p.col<ChallengeDoc>(COLLECTIONS.scepChallenges);
      const r = await col.updateOne({ _id: hmac, transactionId: { $exists: false } }, { $set: { usedAt: at, transactionId } });
      if (r.matchedCount === 1) return true;
      const d = await col.findOne({ _id: hmac });
      return d !== null && d.transactionId === transactionId;
    });
  }

  async putScepTransaction(t: ScepTransaction): Promise<void> {
    checkScepTransaction(t);
    await this.p.write('storing a SCEP transaction', async () => {
      await this.p.col<TransactionDoc>(COLLECTIONS.scepTransactions).replaceOne({ _id: t.transactionId }, {
        deviceId: t.deviceId, publicKeySha256: t.publicKeySha256, status: t.status, ...(t.csrDer !== undefined && { csrDer: t.csrDer }),
        actor: t.actor, manufacturerId: t.manufacturerId, ...(t.serialHex !== undefined && { serialHex: t.serialHex }), createdAt: t.createdAt, updatedAt: t.updatedAt,
      }, { upsert: true });
    });
  }

  async getScepTransaction(transactionId: string): Promise<ScepTransaction | undefined> {
    checkTransactionId(transactionId);
    return this.p.read('reading a SCEP transaction', async () => {
      const d = await this.p.col<TransactionDoc>(COLLECTIONS.scepTransactions).findOne({ _id: transactionId });
      if (d === null) return undefined;
      return {
        transactionId: d._id, deviceId: d.deviceId, publicKeySha256: d.publicKeySha256, status: d.status,
        ...(d.csrDer !== undefined && d.csrDer !== null && { csrDer: toBuffer(d.csrDer) }), actor: d.actor, manufacturerId: d.manufacturerId,
        ...(d.serialHex !== undefined && { serialHex: d.serialHex }), createdAt: d.createdAt, updatedAt: d.updatedAt,
      };
    });
  }

  async getScepRa(): Promise<ScepRaIdentity | undefined> {
    return this.p.read('reading the SCEP RA certificate', async () => {
      const d = await this.p.col<RaDoc>(COLLECTIONS.scepRa).findOne({ _id: 'ra' });
      return d === null ? undefined : { certificateDer: toBuffer(d.certificateDer), keyUri: d.keyUri, createdAt: d.createdAt };
    });
  }

  async putScepRaIfAbsent(ra: ScepRaIdentity): Promise<ScepRaIdentity> {
    checkScepRa(ra);
    await this.p.write('storing the SCEP RA certificate', async () => {
      await this.p.col<RaDoc>(COLLECTIONS.scepRa).updateOne({ _id: 'ra' },
        { $setOnInsert: { certificateDer: ra.certificateDer, keyUri: ra.keyUri, createdAt: ra.createdAt } }, { upsert: true });
    });
    return (await this.getScepRa())!;
  }
}
