/**
 * The users port's contract (registry/users.ts), run on every adapter: users are created with
 * their audit event, names are unique, disabling and credential resets end the user's sessions in
 * the same transaction, a TOTP step is accepted once, failed-login counters add up and restart,
 * and bad input changes nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Registry } from '../../registry/port.js';
import type { UserStore } from '../../registry/users.js';
import { expectKakuinError } from './registry-fixtures.js';

export type OpenUserStore = () => Promise<{ store: UserStore; registry: Registry; cleanup: () => Promise<void> }>;

const HASH = `scrypt$ln=10,r=8,p=1$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`;
const hmac = () => createHash('sha256').update(randomBytes(16)).digest('hex');
const T0 = Date.UTC(2026, 11, 8, 9, 0, 0);
const audit = (type: string, details: Record<string, unknown> = {}) => ({ type, actor: 'cli', details });

export function runUsersContract(adapterName: string, open: OpenUserStore): void {
  describe(`users contract: ${adapterName}`, function () {
    let store: UserStore;
    let registry: Registry;
    let cleanup: () => Promise<void>;
    beforeEach(async function () {
      ({ store, registry, cleanup } = await open());
    });
    afterEach(async function () {
      await cleanup();
    });

    const eventsOfType = async (type: string) => (await registry.listAuditEvents({ type, limit: 1000 })).length;

    it('creates a user with its audit event, finds it by name, and refuses a second user of that name', async function () {
      const secret = randomBytes(40);
      const u = await store.createUser({ name: 'alice', role: 'admin', passwordHash: HASH, totpSecret: secret }, audit('user.created', { name: 'alice' }));
      expect(u).to.include({ name: 'alice', role: 'admin', passwordHash: HASH });
      expect(u.totpSecret?.equals(secret)).to.equal(true);
      const found = await store.findUser('alice');
      expect(found?.id).to.equal(u.id);
      expect(found?.totpSecret?.equals(secret)).to.equal(true);
      expect(found?.totpLastStep).to.equal(undefined);
      expect(found?.disabledAt).to.equal(undefined);
      expect(await store.findUser('bob')).to.equal(undefined);
      await expectKakuinError(store.createUser({ name: 'alice', role: 'operator', passwordHash: HASH }, audit('user.created')), 'KAKUIN_E_USER_EXISTS');
      expect(await eventsOfType('user.created')).to.equal(1);
    });

    it('binds a manufacturer user to an existing manufacturer only, and refuses bad input without writing', async function () {
      const m = await registry.createManufacturer({ name: 'Users Sensors' });
      const u = await store.createUser({ name: 'maker', role: 'manufacturer', manufacturerId: m.id, passwordHash: HASH }, audit('user.created'));
      expect(u.manufacturerId).to.equal(m.id);
      await expectKakuinError(store.createUser({ name: 'ghost', role: 'manufacturer', manufacturerId: 'no-such', passwordHash: HASH }, audit('user.created')), 'KAKUIN_E_MANUFACTURER_NOT_FOUND');
      await expectKakuinError(store.createUser({ name: 'x', role: 'operator', manufacturerId: m.id, passwordHash: HASH }, audit('user.created')), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.createUser({ name: 'y', role: 'root' as never, passwordHash: HASH }, audit('user.created')), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(store.createUser({ name: 'z', role: 'operator', passwordHash: 'plaintext' }, audit('user.created')), 'KAKUIN_E_VALIDATION');
      expect((await store.listUsers()).map((x) => x.name)).to.deep.equal(['maker']);
      expect(await eventsOfType('user.created')).to.equal(1);
    });

    it('lists users in creation order, in pages', async function () {
      for (const n of ['u1', 'u2', 'u3']) await store.createUser({ name: n, role: 'auditor', passwordHash: HASH }, audit('user.created'));
      expect((await store.listUsers({ limit: 2 })).map((u) => u.name)).to.deep.equal(['u1', 'u2']);
      expect((await store.listUsers({ afterKey: 'u2' })).map((u) => u.name)).to.deep.equal(['u3']);
      await expectKakuinError(store.listUsers({ afterKey: 'nobody' }), 'KAKUIN_E_VALIDATION');
    });

    it('a session is found with its user, moves its last use forward only, and ends on logout with its audit event', async function () {
      const u = await store.createUser({ name: 'carol', role: 'operator', passwordHash: HASH }, audit('user.created'));
      const id = hmac();
      await store.createSession({ idHmac: id, userId: u.id, createdAt: new Date(T0), lastSeenAt: new Date(T0), expiresAt: new Date(T0 + 3_600_000) }, audit('user.login'));
      const found = await store.findSession(id);
      expect(found?.user.name).to.equal('carol');
      expect(found?.user.lastLoginAt?.getTime()).to.equal(T0);
      expect(found?.session).to.deep.equal({ idHmac: id, userId: u.id, createdAt: new Date(T0), lastSeenAt: new Date(T0), expiresAt: new Date(T0 + 3_600_000) });
      await store.touchSession(id, new Date(T0 + 60_000));
      await store.touchSession(id, new Date(T0 + 30_000));
      expect((await store.findSession(id))?.session.lastSeenAt.getTime()).to.equal(T0 + 60_000);
      expect(await store.findSession(hmac())).to.equal(undefined);
      expect(await store.findSession('not hex')).to.equal(undefined);
      expect(await store.deleteSession(id, audit('user.logout'))).to.equal(true);
      expect(await store.deleteSession(id, audit('user.logout'))).to.equal(false);
      expect(await store.findSession(id)).to.equal(undefined);
      expect(await eventsOfType('user.logout')).to.equal(1);
      expect(await eventsOfType('user.login')).to.equal(1);
    });

    it('disabling a user ends all its sessions at once (not other users\'); enabling it again brings none back', async function () {
      const a = await store.createUser({ name: 'dave', role: 'operator', passwordHash: HASH }, audit('user.created'));
      const b = await store.createUser({ name: 'erin', role: 'operator', passwordHash: HASH }, audit('user.created'));
      const [s1, s2, s3] = [hmac(), hmac(), hmac()];
      for (const [s, u] of [[s1, a], [s2, a], [s3, b]] as const) {
        await store.createSession({ idHmac: s, userId: u.id, createdAt: new Date(T0), lastSeenAt: new Date(T0), expiresAt: new Date(T0 + 3_600_000) }, audit('user.login'));
      }
      const disabled = await store.setUserDisabled('dave', new Date(T0 + 1000), audit('user.disabled'));
      expect(disabled.disabledAt?.getTime()).to.equal(T0 + 1000);
      expect(await store.findSession(s1)).to.equal(undefined);
      expect(await store.findSession(s2)).to.equal(undefined);
      expect((await store.findSession(s3))?.user.name).to.equal('erin');
      await expectKakuinError(store.setUserDisabled('dave', new Date(), audit('user.disabled')), 'KAKUIN_E_USER_STATE');
      await expectKakuinError(store.setUserDisabled('nobody', new Date(), audit('user.disabled')), 'KAKUIN_E_USER_NOT_FOUND');
      expect(await eventsOfType('user.disabled')).to.equal(1);
      const enabled = await store.setUserDisabled('dave', undefined, audit('user.enabled'));
      expect(enabled.disabledAt).to.equal(undefined);
      expect((await store.findUser('dave'))?.disabledAt).to.equal(undefined);
      expect(await store.findSession(s1)).to.equal(undefined);
      await expectKakuinError(store.setUserDisabled('dave', undefined, audit('user.enabled')), 'KAKUIN_E_USER_STATE');
    });

    it('a credential reset sets the new hash or secret, restarts the replay mark, and ends the user\'s sessions', async function () {
      const u = await store.createUser({ name: 'frank', role: 'admin', passwordHash: HASH, totpSecret: randomBytes(40) }, audit('user.created'));
      expect(await store.useTotpStep(u.id, 1000)).to.equal(true);
      expect(await store.useTotpStep(u.id, 1000), 'the same step again').to.equal(false);
      expect(await store.useTotpStep(u.id, 999), 'an earlier step').to.equal(false);
      expect(await store.useTotpStep(u.id, 1001)).to.equal(true);
      expect((await store.findUser('frank'))?.totpLastStep).to.equal(1001);
      const s = hmac();
      await store.createSession({ idHmac: s, userId: u.id, createdAt: new Date(T0), lastSeenAt: new Date(T0), expiresAt: new Date(T0 + 3_600_000) }, audit('user.login'));
      const secret = randomBytes(40);
      const other = `scrypt$ln=11,r=8,p=1$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`;
      const changed = await store.changeUserCredentials('frank', { passwordHash: other, totpSecret: secret }, new Date(T0 + 5000), audit('user.password.reset'));
      expect(changed.passwordHash).to.equal(other);
      expect(changed.passwordChangedAt.getTime()).to.equal(T0 + 5000);
      expect(changed.totpSecret?.equals(secret)).to.equal(true);
      expect(changed.totpLastStep).to.equal(undefined);
      const read = await store.findUser('frank');
      expect(read?.passwordHash).to.equal(other);
      expect(read?.totpSecret?.equals(secret)).to.equal(true);
      expect(read?.totpLastStep).to.equal(undefined);
      expect(await store.useTotpStep(u.id, 1000), 'a new secret starts a new replay mark').to.equal(true);
      expect(await store.findSession(s)).to.equal(undefined);
      const off = await store.changeUserCredentials('frank', { totpSecret: null }, new Date(T0 + 6000), audit('user.totp.reset'));
      expect(off.totpSecret).to.equal(undefined);
      expect((await store.findUser('frank'))?.totpSecret).to.equal(undefined);
      await expectKakuinError(store.changeUserCredentials('nobody', { passwordHash: other }, new Date(), audit('user.password.reset')), 'KAKUIN_E_USER_NOT_FOUND');
      await expectKakuinError(store.changeUserCredentials('frank', {}, new Date(), audit('user.password.reset')), 'KAKUIN_E_VALIDATION');
      expect(await eventsOfType('user.password.reset')).to.equal(1);
    });

    it('deletes the sessions that ended (absolute end reached, or idle) and keeps the others', async function () {
      const u = await store.createUser({ name: 'gina', role: 'auditor', passwordHash: HASH }, audit('user.created'));
      const [over, idle, live] = [hmac(), hmac(), hmac()];
      await store.createSession({ idHmac: over, userId: u.id, createdAt: new Date(T0), lastSeenAt: new Date(T0 + 9000), expiresAt: new Date(T0 + 10_000) }, audit('user.login'));
      await store.createSession({ idHmac: idle, userId: u.id, createdAt: new Date(T0), lastSeenAt: new Date(T0), expiresAt: new Date(T0 + 3_600_000) }, audit('user.login'));
      await store.createSession({ idHmac: live, userId: u.id, createdAt: new Date(T0), lastSeenAt: new Date(T0 + 9000), expiresAt: new Date(T0 + 3_600_000) }, audit('user.login'));
      expect(await store.deleteEndedSessions(new Date(T0 + 10_000), new Date(T0 + 5000))).to.equal(2);
      expect(await store.findSession(over)).to.equal(undefined);
      expect(await store.findSession(idle)).to.equal(undefined);
      expect(await store.findSession(live)).to.not.equal(undefined);
    });

    it('failed-login counters add up per key with an audit event each, restart after a quiet window, and clear', async function () {
      const keys = ['user:alice', 'source:127.0.0.1'];
      expect(await store.readLoginFailures(keys)).to.deep.equal([]);
      await store.addLoginFailure(keys, new Date(T0), new Date(T0 - 3_600_000), audit('user.login.failed'));
      const second = await store.addLoginFailure(keys, new Date(T0 + 1000), new Date(T0 + 1000 - 3_600_000), audit('user.login.failed'));
      expect(second.map((f) => [f.key, f.failures, f.lastFailedAt.getTime()])).to.deep.equal([['user:alice', 2, T0 + 1000], ['source:127.0.0.1', 2, T0 + 1000]]);
      await store.addLoginFailure(['user:bob'], new Date(T0 + 2000), new Date(T0), audit('user.login.failed'));
      expect((await store.readLoginFailures(['user:alice', 'user:bob', 'user:nobody'])).map((f) => [f.key, f.failures])).to.deep.equal([['user:alice', 2], ['user:bob', 1]]);
      // The last failure is older than restartBefore: the counter starts again.
      const restarted = await store.addLoginFailure(['user:alice'], new Date(T0 + 7_200_000), new Date(T0 + 3_600_000), audit('user.login.failed'));
      expect(restarted[0].failures).to.equal(1);
      await store.clearLoginFailures(['user:alice']);
      expect((await store.readLoginFailures(keys)).map((f) => f.key)).to.deep.equal(['source:127.0.0.1']);
      expect(await eventsOfType('user.login.failed')).to.equal(4);
      await expectKakuinError(store.readLoginFailures([]), 'KAKUIN_E_VALIDATION');
    });
  });
}
