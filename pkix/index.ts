/**
 * pkix: the only place in kakuin that reads or writes DER/ASN.1. Imports nothing of ours but
 * `../errors/index.js`; everything else in kakuin imports from here.
 */
export * from './der.js';
export * from './der-reader.js';
export * from './oids.js';
export * from './algorithm.js';
export * from './spki.js';
export * from './name.js';
export * from './name-hash.js';
export * from './general-name.js';
export * from './extensions.js';
export * from './extensions-read.js';
export * from './signature.js';
export * from './certificate.js';
export * from './csr.js';
export * from './pem.js';
export * from './csr-encode.js';
export * from './crl.js';
export * from './crl-read.js';
export * from './ocsp-request.js';
export * from './ocsp-response.js';
export * from './pkcs7-certs-only.js';
export * from './encrypted-private-key.js';
export * from './pkcs12.js';
export * from './cmp/index.js';
export * from './cms/index.js';
export * from './acme.js';
