/**
 * The CMP store port on SQLite (schema step 16): single-row statements, each its own short
 * transaction; "bind once" and "insert unless present" are one statement each, so two processes
 * on the same file cannot both win.
 */
import type Database from 'better-sqlite3';
import type { CmpSecret, CmpStore, CmpTransaction } from '../cmp.js';
import { checkedCmpReference, checkedCmpSecret, checkedCmpTransaction, checkedConfirmation, checkedTransactionId } from '../records/cmp.js';
import { toKakuinError } from './driver-errors.js';

interface SecretRow { reference: string; device_id: string; manufacturer_id: string; issued_by: string; nonce: Buffer; created_at: number; expires_at: number; transaction_id: string | null }
interface TransactionRow {
  transaction_id: string; owner: string; request_sha256: string; response: Buffer; confirm_sha256: string | null; confirm_response: Buffer | null;
  created_at: number; expires_at: number;
}

function secretOf(r: SecretRow): CmpSecret {
  return {
    reference: r.reference, deviceId: r.device_id, manufacturerId: r.manufacturer_id, issuedBy: r.issued_by, nonce: r.nonce, createdAt: new Date(r.created_at), expiresAt: new Date(r.expires_at),
    ...(r.transaction_id !== null && { transactionId: r.transaction_id }),
  };
}

function transactionOf(r: TransactionRow): CmpTransaction {
  return {
    transactionId: r.transaction_id, owner: r.owner, requestSha256: r.request_sha256, responseDer: r.response,
    ...(r.confirm_sha256 !== null && r.confirm_response !== null && { confirmSha256: r.confirm_sha256, confirmResponseDer: r.confirm_response }),
    createdAt: new Date(r.created_at), expiresAt: new Date(r.expires_at),
  };
}

export class SqliteCmpStore implements CmpStore {
  private readonly saveSecret: Database.Transaction<(s: CmpSecret) => void>;
  private readonly getSecret: Database.Statement;
  private readonly bind: Database.Statement;
  private readonly insertTransaction: Database.Statement;
  private readonly getTransaction: Database.Statement;
  private readonly confirm: Database.Statement;
  private readonly prune: Database.Transaction<(now: number) => number>;

  constructor(db: Database.Database) {
    const dropUnused = db.prepare('DELETE FROM cmp_secrets WHERE device_id = ? AND transaction_id IS NULL');
    const insertSecret = db.prepare(`INSERT INTO cmp_secrets (reference, device_id, manufacturer_id, issued_by, nonce, created_at, expires_at, transaction_id)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.saveSecret = db.transaction((s: CmpSecret) => {
      dropUnused.run(s.deviceId);
      insertSecret.run(s.reference, s.deviceId, s.manufacturerId, s.issuedBy, s.nonce, s.createdAt.getTime(), s.expiresAt.getTime(), s.transactionId ?? null);
    });
    this.getSecret = db.prepare('SELECT * FROM cmp_secrets WHERE reference = ?');
    this.bind = db.prepare('UPDATE cmp_secrets SET transaction_id = ? WHERE reference = ? AND (transaction_id IS NULL OR transaction_id = ?)');
    this.insertTransaction = db.prepare(`INSERT INTO cmp_transactions (transaction_id, owner, request_sha256, response, confirm_sha256, confirm_response, created_at, expires_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (transaction_id) DO NOTHING`);
    this.getTransaction = db.prepare('SELECT * FROM cmp_transactions WHERE transaction_id = ?');
    this.confirm = db.prepare('UPDATE cmp_transactions SET confirm_sha256 = ?, confirm_response = ? WHERE transaction_id = ? AND confirm_sha256 IS NULL');
    const pruneSecrets = db.prepare('DELETE FROM cmp_secrets WHERE expires_at < ?');
    const pruneTransactions = db.prepare('DELETE FROM cmp_transactions WHERE expires_at < ?');
    this.prune = db.transaction((now: number) => pruneSecrets.run(now).changes + pruneTransactions.run(now).changes);
  }

  async saveCmpSecret(secret: CmpSecret): Promise<void> {
    const s = checkedCmpSecret(secret);
    try {
      this.saveSecret.immediate(s);
    } catch (e) {
      throw toKakuinError(e, { operation: 'saving a CMP secret' });
    }
  }

  async findCmpSecret(reference: string): Promise<CmpSecret | undefined> {
    const ref = checkedCmpReference(reference);
    try {
      const row = this.getSecret.get(ref) as SecretRow | undefined;
      return row === undefined ? undefined : secretOf(row);
    } catch (e) {
      throw toKakuinError(e, { operation: 'reading a CMP secret' });
    }
  }

  async bindCmpSecret(reference: string, transactionId: string): Promise<boolean> {
    const ref = checkedCmpReference(reference);
    const tx = checkedTransactionId(transactionId);
    try {
      return this.bind.run(tx, ref, tx).changes === 1;
    } catch (e) {
      throw toKakuinError(e, { operation: 'binding a CMP secret' });
    }
  }

  async saveCmpTransaction(transaction: CmpTransaction): Promise<'saved' | CmpTransaction> {
    const t = checkedCmpTransaction(transaction);
    try {
      const changes = this.insertTransaction.run(t.transactionId, t.owner, t.requestSha256, t.responseDer, t.confirmSha256 ?? null, t.confirmResponseDer ?? null,
        t.createdAt.getTime(), t.expiresAt.getTime()).changes;
      if (changes === 1) return 'saved';
      return transactionOf(this.getTransaction.get(t.transactionId) as TransactionRow);
    } catch (e) {
      throw toKakuinError(e, { operation: 'saving a CMP transaction' });
    }
  }

  async findCmpTransaction(transactionId: string): Promise<CmpTransaction | undefined> {
    const tx = checkedTransactionId(transactionId);
    try {
      const row = this.getTransaction.get(tx) as TransactionRow | undefined;
      return row === undefined ? undefined : transactionOf(row);
    } catch (e) {
      throw toKakuinError(e, { operation: 'reading a CMP transaction' });
    }
  }

  async confirmCmpTransaction(transactionId: string, confirmSha256: string, confirmResponseDer: Buffer): Promise<boolean> {
    const tx = checkedTransactionId(transactionId);
    const c = checkedConfirmation(confirmSha256, confirmResponseDer);
    try {
      return this.confirm.run(c.sha256, c.der, tx).changes === 1;
    } catch (e) {
      throw toKakuinError(e, { operation: 'confirming a CMP transaction' });
    }
  }

  async pruneCmp(now: Date): Promise<number> {
    try {
      return this.prune.immediate(now.getTime());
    } catch (e) {
      throw toKakuinError(e, { operation: 'pruning CMP records' });
    }
  }
}
