/**
 * The software key store (`file:` URIs): one encrypted PKCS#8 PEM file per key,
 * `<directory>/<name>.key.pem`, readable with standard tools
 * (`openssl pkey -in <file> -passin pass:...`) so operators can always recover their keys.
 * The private key exists in plaintext only in this process's memory, never on disk. New files are
 * encrypted under scrypt (key-encryption.ts); files an earlier kakuin wrote (PBKDF2, 2,048
 * iterations) still open, and `rewrap()` (`kakuin ca rewrap-keys`) rewrites them.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { KakuinError } from '../../errors/index.js';
import { parseFileKeyUri } from '../key-uri.js';
import { KEY_ALGORITHMS, type KeyAlgorithm, type KeyStore, type Signer } from '../port.js';
import type { TlsKeyMaterial, TlsKeyMaterialSource } from '../tls-key-material.js';
import { DEFAULT_KDF_COST, checkKdfCost, decryptPrivateKey, encryptPrivateKey, needsRewrap } from './key-encryption.js';
import { errorCode, fileExists, replaceFileAtomically, writeNewFileAtomically } from './key-file.js';
import { keyAlgorithmOf, SoftwareSigner } from './software-signer.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface SoftwareKeyStoreOptions {
  /** The key directory; created with mode 0700 when the first key is generated. */
  directory: string;
  /** Encrypts every key file. Required: kakuin never writes a private key in plaintext. */
  passphrase: string;
  /** log2 of scrypt's N for files written from now on (default 14; lower only for tests). */
  kdfCost?: number;
}

/** OpenSSL's PEM password callback takes at most PEM_BUFSIZE (1024) bytes; longer ones fail on export. */
const MAX_PASSPHRASE_BYTES = 1024;

// Built from parts so that a scan for committed private keys does not flag this label constant.
const ENCRYPTED_PKCS8_LABEL = `-----BEGIN ${'ENCRYPTED'} PRIVATE KEY-----`;

interface LoadedKey {
  signer: SoftwareSigner;
  /** The file's content, still encrypted (for TLS listeners). */
  pem: string;
}

export class SoftwareKeyStore implements KeyStore, TlsKeyMaterialSource {
  readonly scheme = 'file';
  readonly directory: string;
  readonly #passphrase: string;
  readonly #kdfCost: number;
  /** Loaded keys by name; a promise so that concurrent loads of one key decrypt it once. */
  readonly #loaded = new Map<string, Promise<LoadedKey>>();

  constructor(options: SoftwareKeyStoreOptions) {
    if (typeof options.directory !== 'string' || options.directory === '') {
      throw new KakuinError('KAKUIN_E_CONFIG', 'the software key store needs a key directory');
    }
    if (typeof options.passphrase !== 'string' || options.passphrase === '') {
      throw new KakuinError('KAKUIN_E_KEY_PASSPHRASE', 'the software key store needs a non-empty passphrase to encrypt its keys');
    }
    if (Buffer.byteLength(options.passphrase, 'utf8') > MAX_PASSPHRASE_BYTES) {
      throw new KakuinError('KAKUIN_E_KEY_PASSPHRASE', `the key store passphrase is longer than ${MAX_PASSPHRASE_BYTES} bytes`);
    }
    this.directory = path.resolve(options.directory);
    this.#passphrase = options.passphrase;
    this.#kdfCost = checkKdfCost(options.kdfCost ?? DEFAULT_KDF_COST);
  }

