export { Pkcs11KeyStore } from './pkcs11-key-store.js';
export type { Pkcs11KeyStoreOptions } from './pkcs11-key-store.js';
export { Pkcs11Signer } from './pkcs11-signer.js';
export { acquireModule, SOFTHSM2_DEFAULT_MODULE } from './module.js';
export type { LoadedModule } from './module.js';
export { newPkcs11KeyUri, tokenOfKeysUri, tokenOfKeyUri } from './uri.js';
