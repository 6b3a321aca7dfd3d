/**
 * The PKCS#11 key store: `pkcs11:` URIs (RFC 7512) naming keys that are generated inside a module as
 * sensitive and non-extractable and never leave it. Tested against SoftHSM2; written for any
 * PKCS#11 v2.40 module.
 *
 * A key is found by `token` (CKA label of the token) and `object` (CKA_LABEL) and/or `id` (CKA_ID).
 * The PIN is given to the store (from KAKUIN_PKCS11_PIN or a PIN file), never in a URI: a URI with
 * `pin-value` is refused, because URIs are stored in the registry and printed in logs.
 */
import { randomBytes } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { parseKeyUri, type Pkcs11KeyUri } from '../key-uri.js';
import type { KeyAlgorithm, KeyStore, Signer } from '../port.js';
import { algorithmOfEcParams, EC_PARAMS, ecSpki, rsaSpki } from './encoding.js';
import { acquireModule, type LoadedModule } from './module.js';
import { Pkcs11Signer } from './pkcs11-signer.js';
import { TokenSessions } from './token-sessions.js';

export interface Pkcs11KeyStoreOptions {
  /** The module's shared library (KAKUIN_PKCS11_MODULE; SoftHSM2's Debian path by default). */
  modulePath: string;
  /** The user PIN; from KAKUIN_PKCS11_PIN or a PIN file, never from a URI or the command line. */
  pin?: string;
  /** Sessions per token, i.e. signatures in flight at once per token (default 8). */
  sessionsPerToken?: number;
}

/** PKCS#11 v3.0 values pkcs11js (a v2.40 binding) does not name. */
const CKK_EC_EDWARDS = 0x40;
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKM_EDDSA = 0x1057;

type Handle = Buffer;

export class Pkcs11KeyStore implements KeyStore {
  readonly scheme = 'pkcs11';
  readonly #module: LoadedModule;
  readonly #tokens = new Map<string, TokenSessions>();
  readonly #options: Pkcs11KeyStoreOptions;
  #closed = false;

  constructor(options: Pkcs11KeyStoreOptions) {
    this.#options = options;
    this.#module = acquireModule(options.modulePath);
  }

