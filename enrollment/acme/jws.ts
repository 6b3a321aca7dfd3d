/**
 * The JWS every ACME POST carries (RFC 8555 §6.2, RFC 7515), verified with the `jose` library:
 * flattened JSON serialization with exactly one signature and nothing unprotected; `alg` one of
 * ES256, ES384, RS256 or EdDSA (never `none` or a MAC, §6.2); either `jwk` (newAccount,
 * revokeCert by the certificate's key) or `kid` (the account URL), never both; `nonce` one this
 * server issued and not used before (§6.5, badNonce); `url` exactly the URL the request was sent to
 * (§6.4). An empty payload is POST-as-GET (§6.3).
 */
import type { webcrypto } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, flattenedVerify, importJWK, type FlattenedJWSInput, type JWK, type ProtectedHeaderParameters } from 'jose';
import { KakuinError } from '../../errors/index.js';
import type { AcmeAccount } from '../../registry/acme.js';
import type { NonceStore } from './nonces.js';
import { AcmeError } from './problems.js';

export const JWS_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'EdDSA'] as const;
/** RFC 8555 §7.3.4: the external account binding is MAC'd with HMAC; certbot and lego use HS256. */
const EAB_ALGORITHMS = ['HS256', 'HS384', 'HS512'];

export interface VerifiedJws {
  header: ProtectedHeaderParameters & { nonce?: unknown; url?: unknown };
  /** undefined for POST-as-GET (an empty payload). */
  payload: unknown;
  /** The `jwk` header, when the request is signed by a key rather than an account. */
  jwk?: JWK;
  /** The account `kid` names (its status checked by the caller). */
  account?: AcmeAccount;
}

export interface JwsContext {
  nonces: NonceStore;
  /** The account of a `kid` URL; undefined when the URL names none. */
  accountByKid(kid: string): Promise<AcmeAccount | undefined>;
}

function malformed(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ACME_MALFORMED', message);
}

