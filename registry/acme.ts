/**
 * The ACME store port (DESIGN.md "registry/": small consumer-named ports): what enrollment/acme
 * keeps of RFC 8555's objects — external account binding keys, accounts, orders and
 * authorizations (each with its challenges) — so that certbot or lego can poll an order from any
 * process serving the management API. Kept apart from the Registry port: only the writing process
 * that serves ACME needs it.
 *
 * Secrets: an EAB key record holds no key material at all. The HMAC key is derived from the
 * pepper kept outside the database (enrollment/acme/eab.ts), so a copied database reveals nothing.
 *
 * Adapter-neutral rules (input checks, the status machine) live in enrollment/acme and
 * registry/records/acme.ts; the adapters store and compare.
 */

export type AcmeAccountStatus = 'valid' | 'deactivated' | 'revoked';
export type AcmeOrderStatus = 'pending' | 'ready' | 'processing' | 'valid' | 'invalid';
export type AcmeAuthorizationStatus = 'pending' | 'valid' | 'invalid' | 'deactivated' | 'expired' | 'revoked';
export type AcmeChallengeStatus = 'pending' | 'processing' | 'valid' | 'invalid';
export type AcmeChallengeType = 'http-01' | 'tls-alpn-01' | 'dns-01';

/** An RFC 7807 problem as ACME carries it (RFC 8555 §6.7), stored with a failed challenge or order. */
export interface AcmeProblem {
  type: string;
  detail: string;
  status?: number;
}

export interface AcmeEabKey {
  /** The key id operators pass as `--eab-kid`; random, URL-safe. */
  kid: string;
  /** Name patterns the accounts bound by this key may get (`broker-*.example.internal`). */
  names: string[];
  createdAt: Date;
  revokedAt?: Date;
  /** The account that used it (one key binds one account, RFC 8555 §7.3.4 leaves it to the server). */
  accountId?: string;
  createdBy: string;
}

export interface AcmeAccount {
  id: string;
  status: AcmeAccountStatus;
  /** The account's public key as a JWK (RFC 7517), compact JSON. */
  jwk: string;
  /** RFC 7638 SHA-256 thumbprint of `jwk`, base64url: unique across accounts. */
  thumbprint: string;
  contact: string[];
  eabKid: string;
  createdAt: Date;
}

export interface AcmeIdentifier {
  type: 'dns' | 'ip';
  value: string;
}

export interface AcmeOrder {
  id: string;
  accountId: string;
  status: AcmeOrderStatus;
  identifiers: AcmeIdentifier[];
  authorizationIds: string[];
  expiresAt: Date;
  notBefore?: Date;
  notAfter?: Date;
  error?: AcmeProblem;
  /** Serial (uppercase hex) of the certificate issued at finalize. */
  certificateSerial?: string;
  /** ARI (RFC 9773 §5): the certID of the certificate this order replaces. */
  replaces?: string;
  createdAt: Date;
}

export interface AcmeChallenge {
  /** Unique within its authorization. */
  id: string;
  type: AcmeChallengeType;
  token: string;
  status: AcmeChallengeStatus;
  validatedAt?: Date;
  error?: AcmeProblem;
}

export interface AcmeAuthorization {
  id: string;
  accountId: string;
  orderId: string;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  status: AcmeAuthorizationStatus;
  expiresAt: Date;
  challenges: AcmeChallenge[];
}

export interface AcmeStore {
  /** KAKUIN_E_ACME_EAB_EXISTS when the kid is taken. */
  createEabKey(key: AcmeEabKey): Promise<void>;
  eabKey(kid: string): Promise<AcmeEabKey | undefined>;
  /** Oldest first. */
  listEabKeys(): Promise<AcmeEabKey[]>;
  /** false when there is no such key or it was revoked before. */
  revokeEabKey(kid: string, at: Date): Promise<boolean>;
  /**
   * Records the account and binds its EAB key to it, in one transaction. KAKUIN_E_ACME_EAB_USED when
   * the key is revoked or bound already; KAKUIN_E_ACME_ACCOUNT_EXISTS when the thumbprint is taken.
   */
  createAccount(account: AcmeAccount): Promise<void>;
  account(id: string): Promise<AcmeAccount | undefined>;
  accountByThumbprint(thumbprint: string): Promise<AcmeAccount | undefined>;
  /** Key rollover (`jwk` and `thumbprint` together) and deactivation; KAKUIN_E_ACME_ACCOUNT_EXISTS for a taken thumbprint. */
  updateAccount(id: string, change: { status?: AcmeAccountStatus; jwk?: string; thumbprint?: string; contact?: string[] }): Promise<void>;
  /** The order and its authorizations, in one transaction. */
  createOrder(order: AcmeOrder, authorizations: AcmeAuthorization[]): Promise<void>;
  order(id: string): Promise<AcmeOrder | undefined>;
  /**
   * Changes an order only while it is in `expected` status: the finalize that moves an order from
   * ready to processing wins once. Returns false (nothing changed) when its status was another.
   */
  updateOrder(id: string, expected: AcmeOrderStatus, change: Partial<Pick<AcmeOrder, 'status' | 'error' | 'certificateSerial'>>): Promise<boolean>;
  /** The order (of this account) that issued a certificate; undefined when none did. */
  orderByCertificate(serialHex: string): Promise<AcmeOrder | undefined>;
  authorization(id: string): Promise<AcmeAuthorization | undefined>;
  /** Replaces status and challenges while the authorization is in `expected` status; false otherwise. */
  updateAuthorization(id: string, expected: AcmeAuthorizationStatus, change: { status: AcmeAuthorizationStatus; challenges: AcmeChallenge[] }): Promise<boolean>;
}
