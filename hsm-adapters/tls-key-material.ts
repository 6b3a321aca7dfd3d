/**
 * An optional KeyStore capability (a small interface of its own, not a method every store must
 * have): hand a TLS listener its private key. Node's TLS cannot use a key that stays inside a
 * PKCS#11 module, so only stores whose keys can be given to OpenSSL in memory offer it.
 */
import type { KeyStore } from './port.js';

export interface TlsKeyMaterial {
  /** The private key as stored: an encrypted PKCS#8 PEM (label `ENCRYPTED PRIVATE KEY`). */
  readonly key: string;
  /** Decrypts `key`; pass both to `tls.createServer({ key, passphrase })` so it is decrypted in memory only. */
  readonly passphrase: string;
}

export interface TlsKeyMaterialSource {
  tlsKeyMaterial(uri: string): Promise<TlsKeyMaterial>;
}

export function offersTlsKeyMaterial(store: KeyStore): store is KeyStore & TlsKeyMaterialSource {
  return typeof (store as Partial<TlsKeyMaterialSource>).tlsKeyMaterial === 'function';
}
