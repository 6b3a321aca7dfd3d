/** The reads the items of one bulk batch share (enrollment/shared-reads.ts): the manufacturer's allowed profiles, the station's quota. */
import { expect } from 'chai';
import type { DeviceCertificateIssuer } from '../../ca/issuance.js';
import type { RevocationService } from '../../ca/revocation.js';
import { EnrollmentService } from '../../enrollment/enrollment-service.js';
import { SharedReads } from '../../enrollment/shared-reads.js';
import { StationQuota } from '../../enrollment/station-quota.js';
import type { Registry, Station } from '../../registry/port.js';

describe('enrollment shared reads', function () {
  let profiles: string[] | undefined;
  let reads: number;
  let failNext: boolean;
  let service: EnrollmentService;

  beforeEach(function () {
    profiles = ['device', 'gateway'];
    reads = 0;
    failNext = false;
    const registry = {
      getManufacturerProfiles: async () => {
        reads++;
        if (failNext) {
          failNext = false;
          throw new Error('registry unavailable');
        }
        return profiles;
      },
      listDueSupersedes: async () => [],
      clearSupersedes: async () => undefined,
    } as unknown as Registry;
    const issuer = { profileNames: () => ['device', 'gateway', 'sensor'] } as unknown as DeviceCertificateIssuer;
    service = new EnrollmentService(registry, issuer, {} as RevocationService, { overlapHours: 0, sweepIntervalMs: 3_600_000 });
  });

  afterEach(function () {
    service.close();
  });

  it('reads the allowed profiles once for all the items of one batch, and again for the next batch', async function () {
    const batch = new SharedReads();
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => service.allowedProfile('m1', i % 2 === 0 ? 'device' : 'gateway', batch)));
    expect(answers.filter((a) => a === 'gateway')).to.have.length(25);
    expect(reads).to.equal(1);
    profiles = ['device'];
    // The change applies from the next batch on.
    expect(await service.allowedProfile('m1', 'gateway', batch)).to.equal('gateway');
    const next = new SharedReads();
    await service.allowedProfile('m1', 'gateway', next).then(() => expect.fail('gateway is no longer allowed'), (e: { code?: string }) => {
      expect(e.code).to.equal('KAKUIN_E_PROFILE_NOT_ALLOWED');
    });
    expect(reads).to.equal(2);
  });

  it('without a batch every call reads; a failed read is not kept for the batch', async function () {
    await service.allowedProfile('m1', 'device');
    await service.allowedProfile('m1', 'device');
    expect(reads).to.equal(2);
    const batch = new SharedReads();
    failNext = true;
    await service.allowedProfile('m1', 'device', batch).then(() => expect.fail('the read failed'), (e: Error) => expect(e.message).to.equal('registry unavailable'));
    expect(await service.allowedProfile('m1', 'gateway', batch)).to.equal('gateway');
    expect(await service.allowedProfile('m1', 'gateway', batch)).to.equal('gateway');
    expect(reads).to.equal(4);
  });

  it('reads the station (its quota) once per batch; the issued count is read per item, so the quota holds', async function () {
    let stationReads = 0;
    let countReads = 0;
    let issued = 0;
    const station = { id: 's1', maxIssuances: 3 } as unknown as Station;
    const registry = {
      getStation: async () => {
        stationReads++;
        return station;
      },
      countStationIssuances: async () => {
        countReads++;
        return issued;
      },
    } as unknown as Registry;
    const quota = new StationQuota(registry);
    const batch = new SharedReads();
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      await quota.reserve('s1', batch.stations).then((release) => {
        issued++;
        release();
        outcomes.push('ok');
      }, (e: { code?: string }) => outcomes.push(e.code ?? 'error'));
    }
    expect(outcomes).to.deep.equal(['ok', 'ok', 'ok', 'KAKUIN_E_STATION_QUOTA_EXHAUSTED', 'KAKUIN_E_STATION_QUOTA_EXHAUSTED']);
    expect(stationReads).to.equal(1);
    expect(countReads).to.equal(5);
    await quota.reserve('s1').catch(() => undefined);
    expect(stationReads).to.equal(2);
  });
});
