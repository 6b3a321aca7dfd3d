/**
 * The SCEP store (DESIGN.md "registry/": small consumer-named ports), used by enrollment/scep/
 * only: the one-time challenge passwords stations issue per device, the SCEP transactions (so a
 * retried PKCSReq with the same transactionID gets the same answer, and CertPoll finds a pending
 * request), and the RA certificate SCEP clients encrypt to. Kept apart from the Registry port.
 *
 * A challenge is stored as the HMAC of the password (DESIGN.md "Secrets": a server-generated
 * secret of 128 bits or more), never the password itself.
 */
export interface ScepChallenge {
  /** HMAC-SHA-256 of the password under the pepper, hex. */
  hmac: string;
  deviceId: string;
  manufacturerId: string;
  /** Who issued it: `station:<id>` or `token:<name>`; the enrollment runs as this actor. */
  actor: string;
  createdAt: Date;
  expiresAt: Date;
  /** When a PKCSReq used it, and with which transactionID. */
  usedAt?: Date;
  transactionId?: string;
}

export type ScepTransactionStatus = 'pending' | 'issued';

export interface ScepTransaction {
  transactionId: string;
  deviceId: string;
  /** SHA-256 of the requested SubjectPublicKeyInfo, hex: a transactionID belongs to one key. */
  publicKeySha256: string;
  status: ScepTransactionStatus;
  /** The request's PKCS#10, kept while pending (CertPoll issues from it). */
  csrDer?: Buffer;
  /** The actor and manufacturer the enrollment runs as. */
  actor: string;
  manufacturerId: string;
  /** The issued certificate's serial, once issued. */
  serialHex?: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface ScepRaIdentity {
  certificateDer: Buffer;
  keyUri: string;
  createdAt: Date;
}

export interface ScepStore {
  /** Stores a new challenge; the device's earlier unused challenges stop working (one live challenge per device). */
  putScepChallenge(challenge: ScepChallenge): Promise<void>;
  findScepChallenge(hmac: string): Promise<ScepChallenge | undefined>;
  /**
   * Marks the challenge used by `transactionId` if it is unused (or already used by that same
   * transaction: a retry); false when another transaction used it first.
   */
  useScepChallenge(hmac: string, transactionId: string, at: Date): Promise<boolean>;
  /** Inserts or replaces the transaction. */
  putScepTransaction(transaction: ScepTransaction): Promise<void>;
  getScepTransaction(transactionId: string): Promise<ScepTransaction | undefined>;
  /** The RA certificate and its key URI; undefined before the first SCEP request made one. */
  getScepRa(): Promise<ScepRaIdentity | undefined>;
  /** Stores the RA identity unless one exists; returns the one stored (another process may have won). */
  putScepRaIfAbsent(ra: ScepRaIdentity): Promise<ScepRaIdentity>;
}
