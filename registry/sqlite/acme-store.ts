/**
 * The ACME store port on SQLite (schema step 18). Each call is one short statement or one
 * transaction; lists are JSON text (read and written whole). Compare-and-set updates
 * (`WHERE status = ?`) let one finalize or one validation win a race between two requests.
 */
import type Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';
import type {
  AcmeAccount, AcmeAccountStatus, AcmeAuthorization, AcmeAuthorizationStatus, AcmeChallenge, AcmeEabKey, AcmeOrder, AcmeOrderStatus, AcmeStore,
} from '../acme.js';
import {
  checkAcmeAccount, checkAcmeAccountChange, checkAcmeAuthorizationStatus, checkAcmeChallenges, checkAcmeEabKey, checkAcmeId, checkAcmeOrder,
  checkAcmeOrderStatus,
} from '../records/acme.js';
import { toKakuinError } from './driver-errors.js';

interface EabRow { kid: string; names: string; created_at: number; created_by: string; revoked_at: number | null; account_id: string | null }
interface AccountRow { id: string; status: string; jwk: string; thumbprint: string; contact: string; eab_kid: string; created_at: number }
interface OrderRow {
  id: string; account_id: string; status: string; identifiers: string; authorization_ids: string; expires_at: number;
  not_before: number | null; not_after: number | null; error: string | null; certificate_serial: string | null; replaces: string | null; created_at: number;
}
interface AuthzRow { id: string; account_id: string; order_id: string; identifier: string; wildcard: number; status: string; expires_at: number; challenges: string }

function eabOf(r: EabRow): AcmeEabKey {
  return {
    kid: r.kid, names: JSON.parse(r.names) as string[], createdAt: new Date(r.created_at), createdBy: r.created_by,
    ...(r.revoked_at !== null && { revokedAt: new Date(r.revoked_at) }), ...(r.account_id !== null && { accountId: r.account_id }),
  };
}

function accountOf(r: AccountRow): AcmeAccount {
  return {
    id: r.id, status: r.status as AcmeAccountStatus, jwk: r.jwk, thumbprint: r.thumbprint, contact: JSON.parse(r.contact) as string[],
    eabKid: r.eab_kid, createdAt: new Date(r.created_at),
  };
}

function orderOf(r: OrderRow): AcmeOrder {
  return {
    id: r.id, accountId: r.account_id, status: r.status as AcmeOrderStatus, identifiers: JSON.parse(r.identifiers),
    authorizationIds: JSON.parse(r.authorization_ids) as string[], expiresAt: new Date(r.expires_at), createdAt: new Date(r.created_at),
    ...(r.not_before !== null && { notBefore: new Date(r.not_before) }), ...(r.not_after !== null && { notAfter: new Date(r.not_after) }),
    ...(r.error !== null && { error: JSON.parse(r.error) }), ...(r.certificate_serial !== null && { certificateSerial: r.certificate_serial }),
    ...(r.replaces !== null && { replaces: r.replaces }),
  };
}

function authzOf(r: AuthzRow): AcmeAuthorization {
  const challenges = (JSON.parse(r.challenges) as (AcmeChallenge & { validatedAt?: string })[]).map((c) => ({
    ...c, ...(c.validatedAt !== undefined && { validatedAt: new Date(c.validatedAt) }),
  })) as AcmeChallenge[];
  return {
    id: r.id, accountId: r.account_id, orderId: r.order_id, identifier: JSON.parse(r.identifier), wildcard: r.wildcard === 1,
    status: r.status as AcmeAuthorizationStatus, expiresAt: new Date(r.expires_at), challenges,
  };
}

export class SqliteAcmeStore implements AcmeStore {
  private readonly s: Record<string, Database.Statement>;
  private readonly txCreateAccount: Database.Transaction<(a: AcmeAccount) => void>;
  private readonly txCreateOrder: Database.Transaction<(o: AcmeOrder, authzs: AcmeAuthorization[]) => void>;

