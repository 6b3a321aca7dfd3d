/**
 * The canonical encoding the audit hash chains rest on (registry/records/audit-chain.ts): RFC 8785
 * JSON Canonicalization, checked against the RFC's own examples (test/vectors/rfc8785/), and the
 * link rule as docs/audit-trail.md spells it out, recomputed here by hand.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { GENESIS_PREV, jcs, linkAuditEvent } from '../../registry/records/index.js';
import { vectorPath } from '../support/index.js';

const vector = (name: string) => readFileSync(vectorPath('rfc8785', name), 'utf8');

describe('RFC 8785 JSON canonicalization of audit events', function () {
  it('§3.2.2: numbers, string escapes and literals encode as the RFC prints them', () => {
    expect(jcs(JSON.parse(vector('section-3.2.2-input.json')))).to.equal(vector('section-3.2.2-output.json'));
  });

  it('§3.2.3: properties sort by UTF-16 code units (an emoji before a Hebrew letter)', () => {
    expect(jcs(JSON.parse(vector('section-3.2.3-input.json')))).to.equal(vector('section-3.2.3-output.json'));
  });

  it('Appendix B: each IEEE 754 double serialises as the RFC lists it', () => {
    const rows = JSON.parse(vector('appendix-b-numbers.json')) as [string, string][];
    expect(rows.length).to.be.greaterThan(20);
    for (const [hex, text] of rows) expect(jcs(Buffer.from(hex, 'hex').readDoubleBE(0)), hex).to.equal(text);
  });

  it('a link is SHA-256 over the canonical event with chain, seq and prev; absent fields are left out', () => {
    const values = { at: Date.UTC(2026, 11, 8, 1, 2, 3, 456), type: 'device.revoked', actor: 'token:alice', device_id: 'd-1', serial_hex: null, details: '{"z":1,"a":"ü"}' };
    const first = linkAuditEvent(7, values, 'host:1:abc', undefined);
    const text = '{"actor":"token:alice","at":"2026-12-08T01:02:03.456Z","chain":"host:1:abc","details":{"a":"ü","z":1},"deviceId":"d-1","id":7,'
      + `"prev":"${GENESIS_PREV}","seq":1,"type":"device.revoked"}`;
    expect(first).to.deep.equal({ chain: 'host:1:abc', seq: 1, prev: GENESIS_PREV, hash: createHash('sha256').update(text, 'utf8').digest('hex') });
    const second = linkAuditEvent(9, { ...values, details: null }, 'host:1:abc', first);
    expect(second.seq).to.equal(2);
    expect(second.prev).to.equal(first.hash);
  });
});
