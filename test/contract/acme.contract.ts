/**
 * The ACME store port's contract (registry/acme.ts), run on every adapter that implements it: an
 * EAB key binds one account once, account keys are unique, orders come with their authorizations,
 * compare-and-set updates let one writer win, and bad input changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { AcmeAccount, AcmeAuthorization, AcmeOrder, AcmeStore } from '../../registry/acme.js';
import { expectKakuinError } from './registry-fixtures.js';

export type OpenAcmeStore = () => Promise<{ store: AcmeStore; cleanup: () => Promise<void> }>;

const T0 = new Date(Date.UTC(2026, 11, 8, 1, 0, 0));
const id = () => randomUUID().replace(/-/g, '');

async function eab(store: AcmeStore, names = ['broker-*.example.internal']): Promise<string> {
  const kid = id();
  await store.createEabKey({ kid, names, createdAt: T0, createdBy: 'admin:test' });
  return kid;
}

function account(eabKid: string, over: Partial<AcmeAccount> = {}): AcmeAccount {
  return { id: id(), status: 'valid', jwk: '{"kty":"EC"}', thumbprint: id(), contact: [], eabKid, createdAt: T0, ...over };
}

function orderWith(accountId: string, names: string[]): { order: AcmeOrder; authzs: AcmeAuthorization[] } {
  const orderId = id();
  const authzs: AcmeAuthorization[] = names.map((value) => ({
    id: id(), accountId, orderId, identifier: { type: 'dns', value }, wildcard: false, status: 'pending', expiresAt: new Date(T0.getTime() + 86_400_000),
    challenges: [{ id: id(), type: 'http-01', token: id(), status: 'pending' }, { id: id(), type: 'tls-alpn-01', token: id(), status: 'pending' }],
  }));
  const order: AcmeOrder = {
    id: orderId, accountId, status: 'pending', identifiers: names.map((value) => ({ type: 'dns', value })), authorizationIds: authzs.map((a) => a.id),
    expiresAt: new Date(T0.getTime() + 86_400_000), createdAt: T0,
  };
  return { order, authzs };
}

export function runAcmeContract(adapterName: string, open: OpenAcmeStore): void {
  describe(`acme store contract: ${adapterName}`, function () {
    let store: AcmeStore;
    let cleanup: () => Promise<void>;
    beforeEach(async function () {
      ({ store, cleanup } = await open());
    });
    afterEach(async function () {
      await cleanup();
    });

    it('keeps EAB keys with their name patterns, lists them oldest first, and revokes each once', async function () {
      const a = id();
      const b = id();
      await store.createEabKey({ kid: a, names: ['broker-*.example.internal', 'mqtt.example.internal'], createdAt: T0, createdBy: 'admin:x' });
      await store.createEabKey({ kid: b, names: ['proxy.example.internal'], createdAt: new Date(T0.getTime() + 1000), createdBy: 'admin:x' });
      expect((await store.eabKey(a))?.names).to.deep.equal(['broker-*.example.internal', 'mqtt.example.internal']);
      expect((await store.listEabKeys()).map((k) => k.kid)).to.deep.equal([a, b]);
      await expectKakuinError(store.createEabKey({ kid: a, names: ['x'], createdAt: T0, createdBy: 'admin:x' }), 'KAKUIN_E_ACME_EAB_EXISTS');
      expect(await store.revokeEabKey(a, T0)).to.equal(true);
      expect(await store.revokeEabKey(a, T0), 'a second revocation changes nothing').to.equal(false);
      expect((await store.eabKey(a))?.revokedAt?.getTime()).to.equal(T0.getTime());
      expect(await store.eabKey('nope')).to.equal(undefined);
    });

    it('binds an EAB key to one account only, and never a revoked key', async function () {
      const kid = await eab(store);
      const first = account(kid);
      await store.createAccount(first);
      expect((await store.eabKey(kid))?.accountId).to.equal(first.id);
      expect((await store.accountByThumbprint(first.thumbprint))?.id).to.equal(first.id);
      const second = account(kid);
      await expectKakuinError(store.createAccount(second), 'KAKUIN_E_ACME_EAB_USED');
      expect(await store.account(second.id), 'no account is left behind').to.equal(undefined);
      const revoked = await eab(store);
      await store.revokeEabKey(revoked, T0);
      await expectKakuinError(store.createAccount(account(revoked)), 'KAKUIN_E_ACME_EAB_USED');
    });

    it('refuses a second account with the same key, and a key rollover onto a key in use', async function () {
      const a = account(await eab(store));
      await store.createAccount(a);
      const kid = await eab(store);
      await expectKakuinError(store.createAccount(account(kid, { thumbprint: a.thumbprint })), 'KAKUIN_E_ACME_ACCOUNT_EXISTS');
      expect((await store.eabKey(kid))?.accountId, 'the failed account did not consume the key').to.equal(undefined);
      const b = account(kid);
      await store.createAccount(b);
      await expectKakuinError(store.updateAccount(b.id, { jwk: '{"kty":"OKP"}', thumbprint: a.thumbprint }), 'KAKUIN_E_ACME_ACCOUNT_EXISTS');
      await store.updateAccount(b.id, { jwk: '{"kty":"OKP"}', thumbprint: 'rolled' });
      expect((await store.accountByThumbprint('rolled'))?.jwk).to.equal('{"kty":"OKP"}');
      await store.updateAccount(b.id, { status: 'deactivated' });
      expect((await store.account(b.id))?.status).to.equal('deactivated');
      await expectKakuinError(store.updateAccount('missing', { status: 'deactivated' }), 'KAKUIN_E_ACME_NOT_FOUND');
    });

    it('records an order with its authorizations and challenges, and moves each status only from the expected one', async function () {
      const a = account(await eab(store));
      await store.createAccount(a);
      const { order, authzs } = orderWith(a.id, ['broker-1.example.internal', 'broker-2.example.internal']);
      await store.createOrder(order, authzs);
      const read = await store.order(order.id);
      expect(read?.identifiers).to.deep.equal(order.identifiers);
      expect(read?.authorizationIds).to.deep.equal(order.authorizationIds);
      const authz = await store.authorization(authzs[0].id);
      expect(authz?.identifier.value).to.equal('broker-1.example.internal');
      expect(authz?.challenges.map((c) => c.type)).to.deep.equal(['http-01', 'tls-alpn-01']);

      const validated = { ...authz!.challenges[0], status: 'valid' as const, validatedAt: new Date(T0.getTime() + 5000) };
      expect(await store.updateAuthorization(authz!.id, 'pending', { status: 'valid', challenges: [validated, authz!.challenges[1]] })).to.equal(true);
      expect(await store.updateAuthorization(authz!.id, 'pending', { status: 'invalid', challenges: [] }), 'it is valid now, not pending').to.equal(false);
      const after = await store.authorization(authz!.id);
      expect(after?.status).to.equal('valid');
      expect(after?.challenges[0].validatedAt?.getTime()).to.equal(T0.getTime() + 5000);

      expect(await store.updateOrder(order.id, 'pending', { status: 'ready' })).to.equal(true);
      expect(await store.updateOrder(order.id, 'ready', { status: 'processing' })).to.equal(true);
      expect(await store.updateOrder(order.id, 'ready', { status: 'processing' }), 'a second finalize loses').to.equal(false);
      expect(await store.updateOrder(order.id, 'processing', { status: 'valid', certificateSerial: 'ABCDEF01' })).to.equal(true);
      expect((await store.orderByCertificate('ABCDEF01'))?.id).to.equal(order.id);
      expect(await store.orderByCertificate('00')).to.equal(undefined);
      const failed = orderWith(a.id, ['broker-3.example.internal']);
      await store.createOrder(failed.order, failed.authzs);
      await store.updateOrder(failed.order.id, 'pending', { status: 'invalid', error: { type: 'urn:ietf:params:acme:error:incorrectResponse', detail: 'no', status: 403 } });
      expect((await store.order(failed.order.id))?.error?.type).to.equal('urn:ietf:params:acme:error:incorrectResponse');
    });

    it('refuses malformed records and changes nothing', async function () {
      await expectKakuinError(store.createEabKey({ kid: 'has space', names: ['a'], createdAt: T0, createdBy: 'x' }), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.createEabKey({ kid: id(), names: [], createdAt: T0, createdBy: 'x' }), 'KAKUIN_E_VALIDATION');
      const a = account(await eab(store));
      await store.createAccount(a);
      const { order, authzs } = orderWith(a.id, ['broker-1.example.internal']);
      await expectKakuinError(store.createOrder({ ...order, authorizationIds: [] }, authzs), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.createOrder({ ...order, status: 'bogus' as never }, authzs), 'KAKUIN_E_VALIDATION');
      expect(await store.order(order.id)).to.equal(undefined);
      expect(await store.authorization(authzs[0].id)).to.equal(undefined);
    });
  });
}
