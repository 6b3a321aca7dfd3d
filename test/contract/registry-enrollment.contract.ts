/**
 * Registry contract, production-line enrollment (issue 6): factory stations (key HMAC lookup,
 * rotation, disabling, scoping to a manufacturer), re-enrollment allowances, station certificates,
 * allowed profiles per manufacturer and durable pending supersessions.
 */
import { createHash, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Registry } from '../../registry/port.js';
import { contractSteps, expectKakuinError, fakeCertificate, issuance, ISSUER_ID, randomSerialHex } from './registry-fixtures.js';

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
      const enabled = await get().updateStation(s.id, { disable: false }, { type: 'station.enabled', actor: 'token:test', details: { stationId: s.id } });
      expect(enabled.disabledAt, 'enabled again').to.equal(undefined);
      expect((await get().findStationByKeyHmac(fresh))?.disabledAt).to.equal(undefined);
      await get().updateStation(s.id, { disable: true }, { type: 'station.disabled', actor: 'token:test', details: { stationId: s.id } });
      await expectKakuinError(get().updateStation(randomUUID(), { disable: true }, { type: 't', actor: 'a' }), 'KAKUIN_E_STATION_NOT_FOUND');
      const quota = await get().updateStation(s.id, { maxIssuances: 5 }, { type: 'station.quota-set', actor: 'token:test' });
      expect(quota.maxIssuances).to.equal(5);
      // A change that does not name `disable` (a quota, a key rotation) leaves a disabled station disabled.
      expect(quota.disabledAt, 'still disabled after a quota change').to.be.instanceOf(Date);
      const newKey = hmac();
      expect((await get().updateStation(s.id, { keyHmac: newKey }, { type: 'station.key-rotated', actor: 'token:test' })).disabledAt, 'still disabled after a key rotation').to.be.instanceOf(Date);
      expect((await get().findStationByKeyHmac(newKey))?.disabledAt).to.be.instanceOf(Date);
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
    it('records a station certificate bound to its station, atomically with its audit event; refuses unknown stations and device-bound records', async function () {
      const mfr = await steps.manufacturer();
      const s = await get().createStation({ manufacturerId: mfr, name: 'line-c', keyHmac: hmac() }, { type: 'station.created', actor: 'token:test' });
      const first = fakeCertificate({ issuerId: ISSUER_ID, profile: 'station' });
      const recorded = await get().recordStationCertificate(s.id, issuance(first, 'token:test'));
      expect(recorded).to.include({ serialHex: first.serialHex, profile: 'station', status: 'good' });
      expect(recorded.deviceId).to.equal(undefined);
      expect(await get().findStationOfCertificate(first.serialHex.toLowerCase())).to.equal(s.id);
      expect((await get().getCertificate(first.serialHex)).profile).to.equal('station');
      const second = fakeCertificate({ issuerId: ISSUER_ID, profile: 'station' });
      await get().recordStationCertificate(s.id, issuance(second, 'token:test'));
      expect((await get().listStationCertificates(s.id)).map((c) => c.serialHex)).to.deep.equal([first.serialHex, second.serialHex]);
      const events = await get().listAuditEvents({ type: 'certificate.issued', limit: 1000 });
      expect(events.filter((e) => e.serialHex === first.serialHex)).to.have.length(1);

      const orphan = fakeCertificate({ issuerId: ISSUER_ID, profile: 'station' });
      await expectKakuinError(get().recordStationCertificate(randomUUID(), issuance(orphan, 'token:test')), 'KAKUIN_E_STATION_NOT_FOUND');
      await expectKakuinError(get().getCertificate(orphan.serialHex), 'KAKUIN_E_CERTIFICATE_NOT_FOUND');
      await expectKakuinError(get().recordStationCertificate(s.id, issuance({ ...fakeCertificate({ issuerId: ISSUER_ID }), serialHex: first.serialHex }, 'token:test')), 'KAKUIN_E_SERIAL_EXISTS');
      const device = await steps.device(mfr);
      const bound = fakeCertificate({ issuerId: ISSUER_ID, deviceId: device.id });
      await expectKakuinError(get().recordStationCertificate(s.id, issuance(bound, 'token:test')), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(get().getCertificate(bound.serialHex), 'KAKUIN_E_CERTIFICATE_NOT_FOUND');
      expect(await get().findStationOfCertificate((await steps.issue()).serialHex)).to.equal(undefined);
      await expectKakuinError(get().listStationCertificates(randomUUID()), 'KAKUIN_E_STATION_NOT_FOUND');
    });

    it('keeps a manufacturer\'s allowed profiles (replaced as a whole, with an audit event); refuses unknown manufacturers and bad lists', async function () {
      const mfr = await steps.manufacturer();
      expect(await get().getManufacturerProfiles(mfr)).to.equal(undefined);
      await get().setManufacturerProfiles(mfr, ['device', 'short-lived'], { type: 'manufacturer.profiles-set', actor: 'token:test', details: { manufacturerId: mfr } });
      expect(await get().getManufacturerProfiles(mfr)).to.deep.equal(['device', 'short-lived']);
      await get().setManufacturerProfiles(mfr, ['short-lived'], { type: 'manufacturer.profiles-set', actor: 'token:test', details: { manufacturerId: mfr } });
      expect(await get().getManufacturerProfiles(mfr)).to.deep.equal(['short-lived']);
      const events = await get().listAuditEvents({ type: 'manufacturer.profiles-set', limit: 1000 });
      expect(events.filter((e) => e.details?.manufacturerId === mfr)).to.have.length(2);
      await expectKakuinError(get().setManufacturerProfiles(randomUUID(), ['device'], { type: 't', actor: 'a' }), 'KAKUIN_E_MANUFACTURER_NOT_FOUND');
      await expectKakuinError(get().setManufacturerProfiles(mfr, [], { type: 't', actor: 'a' }), 'KAKUIN_E_VALIDATION');
      await expectKakuinError(get().setManufacturerProfiles(mfr, [7 as unknown as string], { type: 't', actor: 'a' }), 'KAKUIN_E_VALIDATION');
      expect(await get().getManufacturerProfiles(mfr)).to.deep.equal(['short-lived']);
    });

    it('keeps pending supersessions until cleared, lists only due ones earliest first, and refuses unknown certificates', async function () {
      const a = await steps.issue();
      const b = await steps.issue();
      const t0 = new Date(Math.floor(Date.now() / 1000) * 1000 + 10 * 365 * 86_400_000);
      await get().scheduleSupersede([
        { serialHex: b.serialHex, at: new Date(t0.getTime() + 2000), actor: 'station:x' },
        { serialHex: a.serialHex.toLowerCase(), at: new Date(t0.getTime() + 1000), actor: 'station:y' },
      ]);
      const mine = (list: { serialHex: string }[]) => list.filter((p) => p.serialHex === a.serialHex || p.serialHex === b.serialHex);
      expect(mine(await get().listDueSupersedes(new Date(t0.getTime() + 500), 1000))).to.deep.equal([]);
      expect(mine(await get().listDueSupersedes(new Date(t0.getTime() + 1000), 1000))).to.deep.equal([
        { serialHex: a.serialHex, at: new Date(t0.getTime() + 1000), actor: 'station:y' },
      ]);
      expect(mine(await get().listDueSupersedes(new Date(t0.getTime() + 5000), 1000)).map((p) => p.serialHex)).to.deep.equal([a.serialHex, b.serialHex]);
      await get().clearSupersedes([a.serialHex, randomSerialHex()]);
      expect(mine(await get().listDueSupersedes(new Date(t0.getTime() + 5000), 1000)).map((p) => p.serialHex)).to.deep.equal([b.serialHex]);
      await expectKakuinError(get().scheduleSupersede([
        { serialHex: a.serialHex, at: t0, actor: 'x' }, { serialHex: randomSerialHex(), at: t0, actor: 'x' },
      ]), 'KAKUIN_E_CERTIFICATE_NOT_FOUND');
      expect(mine(await get().listDueSupersedes(new Date(t0.getTime() + 5000), 1000)).map((p) => p.serialHex), 'all or nothing').to.deep.equal([b.serialHex]);
      await get().clearSupersedes([b.serialHex]);
    });
  });
}