  async generate(uri: string, algorithm: KeyAlgorithm): Promise<Signer> {
    const file = this.#fileFor(uri);
    checkAlgorithm(algorithm);
    // Checked first so that a refused generate costs no RSA key generation; the no-clobber
    // link in writeNewFileAtomically is what actually guarantees no key is overwritten.
    if (await this.#io(uri, () => fileExists(file))) throw exists(uri);
    const privateKey = await newPrivateKey(algorithm);
    const pem = await encryptPrivateKey(privateKey, this.#passphrase, this.#kdfCost);
    const outcome = await this.#io(uri, () => writeNewFileAtomically(file, pem));
    if (outcome === 'exists') throw exists(uri);
    const loaded: LoadedKey = { signer: new SoftwareSigner(uri, algorithm, privateKey), pem };
    this.#loaded.set(parseFileKeyUri(uri).name, Promise.resolve(loaded));
    return loaded.signer;
  }

  async load(uri: string): Promise<Signer> {
    return (await this.#loadKey(uri)).signer;
  }

  async exists(uri: string): Promise<boolean> {
    const file = this.#fileFor(uri);
    return this.#io(uri, () => fileExists(file));
  }

  /** The stored (encrypted) PEM and the passphrase, for `tls.createServer({ key, passphrase })`. */
  async tlsKeyMaterial(uri: string): Promise<TlsKeyMaterial> {
    // Loading first proves the passphrase decrypts the file, so a TLS listener fails here with a
    // kakuin error rather than deep inside OpenSSL.
    const { pem } = await this.#loadKey(uri);
    return { key: pem, passphrase: this.#passphrase };
  }

  async close(): Promise<void> {
    this.#loaded.clear();
  }

  /**
   * Re-encrypts every key file weaker than this store's setting (scrypt at kdfCost) in place, the
   * key unchanged: each new file is decrypted and compared with the old key before it replaces it.
   * Answers the key names rewritten and those already strong enough. Any file the passphrase does
   * not open stops the run before it is touched (KAKUIN_E_KEY_PASSPHRASE), the others stay as they are.
   */
  async rewrap(): Promise<{ rewritten: string[]; kept: string[] }> {
    const names = (await this.#io('file:*', async () => {
      try {
        return await readdir(this.directory);
      } catch (e) {
        if (errorCode(e) === 'ENOENT') return [];
        throw e;
      }
    })).filter((f) => f.endsWith('.key.pem') && !f.startsWith('.')).map((f) => f.slice(0, -'.key.pem'.length)).sort();
    const rewritten: string[] = [];
    const kept: string[] = [];
    for (const name of names) {
      const uri = `file:${name}`;
      const file = this.#fileFor(uri);
      const { signer, pem } = await this.#readKey(uri, file);
      if (!needsRewrap(pem, this.#kdfCost)) {
        kept.push(name);
        continue;
      }
      const privateKey = decryptPrivateKey(pem, this.#passphrase);
      const next = await encryptPrivateKey(privateKey, this.#passphrase, this.#kdfCost);
      const again = decryptPrivateKey(next, this.#passphrase);
      const spki = (k: KeyObject) => createPublicKey(k).export({ type: 'spki', format: 'der' });
      if (!spki(again).equals(spki(privateKey)) || !spki(again).equals(signer.publicKeySpki)) {
        throw new KakuinError('KAKUIN_E_INTERNAL', `re-encrypting the key of ${uri} did not give the same key back; the file is unchanged`);
      }
      await this.#io(uri, () => replaceFileAtomically(file, next));
      this.#loaded.delete(name);
      rewritten.push(name);
    }
    return { rewritten, kept };
  }

  #loadKey(uri: string): Promise<LoadedKey> {
    let name: string;
    try {
      name = parseFileKeyUri(uri).name;
    } catch (e) {
      return Promise.reject(e);
    }
    let loading = this.#loaded.get(name);
    if (!loading) {
      loading = this.#readKey(uri, this.#fileFor(uri));
      this.#loaded.set(name, loading);
      const settled = loading;
      // A failure is not cached: the operator may fix the file or the passphrase and retry.
      settled.catch(() => { if (this.#loaded.get(name) === settled) this.#loaded.delete(name); });
    }
    return loading;
  }

  async #readKey(uri: string, file: string): Promise<LoadedKey> {
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (cause) {
      if (errorCode(cause) === 'ENOENT') throw new KakuinError('KAKUIN_E_KEY_NOT_FOUND', `no key under ${uri}`, { cause });
      throw ioFailed(uri, cause);
    }
    if (!pem.trimStart().startsWith(ENCRYPTED_PKCS8_LABEL)) {
      throw new KakuinError('KAKUIN_E_KEY_PASSPHRASE',
        `the key file of ${uri} is not an encrypted PKCS#8 PEM; kakuin does not use keys stored in plaintext`);
    }
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: pem, format: 'pem', passphrase: this.#passphrase });
    } catch (cause) {
      // OpenSSL says only "bad decrypt" (or a DER error when the wrong key happened to unpad).
      throw new KakuinError('KAKUIN_E_KEY_PASSPHRASE',
        `the key store passphrase does not decrypt the key file of ${uri} (wrong passphrase or damaged file)`, { cause });
    }
    const algorithm = keyAlgorithmOf(privateKey);
    if (!algorithm) {
      throw new KakuinError('KAKUIN_E_KEY_ALGORITHM',
        `the key of ${uri} is not one kakuin uses (ECDSA P-256/P-384, Ed25519, RSA 2048/3072)`);
    }
    return { signer: new SoftwareSigner(uri, algorithm, privateKey), pem };
  }

  #fileFor(uri: string): string {
    return path.join(this.directory, `${parseFileKeyUri(uri).name}.key.pem`);
  }

  async #io<T>(uri: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (cause) {
      throw ioFailed(uri, cause);
    }
  }
}

/** Asynchronous even for EC and Ed25519 so one code path serves all; RSA-3072 takes ~1 s of CPU off the event loop. */
async function newPrivateKey(algorithm: KeyAlgorithm): Promise<KeyObject> {
  switch (algorithm) {
    case 'ecdsa-p256': return (await generateKeyPairAsync('ec', { namedCurve: 'P-256' })).privateKey;
    case 'ecdsa-p384': return (await generateKeyPairAsync('ec', { namedCurve: 'P-384' })).privateKey;
    case 'ed25519': return (await generateKeyPairAsync('ed25519', {})).privateKey;
    case 'rsa-2048': return (await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 0x10001 })).privateKey;
    case 'rsa-3072': return (await generateKeyPairAsync('rsa', { modulusLength: 3072, publicExponent: 0x10001 })).privateKey;
  }
}

function checkAlgorithm(algorithm: KeyAlgorithm): void {
  if (!KEY_ALGORITHMS.includes(algorithm)) {
    throw new KakuinError('KAKUIN_E_KEY_ALGORITHM', `the software key store cannot generate "${String(algorithm)}" keys`);
  }
}

function exists(uri: string): KakuinError {
  return new KakuinError('KAKUIN_E_KEY_EXISTS', `a key already exists under ${uri}; it is never overwritten`);
}

function ioFailed(uri: string, cause: unknown): KakuinError {
  return new KakuinError('KAKUIN_E_INTERNAL', `the software key store could not access the key file of ${uri}`, { cause });
}
