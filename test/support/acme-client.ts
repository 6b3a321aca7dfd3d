/**
 * A small ACME client for the tests, built on the `jose` library (as an independent JWS
 * implementation): it signs what certbot and lego cannot be made to send — ARI lookups, a replayed
 * nonce, a wrong `url`, a refused algorithm, a newAccount without a binding, a key rollover, a
 * revocation by the certificate's key — and drives dns-01 (neither Debian client has a hook for it here).
 */
import type { webcrypto } from 'node:crypto';
import { exportJWK, FlattenedSign, generateKeyPair, type JWK } from 'jose';
import { request, type HttpResponse } from './service.js';

type Key = webcrypto.CryptoKey;

export interface AcmeDirectory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
  revokeCert: string;
  keyChange: string;
  renewalInfo: string;
  meta?: { externalAccountRequired?: boolean };
}

export interface SignOptions {
  /** Sign with the key given as jwk (newAccount, revokeCert by the certificate key), not the account kid. */
  jwk?: boolean;
  nonce?: string;
  url?: string;
  alg?: string;
  key?: Key;
  publicJwk?: JWK;
}

const enc = new TextEncoder();

export async function newKey(alg = 'ES256'): Promise<{ privateKey: Key; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey: privateKey as Key, jwk: await exportJWK(publicKey) };
}

export class AcmeTestClient {
  directory!: AcmeDirectory;
  kid?: string;
  lastNonce?: string;

  private constructor(readonly directoryUrl: string, readonly rootPem: string, public privateKey: Key, public jwk: JWK) {}

  static async open(directoryUrl: string, rootPem: string): Promise<AcmeTestClient> {
    const { privateKey, jwk } = await newKey();
    const c = new AcmeTestClient(directoryUrl, rootPem, privateKey, jwk);
    const r = await c.get(directoryUrl);
    c.directory = r.json as AcmeDirectory;
    return c;
  }

  get(url: string): Promise<HttpResponse> {
    const u = new URL(url);
    return request(u.origin, this.rootPem, 'GET', u.pathname);
  }

  async nonce(): Promise<string> {
    const u = new URL(this.directory.newNonce);
    const r = await request(u.origin, this.rootPem, 'HEAD', u.pathname);
    return String(r.headers['replay-nonce']);
  }

  /** A flattened JWS (payload undefined: POST-as-GET). */
  async jws(url: string, payload: unknown, o: SignOptions = {}): Promise<Record<string, string>> {
    const header: Record<string, unknown> = { alg: o.alg ?? 'ES256', url: o.url ?? url };
    const nonce = o.nonce ?? await this.nonce();
    header.nonce = nonce;
    this.lastNonce = nonce;
    if (o.jwk || this.kid === undefined) header.jwk = o.publicJwk ?? this.jwk;
    else header.kid = this.kid;
    const body = payload === undefined ? new Uint8Array() : enc.encode(JSON.stringify(payload));
    return await new FlattenedSign(body).setProtectedHeader(header as never).sign(o.key ?? this.privateKey) as unknown as Record<string, string>;
  }

  async post(url: string, payload: unknown, o: SignOptions = {}): Promise<HttpResponse> {
    return this.postRaw(url, JSON.stringify(await this.jws(url, payload, o)));
  }

  postRaw(url: string, body: string, contentType = 'application/jose+json'): Promise<HttpResponse> {
    const u = new URL(url);
    return request(u.origin, this.rootPem, 'POST', u.pathname, { body, contentType });
  }

  /** RFC 8555 §7.3.4: the binding MAC'd with the EAB HMAC key. */
  async eab(kid: string, hmacKey: string, url = this.directory.newAccount): Promise<Record<string, string>> {
    return await new FlattenedSign(enc.encode(JSON.stringify(this.jwk)))
      .setProtectedHeader({ alg: 'HS256', kid, url }).sign(Buffer.from(hmacKey, 'base64url')) as unknown as Record<string, string>;
  }

  async register(kid: string, hmacKey: string): Promise<HttpResponse> {
    const r = await this.post(this.directory.newAccount, { termsOfServiceAgreed: true, externalAccountBinding: await this.eab(kid, hmacKey) }, { jwk: true });
    if (r.status === 201 || r.status === 200) this.kid = String(r.headers.location);
    return r;
  }

  /** Polls a URL (POST-as-GET) until `done` says so or 20 s pass. */
  async poll(url: string, done: (json: any) => boolean): Promise<any> {
    const until = Date.now() + 20_000;
    for (;;) {
      const r = await this.post(url, undefined);
      if (done(r.json) || Date.now() > until) return r.json;
      await new Promise((res) => setTimeout(res, 200));
    }
  }
}
