/**
 * The ACME store port on MongoDB (registry/acme.ts): one document per EAB key, account, order and
 * authorization (challenges inside their authorization). Binding an EAB key and creating its
 * account is one transaction; compare-and-set updates filter on the expected status, as on SQLite.
 */
import { KakuinError } from '../../errors/index.js';
import type {
  AcmeAccount, AcmeAccountStatus, AcmeAuthorization, AcmeAuthorizationStatus, AcmeChallenge, AcmeEabKey, AcmeOrder, AcmeOrderStatus, AcmeStore,
} from '../acme.js';
import {
  checkAcmeAccount, checkAcmeAccountChange, checkAcmeAuthorizationStatus, checkAcmeChallenges, checkAcmeEabKey, checkAcmeId, checkAcmeOrder,
  checkAcmeOrderStatus,
} from '../records/acme.js';
import { COLLECTIONS } from './documents.js';
import type { RegistryPlumbing } from './plumbing.js';

type EabDoc = Omit<AcmeEabKey, 'kid'> & { _id: string };
type AccountDoc = Omit<AcmeAccount, 'id'> & { _id: string };
type OrderDoc = Omit<AcmeOrder, 'id'> & { _id: string };
type AuthzDoc = Omit<AcmeAuthorization, 'id'> & { _id: string };

