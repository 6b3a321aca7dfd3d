/** The Signer / KeyStore port, the KeyRing that dispatches on key URIs, and key URI parsing. */
export { KEY_ALGORITHMS, signatureAlgorithmFor } from './port.js';
export type { KeyAlgorithm, KeyStore, Signer, SignatureAlgorithmName } from './port.js';
export { KeyRing } from './key-ring.js';
export { keyUriScheme, parseFileKeyUri, parseKeyUri } from './key-uri.js';
export type { FileKeyUri, KeyUri, Pkcs11KeyUri } from './key-uri.js';
export { offersTlsKeyMaterial } from './tls-key-material.js';
export type { TlsKeyMaterial, TlsKeyMaterialSource } from './tls-key-material.js';