  constructor(private readonly db: Database.Database) {
    this.s = {
      insertEab: db.prepare('INSERT INTO acme_eab_keys (kid, names, created_at, created_by) VALUES (?, ?, ?, ?)'),
      eab: db.prepare('SELECT * FROM acme_eab_keys WHERE kid = ?'),
      eabs: db.prepare('SELECT * FROM acme_eab_keys ORDER BY created_at, kid'),
      revokeEab: db.prepare('UPDATE acme_eab_keys SET revoked_at = ? WHERE kid = ? AND revoked_at IS NULL'),
      bindEab: db.prepare('UPDATE acme_eab_keys SET account_id = ? WHERE kid = ? AND revoked_at IS NULL AND account_id IS NULL'),
      insertAccount: db.prepare('INSERT INTO acme_accounts (id, status, jwk, thumbprint, contact, eab_kid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      account: db.prepare('SELECT * FROM acme_accounts WHERE id = ?'),
      accountByThumbprint: db.prepare('SELECT * FROM acme_accounts WHERE thumbprint = ?'),
      updateAccount: db.prepare(`UPDATE acme_accounts SET status = coalesce(?, status), jwk = coalesce(?, jwk), thumbprint = coalesce(?, thumbprint),
        contact = coalesce(?, contact) WHERE id = ?`),
      insertOrder: db.prepare(`INSERT INTO acme_orders (id, account_id, status, identifiers, authorization_ids, expires_at, not_before, not_after, replaces, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      order: db.prepare('SELECT * FROM acme_orders WHERE id = ?'),
      orderByCertificate: db.prepare('SELECT * FROM acme_orders WHERE certificate_serial = ?'),
      updateOrder: db.prepare(`UPDATE acme_orders SET status = coalesce(?, status), error = coalesce(?, error),
        certificate_serial = coalesce(?, certificate_serial) WHERE id = ? AND status = ?`),
      insertAuthz: db.prepare(`INSERT INTO acme_authorizations (id, account_id, order_id, identifier, wildcard, status, expires_at, challenges)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      authz: db.prepare('SELECT * FROM acme_authorizations WHERE id = ?'),
      updateAuthz: db.prepare('UPDATE acme_authorizations SET status = ?, challenges = ? WHERE id = ? AND status = ?'),
    };
    this.txCreateAccount = db.transaction((a: AcmeAccount) => {
      if (this.s.bindEab.run(a.id, a.eabKid).changes !== 1) {
        throw new KakuinError('KAKUIN_E_ACME_EAB_USED', 'that EAB key is revoked or bound to another account already');
      }
      this.s.insertAccount.run(a.id, a.status, a.jwk, a.thumbprint, JSON.stringify(a.contact), a.eabKid, a.createdAt.getTime());
    });
    this.txCreateOrder = db.transaction((o: AcmeOrder, authzs: AcmeAuthorization[]) => {
      this.s.insertOrder.run(o.id, o.accountId, o.status, JSON.stringify(o.identifiers), JSON.stringify(o.authorizationIds), o.expiresAt.getTime(),
        o.notBefore?.getTime() ?? null, o.notAfter?.getTime() ?? null, o.replaces ?? null, o.createdAt.getTime());
      for (const a of authzs) {
        this.s.insertAuthz.run(a.id, a.accountId, a.orderId, JSON.stringify(a.identifier), a.wildcard ? 1 : 0, a.status, a.expiresAt.getTime(), JSON.stringify(a.challenges));
      }
    });
  }

  private run<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw toKakuinError(e, { operation, foreignKey: { code: 'KAKUIN_E_ACME_NOT_FOUND', message: 'the ACME account or order it belongs to is not recorded' } });
    }
  }

  async createEabKey(key: AcmeEabKey): Promise<void> {
    checkAcmeEabKey(key);
    this.run('recording an EAB key', () => this.s.insertEab.run(key.kid, JSON.stringify(key.names), key.createdAt.getTime(), key.createdBy));
  }