/** A document without `_id` and without the fields a driver may hand back as null. */
function plain<T>(doc: Record<string, unknown>, idField: string): T {
  const { _id, ...rest } = doc;
  const out: Record<string, unknown> = { [idField]: _id };
  for (const [k, v] of Object.entries(rest)) if (v !== null && v !== undefined) out[k] = v;
  return out as T;
}

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export class MongoAcmeStore implements AcmeStore {
  constructor(private readonly p: RegistryPlumbing) {}

  async createEabKey(key: AcmeEabKey): Promise<void> {
    checkAcmeEabKey(key);
    const { kid, ...rest } = key;
    await this.p.write('recording an EAB key', async () => {
      await this.p.col<EabDoc>(COLLECTIONS.acmeEabKeys).insertOne(withoutUndefined({ _id: kid, ...rest }));
    });
  }

  async eabKey(kid: string): Promise<AcmeEabKey | undefined> {
    if (typeof kid !== 'string') return undefined;
    const doc = await this.p.read('reading an EAB key', () => this.p.col<EabDoc>(COLLECTIONS.acmeEabKeys).findOne({ _id: kid }));
    return doc === null ? undefined : plain<AcmeEabKey>(doc, 'kid');
  }

  async listEabKeys(): Promise<AcmeEabKey[]> {
    const docs = await this.p.read('listing EAB keys', () => this.p.col<EabDoc>(COLLECTIONS.acmeEabKeys).find({}, { sort: { createdAt: 1, _id: 1 } }).toArray());
    return docs.map((d) => plain<AcmeEabKey>(d, 'kid'));
  }

  async revokeEabKey(kid: string, at: Date): Promise<boolean> {
    checkAcmeId(kid, 'kid');
    return this.p.write('revoking an EAB key', async () => {
      const r = await this.p.col<EabDoc>(COLLECTIONS.acmeEabKeys).updateOne({ _id: kid, revokedAt: { $exists: false } }, { $set: { revokedAt: at } });
      return r.matchedCount === 1;
    });
  }

  async createAccount(account: AcmeAccount): Promise<void> {
    checkAcmeAccount(account);
    const { id, ...rest } = account;
    await this.p.transaction('recording an ACME account', async (session) => {
      const bound = await this.p.col<EabDoc>(COLLECTIONS.acmeEabKeys).updateOne(
        { _id: account.eabKid, revokedAt: { $exists: false }, accountId: { $exists: false } }, { $set: { accountId: id } }, { session });
      if (bound.matchedCount !== 1) throw new KakuinError('KAKUIN_E_ACME_EAB_USED', 'that EAB key is revoked or bound to another account already');
      await this.p.col<AccountDoc>(COLLECTIONS.acmeAccounts).insertOne({ _id: id, ...rest }, { session });
    });
  }

  async account(id: string): Promise<AcmeAccount | undefined> {
    const doc = await this.p.read('reading an ACME account', () => this.p.col<AccountDoc>(COLLECTIONS.acmeAccounts).findOne({ _id: id }));
    return doc === null ? undefined : plain<AcmeAccount>(doc, 'id');
  }

  async accountByThumbprint(thumbprint: string): Promise<AcmeAccount | undefined> {
    const doc = await this.p.read('reading an ACME account', () => this.p.col<AccountDoc>(COLLECTIONS.acmeAccounts).findOne({ thumbprint }));
    return doc === null ? undefined : plain<AcmeAccount>(doc, 'id');
  }

  async updateAccount(id: string, change: { status?: AcmeAccountStatus; jwk?: string; thumbprint?: string; contact?: string[] }): Promise<void> {
    checkAcmeAccountChange(change);
    const matched = await this.p.write('changing an ACME account', async () => {
      const r = await this.p.col<AccountDoc>(COLLECTIONS.acmeAccounts).updateOne({ _id: id }, { $set: withoutUndefined(change) });
      return r.matchedCount;
    });
    if (matched !== 1) throw new KakuinError('KAKUIN_E_ACME_NOT_FOUND', 'no such ACME account');
  }

  async createOrder(order: AcmeOrder, authorizations: AcmeAuthorization[]): Promise<void> {
    checkAcmeOrder(order, authorizations);
    await this.p.transaction('recording an ACME order', async (session) => {
      const { id, ...rest } = order;
      await this.p.col<OrderDoc>(COLLECTIONS.acmeOrders).insertOne(withoutUndefined({ _id: id, ...rest }), { session });
      for (const a of authorizations) {
        const { id: authzId, ...authz } = a;
        await this.p.col<AuthzDoc>(COLLECTIONS.acmeAuthorizations).insertOne({ _id: authzId, ...authz }, { session });
      }
    });
  }

  async order(id: string): Promise<AcmeOrder | undefined> {
    const doc = await this.p.read('reading an ACME order', () => this.p.col<OrderDoc>(COLLECTIONS.acmeOrders).findOne({ _id: id }));
    return doc === null ? undefined : plain<AcmeOrder>(doc, 'id');
  }

  async orderByCertificate(serialHex: string): Promise<AcmeOrder | undefined> {
    const doc = await this.p.read('reading an ACME order', () => this.p.col<OrderDoc>(COLLECTIONS.acmeOrders).findOne({ certificateSerial: serialHex }));
    return doc === null ? undefined : plain<AcmeOrder>(doc, 'id');
  }

  async updateOrder(id: string, expected: AcmeOrderStatus, change: Partial<Pick<AcmeOrder, 'status' | 'error' | 'certificateSerial'>>): Promise<boolean> {
    checkAcmeOrderStatus(expected);
    if (change.status !== undefined) checkAcmeOrderStatus(change.status);
    return this.p.write('changing an ACME order', async () => {
      const r = await this.p.col<OrderDoc>(COLLECTIONS.acmeOrders).updateOne({ _id: id, status: expected }, { $set: withoutUndefined(change) });
      return r.matchedCount === 1;
    });
  }

  async authorization(id: string): Promise<AcmeAuthorization | undefined> {
    const doc = await this.p.read('reading an ACME authorization', () => this.p.col<AuthzDoc>(COLLECTIONS.acmeAuthorizations).findOne({ _id: id }));
    if (doc === null) return undefined;
    const a = plain<AcmeAuthorization>(doc, 'id');
    return { ...a, challenges: a.challenges.map((c) => plain<AcmeChallenge>({ ...c, _id: c.id }, 'id')) };
  }

  async updateAuthorization(id: string, expected: AcmeAuthorizationStatus, change: { status: AcmeAuthorizationStatus; challenges: AcmeChallenge[] }): Promise<boolean> {
    checkAcmeAuthorizationStatus(expected);
    checkAcmeAuthorizationStatus(change.status);
    checkAcmeChallenges(change.challenges);
    return this.p.write('changing an ACME authorization', async () => {
      const r = await this.p.col<AuthzDoc>(COLLECTIONS.acmeAuthorizations).updateOne(
        { _id: id, status: expected }, { $set: { status: change.status, challenges: change.challenges.map(withoutUndefined) } });
      return r.matchedCount === 1;
    });
  }
}
