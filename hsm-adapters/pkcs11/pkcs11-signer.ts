/**
 * A Signer over a private key inside a PKCS#11 module. The hash is computed in Node and only the
 * digest crosses into the module (CKM_ECDSA, CKM_RSA_PKCS over a DigestInfo); Ed25519 (PureEdDSA,
 * RFC 8032) sends the message. `C_SignAsync` runs the module call on libuv's thread pool, so the
 * event loop only pays for C_SignInit and the hash.
 */
import { createHash } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { signatureAlgorithmFor, type KeyAlgorithm, type Signer, type SignatureAlgorithmName } from '../port.js';
import { ecdsaRawToDer, SHA256_DIGEST_INFO_PREFIX } from './encoding.js';
import type { LoadedModule } from './module.js';
import type { TokenSessions } from './token-sessions.js';

const CKM_EDDSA = 0x1057;

type Handle = Buffer;

export class Pkcs11Signer implements Signer {
  readonly signatureAlgorithm: SignatureAlgorithmName;
  #handle: Handle | undefined;

  constructor(
    readonly uri: string,
    readonly algorithm: KeyAlgorithm,
    readonly publicKeySpki: Buffer,
    private readonly sessions: TokenSessions,
    private readonly module: LoadedModule,
    private readonly find: (session: Handle) => Handle | undefined,
  ) {
    this.signatureAlgorithm = signatureAlgorithmFor(algorithm);
  }

  async sign(data: Buffer): Promise<Buffer> {
    const { pkcs11, lib } = this.module;
    const { mechanism, input, size } = this.#prepare(data);
    try {
      return await this.sessions.use(async (session) => {
        // Object handles outlive sessions but not a module reset; look the key up again after a loss.
        let handle = this.#handle ??= this.#lookup(session);
        try {
          pkcs11.C_SignInit(session, { mechanism }, handle);
        } catch (error) {
          if (!this.sessions.isSessionLost(error)) throw error;
          this.#handle = undefined;
          handle = this.#lookup(session);
          this.#handle = handle;
          pkcs11.C_SignInit(session, { mechanism }, handle);
        }
        const raw = await pkcs11.C_SignAsync(session, input, Buffer.alloc(size));
        return mechanism === lib.CKM_ECDSA ? ecdsaRawToDer(raw) : Buffer.from(raw);
      });
    } catch (cause) {
      if (cause instanceof KakuinError) throw cause;
      throw new KakuinError('KAKUIN_E_SIGNING_FAILED', `signing with ${this.uri} failed: ${String(cause)}`, { cause });
    }
  }

  #lookup(session: Handle): Handle {
    const handle = this.find(session);
    if (handle === undefined) throw new KakuinError('KAKUIN_E_KEY_NOT_FOUND', `the key ${this.uri} is gone from the module`);
    return handle;
  }

  #prepare(data: Buffer): { mechanism: number; input: Buffer; size: number } {
    const { lib } = this.module;
    switch (this.algorithm) {
      case 'ecdsa-p256': return { mechanism: lib.CKM_ECDSA, input: createHash('sha256').update(data).digest(), size: 64 };
      case 'ecdsa-p384': return { mechanism: lib.CKM_ECDSA, input: createHash('sha384').update(data).digest(), size: 96 };
      case 'ed25519': return { mechanism: CKM_EDDSA, input: data, size: 64 };
      // sha256WithRSAEncryption = PKCS#1 v1.5 over DigestInfo(SHA-256) (RFC 8017 §9.2).
      case 'rsa-2048':
      case 'rsa-3072': return {
        mechanism: lib.CKM_RSA_PKCS,
        input: Buffer.concat([SHA256_DIGEST_INFO_PREFIX, createHash('sha256').update(data).digest()]),
        size: this.algorithm === 'rsa-2048' ? 256 : 384,
      };
    }
  }
}
