import { expect } from 'chai';
import { encodeName, parseCertificate, parseCsr, parseName, parseSpki, readCsr, verifyCsr } from '../../pkix/index.js';
import { isKakuinError } from '../../errors/index.js';
import { buildCert, caName, DEVICE_NAME_ATTRS, readVector, testKey, thrownCode } from './fixtures.js';

/** A small deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(input: Buffer, rnd: () => number): Buffer {
  const pos = Math.floor(rnd() * input.length);
  const byte = Math.floor(rnd() * 256);
  switch (Math.floor(rnd() * 7)) {
    case 0: { const b = Buffer.from(input); b[pos] ^= 1 << Math.floor(rnd() * 8); return b; }
    case 1: { const b = Buffer.from(input); b[pos] = byte; return b; }
    case 2: return input.subarray(0, pos);
    case 3: return Buffer.concat([input.subarray(0, pos), Buffer.from([byte]), input.subarray(pos)]);
    case 4: return Buffer.concat([input.subarray(0, pos), input.subarray(pos + 1)]);
    case 5: { const b = Buffer.from(input); b[pos] = [0x80, 0x81, 0x82, 0x84, 0xff, 0x00][Math.floor(rnd() * 6)]; return b; }
    default: { const len = Math.floor(rnd() * 16); return Buffer.concat([input.subarray(0, pos), Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256))), input.subarray(pos + len)]); }
  }
}

/** Runs `fn` on `iterations` mutants of `input`; every error must be a KakuinError. Returns how many were refused. */
function fuzz(input: Buffer, seed: number, iterations: number, fn: (b: Buffer) => void): number {
  const rnd = prng(seed);
  let refused = 0;
  for (let i = 0; i < iterations; i++) {
    let mutant = mutate(input, rnd);
    if (rnd() < 0.3) mutant = mutate(mutant, rnd);
    try {
      fn(mutant);
    } catch (e) {
      if (!isKakuinError(e)) {
        throw new Error(`seed ${seed}, iteration ${i}: ${String(e)} on ${mutant.toString('hex')}`, { cause: e });
      }
      refused++;
    }
  }
  return refused;
}

describe('pkix parsers on broken input', function () {
  this.timeout(60_000);

  it('refuses truncation at every length, trailing bytes and indefinite length with KAKUIN_E_DER_MALFORMED', () => {
    const csr = readVector('csr-p256-openssl.der');
    for (let len = 0; len < csr.length; len++) expect(thrownCode(() => parseCsr(csr.subarray(0, len))), `length ${len}`).to.equal('KAKUIN_E_DER_MALFORMED');
    expect(thrownCode(() => parseCsr(Buffer.concat([csr, Buffer.from([0x00])])))).to.equal('KAKUIN_E_DER_MALFORMED');
    // Re-wrap the outer SEQUENCE with an indefinite length (BER, never DER).
    const body = csr.subarray(csr[1] & 0x80 ? 2 + (csr[1] & 0x7f) : 2);
    expect(thrownCode(() => parseCsr(Buffer.concat([Buffer.from([0x30, 0x80]), body, Buffer.from([0, 0])])))).to.equal('KAKUIN_E_DER_MALFORMED');
    const cert = readVector('cert-p256-openssl-ca.der');
    for (let len = 0; len < cert.length; len += 7) expect(thrownCode(() => parseCertificate(cert.subarray(0, len)))).to.equal('KAKUIN_E_DER_MALFORMED');
    expect(thrownCode(() => parseCertificate(Buffer.concat([cert, Buffer.from([0x30, 0x00])])))).to.equal('KAKUIN_E_DER_MALFORMED');
  });

  it('refuses garbage of every kind with a KakuinError and nothing else', () => {
    const rnd = prng(7);
    const samples: (Buffer | string)[] = [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(64, 0xff), Buffer.alloc(64), Buffer.from('30ffffffff', 'hex'), '', 'garbage', '-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----'];
    for (let i = 0; i < 300; i++) samples.push(Buffer.from(Array.from({ length: Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256))));
    for (const s of samples) {
      for (const fn of [() => readCsr(s), () => parseCertificate(Buffer.from(s)), () => parseName(Buffer.from(s)), () => parseSpki(Buffer.from(s))]) {
        try {
          fn();
        } catch (e) {
          expect(isKakuinError(e), `${String(e)} on ${Buffer.from(s).toString('hex')}`).to.equal(true);
        }
      }
    }
  });

  it('survives 2,000 random mutations of a valid CSR: parse and verify throw only KakuinErrors', () => {
    const refused = fuzz(readVector('csr-p256-extensions-openssl.der'), 20260101, 2000, (b) => verifyCsr(parseCsr(b)));
    expect(refused).to.be.greaterThan(1500);
    fuzz(readVector('csr-rsa2048-pss-openssl.der'), 42, 500, (b) => verifyCsr(parseCsr(b)));
  });

  it('survives 2,000 random mutations of a valid certificate: parse throws only KakuinErrors', () => {
    const issuerKey = testKey('P-256', 'fuzz');
    const der = buildCert({ issuerKey, issuerName: caName('fuzz'), subjectKey: testKey('P-256', 'fuzz-device'), subjectName: encodeName(DEVICE_NAME_ATTRS) });
    const refused = fuzz(der, 99, 2000, (b) => parseCertificate(b));
    expect(refused).to.be.greaterThan(1000);
    fuzz(readVector('cert-p256-openssl-ca.der'), 100, 500, (b) => parseCertificate(b));
  });
});
