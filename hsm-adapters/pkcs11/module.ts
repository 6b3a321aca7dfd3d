/**
 * One loaded PKCS#11 module per library path, shared by every store of the process.
 *
 * PKCS#11 §5.4: `C_Initialize` may be called once per process and library; a second call returns
 * CKR_CRYPTOKI_ALREADY_INITIALIZED, and `C_Finalize` ends the use of every session of every caller.
 * So stores over the same module share one initialised instance, counted, and the last one out
 * finalises it (which also lets a test point SoftHSM2 at another token directory afterwards).
 */
import { createRequire } from 'node:module';
import { KakuinError } from '../../errors/index.js';
import type * as Pkcs11Types from 'pkcs11js';

const require = createRequire(import.meta.url);

export type Pkcs11Js = typeof Pkcs11Types;
export type Pkcs11Instance = InstanceType<Pkcs11Js['PKCS11']>;

/** The Debian/Ubuntu path of SoftHSM2's module (package `softhsm2`). */
export const SOFTHSM2_DEFAULT_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface LoadedModule {
  readonly path: string;
  readonly pkcs11: Pkcs11Instance;
  readonly lib: Pkcs11Js;
  release(): void;
}

const loaded = new Map<string, { pkcs11: Pkcs11Instance; refs: number }>();

let binding: Pkcs11Js | undefined;

/** The pkcs11js binding, loaded on first use so that a process without PKCS#11 keys never needs it. */
export function pkcs11js(): Pkcs11Js {
  binding ??= require('pkcs11js') as Pkcs11Js;
  return binding;
}

export function acquireModule(path: string): LoadedModule {
  const lib = pkcs11js();
  let entry = loaded.get(path);
  if (!entry) {
    const pkcs11 = new lib.PKCS11();
    try {
      pkcs11.load(path);
    } catch (cause) {
      throw new KakuinError('KAKUIN_E_PKCS11_MODULE', `cannot load the PKCS#11 module ${path}`, { cause });
    }
    try {
      // The module's own (OS) locking: kakuin calls it from libuv's thread pool (C_SignAsync).
      pkcs11.C_Initialize({ flags: lib.CKF_OS_LOCKING_OK });
    } catch (cause) {
      if (!(cause instanceof lib.Pkcs11Error && cause.code === lib.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
        throw new KakuinError('KAKUIN_E_PKCS11_MODULE', `C_Initialize of ${path} failed: ${String(cause)}`, { cause });
      }
    }
    entry = { pkcs11, refs: 0 };
    loaded.set(path, entry);
  }
  entry.refs += 1;
  const held = entry;
  let released = false;
  return {
    path, pkcs11: held.pkcs11, lib,
    release() {
      if (released) return;
      released = true;
      held.refs -= 1;
      if (held.refs === 0 && loaded.get(path) === held) {
        loaded.delete(path);
        try { held.pkcs11.C_Finalize(); } catch { /* already finalised */ }
        try { held.pkcs11.close(); } catch { /* already unloaded */ }
      }
    },
  };
}
