import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { FeedEntry } from '../../../registry/port.js';
import {
  generateAuthSecret, hmacVerifier, LegacyKillSwitch, LegacyTokenSigner, parseImport, scryptVerifier, secretProblem, verifySecret, withinHours,
} from '../../../gateway-auth/legacy/index.js';

const pepper = Buffer.alloc(32, 1);
const quiet = { info() {}, warn() {}, error() {} };

describe('legacy tokens', function () {
  const signer = new LegacyTokenSigner(pepper);
  const id = randomUUID();

  it('round-trips device, generation and expiry (whole seconds)', function () {
    const exp = new Date(Date.now() + 3600_000);
    const claims = signer.verify(signer.issue(id, 7, exp), Date.now());
    expect(claims).to.deep.equal({ deviceId: id, generation: 7, expiresAt: new Date(Math.floor(exp.getTime() / 1000) * 1000) });
  });

  it('refuses expired, tampered, truncated and foreign-key tokens', function () {
    const now = Date.now();
    const good = signer.issue(id, 1, new Date(now + 60_000));
    expect(signer.verify(signer.issue(id, 1, new Date(now - 1)), now)).to.equal(undefined);
    const parts = good.split('.');
    expect(signer.verify([parts[0], parts[1], '2', ...parts.slice(3)].join('.'), now), 'generation changed').to.equal(undefined);
    expect(signer.verify(good.slice(0, -1), now)).to.equal(undefined);
    expect(signer.verify(new LegacyTokenSigner(Buffer.alloc(32, 2)).issue(id, 1, new Date(now + 60_000)), now)).to.equal(undefined);
    expect(signer.verify('x'.repeat(10_000), now)).to.equal(undefined);
    expect(signer.verify(undefined as unknown as string, now)).to.equal(undefined);
  });
});

describe('legacy secrets', function () {
  it('generates ≥ 128-bit secrets and verifies HMAC and scrypt verifiers in constant time', async function () {
    const s = generateAuthSecret();
    expect(Buffer.from(s, 'base64url').length * 8).to.be.at.least(128);
    expect(await verifySecret(pepper, 'hmac', hmacVerifier(pepper, s), s)).to.equal(true);
    expect(await verifySecret(pepper, 'hmac', hmacVerifier(pepper, s), `${s}x`)).to.equal(false);
    const v = await scryptVerifier(pepper, 'Imported-Secret-42x');
    expect(v).to.match(/^scrypt\$15\$8\$1\$[0-9a-f]{64}$/);
    expect(await scryptVerifier(pepper, 'Imported-Secret-42x'), 'deterministic: shared secrets are detectable').to.equal(v);
    expect(await scryptVerifier(Buffer.alloc(32, 9), 'Imported-Secret-42x'), 'salted by the pepper').to.not.equal(v);
    expect(await verifySecret(pepper, 'scrypt', v, 'Imported-Secret-42x')).to.equal(true);
    expect(await verifySecret(pepper, 'scrypt', v, 'Imported-Secret-43x')).to.equal(false);
  });

  it('names factory-default and weak secrets', function () {
    const row = { uniqueId: '490154203237518', commonAuthId: 'meters' };
    expect(secretProblem('admin', row)).to.equal('factory default');
    expect(secretProblem('490154203237518', row)).to.equal('factory default');
    expect(secretProblem('Password', row)).to.equal('factory default');
    expect(secretProblem('short1', row)).to.match(/^weak/);
    expect(secretProblem('aaaaaaaaaaaaaaaa', row)).to.match(/^weak/);
    expect(secretProblem('abcabcabcabc', row)).to.match(/^weak/);
    expect(secretProblem('x490154203237518y', row)).to.match(/^weak/);
    expect(secretProblem('0123456789', row)).to.match(/^weak/);
    expect(secretProblem('Burned-In-Secret-7731', row)).to.equal(undefined);
  });

  it('parses JSON and CSV imports and names malformed rows', function () {
    const csv = 'deviceId,commonAuthId,uniqueId,authSecret\r\nd1,c,u1,s1\n\nd2,c,u2,s2\n';
    expect(parseImport(csv, 'csv')).to.deep.equal([
      { deviceId: 'd1', commonAuthId: 'c', uniqueId: 'u1', authSecret: 's1' },
      { deviceId: 'd2', commonAuthId: 'c', uniqueId: 'u2', authSecret: 's2' },
    ]);
    expect(parseImport({ credentials: [{ deviceId: 'd', commonAuthId: 'c', uniqueId: 'u', authSecret: 's' }] }, 'json')).to.have.length(1);
    expect(() => parseImport([{ deviceId: 'd', commonAuthId: 'c', uniqueId: 7, authSecret: 's' }], 'json')).to.throw(/row 1: uniqueId/);
    expect(() => parseImport('a,b\n1,2', 'csv')).to.throw(/header/);
    expect(() => parseImport([], 'json')).to.throw(/no rows/);
  });

  it('reads usual-hour windows, also across midnight', function () {
    expect(withinHours('06-22', new Date('2026-01-01T12:00:00Z'))).to.equal(true);
    expect(withinHours('06-22', new Date('2026-01-01T03:00:00Z'))).to.equal(false);
    expect(withinHours('22-06', new Date('2026-01-01T03:00:00Z'))).to.equal(true);
    expect(withinHours('22-06', new Date('2026-01-01T12:00:00Z'))).to.equal(false);
  });
});

