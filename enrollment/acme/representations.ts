/**
 * ACME objects as the client reads them (RFC 8555 §7.1.2-§7.1.5): times as RFC 3339 without
 * fractions, every related object by its URL.
 */
import { toPem } from '../../pkix/index.js';
import type { AcmeAccount, AcmeAuthorization, AcmeChallenge, AcmeOrder } from '../../registry/acme.js';
import type { AcmeUrls } from './urls.js';

export function iso(d: Date | undefined): string | undefined {
  return d?.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function accountJson(a: AcmeAccount) {
  return { status: a.status, contact: a.contact, termsOfServiceAgreed: true };
}

export function orderJson(o: AcmeOrder, urls: AcmeUrls) {
  return {
    status: o.status, expires: iso(o.expiresAt), identifiers: o.identifiers,
    authorizations: o.authorizationIds.map((id) => urls.authorization(id)), finalize: urls.finalize(o.id),
    ...(o.certificateSerial !== undefined && { certificate: urls.certificate(o.certificateSerial) }),
    ...(o.error !== undefined && { error: o.error }), ...(o.replaces !== undefined && { replaces: o.replaces }),
  };
}

export function challengeJson(authzId: string, c: AcmeChallenge, urls: AcmeUrls) {
  return {
    type: c.type, url: urls.challenge(authzId, c.id), status: c.status, token: c.token,
    ...(c.validatedAt !== undefined && { validated: iso(c.validatedAt) }), ...(c.error !== undefined && { error: c.error }),
  };
}

export function authorizationJson(a: AcmeAuthorization, urls: AcmeUrls) {
  return {
    identifier: a.identifier, status: a.status, expires: iso(a.expiresAt),
    challenges: a.challenges.map((c) => challengeJson(a.id, c, urls)), ...(a.wildcard && { wildcard: true }),
  };
}

/** The PEM chain of a certificate download (application/pem-certificate-chain, §9.1). */
export function pemChain(ders: Buffer[]): string {
  return ders.map((d) => toPem('CERTIFICATE', d)).join('');
}
