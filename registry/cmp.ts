/**
 * The CMP store port (DESIGN.md "registry/": small consumer-named ports), used by enrollment/cmp
 * only: the one-time MAC secrets stations obtain for devices (RFC 9483 §3.2, PasswordBasedMac) and
 * the CMP transactions in flight, so that a retried message (same transactionID, same bytes) gets the
 * same answer and a reused transactionID with other content is refused (transactionIdInUse).
 *
 * A MAC can only be checked by someone holding the secret, so a secret cannot be stored as a one-way
 * hash the way API keys are. What is stored is a random `nonce`; the secret is HMAC-SHA-256(pepper,
 * nonce) (enrollment/cmp/cmp-secrets.ts), so a copied database without the pepper (kept outside
 * it, DESIGN.md "Secrets") reveals no secret.
 */
export interface CmpSecret {
  /** What the client sends as senderKID (`openssl cmp -ref`). */
  reference: string;
  deviceId: string;
  manufacturerId: string;
  /** Who obtained it (`station:<id>`, `token:<name>`): the actor of what it enrolls, for audit, rate limits and quotas. */
  issuedBy: string;
  /** The secret is derived from it with the pepper; never the secret itself. */
  nonce: Buffer;
  createdAt: Date;
  expiresAt: Date;
  /** The transaction (hex transactionID) that used it: it serves that transaction only, afterwards. */
  transactionId?: string;
}

export interface CmpTransaction {
  /** transactionID, lowercase hex. */
  transactionId: string;
  /** Who started it (`secret:<reference>`, `station:<id>`, `device:<id>`): nobody else continues it. */
  owner: string;
  /** SHA-256 (hex) of the first request's ProtectedPart, and the answer it got. */
  requestSha256: string;
  responseDer: Buffer;
  /** The certConf of the transaction, once answered: its SHA-256 and the pkiConf (or error) sent. */
  confirmSha256?: string;
  confirmResponseDer?: Buffer;
  createdAt: Date;
  expiresAt: Date;
}

export interface CmpStore {
  /** Records a new secret; the device's earlier secrets no transaction has used are dropped. */
  saveCmpSecret(secret: CmpSecret): Promise<void>;
  findCmpSecret(reference: string): Promise<CmpSecret | undefined>;
  /**
   * Binds an unused secret to a transaction, atomically: true when it was unused (now bound) or is
   * already bound to that transaction; false when another transaction used it.
   */
  bindCmpSecret(reference: string, transactionId: string): Promise<boolean>;
  /** Records a transaction unless one with that id exists: 'saved', or the existing one. */
  saveCmpTransaction(transaction: CmpTransaction): Promise<'saved' | CmpTransaction>;
  findCmpTransaction(transactionId: string): Promise<CmpTransaction | undefined>;
  /** Records the certConf answer of a transaction (first one wins: false when one was recorded). */
  confirmCmpTransaction(transactionId: string, confirmSha256: string, confirmResponseDer: Buffer): Promise<boolean>;
  /** Drops secrets and transactions that expired before `now`; returns how many rows went. */
  pruneCmp(now: Date): Promise<number>;
}
