import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { createProofOfPossessionVerifier, type ProofOfPossessionVerifier } from '../../ca/pop-verifier.js';
import { vectorPath } from '../support/index.js';

const cases: [string, string | undefined][] = [
  ['csr-p256-openssl.der', undefined],
  ['csr-ed25519-openssl.der', undefined],
  ['csr-rsa2048-openssl.der', undefined],
  ['csr-p521-unsupported.der', 'KAKUIN_E_KEY_UNSUPPORTED'],
  ['csr-rsa1024-weak.der', 'KAKUIN_E_KEY_TOO_WEAK'],
  ['csr-p256-sha1-refused.der', 'KAKUIN_E_ALGORITHM_UNSUPPORTED'],
];

async function outcome(v: ProofOfPossessionVerifier, der: Buffer): Promise<string | undefined> {
  try {
    await v.verify(der);
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code ?? 'not a KakuinError';
  }
}

for (const workers of [0, 2]) {
  describe(`proof-of-possession verifier (${workers === 0 ? 'inline' : `${workers} worker threads`})`, () => {
    let v: ProofOfPossessionVerifier;
    before(() => { v = createProofOfPossessionVerifier(workers); });
    after(() => v.close());

    for (const [file, code] of cases) {
      it(`${code ? `refuses ${file} with ${code}` : `accepts ${file}`}`, async () => {
        expect(await outcome(v, readFileSync(vectorPath(file)))).to.equal(code);
      });
    }

    it('refuses garbage and a tampered signature', async () => {
      expect(await outcome(v, Buffer.from('30031337', 'hex'))).to.equal('KAKUIN_E_DER_MALFORMED');
      const der = Buffer.from(readFileSync(vectorPath('csr-p256-openssl.der')));
      der[der.length - 3] ^= 0x40;
      expect(await outcome(v, der)).to.be.oneOf(['KAKUIN_E_CSR_SIGNATURE_INVALID', 'KAKUIN_E_DER_MALFORMED']);
    });

    it('answers 300 concurrent mixed requests each with its own outcome', async () => {
      const inputs = Array.from({ length: 300 }, (_, i) => cases[i % cases.length]);
      const results = await Promise.all(inputs.map(([file]) => outcome(v, readFileSync(vectorPath(file)))));
      expect(results).to.deep.equal(inputs.map(([, code]) => code));
    });
  });
}

describe('proof-of-possession verifier pool, closed', () => {
  it('refuses work after close', async () => {
    const v = createProofOfPossessionVerifier(1);
    await v.close();
    expect(await outcome(v, readFileSync(vectorPath('csr-p256-openssl.der')))).to.equal('KAKUIN_E_INTERNAL');
  });
});
