/** Background OCSP refreshes are spread by serial over a quarter of the validity, never later than half-life. */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { refreshPoint } from '../../ocsp-responder/cached-response.js';

describe('OCSP refresh points: spread, not bunched', () => {
  it('responses signed together fall due at points spread evenly between 1/4 and 1/2 of their validity', () => {
    const buckets = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      const p = refreshPoint(randomBytes(16).toString('hex').toUpperCase());
      expect(p).to.be.at.least(0.25).and.below(0.5);
      buckets[Math.floor((p - 0.25) * 16)]++;
    }
    // Each sixteenth-of-the-validity slice takes about a quarter of the load, none of it all.
    for (const b of buckets) expect(b).to.be.within(700, 1300);
  });
});
