/**
 * The key stores of one process, chosen by the scheme of a key URI. The composition root builds
 * one KeyRing; the CA, the OCSP responder and CRL signing only ever see it (or a Signer it gave).
 */
import { KakuinError } from '../errors/index.js';
import { keyUriScheme } from './key-uri.js';
import type { KeyAlgorithm, KeyStore, Signer } from './port.js';
import { offersTlsKeyMaterial, type TlsKeyMaterial } from './tls-key-material.js';

export class KeyRing {
  readonly #stores = new Map<string, KeyStore>();

  constructor(stores: readonly KeyStore[]) {
    for (const store of stores) {
      if (this.#stores.has(store.scheme)) {
        throw new KakuinError('KAKUIN_E_INTERNAL', `two key stores serve the scheme "${store.scheme}"`);
      }
      this.#stores.set(store.scheme, store);
    }
  }

  /** The store serving the URI's scheme (KAKUIN_E_KEY_URI_INVALID when none does). */
  storeFor(uri: string): KeyStore {
    const scheme = keyUriScheme(uri);
    const store = this.#stores.get(scheme);
    if (!store) {
      const known = [...this.#stores.keys()].join(', ') || 'none';
      throw new KakuinError('KAKUIN_E_KEY_URI_INVALID', `no key store serves "${scheme}:" URIs (configured: ${known})`);
    }
    return store;
  }

  // Each method is async so that a bad URI rejects the promise instead of throwing synchronously.
  async load(uri: string): Promise<Signer> {
    return this.storeFor(uri).load(uri);
  }

  async generate(uri: string, algorithm: KeyAlgorithm): Promise<Signer> {
    return this.storeFor(uri).generate(uri, algorithm);
  }

  async exists(uri: string): Promise<boolean> {
    return this.storeFor(uri).exists(uri);
  }

  /**
   * The key of a TLS listener, for `tls.createServer({ key, passphrase })`. Refused for stores
   * whose keys cannot leave them (PKCS#11): TLS listener keys belong in the software store.
   */
  async tlsKeyMaterial(uri: string): Promise<TlsKeyMaterial> {
    const store = this.storeFor(uri);
    if (!offersTlsKeyMaterial(store)) {
      throw new KakuinError('KAKUIN_E_KEY_URI_INVALID',
        `"${store.scheme}:" keys cannot be used by Node's TLS; give TLS listeners file: keys`);
    }
    return store.tlsKeyMaterial(uri);
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([...this.#stores.values()].map((s) => s.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
