export { SoftwareKeyStore } from './software-key-store.js';
export type { SoftwareKeyStoreOptions } from './software-key-store.js';
export { SoftwareSigner } from './software-signer.js';
