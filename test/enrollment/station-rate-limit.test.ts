import { expect } from 'chai';
import { hasCode } from '../../errors/index.js';
import { StationRateLimit } from '../../enrollment/station-rate-limit.js';

describe('enrollment: per-station rate limit', () => {
  it('allows a burst, then paces each station at its rate, independently of other stations', () => {
    let now = 0;
    const limit = new StationRateLimit(2, 3, () => now);
    for (let i = 0; i < 3; i++) limit.take('a');
    let refused: unknown;
    try {
      limit.take('a');
    } catch (e) {
      refused = e;
    }
    expect(hasCode(refused, 'KAKUIN_E_STATION_RATE_LIMITED')).to.equal(true);
    limit.take('b');
    now += 500;
    limit.take('a');
    expect(() => limit.take('a')).to.throw(/at most 2 devices per second/);
  });

  it('is off at 0 per second', () => {
    const limit = new StationRateLimit(0, 1);
    for (let i = 0; i < 100; i++) limit.take('a');
  });
});
