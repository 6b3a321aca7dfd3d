/** Station API key age (management-api/admin-tokens.ts): refused past enrollment.stationKeyMaxAgeDays, counted from the last rotation; 0 never expires. */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { AdminAuthenticator, newStationApiKey, tokenHmac } from '../../management-api/admin-tokens.js';
import type { Registry, Station } from '../../registry/port.js';

const DAY = 86_400_000;

describe('station API key age', function () {
  const pepper = randomBytes(32);
  const key = newStationApiKey();
  const t0 = Date.UTC(2026, 0, 1);
  let station: Station;
  const registry = { findStationByKeyHmac: async (hmac: string) => (hmac === station.keyHmac ? station : undefined) } as unknown as Registry;

  beforeEach(() => {
    station = { id: 's1', manufacturerId: 'm1', name: 'line', keyHmac: tokenHmac(pepper, key), createdAt: new Date(t0) };
  });

  const at = (now: number, maxAgeDays: number) => new AdminAuthenticator(registry, pepper, undefined, { stationKeyMaxAgeMs: maxAgeDays * DAY, now: () => now });
  const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code ?? 'error');

  it('admits the key until maxAge after it was made, then refuses it with KAKUIN_E_STATION_KEY_EXPIRED (Bearer and Basic)', async () => {
    expect((await at(t0 + 364 * DAY, 365).authenticate(`Bearer ${key}`))?.kind).to.equal('station');
    expect(await code(at(t0 + 365 * DAY, 365).authenticate(`Bearer ${key}`))).to.equal('KAKUIN_E_STATION_KEY_EXPIRED');
    const basic = `Basic ${Buffer.from(`s1:${key}`).toString('base64')}`;
    expect(await code(at(t0 + 400 * DAY, 365).authenticateBasic(basic))).to.equal('KAKUIN_E_STATION_KEY_EXPIRED');
    expect(at(t0, 365).stationKeyExpiresAt(station)?.getTime()).to.equal(t0 + 365 * DAY);
  });

  it('counts from the last rotation; 0 days: keys never expire; a wrong key is simply not a caller', async () => {
    station.keyRotatedAt = new Date(t0 + 300 * DAY);
    expect((await at(t0 + 600 * DAY, 365).authenticate(`Bearer ${key}`))?.kind).to.equal('station');
    expect(await code(at(t0 + 700 * DAY, 365).authenticate(`Bearer ${key}`))).to.equal('KAKUIN_E_STATION_KEY_EXPIRED');
    expect((await at(t0 + 5000 * DAY, 0).authenticate(`Bearer ${key}`))?.kind).to.equal('station');
    expect(at(t0, 0).stationKeyExpiresAt(station)).to.equal(undefined);
    expect(await at(t0 + 700 * DAY, 365).authenticate(`Bearer ${newStationApiKey()}`)).to.equal(undefined);
  });

  it('a station that existed before keys expired counts from the upgrade (keyAgeFrom), not from its creation years back', async () => {
    station.keyAgeFrom = new Date(t0 + 1000 * DAY);
    expect((await at(t0 + 1300 * DAY, 365).authenticate(`Bearer ${key}`))?.kind).to.equal('station');
    expect(await code(at(t0 + 1365 * DAY, 365).authenticate(`Bearer ${key}`))).to.equal('KAKUIN_E_STATION_KEY_EXPIRED');
    // A rotation after the upgrade counts from the rotation.
    station.keyRotatedAt = new Date(t0 + 1200 * DAY);
    expect(at(t0, 365).stationKeyExpiresAt(station)?.getTime()).to.equal(t0 + 1565 * DAY);
  });
});
