/** The hashed-directory name of a subject, checked against what `openssl x509 -subject_hash` prints. */
import path from 'node:path';
import { expect } from 'chai';
import { fromPem, opensslNameHash, parseCertificate } from '../../pkix/index.js';
import { makeTempDir, opensslOk } from '../support/index.js';

describe('pkix OpenSSL subject-name hash (hashed CApath file names)', () => {
  const tmp = makeTempDir('kakuin-namehash-');
  after(() => tmp.cleanup());

  // -subj strings openssl itself encodes: UTF8String / PrintableString values, case and white space
  // that the canonical form folds, a multi-valued RDN (sorted as SET OF), a NumericString-free mix.
  const subjects: { subj: string; extra?: string[] }[] = [
    { subj: '/CN=kakuin device CA/O=Example Fleet' },
    { subj: '/C=JP/O=  ACME   Widgets  /OU=Line\t7/CN=Device-CA 2026' },
    { subj: '/serialNumber=ABC123/CN=DEVICE-1' },
    { subj: '/DC=Example/DC=COM/CN=Root+O=Zeta Corp' },
    { subj: '/CN=Ünïcödé Ca/O=Fabrik Größe', extra: ['-utf8'] },
  ];

  for (const [i, { subj, extra }] of subjects.entries()) {
    it(`equals openssl's hash for ${JSON.stringify(subj)}`, () => {
      const key = path.join(tmp.dir, `k${i}.pem`);
      const pem = opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key,
        '-subj', subj, '-multivalue-rdn', '-days', '1', ...(extra ?? [])]);
      const expected = opensslOk(['x509', '-noout', '-subject_hash'], pem).trim();
      const cert = parseCertificate(fromPem(pem, 'CERTIFICATE')[0]);
      expect(opensslNameHash(cert.subject)).to.equal(expected);
    });
  }

  it('does not depend on letter case or surrounding white space, as OpenSSL lookups do not', () => {
    const a = opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(tmp.dir, 'a.key'), '-subj', '/CN=Fleet CA', '-days', '1']);
    const b = opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(tmp.dir, 'b.key'), '-subj', '/CN=  fleet   ca ', '-days', '1']);
    const c = opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(tmp.dir, 'c.key'), '-subj', '/CN=Fleet CB', '-days', '1']);
    const h = (pem: string) => opensslNameHash(parseCertificate(fromPem(pem, 'CERTIFICATE')[0]).subject);
    expect(h(a)).to.equal(h(b));
    expect(h(a)).to.not.equal(h(c));
  });
});
