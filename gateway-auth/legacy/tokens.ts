/**
 * Legacy tokens: stateless, HMAC-SHA-256 signed, validated in memory (no registry read per request).
 *
 *   kkl1.<deviceId>.<generation>.<expires, unix seconds>.<nonce>.<MAC, base64url>
 *
 * The MAC key is derived from the pepper, so every process that shares the pepper validates every
 * other's tokens. Expiry bounds a token's life; the kill switch (kill-switch.ts) ends it earlier:
 * the generation must still be the device's current one and the device usable.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface LegacyTokenClaims {
  deviceId: string;
  generation: number;
  expiresAt: Date;
}

const PREFIX = 'kkl1';
const TOKEN = /^kkl1\.([0-9a-f-]{36})\.(\d{1,15})\.(\d{1,12})\.([A-Za-z0-9_-]{11})\.([A-Za-z0-9_-]{43})$/;

export class LegacyTokenSigner {
  private readonly key: Buffer;

  constructor(pepper: Buffer) {
    this.key = createHmac('sha256', pepper).update('kakuin legacy token key v1').digest();
  }

  issue(deviceId: string, generation: number, expiresAt: Date): string {
    const body = `${PREFIX}.${deviceId}.${generation}.${Math.floor(expiresAt.getTime() / 1000)}.${randomBytes(8).toString('base64url')}`;
    return `${body}.${this.mac(body).toString('base64url')}`;
  }

  /** The claims of a well-formed, authentic, unexpired token; undefined otherwise. */
  verify(token: string, nowMs: number): LegacyTokenClaims | undefined {
    if (typeof token !== 'string' || token.length > 200) return undefined;
    const m = TOKEN.exec(token);
    if (!m) return undefined;
    const cut = token.lastIndexOf('.');
    const given = Buffer.from(m[5], 'base64url');
    const expected = this.mac(token.slice(0, cut));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const expiresMs = Number(m[3]) * 1000;
    if (expiresMs <= nowMs) return undefined;
    return { deviceId: m[1], generation: Number(m[2]), expiresAt: new Date(expiresMs) };
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest();
  }
}