  /** Session-loss recoveries so far, over all tokens (a test and the metrics read it). */
  get reopens(): number {
    let n = 0;
    for (const t of this.#tokens.values()) n += t.reopens;
    return n;
  }

  /** Open the token now and log in (KAKUIN_E_PKCS11_PIN for a wrong PIN), before any key is used. */
  async openToken(token: string): Promise<void> {
    await this.#sessions(token).warmUp();
  }

  async exists(uri: string): Promise<boolean> {
    const key = parse(uri);
    return this.#sessions(key.token).use((s) => this.#findPrivate(s, key) !== undefined);
  }

  async load(uri: string): Promise<Signer> {
    const key = parse(uri);
    const sessions = this.#sessions(key.token);
    const described = await sessions.use((s) => {
      const handle = this.#findPrivate(s, key);
      if (handle === undefined) throw new KakuinError('KAKUIN_E_KEY_NOT_FOUND', `no private key ${uri} in the PKCS#11 module`);
      return this.#describe(s, handle, uri);
    });
    return new Pkcs11Signer(uri, described.algorithm, described.spki, sessions, this.#module,
      (s) => this.#findPrivate(s, key));
  }

  async generate(uri: string, algorithm: KeyAlgorithm): Promise<Signer> {
    const key = parse(uri);
    if (key.label === undefined && key.id === undefined) {
      throw new KakuinError('KAKUIN_E_KEY_URI_INVALID', `${uri} names no key: give it "object=" (a label) or "id="`);
    }
    const sessions = this.#sessions(key.token);
    const { lib, pkcs11 } = this.#module;
    const id = key.id ?? randomBytes(16);
    await sessions.use(async (s) => {
      if (this.#findPrivate(s, key) !== undefined) {
        throw new KakuinError('KAKUIN_E_KEY_EXISTS', `a key ${uri} already exists in the PKCS#11 module`);
      }
      const common = [
        { type: lib.CKA_TOKEN, value: true },
        { type: lib.CKA_ID, value: id },
        ...(key.label === undefined ? [] : [{ type: lib.CKA_LABEL, value: key.label }]),
      ];
      const { mechanism, publicTemplate } = this.#generation(s, algorithm);
      try {
        await pkcs11.C_GenerateKeyPairAsync(s, { mechanism }, [
          ...common, { type: lib.CKA_CLASS, value: lib.CKO_PUBLIC_KEY }, { type: lib.CKA_VERIFY, value: true },
          { type: lib.CKA_PRIVATE, value: false }, ...publicTemplate,
        ], [
          ...common, { type: lib.CKA_CLASS, value: lib.CKO_PRIVATE_KEY }, { type: lib.CKA_SIGN, value: true },
          { type: lib.CKA_PRIVATE, value: true },
          // The key is made inside the module and can never be read out of it, not even wrapped.
          { type: lib.CKA_SENSITIVE, value: true }, { type: lib.CKA_EXTRACTABLE, value: false },
        ]);
      } catch (cause) {
        if (sessions.isSessionLost(cause)) throw cause;
        throw new KakuinError('KAKUIN_E_SIGNING_FAILED', `generating ${algorithm} key ${uri} in the module failed: ${String(cause)}`, { cause });
      }
    });
    return this.load(uri);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#tokens.values()].map((t) => t.close()));
    this.#tokens.clear();
    this.#module.release();
  }

  #sessions(token: string): TokenSessions {
    if (this.#closed) throw new KakuinError('KAKUIN_E_INTERNAL', 'the PKCS#11 key store is closed');
    let sessions = this.#tokens.get(token);
    if (!sessions) {
      sessions = new TokenSessions(this.#module, this.#slotOf(token), token, this.#options.pin, this.#options.sessionsPerToken ?? 8);
      this.#tokens.set(token, sessions);
    }
    return sessions;
  }

  #slotOf(token: string): Handle {
    const { pkcs11 } = this.#module;
    const labels: string[] = [];
    for (const slot of pkcs11.C_GetSlotList(true)) {
      const label = pkcs11.C_GetTokenInfo(slot).label.trimEnd();
      if (label === token) return slot;
      labels.push(label);
    }
    throw new KakuinError('KAKUIN_E_PKCS11_TOKEN_NOT_FOUND',
      `no token labelled "${token}" in ${this.#module.path} (tokens: ${labels.map((l) => `"${l}"`).join(', ') || 'none'})`);
  }

  #generation(session: Handle, algorithm: KeyAlgorithm): { mechanism: number; publicTemplate: { type: number; value: Buffer | number | boolean }[] } {
    const { lib, pkcs11 } = this.#module;
    switch (algorithm) {
      case 'ecdsa-p256':
      case 'ecdsa-p384':
        return { mechanism: lib.CKM_EC_KEY_PAIR_GEN, publicTemplate: [{ type: lib.CKA_EC_PARAMS, value: EC_PARAMS[algorithm] }] };
      case 'ed25519': {
        const slot = pkcs11.C_GetSessionInfo(session).slotID;
        if (!pkcs11.C_GetMechanismList(slot).includes(CKM_EDDSA)) {
          throw new KakuinError('KAKUIN_E_KEY_ALGORITHM', 'this PKCS#11 module offers no EdDSA (CKM_EDDSA); use ecdsa-p256');
        }
        return { mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN, publicTemplate: [{ type: lib.CKA_EC_PARAMS, value: EC_PARAMS.ed25519 }] };
      }
      case 'rsa-2048':
      case 'rsa-3072':
        return {
          mechanism: lib.CKM_RSA_PKCS_KEY_PAIR_GEN,
          publicTemplate: [
            { type: lib.CKA_MODULUS_BITS, value: algorithm === 'rsa-2048' ? 2048 : 3072 },
            { type: lib.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          ],
        };
    }
  }

  #findPrivate(session: Handle, key: ParsedKey): Handle | undefined {
    const found = this.#find(session, key, this.#module.lib.CKO_PRIVATE_KEY);
    if (found.length > 1) {
      throw new KakuinError('KAKUIN_E_KEY_URI_INVALID', `${key.uri} matches ${found.length} private keys; add "id=" to tell them apart`);
    }
    return found[0];
  }

  #find(session: Handle, key: { label?: string; id?: Buffer }, cls: number): Handle[] {
    const { lib, pkcs11 } = this.#module;
    pkcs11.C_FindObjectsInit(session, [
      { type: lib.CKA_CLASS, value: cls },
      ...(key.label === undefined ? [] : [{ type: lib.CKA_LABEL, value: key.label }]),
      ...(key.id === undefined ? [] : [{ type: lib.CKA_ID, value: key.id }]),
    ]);
    try {
      return pkcs11.C_FindObjects(session, 4);
    } finally {
      pkcs11.C_FindObjectsFinal(session);
    }
  }

