/**
 * The credentials of people (issue 21 item 2): TOTP against RFC 6238 Appendix B, the ±1 step
 * window, base32 against RFC 4648 §10, scrypt hashes that carry their parameters, and TOTP
 * secrets that do not open under another pepper or another user's name.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { hashPassword, verifyPassword } from '../../management-api/passwords.js';
import { base32, hotp, matchTotp, otpauthUri, totp, totpStep, TotpSecretBox } from '../../management-api/totp.js';
import { lockedUntil, cookieValue } from '../../management-api/logins.js';
import { vectorPath } from '../support/index.js';

interface Rfc6238 { seedAscii: string; digits: number; vectors: { time: number; step: string; totp: string }[] }

describe('user credentials: TOTP, passwords, sealed secrets', function () {
  this.timeout(30_000);
  const rfc = JSON.parse(readFileSync(vectorPath('rfc6238-sha1.json'), 'utf8')) as Rfc6238;
  const seed = Buffer.from(rfc.seedAscii, 'ascii');

  it('computes every SHA-1 row of RFC 6238 Appendix B (time step and 8-digit code)', function () {
    expect(rfc.vectors).to.have.length(6);
    for (const v of rfc.vectors) {
      expect(totpStep(v.time * 1000).toString(16).toUpperCase().padStart(16, '0'), `T at ${v.time}`).to.equal(v.step);
      expect(totp(seed, v.time * 1000, rfc.digits), `TOTP at ${v.time}`).to.equal(v.totp);
    }
  });

  it('computes the RFC 4226 Appendix D HOTP values (6 digits, counters 0 to 9)', function () {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expect(expected.map((_, i) => hotp(seed, i))).to.deep.equal(expected);
  });

  it('accepts a 6-digit code of the step before, now and after, names the step, and refuses the rest', function () {
    const secret = randomBytes(20);
    const now = 1_765_000_000_000;
    const step = totpStep(now);
    for (const d of [-1, 0, 1]) expect(matchTotp(secret, hotp(secret, step + d), now)).to.equal(step + d);
    expect(matchTotp(secret, hotp(secret, step - 2), now)).to.equal(undefined);
    expect(matchTotp(secret, hotp(secret, step + 2), now)).to.equal(undefined);
    expect(matchTotp(secret, '12345', now)).to.equal(undefined);
    expect(matchTotp(secret, `${hotp(secret, step)} `, now)).to.equal(undefined);
  });

  it('writes base32 as RFC 4648 §10 does (without padding) and an otpauth URI apps read', function () {
    const cases: [string, string][] = [['', ''], ['f', 'MY'], ['fo', 'MZXQ'], ['foo', 'MZXW6'], ['foob', 'MZXW6YQ'], ['fooba', 'MZXW6YTB'], ['foobar', 'MZXW6YTBOI']];
    for (const [input, out] of cases) expect(base32(Buffer.from(input))).to.equal(out);
    expect(otpauthUri(seed, 'alice')).to.equal('otpauth://totp/kakuin:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=kakuin&algorithm=SHA1&digits=6&period=30');
  });

  it('stores scrypt hashes with their parameters; a hash of a lower cost still verifies; a wrong password does not', async function () {
    const low = await hashPassword('correct horse battery', 10);
    const high = await hashPassword('correct horse battery', 12);
    expect(low).to.match(/^scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    expect(high).to.match(/^scrypt\$ln=12,r=8,p=1\$/);
    expect(low.split('$')[2], 'a salt of its own').to.not.equal(high.split('$')[2]);
    expect(await verifyPassword('correct horse battery', low)).to.equal(true);
    expect(await verifyPassword('correct horse battery', high)).to.equal(true);
    expect(await verifyPassword('correct horse batterY', low)).to.equal(false);
    // The default cost needs more than Node's default scrypt memory limit (32 MiB).
    expect(await verifyPassword('x', await hashPassword('correct horse battery', 15))).to.equal(false);
  });

  it('a sealed TOTP secret opens under the same pepper and name only', function () {
    const pepper = randomBytes(32);
    const secret = randomBytes(20);
    const sealed = new TotpSecretBox(pepper).seal(secret, 'alice');
    expect(sealed.includes(secret)).to.equal(false);
    expect(new TotpSecretBox(pepper).open(sealed, 'alice').equals(secret)).to.equal(true);
    expect(() => new TotpSecretBox(pepper).open(sealed, 'mallory')).to.throw().with.property('code', 'KAKUIN_E_INTERNAL');
    expect(() => new TotpSecretBox(randomBytes(32)).open(sealed, 'alice')).to.throw().with.property('code', 'KAKUIN_E_INTERNAL');
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1] ^= 1;
    expect(() => new TotpSecretBox(pepper).open(flipped, 'alice')).to.throw().with.property('code', 'KAKUIN_E_INTERNAL');
  });

  it('locks a key from its free failures on, doubling from 30 s up to 15 min; reads one cookie of a header', function () {
    expect(lockedUntil(4, 1000, 5)).to.equal(undefined);
    expect(lockedUntil(5, 1000, 5)).to.equal(31_000);
    expect(lockedUntil(6, 1000, 5)).to.equal(61_000);
    expect(lockedUntil(30, 1000, 5)).to.equal(1000 + 15 * 60_000);
    expect(cookieValue('a=1; __Host-kakuin_session=abc; b=2', '__Host-kakuin_session')).to.equal('abc');
    expect(cookieValue('kakuin_session=abc', '__Host-kakuin_session')).to.equal(undefined);
    expect(cookieValue(undefined, 'x')).to.equal(undefined);
  });
});
