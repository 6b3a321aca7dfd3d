/** docs/errors.md's CMP table is the mapping the server answers with (enrollment/cmp/failure-info.ts). */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ERROR_CATALOGUE, KakuinError } from '../../errors/index.js';
import { CMP_FAILURE_BY_CODE, failureInfoOf } from '../../enrollment/cmp/failure-info.js';
import { PKI_FAILURE_INFO } from '../../pkix/index.js';
import { repoPath } from '../support/index.js';

describe('CMP PKIFailureInfo mapping', () => {
  it('maps only catalogued codes to defined PKIFailureInfo bits, and docs/errors.md lists exactly that mapping', () => {
    const doc = readFileSync(repoPath('docs', 'errors.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## CMP: PKIFailureInfo'));
    const documented = Object.fromEntries([...section.matchAll(/^\| `(KAKUIN_E_[A-Z0-9_]+)` \| `(\w+)` \|$/gm)].map((m) => [m[1], m[2]]));
    expect(documented).to.deep.equal(CMP_FAILURE_BY_CODE);
    for (const [code, bit] of Object.entries(CMP_FAILURE_BY_CODE)) {
      expect(code in ERROR_CATALOGUE, code).to.equal(true);
      expect(bit in PKI_FAILURE_INFO, bit).to.equal(true);
    }
  });

  it('answers systemFailure for an unexpected error and for a code it does not map', () => {
    expect(failureInfoOf(new Error('boom'))).to.equal('systemFailure');
    expect(failureInfoOf(new KakuinError('KAKUIN_E_INTERNAL', 'x'))).to.equal('systemFailure');
    expect(failureInfoOf(new KakuinError('KAKUIN_E_CSR_SIGNATURE_INVALID', 'x'))).to.equal('badPOP');
  });
});
