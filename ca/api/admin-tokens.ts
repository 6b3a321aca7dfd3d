/**
 * Admin bearer tokens. A token is 256 random bits shown once; the registry keeps only its
 * HMAC-SHA-256 under the pepper, which lives outside the database (DESIGN.md "Storage"), so a copied
 * database file yields no usable token and checking one costs a single HMAC.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AdminToken, Registry } from '../../registry/port.js';
import { KakuinError } from '../../errors/index.js';

const TOKEN_PREFIX = 'kkadm_';

export function newAdminTokenSecret(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function tokenHmac(pepper: Buffer, token: string): string {
  return createHmac('sha256', pepper).update(token, 'utf8').digest('hex');
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export async function createAdminToken(registry: Registry, pepper: Buffer, name: string, actor: string): Promise<{ token: string; record: AdminToken }> {
  if (!TOKEN_NAME.test(name)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'a token name is 1 to 64 characters: letters, digits, . _ @ -, starting with a letter or digit');
  }
  const token = newAdminTokenSecret();
  const record = await registry.createAdminToken({ name, tokenHmac: tokenHmac(pepper, token), role: 'admin' });
  await registry.appendAuditEvent({ type: 'token.created', actor, details: { name, role: 'admin' } });
  return { token, record };
}

/** Who is calling. Stations and devices join this union with their issues. */
export interface AdminCaller {
  kind: 'admin';
  name: string;
  /** How audit events name the caller. */
  actor: string;
}

export type Caller = AdminCaller;

export class AdminAuthenticator {
  private readonly bootstrapHmac?: Buffer;

  /**
   * @param bootstrapToken `KAKUIN_ADMIN_TOKEN`, accepted as the admin named `bootstrap` without
   *   being stored, so an operator can always get in with the environment they control.
   */
  constructor(private readonly registry: Registry, private readonly pepper: Buffer, bootstrapToken?: string) {
    if (bootstrapToken) this.bootstrapHmac = Buffer.from(tokenHmac(pepper, bootstrapToken), 'hex');
  }

  /** The caller named by an `Authorization` header, or undefined. */
  async authenticate(authorization: string | undefined): Promise<Caller | undefined> {
    const m = authorization ? /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(authorization) : null;
    if (!m) return undefined;
    const hmac = tokenHmac(this.pepper, m[1]);
    if (this.bootstrapHmac && timingSafeEqual(this.bootstrapHmac, Buffer.from(hmac, 'hex'))) {
      return { kind: 'admin', name: 'bootstrap', actor: 'token:bootstrap' };
    }
    // Looking up by HMAC leaks nothing useful through timing: the HMAC of a guess says nothing
    // about the HMAC of the real token.
    const record = await this.registry.findAdminTokenByHmac(hmac);
    if (!record || record.disabledAt) return undefined;
    return { kind: 'admin', name: record.name, actor: `token:${record.name}` };
  }
}
