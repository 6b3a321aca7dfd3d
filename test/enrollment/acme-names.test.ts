/**
 * The names an ACME account may get (enrollment/acme/eab.ts): EAB name patterns, where `*` stands
 * inside one label only, and the HMAC key derived from the pepper (never stored).
 */
import { expect } from 'chai';
import { checkNamePattern, eabHmacKey, nameAllowed } from '../../enrollment/acme/index.js';

describe('ACME EAB name patterns', function () {
  const patterns = ['broker-*.example.internal', 'mqtt.example.internal', '*.edge.example.internal', '10.0.0.7'];

  it('allows a * inside one label, and exact names and addresses', function () {
    expect(nameAllowed(patterns, 'broker-1.example.internal')).to.equal(true);
    expect(nameAllowed(patterns, 'BROKER-eu-2.example.internal')).to.equal(true);
    expect(nameAllowed(patterns, 'mqtt.example.internal')).to.equal(true);
    expect(nameAllowed(patterns, 'x.edge.example.internal')).to.equal(true);
    expect(nameAllowed(patterns, '10.0.0.7')).to.equal(true);
  });

  it('never lets a * span a dot, match nothing, or reach a neighbouring domain', function () {
    expect(nameAllowed(patterns, 'a.broker-1.example.internal')).to.equal(false);
    expect(nameAllowed(patterns, 'broker-.example.internal')).to.equal(false);
    expect(nameAllowed(patterns, 'broker-1.example.internal.evil')).to.equal(false);
    expect(nameAllowed(patterns, 'broker-1xexample.internal')).to.equal(false);
    expect(nameAllowed(patterns, 'a.b.edge.example.internal')).to.equal(false);
    expect(nameAllowed(patterns, '10.0.0.8')).to.equal(false);
  });

  it('allows a wildcard identifier only through the same wildcard pattern', function () {
    expect(nameAllowed(patterns, '*.edge.example.internal')).to.equal(true);
    expect(nameAllowed(patterns, '*.example.internal'), 'broker-*.example.internal does not cover every name under example.internal').to.equal(false);
  });

  it('refuses patterns that are not DNS names with * in labels or IP addresses', function () {
    expect(checkNamePattern(' Broker-*.Example.Internal ')).to.equal('broker-*.example.internal');
    for (const bad of ['*', 'broker**.example.internal', 'no_underscore.example.internal', 'single', '-x.example.internal', 'a..b']) {
      expect(() => checkNamePattern(bad), bad).to.throw().with.property('code', 'KAKUIN_E_VALIDATION');
    }
  });

  it('derives a different 256-bit HMAC key per key id and per pepper', function () {
    const p1 = Buffer.alloc(32, 1);
    const p2 = Buffer.alloc(32, 2);
    expect(eabHmacKey(p1, 'kid-a')).to.have.length(32);
    expect(eabHmacKey(p1, 'kid-a').equals(eabHmacKey(p1, 'kid-a'))).to.equal(true);
    expect(eabHmacKey(p1, 'kid-a').equals(eabHmacKey(p1, 'kid-b'))).to.equal(false);
    expect(eabHmacKey(p1, 'kid-a').equals(eabHmacKey(p2, 'kid-a'))).to.equal(false);
  });
});
