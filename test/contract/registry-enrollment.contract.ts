/**
 * Registry contract, production-line enrollment (issue 6): factory stations (key HMAC lookup,
 * rotation, disabling, scoping to a manufacturer) and re-enrollment allowances.
 */
import { createHash, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Registry } from '../../registry/port.js';
import { contractSteps, expectKakuinError } from './registry-fixtures.js';

const hmac = () => createHash('sha256').update(randomUUID()).digest('hex');

export function runEnrollmentContract(get: () => Registry): void {
  const steps = contractSteps(get);

  describe('production-line enrollment', function () {
    it('creates stations per manufacturer with their audit event; finds them by key HMAC; refuses duplicates and unknown manufacturers', async function () {
      const mfr = await steps.manufacturer();
      const key = hmac();
      const s = await get().createStation({ manufacturerId: mfr, name: 'line-1', keyHmac: key }, { type: 'station.created', actor: 'token:test' });
      expect(s).to.include({ manufacturerId: mfr, name: 'line-1', keyHmac: key });
      expect(s.disabledAt).to.equal(undefined);
      expect(await get().findStationByKeyHmac(key)).to.deep.equal(s);
      expect(await get().getStation(s.id)).to.deep.equal(s);
      expect((await get().listStations(mfr)).map((x) => x.id)).to.deep.equal([s.id]);
      const events = await get().listAuditEvents({ type: 'station.created', limit: 1000 });
      expect(events.some((e) => e.details?.stationId === s.id)).to.equal(true);
      await expectKakuinError(get().createStation({ manufacturerId: mfr, name: 'line-1', keyHmac: hmac() }, { type: 't', actor: 'a' }), 'KAKUIN_E_STATION_EXISTS');
      await expectKakuinError(get().createStation({ manufacturerId: randomUUID(), name: 'x', keyHmac: hmac() }, { type: 't', actor: 'a' }), 'KAKUIN_E_MANUFACTURER_NOT_FOUND');
      await expectKakuinError(get().createStation({ manufacturerId: mfr, name: 'x', keyHmac: 'nothex' }, { type: 't', actor: 'a' }), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(get().getStation(randomUUID()), 'KAKUIN_E_STATION_NOT_FOUND');
      expect(await get().findStationByKeyHmac(hmac())).to.equal(undefined);
    });

    it('rotates a key (the old HMAC finds nothing) and disables a station, each with its audit event', async function () {
      const mfr = await steps.manufacturer();
      const old = hmac();
      const s = await get().createStation({ manufacturerId: mfr, name: 'line-r', keyHmac: old }, { type: 'station.created', actor: 'token:test' });
      const fresh = hmac();
      const rotated = await get().updateStation(s.id, { keyHmac: fresh }, { type: 'station.key-rotated', actor: 'token:test', details: { stationId: s.id } });
      expect(rotated.keyHmac).to.equal(fresh);
      expect(rotated.keyRotatedAt).to.be.instanceOf(Date);
      expect(await get().findStationByKeyHmac(old)).to.equal(undefined);
      const disabled = await get().updateStation(s.id, { disable: true }, { type: 'station.disabled', actor: 'token:test', details: { stationId: s.id } });
      expect(disabled.disabledAt).to.be.instanceOf(Date);
      expect((await get().findStationByKeyHmac(fresh))?.disabledAt).to.be.instanceOf(Date);
      await expectKakuinError(get().updateStation(randomUUID(), { disable: true }, { type: 't', actor: 'a' }), 'KAKUIN_E_STATION_NOT_FOUND');
      expect((await get().updateStation(s.id, { maxIssuances: 5 }, { type: 'station.quota-set', actor: 'token:test' })).maxIssuances).to.equal(5);
      expect((await get().updateStation(s.id, { maxIssuances: null }, { type: 'station.quota-set', actor: 'token:test' })).maxIssuances).to.equal(undefined);
      await expectKakuinError(get().updateStation(s.id, { maxIssuances: -1 }, { type: 't', actor: 'a' }), 'KAKUIN_E_VALIDATION');
      expect(await get().countStationIssuances(s.id)).to.equal(0);
      await get().appendAuditEvent({ type: 'certificate.issued', actor: `station:${s.id}`, serialHex: '01' });
      expect(await get().countStationIssuances(s.id)).to.equal(1);
    });

    it('keeps one re-enrollment allowance per device, replaced by a newer one and consumed once', async function () {
      const mfr = await steps.manufacturer();
      const device = await steps.device(mfr);
      expect(await get().getReenrollmentAllowance(device.id)).to.equal(undefined);
      const until = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000);
      await get().allowReenrollment(device.id, until, { type: 'enrollment.reenrollment-allowed', actor: 'token:test', deviceId: device.id });
      const later = new Date(until.getTime() + 3_600_000);
      await get().allowReenrollment(device.id, later, { type: 'enrollment.reenrollment-allowed', actor: 'token:test', deviceId: device.id });
      expect((await get().getReenrollmentAllowance(device.id))?.getTime()).to.equal(later.getTime());
      expect(await get().consumeReenrollmentAllowance(device.id)).to.equal(true);
      expect(await get().consumeReenrollmentAllowance(device.id)).to.equal(false);
      expect(await get().getReenrollmentAllowance(device.id)).to.equal(undefined);
      await expectKakuinError(get().allowReenrollment(randomUUID(), until, { type: 't', actor: 'a' }), 'KAKUIN_E_DEVICE_NOT_FOUND');
    });
  });
}
