/**
 * RFC 8737 acmeIdentifier (pkix/acme.ts) against certificates OpenSSL writes: the digest is read
 * from a critical extension, what pkix encodes is byte-identical to OpenSSL's, and a non-critical
 * or mis-sized one is refused. CSR names (RFC 8555 §7.4) from an OpenSSL request.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { expect } from 'chai';
import { acmeIdentifierExt, certificateAcmeIdentifier, certificateSanNames, csrRequestedNames, fromPem, OID_PE_ACME_IDENTIFIER, parseCertificate, readCsr } from '../../pkix/index.js';
import { makeTempDir, opensslOk } from '../support/index.js';

describe('pkix: ACME acmeIdentifier and CSR names', function () {
  let tmp: { dir: string; cleanup: () => void };
  let key: string;
  before(() => {
    tmp = makeTempDir('kakuin-acmeid-');
    key = path.join(tmp.dir, 'k.pem');
    opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  });
  after(() => tmp.cleanup());

  const selfSigned = (ext: string) => parseCertificate(fromPem(opensslOk(['req', '-x509', '-new', '-key', key, '-subj', '/CN=v', '-days', '1',
    '-addext', 'subjectAltName=DNS:broker-1.example.internal', '-addext', ext]), 'CERTIFICATE')[0]);

  it('reads the digest of a critical acmeIdentifier, encoded exactly as OpenSSL encodes it', function () {
    const digest = createHash('sha256').update('token.thumbprint').digest();
    const cert = selfSigned(`1.3.6.1.5.5.7.1.31=critical,DER:0420${digest.toString('hex')}`);
    expect(certificateAcmeIdentifier(cert)?.equals(digest)).to.equal(true);
    const ext = cert.extensions.find((e) => e.oid === OID_PE_ACME_IDENTIFIER)!;
    expect(ext.rawDer.equals(acmeIdentifierExt(digest))).to.equal(true);
    expect(certificateSanNames(cert)).to.deep.equal({ dns: ['broker-1.example.internal'], ip: [], other: 0 });
  });

  it('refuses a non-critical or mis-sized acmeIdentifier, and finds none where there is none', function () {
    const digest = Buffer.alloc(32, 9);
    expect(() => certificateAcmeIdentifier(selfSigned(`1.3.6.1.5.5.7.1.31=DER:0420${digest.toString('hex')}`))).to.throw().with.property('code', 'KAKUIN_E_DER_MALFORMED');
    expect(() => certificateAcmeIdentifier(selfSigned('1.3.6.1.5.5.7.1.31=critical,DER:0403010203'))).to.throw().with.property('code', 'KAKUIN_E_DER_MALFORMED');
    expect(certificateAcmeIdentifier(selfSigned('keyUsage=digitalSignature'))).to.equal(undefined);
    expect(() => acmeIdentifierExt(Buffer.alloc(20))).to.throw().with.property('code', 'KAKUIN_E_ENCODING_INPUT');
  });

  it('lists the DNS names, addresses and common names a CSR asks for, and counts other kinds', function () {
    const csr = readCsr(opensslOk(['req', '-new', '-key', key, '-subj', '/CN=broker-1.example.internal',
      '-addext', 'subjectAltName=DNS:broker-1.example.internal,IP:10.0.0.7,email:a@example.internal']));
    expect(csrRequestedNames(csr)).to.deep.equal({ dns: ['broker-1.example.internal'], ip: ['10.0.0.7'], other: 1, commonNames: ['broker-1.example.internal'] });
  });
});