describe('legacy kill switch', function () {
  function entry(seq: number, fields: Partial<FeedEntry>): FeedEntry {
    return { seq, at: new Date(), kind: 'device', status: 'active', ...fields } as FeedEntry;
  }

  it('follows device status and credential generations; ignores certificate entries and unknown kinds', async function () {
    const a = randomUUID();
    const b = randomUUID();
    const ks = new LegacyKillSwitch({
      registry: {
        readFeed: async () => [], latestFeedSeq: async () => 0,
        listLegacyCredentialStates: async () => [{ deviceId: a, generation: 1, deviceStatus: 'registered' }, { deviceId: b, generation: 2, deviceStatus: 'suspended' }],
      },
      logger: quiet, statusGraceMs: 10_000,
    });
    await ks.start();
    try {
      expect(ks.isFresh()).to.equal(true);
      expect(ks.allows(a, 1)).to.equal(true);
      expect(ks.allows(a, 2)).to.equal(false);
      expect(ks.allows(b, 2), 'suspended at load').to.equal(false);
      ks.apply([entry(1, { kind: 'device', deviceId: b, status: 'active', previousStatus: 'suspended' })]);
      expect(ks.allows(b, 2)).to.equal(true);
      ks.apply([entry(2, { kind: 'certificate', deviceId: a, serialHex: 'AA', issuerId: 'device', status: 'revoked' })]);
      ks.apply([entry(3, { kind: 'something-new' as FeedEntry['kind'], deviceId: a, status: 'deleted' as FeedEntry['status'] })]);
      expect(ks.allows(a, 1), 'certificate and unknown entries change nothing').to.equal(true);
      ks.apply([entry(4, { kind: 'legacy-credentials', deviceId: a, status: 'enabled', generation: 3 })]);
      expect(ks.allows(a, 1)).to.equal(false);
      expect(ks.allows(a, 3)).to.equal(true);
      ks.apply([entry(5, { kind: 'legacy-credentials', deviceId: a, status: 'deleted', generation: 4 })]);
      expect(ks.allows(a, 3)).to.equal(false);
      ks.apply([entry(6, { kind: 'device', deviceId: b, status: 'revoked', previousStatus: 'active' })]);
      expect(ks.allows(b, 2)).to.equal(false);
    } finally {
      await ks.stop();
    }
  });
});