/** The request body as flattened JWS JSON (§6.2: "MUST use the Flattened JSON Serialization"). */
export function flattenedJws(raw: unknown, what = 'the request body'): FlattenedJWSInput {
  let value: unknown = raw;
  if (Buffer.isBuffer(raw)) {
    try {
      value = JSON.parse(raw.toString('utf8'));
    } catch {
      throw malformed(`${what} is not JSON`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${what} must be a flattened JWS object`);
  const o = value as Record<string, unknown>;
  if ('signatures' in o) throw malformed(`${what} must carry exactly one signature (flattened serialization)`);
  if ('header' in o) throw malformed(`${what} must not have an unprotected header (RFC 8555 §6.2)`);
  for (const k of ['protected', 'payload', 'signature'] as const) {
    if (typeof o[k] !== 'string') throw malformed(`${what} needs a string "${k}"`);
  }
  const extra = Object.keys(o).filter((k) => !['protected', 'payload', 'signature'].includes(k));
  if (extra.length > 0) throw malformed(`${what} has unknown members: ${extra.join(', ')}`);
  return { protected: o.protected as string, payload: o.payload as string, signature: o.signature as string };
}

function headerOf(jws: FlattenedJWSInput): VerifiedJws['header'] {
  try {
    return decodeProtectedHeader(jws) as VerifiedJws['header'];
  } catch (cause) {
    throw new KakuinError('KAKUIN_E_ACME_MALFORMED', 'the JWS protected header is not base64url JSON', { cause });
  }
}

function checkAlgorithm(alg: unknown): string {
  if (typeof alg !== 'string' || !(JWS_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new AcmeError('KAKUIN_E_ACME_BAD_SIGNATURE_ALGORITHM', `the JWS algorithm ${JSON.stringify(alg)} is not accepted`, { algorithms: [...JWS_ALGORITHMS] });
  }
  return alg;
}

/** The key a JWK names, for `alg` (an unusable or mismatched key is badSignatureAlgorithm / malformed). */
export async function keyOf(jwk: unknown, alg: string): Promise<webcrypto.CryptoKey | Uint8Array> {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw malformed('the JWS jwk must be a JSON Web Key object');
  const k = jwk as JWK;
  if ('d' in k || k.kty === 'oct') throw malformed('the JWS jwk must be a public key');
  const fits = (alg === 'RS256' && k.kty === 'RSA') || (alg.startsWith('ES') && k.kty === 'EC') || (alg === 'EdDSA' && k.kty === 'OKP' && k.crv === 'Ed25519');
  if (!fits) throw new AcmeError('KAKUIN_E_ACME_BAD_SIGNATURE_ALGORITHM', `the JWS algorithm ${alg} does not fit a ${String(k.kty)} key`, { algorithms: [...JWS_ALGORITHMS] });
  try {
    return await importJWK(k, alg);
  } catch (cause) {
    throw new KakuinError('KAKUIN_E_ACME_MALFORMED', 'the JWS jwk is not a usable public key', { cause });
  }
}

/** RFC 7638 thumbprint (SHA-256, base64url) of the public members of a JWK. */
export async function thumbprintOf(jwk: JWK): Promise<string> {
  try {
    return await calculateJwkThumbprint(jwk, 'sha256');
  } catch (cause) {
    throw new KakuinError('KAKUIN_E_ACME_MALFORMED', 'the JWK lacks the members its key type requires', { cause });
  }
}

/** Only the public members (what an account stores and a thumbprint hashes). */
export function publicJwk(jwk: JWK): JWK {
  const members: Record<string, string[]> = { EC: ['kty', 'crv', 'x', 'y'], RSA: ['kty', 'n', 'e'], OKP: ['kty', 'crv', 'x'] };
  const keep = members[String(jwk.kty)] ?? [];
  return Object.fromEntries(keep.filter((m) => typeof (jwk as Record<string, unknown>)[m] === 'string').map((m) => [m, (jwk as Record<string, unknown>)[m]])) as JWK;
}

async function verifySignature(jws: FlattenedJWSInput, key: webcrypto.CryptoKey | Uint8Array, alg: string): Promise<Uint8Array> {
  try {
    return (await flattenedVerify(jws, key, { algorithms: [alg] })).payload;
  } catch (cause) {
    throw new KakuinError('KAKUIN_E_ACME_UNAUTHORIZED', 'the JWS signature does not verify', { cause });
  }
}

function payloadOf(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw malformed('the JWS payload is not JSON');
  }
}

/**
 * Verifies one ACME request. `signer`: `jwk` (newAccount), `kid` (every account request) or
 * `either` (revokeCert, §7.6). Order of checks: structure, algorithm, url, signature, nonce; the
 * nonce is spent only by a request whose signature verified.
 */
export async function verifyAcmeJws(raw: unknown, url: string, signer: 'jwk' | 'kid' | 'either', ctx: JwsContext): Promise<VerifiedJws> {
  const jws = flattenedJws(raw);
  const header = headerOf(jws);
  const alg = checkAlgorithm(header.alg);
  if (header.url !== url) throw new KakuinError('KAKUIN_E_ACME_UNAUTHORIZED', `the JWS url ${JSON.stringify(header.url)} is not the URL this request was sent to (${url})`);
  if (header.b64 !== undefined || header.crit !== undefined) throw malformed('the JWS must not use b64 or crit');
  const hasJwk = header.jwk !== undefined;
  const hasKid = header.kid !== undefined;
  if (hasJwk === hasKid) throw malformed('the JWS protected header must have exactly one of jwk and kid (RFC 8555 §6.2)');
  if (signer === 'jwk' && !hasJwk) throw malformed('this request must be signed with the account key given as jwk, not a kid');
  if (signer === 'kid' && !hasKid) throw malformed('this request must name its account by kid');
  let account: AcmeAccount | undefined;
  let key: webcrypto.CryptoKey | Uint8Array;
  if (hasKid) {
    if (typeof header.kid !== 'string') throw malformed('the JWS kid must be the account URL');
    account = await ctx.accountByKid(header.kid);
    if (account === undefined) throw new KakuinError('KAKUIN_E_ACME_ACCOUNT_DOES_NOT_EXIST', 'no ACME account has that kid');
    key = await keyOf(JSON.parse(account.jwk), alg);
  } else {
    key = await keyOf(header.jwk, alg);
  }
  const payload = payloadOf(await verifySignature(jws, key, alg));
  if (!ctx.nonces.consume(header.nonce)) throw new KakuinError('KAKUIN_E_ACME_BAD_NONCE', 'the JWS nonce is missing, unknown, expired or used already; retry with the Replay-Nonce of this answer');
  return { header, payload, ...(hasJwk && { jwk: publicJwk(header.jwk as JWK) }), ...(account !== undefined && { account }) };
}

/**
 * The external account binding of a newAccount (RFC 8555 §7.3.4): a JWS MAC'd with the EAB HMAC
 * key, protected header {alg: HS256, kid: <EAB key id>, url: <newAccount URL>}, payload the account
 * JWK. Returns the EAB key id once the MAC and the bound key check; KAKUIN_E_ACME_EAB_INVALID otherwise.
 */
export async function verifyExternalAccountBinding(
  binding: unknown, url: string, accountJwk: JWK, hmacKeyOf: (kid: string) => Promise<Buffer | undefined>,
): Promise<string> {
  const invalid = (message: string, cause?: unknown) => new KakuinError('KAKUIN_E_ACME_EAB_INVALID', message, cause === undefined ? undefined : { cause });
  let jws: FlattenedJWSInput;
  try {
    jws = flattenedJws(binding, 'externalAccountBinding');
  } catch (e) {
    throw invalid((e as Error).message);
  }
  let header: VerifiedJws['header'];
  try {
    header = headerOf(jws);
  } catch (e) {
    throw invalid((e as Error).message);
  }
  if (typeof header.alg !== 'string' || !EAB_ALGORITHMS.includes(header.alg)) throw invalid('externalAccountBinding must be MAC\'d with HS256, HS384 or HS512');
  if (header.url !== url) throw invalid('externalAccountBinding url must be the newAccount URL');
  if (header.nonce !== undefined) throw invalid('externalAccountBinding must not carry a nonce (RFC 8555 §7.3.4)');
  if (typeof header.kid !== 'string') throw invalid('externalAccountBinding needs the EAB key id as kid');
  const key = await hmacKeyOf(header.kid);
  if (key === undefined) throw invalid('the EAB key id is unknown or revoked');
  let bound: unknown;
  try {
    bound = payloadOf((await flattenedVerify(jws, key, { algorithms: [header.alg] })).payload);
  } catch (cause) {
    throw invalid('the externalAccountBinding MAC does not verify with that EAB key', cause);
  }
  if (typeof bound !== 'object' || bound === null) throw invalid('externalAccountBinding must bind the account JWK');
  if (await thumbprintOf(bound as JWK).catch(() => '') !== await thumbprintOf(accountJwk)) throw invalid('externalAccountBinding binds another key than the account\'s');
  return header.kid;
}

/**
 * The inner JWS of a key change (RFC 8555 §7.3.5): signed by the new key (given as jwk), url the
 * keyChange URL, no nonce, payload {account, oldKey}. Returns the new key.
 */
export async function verifyKeyChange(inner: unknown, url: string, accountUrl: string, oldJwk: JWK): Promise<JWK> {
  const jws = flattenedJws(inner, 'the key change payload');
  const header = headerOf(jws);
  const alg = checkAlgorithm(header.alg);
  if (header.url !== url) throw malformed('the inner JWS url must be the keyChange URL');
  if (header.nonce !== undefined) throw malformed('the inner JWS must not carry a nonce');
  if (header.jwk === undefined || header.kid !== undefined) throw malformed('the inner JWS must carry the new key as jwk');
  const payload = payloadOf(await verifySignature(jws, await keyOf(header.jwk, alg), alg)) as { account?: unknown; oldKey?: unknown } | undefined;
  if (payload?.account !== accountUrl) throw malformed('the key change names another account');
  if (typeof payload.oldKey !== 'object' || payload.oldKey === null || await thumbprintOf(payload.oldKey as JWK) !== await thumbprintOf(oldJwk)) {
    throw malformed('the key change oldKey is not the account\'s current key');
  }
  return publicJwk(header.jwk as JWK);
}