  async eabKey(kid: string): Promise<AcmeEabKey | undefined> {
    if (typeof kid !== 'string') return undefined;
    const r = this.run('reading an EAB key', () => this.s.eab.get(kid) as EabRow | undefined);
    return r && eabOf(r);
  }

  async listEabKeys(): Promise<AcmeEabKey[]> {
    return this.run('listing EAB keys', () => (this.s.eabs.all() as EabRow[]).map(eabOf));
  }

  async revokeEabKey(kid: string, at: Date): Promise<boolean> {
    checkAcmeId(kid, 'kid');
    return this.run('revoking an EAB key', () => this.s.revokeEab.run(at.getTime(), kid).changes === 1);
  }

  async createAccount(account: AcmeAccount): Promise<void> {
    checkAcmeAccount(account);
    this.run('recording an ACME account', () => this.txCreateAccount.immediate(account));
  }

  async account(id: string): Promise<AcmeAccount | undefined> {
    const r = this.run('reading an ACME account', () => this.s.account.get(id) as AccountRow | undefined);
    return r && accountOf(r);
  }

  async accountByThumbprint(thumbprint: string): Promise<AcmeAccount | undefined> {
    const r = this.run('reading an ACME account', () => this.s.accountByThumbprint.get(thumbprint) as AccountRow | undefined);
    return r && accountOf(r);
  }

  async updateAccount(id: string, change: { status?: AcmeAccountStatus; jwk?: string; thumbprint?: string; contact?: string[] }): Promise<void> {
    checkAcmeAccountChange(change);
    const changes = this.run('changing an ACME account', () => this.s.updateAccount.run(
      change.status ?? null, change.jwk ?? null, change.thumbprint ?? null, change.contact === undefined ? null : JSON.stringify(change.contact), id,
    ).changes);
    if (changes !== 1) throw new KakuinError('KAKUIN_E_ACME_NOT_FOUND', 'no such ACME account');
  }

  async createOrder(order: AcmeOrder, authorizations: AcmeAuthorization[]): Promise<void> {
    checkAcmeOrder(order, authorizations);
    this.run('recording an ACME order', () => this.txCreateOrder.immediate(order, authorizations));
  }

  async order(id: string): Promise<AcmeOrder | undefined> {
    const r = this.run('reading an ACME order', () => this.s.order.get(id) as OrderRow | undefined);
    return r && orderOf(r);
  }

  async orderByCertificate(serialHex: string): Promise<AcmeOrder | undefined> {
    const r = this.run('reading an ACME order', () => this.s.orderByCertificate.get(serialHex) as OrderRow | undefined);
    return r && orderOf(r);
  }

  async updateOrder(id: string, expected: AcmeOrderStatus, change: Partial<Pick<AcmeOrder, 'status' | 'error' | 'certificateSerial'>>): Promise<boolean> {
    checkAcmeOrderStatus(expected);
    if (change.status !== undefined) checkAcmeOrderStatus(change.status);
    return this.run('changing an ACME order', () => this.s.updateOrder.run(
      change.status ?? null, change.error === undefined ? null : JSON.stringify(change.error), change.certificateSerial ?? null, id, expected,
    ).changes === 1);
  }

  async authorization(id: string): Promise<AcmeAuthorization | undefined> {
    const r = this.run('reading an ACME authorization', () => this.s.authz.get(id) as AuthzRow | undefined);
    return r && authzOf(r);
  }

  async updateAuthorization(id: string, expected: AcmeAuthorizationStatus, change: { status: AcmeAuthorizationStatus; challenges: AcmeChallenge[] }): Promise<boolean> {
    checkAcmeAuthorizationStatus(expected);
    checkAcmeAuthorizationStatus(change.status);
    checkAcmeChallenges(change.challenges);
    return this.run('changing an ACME authorization', () => this.s.updateAuthz.run(change.status, JSON.stringify(change.challenges), id, expected).changes === 1);
  }
}
