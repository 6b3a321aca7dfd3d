/** The GET form's decoding (RFC 6960 Appendix A.1, RFC 5019 §5): percent-encoding, `+`, padding, slashes. */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { decodeGetRequest } from '../../ocsp-responder/index.js';

const PREFIX = '/ocsp/';

function decode(rest: string): Buffer | undefined {
  return decodeGetRequest(PREFIX + rest, PREFIX.length);
}

describe('ocsp-responder: decodeGetRequest', function () {
  const der = Buffer.from('fbff3e0f00fe3f', 'hex'); // base64 "+/8+DwD+Pw==": both awkward digits and padding (not DER: decoding is all this checks)
  const b64 = der.toString('base64');

  it('reads raw +, / and = as base64 digits and padding', function () {
    expect(b64).to.equal('+/8+DwD+Pw==');
    expect(decode(b64)!.equals(der)).to.equal(true);
  });

  it('reads %2B, %2F, %3D in either case the same way', function () {
    expect(decode(encodeURIComponent(b64))!.equals(der)).to.equal(true);
    expect(decode(encodeURIComponent(b64).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()))!.equals(der)).to.equal(true);
    expect(decode('%2B/8+DwD%2bPw%3d=')!.equals(der)).to.equal(true);
  });

  it('never reads + as a space, and refuses a space', function () {
    expect(decode(b64.replace(/\+/g, ' '))).to.equal(undefined);
    expect(decode(b64.replace(/\+/g, '%20'))).to.equal(undefined);
  });

  it('accepts missing padding, base64url digits, line breaks and the doubled slash; ignores a query', function () {
    expect(decode(b64.replace(/=+$/, ''))!.equals(der)).to.equal(true);
    expect(decode(der.toString('base64url'))!.equals(der)).to.equal(true);
    expect(decode(`${b64.slice(0, 4)}%0D%0A${b64.slice(4)}`)!.equals(der)).to.equal(true);
    expect(decode(`/${b64}`)!.equals(der)).to.equal(true);
    expect(decode(`${b64}?x=1`)!.equals(der)).to.equal(true);
  });

  it('refuses what is not base64', function () {
    for (const bad of ['', '/', 'A', 'AAAAA', 'AA=A', 'AAA===', 'A===', '%', '%4', '%G0', 'AB%00CD', '!!!!', 'ÄÄÄÄ', '====']) {
      expect(decode(bad), JSON.stringify(bad)).to.equal(undefined);
    }
  });

  it('round-trips random requests in both forms', function () {
    for (let i = 0; i < 200; i++) {
      // A DER SEQUENCE (0x30...) never starts its base64 with '/' (the doubled-slash rule relies on it).
      const r = Buffer.concat([Buffer.from([0x30]), randomBytes(i % 120)]);
      expect(decode(r.toString('base64'))!.equals(r)).to.equal(true);
      expect(decode(encodeURIComponent(r.toString('base64')))!.equals(r)).to.equal(true);
    }
  });
});
