/**
 * Registry contract, paging (issue 13): findDevices `afterId` and ListPage (`afterKey`, `limit`)
 * on stations, station certificates and admin tokens walk a list in its stable order, each item
 * once, and refuse a cursor that names nothing; and the admin-token lifecycle (expiry, revocation
 * with its audit event, last use).
 */
import { createHash, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { ListPage, Registry } from '../../registry/port.js';
import { contractSteps, expectKakuinError, fakeCertificate, issuance, ISSUER_ID, randomKeyHash } from './registry-fixtures.js';

const hmac = () => createHash('sha256').update(randomUUID()).digest('hex');

/** Every item, following the cursor `n` at a time. */
async function walk<T>(list: (page: ListPage) => Promise<T[]>, keyOf: (t: T) => string, n: number): Promise<string[]> {
  const seen: string[] = [];
  let afterKey: string | undefined;
  for (let i = 0; i < 100; i++) {
    const page = await list({ afterKey, limit: n });
    seen.push(...page.map(keyOf));
    if (page.length < n) return seen;
    afterKey = keyOf(page[page.length - 1]);
  }
  throw new Error('paging did not end');
}

export function runPagingContract(get: () => Registry): void {
  const steps = contractSteps(get);

  describe('paging and admin-token lifecycle', function () {
    it('pages through devices after a device id, each once, with the filters applied', async function () {
      const mfr = await steps.manufacturer();
      const other = await steps.manufacturer();
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await steps.device(mfr)).id);
        await steps.device(other);
      }
      const seen: string[] = [];
      let afterId: string | undefined;
      for (;;) {
        const page = await get().findDevices({ manufacturerId: mfr, afterId, limit: 3 });
        seen.push(...page.map((d) => d.id));
        if (page.length < 3) break;
        afterId = page[page.length - 1].id;
      }
      expect(seen).to.deep.equal(ids);
      expect(await get().findDevices({ manufacturerId: mfr, afterId: ids[6] })).to.deep.equal([]);
      await expectKakuinError(get().findDevices({ afterId: 'dev_no-such-device' }), 'KAKUIN_E_VALIDATION');
    });

    it('pages through manufacturers, stations, station certificates and admin tokens; refuses a cursor that names nothing', async function () {
      const before = (await get().listManufacturers()).map((m) => m.id);
      const mfr = await steps.manufacturer();
      const more = [await steps.manufacturer(), await steps.manufacturer()];
      expect(await walk((p) => get().listManufacturers(p), (m) => m.id, 2)).to.deep.equal([...before, mfr, ...more]);
      await expectKakuinError(get().listManufacturers({ afterKey: randomUUID() }), 'KAKUIN_E_VALIDATION');
      const stations: string[] = [];
      for (let i = 0; i < 5; i++) {
        stations.push((await get().createStation({ manufacturerId: mfr, name: `line-${i}`, keyHmac: hmac() }, { type: 'station.created', actor: 'token:test' })).id);
      }
      expect(await walk((p) => get().listStations(mfr, p), (s) => s.id, 2)).to.deep.equal(stations);
      expect((await get().listStations(mfr)).map((s) => s.id)).to.deep.equal(stations);
      await expectKakuinError(get().listStations(mfr, { afterKey: randomUUID() }), 'KAKUIN_E_VALIDATION');

      const serials: string[] = [];
      for (let i = 0; i < 4; i++) {
        const c = fakeCertificate({ issuerId: ISSUER_ID, profile: 'station' });
        await get().recordStationCertificate(stations[0], issuance(c, 'token:test'));
        serials.push(c.serialHex);
      }
      // A certificate of another station is no cursor for this one.
      const foreign = fakeCertificate({ issuerId: ISSUER_ID, profile: 'station' });
      await get().recordStationCertificate(stations[1], issuance(foreign, 'token:test'));
      expect(await walk((p) => get().listStationCertificates(stations[0], p), (c) => c.serialHex, 3)).to.deep.equal(serials);
      await expectKakuinError(get().listStationCertificates(stations[0], { afterKey: foreign.serialHex }), 'KAKUIN_E_VALIDATION');

      const names = ['t-a', 't-b', 't-c', 't-d', 't-e'];
      for (const name of names) await get().createAdminToken({ name, tokenHmac: randomKeyHash(), role: 'admin' });
      expect(await walk((p) => get().listAdminTokens(p), (t) => t.name, 2)).to.deep.equal(names);
      await expectKakuinError(get().listAdminTokens({ afterKey: 'nobody' }), 'KAKUIN_E_VALIDATION');
    });

    it('keeps a token\'s expiry, revokes it once with its audit event, and records its last use', async function () {
      const expiresAt = new Date(Date.now() + 86_400_000);
      const h = randomKeyHash();
      const created = await get().createAdminToken({ name: 'ci-bot', tokenHmac: h, role: 'admin', expiresAt }, { type: 'token.created', actor: 'cli', details: { name: 'ci-bot' } });
      expect(created.expiresAt?.getTime()).to.equal(expiresAt.getTime());
      expect((await get().findAdminTokenByHmac(h))?.expiresAt?.getTime()).to.equal(expiresAt.getTime());
      expect((await get().listAuditEvents({ type: 'token.created', limit: 1000 })).some((e) => e.details?.name === 'ci-bot')).to.equal(true);
      // A duplicate name writes neither the token nor its event.
      const eventsBefore = (await get().listAuditEvents({ type: 'token.created', limit: 1000 })).length;
      await expectKakuinError(get().createAdminToken({ name: 'ci-bot', tokenHmac: randomKeyHash(), role: 'admin' }, { type: 'token.created', actor: 'cli' }), 'KAKUIN_E_TOKEN_EXISTS');
      expect((await get().listAuditEvents({ type: 'token.created', limit: 1000 })).length).to.equal(eventsBefore);

      const used = new Date(Date.now() - 1000);
      await get().touchAdminToken('ci-bot', used);
      await get().touchAdminToken('ci-bot', new Date(used.getTime() - 60_000)); // an older use does not move it back
      expect((await get().findAdminTokenByHmac(h))?.lastUsedAt?.getTime()).to.equal(used.getTime());

      const at = new Date();
      const revoked = await get().revokeAdminToken('ci-bot', at, { type: 'token.revoked', actor: 'token:alice', details: { name: 'ci-bot' } });
      expect(revoked.disabledAt?.getTime()).to.equal(at.getTime());
      expect((await get().findAdminTokenByHmac(h))?.disabledAt?.getTime()).to.equal(at.getTime());
      expect((await get().listAuditEvents({ type: 'token.revoked', actor: 'token:alice', limit: 1000 })).map((e) => e.details?.name)).to.deep.equal(['ci-bot']);
      await expectKakuinError(get().revokeAdminToken('ci-bot', new Date(), { type: 'token.revoked', actor: 'cli' }), 'KAKUIN_E_TOKEN_STATE');
      await expectKakuinError(get().revokeAdminToken('nobody', new Date(), { type: 'token.revoked', actor: 'cli' }), 'KAKUIN_E_TOKEN_NOT_FOUND');
      expect((await get().listAuditEvents({ type: 'token.revoked', limit: 1000 }))).to.have.length(1);
    });
  });
}