  /** The algorithm and SPKI of a private key, read from its public key object (same CKA_ID). */
  #describe(session: Handle, privateKey: Handle, uri: string): { algorithm: KeyAlgorithm; spki: Buffer } {
    const { lib, pkcs11 } = this.#module;
    const [{ value: id }, { value: keyType }] = pkcs11.C_GetAttributeValue(session, privateKey, [{ type: lib.CKA_ID }, { type: lib.CKA_KEY_TYPE }]);
    const [publicKey] = this.#find(session, { id }, lib.CKO_PUBLIC_KEY);
    if (publicKey === undefined) throw new KakuinError('KAKUIN_E_KEY_NOT_FOUND', `the public key of ${uri} is missing from the module`);
    const type = ulong(keyType);
    if (type === lib.CKK_EC || type === CKK_EC_EDWARDS) {
      const [{ value: params }, { value: point }] = pkcs11.C_GetAttributeValue(session, publicKey, [{ type: lib.CKA_EC_PARAMS }, { type: lib.CKA_EC_POINT }]);
      const algorithm = algorithmOfEcParams(params);
      if (algorithm === undefined || algorithm.startsWith('rsa')) {
        throw new KakuinError('KAKUIN_E_KEY_ALGORITHM', `${uri} is on a curve kakuin does not use`);
      }
      return { algorithm, spki: ecSpki(algorithm as 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519', point) };
    }
    if (type === lib.CKK_RSA) {
      const [{ value: n }, { value: e }] = pkcs11.C_GetAttributeValue(session, publicKey, [{ type: lib.CKA_MODULUS }, { type: lib.CKA_PUBLIC_EXPONENT }]);
      const bits = rsaBits(n);
      if (bits !== 2048 && bits !== 3072) throw new KakuinError('KAKUIN_E_KEY_ALGORITHM', `${uri} is RSA-${bits}; kakuin uses 2048 or 3072`);
      return { algorithm: bits === 2048 ? 'rsa-2048' : 'rsa-3072', spki: rsaSpki(n, e) };
    }
    throw new KakuinError('KAKUIN_E_KEY_ALGORITHM', `${uri} has a key type (${type}) kakuin does not sign with`);
  }
}

interface ParsedKey {
  uri: string;
  token: string;
  label?: string;
  id?: Buffer;
}

function parse(uri: string): ParsedKey {
  const parsed = parseKeyUri(uri);
  if (parsed.scheme !== 'pkcs11') throw new KakuinError('KAKUIN_E_KEY_URI_INVALID', `${uri} is not a pkcs11: URI`);
  refuseSecrets(uri, parsed);
  const token = parsed.path.token;
  if (token === undefined) throw new KakuinError('KAKUIN_E_KEY_URI_INVALID', `${uri} names no token ("token=")`);
  const out: ParsedKey = { uri, token };
  if (parsed.path.object !== undefined) out.label = parsed.path.object;
  if (parsed.id !== undefined) out.id = parsed.id;
  return out;
}

/** A PIN in a URI ends up in the registry and in logs (RFC 7512 §2.3 allows it; kakuin does not). */
export function refuseSecrets(uri: string, parsed: Pkcs11KeyUri): void {
  if (Object.hasOwn(parsed.query, 'pin-value') || Object.hasOwn(parsed.path, 'pin-value')) {
    throw new KakuinError('KAKUIN_E_KEY_URI_INVALID',
      'a pkcs11: URI must not carry "pin-value"; give the PIN in KAKUIN_PKCS11_PIN or a PIN file');
  }
}

function rsaBits(modulus: Buffer): number {
  let i = 0;
  while (i < modulus.length && modulus[i] === 0) i++;
  return (modulus.length - i) * 8 - Math.clz32(modulus[i] ?? 0) + 24;
}

/** A CK_ULONG attribute value: native-endian, 4 or 8 bytes (little-endian on the platforms Node runs kakuin on). */
function ulong(value: Buffer): number {
  return value.length === 8 ? Number(value.readBigUInt64LE(0)) : value.readUInt32LE(0);
}
