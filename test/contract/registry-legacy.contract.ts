/**
 * Registry contract, legacy three-factor path (issue 5): common auth IDs, legacy credentials with
 * their generation and feed entries, locks and the shared failure counters.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Registry } from '../../registry/port.js';
import { contractSteps, expectKakuinError } from './registry-fixtures.js';

export function runLegacyContract(get: () => Registry): void {
  const steps = contractSteps(get);
  const audit = (deviceId: string) => ({ type: 'legacy.test', actor: 'token:test', deviceId });

  describe('legacy three-factor path', function () {
    async function setUp() {
      const mfr = await steps.manufacturer();
      const cai = await get().createCommonAuthId({ name: `cai-${randomUUID()}`, manufacturerId: mfr, usualHoursUtc: '06-22' });
      const device = await steps.device(mfr);
      return { mfr, cai, device };
    }

    it('creates and reads common auth IDs; a duplicate name or unknown manufacturer is refused', async function () {
      const { cai, mfr } = await setUp();
      expect(await get().getCommonAuthId(cai.id)).to.deep.include({ id: cai.id, name: cai.name, manufacturerId: mfr, usualHoursUtc: '06-22' });
      await expectKakuinError(get().createCommonAuthId({ name: cai.name }), 'KAKUIN_E_COMMON_AUTH_ID_EXISTS');
      await expectKakuinError(get().createCommonAuthId({ name: 'x', manufacturerId: randomUUID() }), 'KAKUIN_E_MANUFACTURER_NOT_FOUND');
      await expectKakuinError(get().getCommonAuthId(randomUUID()), 'KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND');
    });

    it('sets, replaces and deletes credentials; the generation only increases and each change is a feed entry', async function () {
      const { cai, device } = await setUp();
      const seq0 = await get().latestFeedSeq();
      const [c1] = await get().putLegacyCredentials([{ deviceId: device.id, commonAuthId: cai.id, uniqueId: 'u-1', verifierKind: 'hmac', verifier: 'v1' }], [audit(device.id)]);
      expect(c1.generation).to.equal(1);
      expect(await get().findLegacyCredentials(cai.id, 'u-1')).to.deep.include({ deviceId: device.id, verifierKind: 'hmac', verifier: 'v1', generation: 1 });
      const [c2] = await get().putLegacyCredentials([{ deviceId: device.id, commonAuthId: cai.id, uniqueId: 'u-2', verifierKind: 'scrypt', verifier: 's1' }], []);
      expect(c2.generation).to.equal(2);
      expect(await get().findLegacyCredentials(cai.id, 'u-1')).to.equal(undefined);
      const deleted = await get().deleteLegacyCredentials(device.id, audit(device.id));
      expect(deleted).to.include({ kind: 'legacy-credentials', deviceId: device.id, status: 'deleted', generation: 3 });
      expect(await get().getLegacyCredentials(device.id)).to.equal(undefined);
      await expectKakuinError(get().deleteLegacyCredentials(device.id, audit(device.id)), 'KAKUIN_E_LEGACY_CREDENTIALS_NOT_FOUND');
      const [c4] = await get().putLegacyCredentials([{ deviceId: device.id, commonAuthId: cai.id, uniqueId: 'u-1', verifierKind: 'hmac', verifier: 'v4' }], []);
      expect(c4.generation, 'never back to an old generation').to.equal(4);
      const feed = (await get().readFeed(seq0)).filter((e) => e.kind === 'legacy-credentials');
      expect(feed.map((e) => [e.status, e.generation])).to.deep.equal([['enabled', 1], ['enabled', 2], ['deleted', 3], ['enabled', 4]]);
      expect(await get().listLegacyCredentialStates()).to.deep.include({ deviceId: device.id, generation: 4, deviceStatus: 'registered' });
    });

    it('refuses a taken (common auth ID, unique ID), a shared scrypt verifier, and unusable devices, all or nothing', async function () {
      const { cai, mfr, device } = await setUp();
      const other = await steps.device(mfr);
      const third = await steps.device(mfr);
      await get().putLegacyCredentials([{ deviceId: device.id, commonAuthId: cai.id, uniqueId: 'taken', verifierKind: 'scrypt', verifier: 'same' }], []);
      const seq = await get().latestFeedSeq();
      await expectKakuinError(get().putLegacyCredentials([
        { deviceId: third.id, commonAuthId: cai.id, uniqueId: 'fine', verifierKind: 'hmac', verifier: 'x' },
        { deviceId: other.id, commonAuthId: cai.id, uniqueId: 'taken', verifierKind: 'hmac', verifier: 'y' },
      ], [audit(third.id)]), 'KAKUIN_E_LEGACY_CREDENTIALS_EXIST');
      expect(await get().getLegacyCredentials(third.id), 'all or nothing').to.equal(undefined);
      await expectKakuinError(get().putLegacyCredentials([{ deviceId: other.id, commonAuthId: cai.id, uniqueId: 'new', verifierKind: 'scrypt', verifier: 'same' }], []),
        'KAKUIN_E_LEGACY_CREDENTIALS_EXIST');
      expect(await get().findLegacyVerifiers('scrypt', ['same', 'other'])).to.deep.equal([{ verifier: 'same', deviceId: device.id }]);
      await expectKakuinError(get().putLegacyCredentials([{ deviceId: randomUUID(), commonAuthId: cai.id, uniqueId: 'n', verifierKind: 'hmac', verifier: 'z' }], []),
        'KAKUIN_E_DEVICE_NOT_FOUND');
      await expectKakuinError(get().putLegacyCredentials([{ deviceId: other.id, commonAuthId: randomUUID(), uniqueId: 'n', verifierKind: 'hmac', verifier: 'z' }], []),
        'KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND');
      await get().applyStatusChange({ device: { id: other.id, from: ['registered'], to: 'retired' }, certificates: [], audit: [] });
      await expectKakuinError(get().putLegacyCredentials([{ deviceId: other.id, commonAuthId: cai.id, uniqueId: 'n', verifierKind: 'hmac', verifier: 'z' }], []),
        'KAKUIN_E_DEVICE_STATE');
      expect((await get().readFeed(seq)).filter((e) => e.kind === 'legacy-credentials')).to.deep.equal([]);
    });

    it('locks credentials with an audit event', async function () {
      const { cai, device } = await setUp();
      await get().putLegacyCredentials([{ deviceId: device.id, commonAuthId: cai.id, uniqueId: 'l', verifierKind: 'hmac', verifier: 'v' }], []);
      const until = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
      await get().lockLegacyCredentials(device.id, until, { type: 'legacy.locked', actor: 'system', deviceId: device.id });
      expect((await get().getLegacyCredentials(device.id))!.lockedUntil).to.deep.equal(until);
      expect(await get().listAuditEvents({ deviceId: device.id, type: 'legacy.locked' })).to.have.length(1);
    });

    it('counts failures per key in fixed windows, with the previous window, and drops older ones', async function () {
      const w = 60_000;
      const t0 = Math.floor(Date.now() / w) * w;
      const k = `k-${randomUUID()}`;
      for (let i = 0; i < 3; i++) await get().countLegacyFailures([k], new Date(t0 - w), w);
      const [a, b] = await get().countLegacyFailures([k, `${k}-other`], new Date(t0), w);
      expect(a).to.deep.equal({ current: 1, previous: 3 });
      expect(b).to.deep.equal({ current: 1, previous: 0 });
      const [later] = await get().countLegacyFailures([k], new Date(t0 + 2 * w), w);
      expect(later).to.deep.equal({ current: 1, previous: 0 });
    });
  });
}
