/**
 * The webhook signature (README "Events"): `X-Kakuin-Signature: t=<unix seconds>,v1=<hex>` where
 * hex is HMAC-SHA-256 under the destination's secret of `<t>.<body>`. The time is inside the MAC
 * so a receiver can refuse an old request replayed (it compares `t` with its clock); the scheme is
 * the one Stripe and others made familiar, so receivers have code for it already.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function signatureHeader(secret: Buffer | string, body: string | Buffer, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.`).update(body).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/**
 * The receiver's check (the README's example uses it as is): the header parses, a v1 MAC matches
 * in constant time, and `t` is within `toleranceSeconds` of `nowSeconds`.
 */
export function verifySignature(
  secret: Buffer | string, body: string | Buffer, header: string | undefined,
  options: { nowSeconds?: number; toleranceSeconds?: number } = {},
): boolean {
  if (header === undefined) return false;
  const parts = header.split(',').map((p) => p.trim().split('='));
  const t = parts.find(([k]) => k === 't')?.[1];
  if (t === undefined || !/^\d{1,12}$/.test(t)) return false;
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(t)) > (options.toleranceSeconds ?? 300)) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  return parts.some(([k, v]) => k === 'v1' && v !== undefined && /^[0-9a-f]{64}$/.test(v) && timingSafeEqual(Buffer.from(v, 'hex'), expected));
}
