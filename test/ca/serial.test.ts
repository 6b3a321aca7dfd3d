/** Certificate serials (ca/serial.ts): 16 octets, a millisecond time prefix, 80 random bits. */
import { expect } from 'chai';
import { newCertificateSerial, serialToHex } from '../../ca/serial.js';

describe('certificate serial numbers', function () {
  it('are 16 octets, positive without a leading zero octet, and start with the issuance time', function () {
    const now = Date.UTC(2026, 10, 24, 10, 0, 0, 123);
    for (let i = 0; i < 1000; i++) {
      const s = newCertificateSerial(now);
      expect(s).to.have.length(16);
      expect(s[0]).to.be.within(0x01, 0x7f);
      expect(s.readUIntBE(0, 6)).to.equal(now);
    }
  });

  it('order by time (as hex strings too), and differ within one millisecond', function () {
    const t = Date.now();
    const earlier = serialToHex(newCertificateSerial(t));
    const later = serialToHex(newCertificateSerial(t + 1));
    expect(earlier < later).to.equal(true);
    const same = new Set(Array.from({ length: 20_000 }, () => serialToHex(newCertificateSerial(t))));
    expect(same.size).to.equal(20_000);
  });

  it('carry 80 random bits after the time: every bit position of the random part varies', function () {
    const ones = new Array(80).fill(0);
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const r = newCertificateSerial(0x019a_0000_0000).subarray(6);
      for (let bit = 0; bit < 80; bit++) if ((r[bit >> 3] >> (7 - (bit & 7))) & 1) ones[bit]++;
    }
    // Each bit is set about half the time (binomial, n = 4000: ±6 sigma is ±190).
    for (const count of ones) expect(count).to.be.within(n / 2 - 190, n / 2 + 190);
  });

  it('clamp a clock outside 2004 … 6429 so the integer stays 16 octets and positive', function () {
    const early = newCertificateSerial(0);
    expect(early[0]).to.equal(0x01);
    expect(early.readUIntBE(0, 6)).to.equal(2 ** 40);
    const late = newCertificateSerial(2 ** 50);
    expect(late[0]).to.equal(0x7f);
  });
});
