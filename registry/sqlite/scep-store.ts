/** The SCEP store (registry/scep.ts) on SQLite (schema step 17): single-row statements, each its own short write. */
import type Database from 'better-sqlite3';
import { checkChallengeHmac, checkScepChallenge, checkScepRa, checkScepTransaction, checkTransactionId } from '../records/scep.js';
import type { ScepChallenge, ScepRaIdentity, ScepStore, ScepTransaction } from '../scep.js';
import { toKakuinError } from './driver-errors.js';

interface ChallengeRow { hmac: string; device_id: string; manufacturer_id: string; actor: string; created_at: number; expires_at: number; used_at: number | null; transaction_id: string | null }
interface TransactionRow {
  transaction_id: string; device_id: string; public_key_sha256: string; status: 'pending' | 'issued'; csr_der: Buffer | null;
  actor: string; manufacturer_id: string; serial_hex: string | null; created_at: number; updated_at: number;
}

function challengeOf(r: ChallengeRow): ScepChallenge {
  return {
    hmac: r.hmac, deviceId: r.device_id, manufacturerId: r.manufacturer_id, actor: r.actor, createdAt: new Date(r.created_at), expiresAt: new Date(r.expires_at),
    ...(r.used_at !== null && { usedAt: new Date(r.used_at) }), ...(r.transaction_id !== null && { transactionId: r.transaction_id }),
  };
}

function transactionOf(r: TransactionRow): ScepTransaction {
  return {
    transactionId: r.transaction_id, deviceId: r.device_id, publicKeySha256: r.public_key_sha256, status: r.status,
    ...(r.csr_der !== null && { csrDer: r.csr_der }), actor: r.actor, manufacturerId: r.manufacturer_id,
    ...(r.serial_hex !== null && { serialHex: r.serial_hex }), createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at),
  };
}

export class SqliteScepStore implements ScepStore {
  private readonly retire: Database.Statement;
  private readonly insertChallenge: Database.Statement;
  private readonly putChallenge: Database.Transaction<(c: ScepChallenge) => void>;
  private readonly findChallenge: Database.Statement;
  private readonly use: Database.Statement;
  private readonly putTransaction: Database.Statement;
  private readonly getTransaction: Database.Statement;
  private readonly getRa: Database.Statement;
  private readonly insertRa: Database.Statement;

  constructor(db: Database.Database) {
    // One live challenge per device: issuing a new one retires the unused ones.
    this.retire = db.prepare('DELETE FROM scep_challenges WHERE device_id = ? AND used_at IS NULL');
    this.insertChallenge = db.prepare(`INSERT INTO scep_challenges (hmac, device_id, manufacturer_id, actor, created_at, expires_at, used_at, transaction_id)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.putChallenge = db.transaction((c: ScepChallenge) => {
      this.retire.run(c.deviceId);
      this.insertChallenge.run(c.hmac, c.deviceId, c.manufacturerId, c.actor, c.createdAt.getTime(), c.expiresAt.getTime(), c.usedAt?.getTime() ?? null, c.transactionId ?? null);
    });
    this.findChallenge = db.prepare('SELECT * FROM scep_challenges WHERE hmac = ?');
    this.use = db.prepare(`UPDATE scep_challenges SET used_at = coalesce(used_at, ?), transaction_id = ?
      WHERE hmac = ? AND (transaction_id IS NULL OR transaction_id = ?)`);
    this.putTransaction = db.prepare(`INSERT OR REPLACE INTO scep_transactions
      (transaction_id, device_id, public_key_sha256, status, csr_der, actor, manufacturer_id, serial_hex, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.getTransaction = db.prepare('SELECT * FROM scep_transactions WHERE transaction_id = ?');
    this.getRa = db.prepare('SELECT certificate_der, key_uri, created_at FROM scep_ra WHERE id = 1');
    this.insertRa = db.prepare('INSERT OR IGNORE INTO scep_ra (id, certificate_der, key_uri, created_at) VALUES (1, ?, ?, ?)');
  }

  async putScepChallenge(challenge: ScepChallenge): Promise<void> {
    checkScepChallenge(challenge);
    try {
      this.putChallenge(challenge);
    } catch (e) {
      throw toKakuinError(e, { operation: 'storing a SCEP challenge' });
    }
  }

  async findScepChallenge(hmac: string): Promise<ScepChallenge | undefined> {
    checkChallengeHmac(hmac);
    try {
      const row = this.findChallenge.get(hmac) as ChallengeRow | undefined;
      return row && challengeOf(row);
    } catch (e) {
      throw toKakuinError(e, { operation: 'reading a SCEP challenge' });
    }
  }

  async useScepChallenge(hmac: string, transactionId: string, at: Date): Promise<boolean> {
    checkChallengeHmac(hmac);
    checkTransactionId(transactionId);
    try {
      return this.use.run(at.getTime(), transactionId, hmac, transactionId).changes === 1;
    } catch (e) {
      throw toKakuinError(e, { operation: 'using a SCEP challenge' });
    }
  }

  async putScepTransaction(t: ScepTransaction): Promise<void> {
    checkScepTransaction(t);
    try {
      this.putTransaction.run(t.transactionId, t.deviceId, t.publicKeySha256, t.status, t.csrDer ?? null, t.actor, t.manufacturerId, t.serialHex ?? null, t.createdAt.getTime(), t.updatedAt.getTime());
    } catch (e) {
      throw toKakuinError(e, { operation: 'storing a SCEP transaction' });
    }
  }

  async getScepTransaction(transactionId: string): Promise<ScepTransaction | undefined> {
    checkTransactionId(transactionId);
    try {
      const row = this.getTransaction.get(transactionId) as TransactionRow | undefined;
      return row && transactionOf(row);
    } catch (e) {
      throw toKakuinError(e, { operation: 'reading a SCEP transaction' });
    }
  }

  async getScepRa(): Promise<ScepRaIdentity | undefined> {
    try {
      const row = this.getRa.get() as { certificate_der: Buffer; key_uri: string; created_at: number } | undefined;
      return row && { certificateDer: row.certificate_der, keyUri: row.key_uri, createdAt: new Date(row.created_at) };
    } catch (e) {
      throw toKakuinError(e, { operation: 'reading the SCEP RA certificate' });
    }
  }

  async putScepRaIfAbsent(ra: ScepRaIdentity): Promise<ScepRaIdentity> {
    checkScepRa(ra);
    try {
      this.insertRa.run(ra.certificateDer, ra.keyUri, ra.createdAt.getTime());
    } catch (e) {
      throw toKakuinError(e, { operation: 'storing the SCEP RA certificate' });
    }
    return (await this.getScepRa())!;
  }
}
