/**
 * Legacy auth secrets and how they are kept (DESIGN.md "Storage").
 *
 * - Generated secrets: 160 random bits (≥ 128 required), shown once, kept as HMAC-SHA-256 under the
 *   pepper. One HMAC per check; a stolen database file alone yields nothing.
 * - Imported secrets (burned into deployed devices, chosen by people): kept with async scrypt
 *   (libuv thread pool, never the event loop). The salt is derived from the pepper, not random per
 *   row: "no two devices share a secret" must be checkable against what is stored, and a per-row
 *   salt would make that impossible. Without the pepper the verifiers cannot even be attacked; with
 *   it, scrypt's cost still bounds guessing.
 *
 * Cost: N = 2^15, r = 8, p = 1 (32 MiB per hash, maxmem 64 MiB). Between OWASP's scrypt floor for
 * human passwords (2^17) and an issuance rate a fleet needs: a token lives an hour, so each
 * imported device costs one hash an hour. Measured (`npm run bench`) on the 2-core development VM:
 * ~22 issuances/s, i.e. ~80,000 imported devices per hour per 2 cores, 128 MiB peak with the 4
 * default libuv threads; 2^17 would cut that to ~5/s. Imported secrets
 * also pass a strength check first, so the residual risk is in the pepper, not in the cost. The
 * parameters are written into each verifier (`scrypt$15$8$1$...`), so they can be raised later.
 */
import { createHmac, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';

export const SCRYPT_COST = { log2N: 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024, keyLength: 32 } as const;

/** A new auth secret: 20 random octets (160 bits), base64url. */
export function generateAuthSecret(): string {
  return randomBytes(20).toString('base64url');
}

export function hmacVerifier(pepper: Buffer, secret: string): string {
  return createHmac('sha256', pepper).update('kakuin legacy auth secret\0').update(secret, 'utf8').digest('hex');
}

function importSalt(pepper: Buffer): Buffer {
  return createHmac('sha256', pepper).update('kakuin legacy import salt').digest();
}

export function scryptVerifier(pepper: Buffer, secret: string, cost: { log2N: number; r: number; p: number } = SCRYPT_COST): Promise<string> {
  return new Promise((resolve, reject) => {
    scryptCallback(Buffer.from(secret, 'utf8'), importSalt(pepper), SCRYPT_COST.keyLength,
      { N: 2 ** cost.log2N, r: cost.r, p: cost.p, maxmem: SCRYPT_COST.maxmem }, (e, key) => {
        if (e) reject(e);
        else resolve(`scrypt$${cost.log2N}$${cost.r}$${cost.p}$${key.toString('hex')}`);
      });
  });
}

/** Compares the verifier of `secret` with a stored one in constant time (for equal lengths). */
export async function verifySecret(pepper: Buffer, kind: 'hmac' | 'scrypt', stored: string, secret: string): Promise<boolean> {
  let computed: string;
  if (kind === 'hmac') {
    computed = hmacVerifier(pepper, secret);
  } else {
    const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$[0-9a-f]+$/.exec(stored);
    if (!m) return false;
    computed = await scryptVerifier(pepper, secret, { log2N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) });
  }
  const a = Buffer.from(computed, 'utf8');
  const b = Buffer.from(stored, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
