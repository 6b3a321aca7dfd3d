import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeCertsOnly } from '../../pkix/index.js';
import { makeTempDir, opensslOk, vectorPath } from '../support/index.js';

describe('pkix: CMS certs-only (RFC 5652 SignedData without signers, RFC 7030 §4.1.3)', () => {
  const cert = readFileSync(vectorPath('cert-p256-openssl-ca.der'));

  it('openssl pkcs7 -print_certs reads the certificate back', () => {
    const der = encodeCertsOnly([cert]);
    const printed = opensslOk(['pkcs7', '-inform', 'DER', '-print_certs'], der);
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(printed)![0];
    const back = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    expect(back.equals(cert)).to.equal(true);
  });

  it('is byte for byte what openssl crl2pkcs7 -nocrl makes for the same certificate', () => {
    const tmp = makeTempDir();
    try {
      const file = path.join(tmp.dir, 'cert.pem');
      writeFileSync(file, opensslOk(['x509', '-inform', 'DER'], cert));
      const theirs = Buffer.from(opensslOk(['crl2pkcs7', '-nocrl', '-certfile', file]).replace(/-----[^-]+-----|\s/g, ''), 'base64');
      expect(encodeCertsOnly([cert]).toString('hex')).to.equal(theirs.toString('hex'));
    } finally {
      tmp.cleanup();
    }
  });

  it('refuses an empty certificate list', () => {
    expect(() => encodeCertsOnly([])).to.throw(/at least one/);
  });
});
