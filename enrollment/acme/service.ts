/**
 * ACME (RFC 8555) for infrastructure certificates: the protocol's semantics, apart from HTTP
 * (routes.ts) and storage (registry/acme.ts). Certificates come from the infrastructure CA through
 * the `issue` callback the composition root gives (ca/tls-server.ts issueServerCertificate), never
 * from the device CA: an ACME account can never obtain a certificate the gateway accepts from a device.
 *
 * Accounts need an external account binding (§7.3.4); its EAB key's name patterns are what the
 * account may order (checked at newOrder: rejectedIdentifier). Each order gets fresh
 * authorizations; an authorization offers http-01 and tls-alpn-01 (and dns-01 with a hook; a
 * wildcard only dns-01). Validation runs in the background after the client answers a challenge
 * (§7.5.1); the client polls. Representations: representations.ts; URLs: urls.ts.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { JWK } from 'jose';
import { KakuinError, hasCode, isKakuinError } from '../../errors/index.js';
import { crlReasonFromCode, csrRequestedNames, parseCertificate, readCsr, verifyCsr, type CrlReason } from '../../pkix/index.js';
import type {
  AcmeAccount, AcmeAuthorization, AcmeChallenge, AcmeChallengeType, AcmeIdentifier, AcmeOrder, AcmeStore,
} from '../../registry/acme.js';
import type { CertificateRecord, NewAuditEvent } from '../../registry/port.js';
import { eabHmacKey, isDnsName, nameAllowed } from './eab.js';
import { publicJwk, thumbprintOf, verifyAcmeJws, verifyExternalAccountBinding, verifyKeyChange, type VerifiedJws } from './jws.js';
import { NonceStore } from './nonces.js';
import { problemOf } from './problems.js';
import { validateChallenge, type ValidationOptions } from './validation.js';
import { iso } from './representations.js';
import { AcmeUrls } from './urls.js';

export { AcmeUrls };

export interface AcmeServiceDeps {
  store: AcmeStore;
  pepper: Buffer;
  /** Issues a TLS server certificate for the key and names by the infrastructure CA; committed before it returns. */
  issue(request: { spki: Buffer; hostnames: string[]; actor: string; details: Record<string, unknown> }): Promise<Buffer>;
  /** The certificates above an issued one, issuing CA first (the infrastructure CA; the root is the client's trust anchor). */
  chain: Buffer[];
  /** The infrastructure CA's key identifier: the AKI of everything it issues (ARI certIDs carry it). */
  issuerKeyId: Buffer;
  certificate(serialHex: string): Promise<CertificateRecord>;
  revoke(serialHex: string, reason: CrlReason, actor: string): Promise<void>;
  audit(event: NewAuditEvent): Promise<unknown>;
  validation: ValidationOptions;
  validityDays: number;
  onBackgroundError?: (e: unknown) => void;
  now?: () => Date;
}

const DAY_MS = 86_400_000;
const ORDER_LIFETIME_MS = 7 * DAY_MS;
const MAX_IDENTIFIERS = 100;
/** Validations in flight at once (each holds a socket or a hook process). */
const MAX_VALIDATIONS = 64;

function newId(): string {
  return randomBytes(16).toString('base64url');
}

function malformed(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ACME_MALFORMED', message);
}

function notFound(what: string): KakuinError {
  return new KakuinError('KAKUIN_E_ACME_NOT_FOUND', `no such ${what}`);
}


/** RFC 9773 §4.1: certID = base64url(AKI keyIdentifier) "." base64url(serial INTEGER contents). */
export function ariCertId(certificateDer: Buffer): string {
  const cert = parseCertificate(certificateDer);
  if (cert.authorityKeyIdentifier === undefined) throw malformed('the certificate has no authorityKeyIdentifier');
  // The INTEGER's content octets, with the leading zero a positive serial with its top bit set needs.
  const serial = (cert.serial[0] & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), cert.serial]) : cert.serial;
  return `${cert.authorityKeyIdentifier.toString('base64url')}.${serial.toString('base64url')}`;
}

export class AcmeService {
  readonly nonces = new NonceStore();
  private readonly now: () => Date;
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly deps: AcmeServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  /** Verifies a request's JWS and, when it names an account, that the account may still act. */
  async verify(raw: unknown, url: string, urls: AcmeUrls, signer: 'jwk' | 'kid' | 'either'): Promise<VerifiedJws> {
    const v = await verifyAcmeJws(raw, url, signer, {
      nonces: this.nonces,
      accountByKid: async (kid) => {
        const id = urls.accountIdOf(kid);
        return id === undefined ? undefined : this.deps.store.account(id);
      },
    });
    if (v.account !== undefined && v.account.status !== 'valid') {
      throw new KakuinError('KAKUIN_E_ACME_ACCOUNT_DEACTIVATED', `the account is ${v.account.status}`);
    }
    return v;
  }

  directory(urls: AcmeUrls) {
    return {
      newNonce: urls.newNonce, newAccount: urls.newAccount, newOrder: urls.newOrder, revokeCert: urls.revokeCert, keyChange: urls.keyChange,
      renewalInfo: urls.renewalInfo,
      meta: { externalAccountRequired: true },
    };
  }

  // ---- accounts (§7.3) ------------------------------------------------------------------------

  async newAccount(v: VerifiedJws, urls: AcmeUrls): Promise<{ account: AcmeAccount; created: boolean }> {
    const jwk = v.jwk!;
    const p = (v.payload ?? {}) as Record<string, unknown>;
    if (typeof p !== 'object' || Array.isArray(p)) throw malformed('the newAccount payload must be a JSON object');
    const thumbprint = await thumbprintOf(jwk);
    const existing = await this.deps.store.accountByThumbprint(thumbprint);
    if (existing !== undefined) {
      if (existing.status !== 'valid') throw new KakuinError('KAKUIN_E_ACME_ACCOUNT_DEACTIVATED', `the account of that key is ${existing.status}`);
      return { account: existing, created: false };
    }
    if (p.onlyReturnExisting === true) throw new KakuinError('KAKUIN_E_ACME_ACCOUNT_DOES_NOT_EXIST', 'no account has that key');
    if (p.externalAccountBinding === undefined) {
      throw new KakuinError('KAKUIN_E_ACME_EXTERNAL_ACCOUNT_REQUIRED', 'this server requires an external account binding: ask the kakuin operator for `kakuin acme eab create --names ...`');
    }
    const contact = this.contact(p.contact);
    const eabKid = await verifyExternalAccountBinding(p.externalAccountBinding, urls.newAccount, jwk, async (kid) => {
      const key = await this.deps.store.eabKey(kid);
      return key === undefined || key.revokedAt !== undefined ? undefined : eabHmacKey(this.deps.pepper, kid);
    });
    const account: AcmeAccount = { id: newId(), status: 'valid', jwk: JSON.stringify(publicJwk(jwk)), thumbprint, contact, eabKid, createdAt: this.now() };
    await this.deps.store.createAccount(account);
    await this.deps.audit({ type: 'acme.account.created', actor: `acme:${account.id}`, details: { eabKid, contact } });
    return { account, created: true };
  }

  private contact(value: unknown): string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.length > 10 || !value.every((c) => typeof c === 'string' && /^mailto:[^\s,]{3,254}$/.test(c))) {
      throw new KakuinError('KAKUIN_E_ACME_MALFORMED', 'contact must be a list of at most 10 mailto: URLs');
    }
    return value as string[];
  }

  /** POST to the account URL (§7.3.2, §7.3.6): POST-as-GET, a contact update, or deactivation. */
  async updateAccount(v: VerifiedJws, id: string): Promise<AcmeAccount> {
    const account = this.own(v, id);
    if (v.payload === undefined) return account;
    const p = v.payload as Record<string, unknown>;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw malformed('the account update must be a JSON object');
    const change: { status?: 'deactivated'; contact?: string[] } = {};
    if (p.contact !== undefined) change.contact = this.contact(p.contact);
    if (p.status !== undefined) {
      if (p.status !== 'deactivated') throw malformed('an account status can only be changed to deactivated');
      change.status = 'deactivated';
    }
    if (Object.keys(change).length > 0) await this.deps.store.updateAccount(account.id, change);
    return (await this.deps.store.account(account.id))!;
  }

  /** keyChange (§7.3.5): the inner JWS signed by the new key. */
  async keyChange(v: VerifiedJws, urls: AcmeUrls): Promise<AcmeAccount> {
    const account = v.account!;
    const newKey = await verifyKeyChange(v.payload, urls.keyChange, urls.account(account.id), JSON.parse(account.jwk) as JWK);
    const thumbprint = await thumbprintOf(newKey);
    await this.deps.store.updateAccount(account.id, { jwk: JSON.stringify(newKey), thumbprint });
    return (await this.deps.store.account(account.id))!;
  }

  private own(v: VerifiedJws, accountId: string): AcmeAccount {
    if (v.account?.id !== accountId) throw new KakuinError('KAKUIN_E_ACME_UNAUTHORIZED', 'the JWS is signed by another account');
    return v.account;
  }

  // ---- orders (§7.4) --------------------------------------------------------------------------

  async newOrder(v: VerifiedJws): Promise<AcmeOrder> {
    const account = v.account!;
    const p = v.payload as Record<string, unknown> | undefined;
    if (typeof p !== 'object' || p === null || !Array.isArray(p.identifiers) || p.identifiers.length === 0) {
      throw malformed('newOrder needs a non-empty identifiers list');
    }
    if (p.identifiers.length > MAX_IDENTIFIERS) throw malformed(`an order names at most ${MAX_IDENTIFIERS} identifiers`);
    // §7.1.3: notBefore/notAfter are optional; kakuin sets the validity itself and refuses requests for another.
    if (p.notBefore !== undefined || p.notAfter !== undefined) throw malformed('kakuin sets the validity (acme.validityDays); send no notBefore or notAfter');
    const identifiers = this.identifiers(p.identifiers);
    const eab = await this.deps.store.eabKey(account.eabKid);
    if (eab === undefined || eab.revokedAt !== undefined) throw new KakuinError('KAKUIN_E_ACME_UNAUTHORIZED', 'the account\'s EAB key was revoked: it may order nothing more');
    const refused = identifiers.filter((i) => !nameAllowed(eab.names, i.value));
    if (refused.length > 0) {
      throw new KakuinError('KAKUIN_E_ACME_REJECTED_IDENTIFIER', `this account may not get ${refused.map((i) => i.value).join(', ')} (its EAB key allows ${eab.names.join(', ')})`);
    }
    const replaces = p.replaces === undefined ? undefined : await this.replaced(p.replaces, account);
    const now = this.now();
    const expiresAt = new Date(now.getTime() + ORDER_LIFETIME_MS);
    const orderId = newId();
    const authorizations: AcmeAuthorization[] = identifiers.map((identifier) => {
      const wildcard = identifier.value.startsWith('*.');
      const types: AcmeChallengeType[] = wildcard ? ['dns-01']
        : identifier.type === 'ip' ? ['http-01'] : ['http-01', 'tls-alpn-01', ...(this.deps.validation.dnsHook ? ['dns-01' as const] : [])];
      return {
        id: newId(), accountId: account.id, orderId, wildcard, status: 'pending', expiresAt,
        identifier: wildcard ? { type: 'dns', value: identifier.value.slice(2) } : identifier,
        challenges: types.map((type) => ({ id: newId(), type, token: randomBytes(32).toString('base64url'), status: 'pending' })),
      };
    });
    const order: AcmeOrder = {
      id: orderId, accountId: account.id, status: 'pending', identifiers, authorizationIds: authorizations.map((a) => a.id),
      expiresAt, createdAt: now, ...(replaces !== undefined && { replaces }),
    };
    await this.deps.store.createOrder(order, authorizations);
    return order;
  }

  private identifiers(list: unknown[]): AcmeIdentifier[] {
    const seen = new Set<string>();
    const out: AcmeIdentifier[] = [];
    for (const i of list) {
      const { type, value } = (i ?? {}) as { type?: unknown; value?: unknown };
      if (typeof value !== 'string' || (type !== 'dns' && type !== 'ip')) {
        throw new KakuinError('KAKUIN_E_ACME_UNSUPPORTED_IDENTIFIER', 'identifiers are {type: "dns" | "ip", value}');
      }
      const v = value.toLowerCase();
      if (type === 'ip' ? isIP(v) === 0 : !isDnsName(v.startsWith('*.') ? v.slice(2) : v)) {
        throw new KakuinError('KAKUIN_E_ACME_UNSUPPORTED_IDENTIFIER', `${JSON.stringify(value)} is not a ${type === 'ip' ? 'IP address' : 'DNS name'}`);
      }
      if (v.startsWith('*.') && !this.deps.validation.dnsHook) {
        throw new KakuinError('KAKUIN_E_ACME_UNSUPPORTED_IDENTIFIER', 'a wildcard needs dns-01, and this server has no acme.dnsHook');
      }
      if (!seen.has(`${type}:${v}`)) out.push({ type, value: v });
      seen.add(`${type}:${v}`);
    }
    return out;
  }

  /** RFC 9773 §5: `replaces` names a certificate this account obtained. */
  private async replaced(certId: unknown, account: AcmeAccount): Promise<string> {
    if (typeof certId !== 'string') throw malformed('replaces must be an ARI certID');
    const serialHex = this.serialOfCertId(certId);
    const order = await this.deps.store.orderByCertificate(serialHex);
    if (order === undefined || order.accountId !== account.id) throw malformed('replaces names no certificate this account obtained');
    return certId;
  }

  async order(v: VerifiedJws, id: string): Promise<AcmeOrder> {
    const order = await this.deps.store.order(id);
    if (order === undefined || order.accountId !== v.account!.id) throw notFound('order');
    return this.current(order);
  }

  /** An order past its expiry that never issued reads as invalid (§7.1.6). */
  private current(order: AcmeOrder): AcmeOrder {
    if ((order.status === 'pending' || order.status === 'ready') && order.expiresAt <= this.now()) return { ...order, status: 'invalid' };
    return order;
  }

  async authorization(v: VerifiedJws, id: string): Promise<AcmeAuthorization> {
    const authz = await this.deps.store.authorization(id);
    if (authz === undefined || authz.accountId !== v.account!.id) throw notFound('authorization');
    if (authz.status === 'pending' && authz.expiresAt <= this.now()) return { ...authz, status: 'expired' };
    return authz;
  }

  /** POST to an authorization: POST-as-GET, or deactivation (§7.5.2). */
  async updateAuthorization(v: VerifiedJws, id: string): Promise<AcmeAuthorization> {
    const authz = await this.authorization(v, id);
    if (v.payload === undefined) return authz;
    if ((v.payload as { status?: unknown }).status !== 'deactivated') throw malformed('an authorization can only be changed to deactivated');
    if (authz.status === 'pending' || authz.status === 'valid') {
      await this.deps.store.updateAuthorization(authz.id, authz.status, { status: 'deactivated', challenges: authz.challenges });
      await this.deps.store.updateOrder(authz.orderId, 'pending', { status: 'invalid', error: { type: 'urn:ietf:params:acme:error:unauthorized', detail: 'an authorization was deactivated' } });
    }
    return (await this.deps.store.authorization(authz.id))!;
  }

  // ---- challenges (§7.5.1, §8) ----------------------------------------------------------------

  /** The client says it is ready: the challenge becomes processing and is validated in the background. */
  async answerChallenge(v: VerifiedJws, authzId: string, challengeId: string): Promise<{ authz: AcmeAuthorization; challenge: AcmeChallenge }> {
    const authz = await this.authorization(v, authzId);
    const challenge = authz.challenges.find((c) => c.id === challengeId);
    if (challenge === undefined) throw notFound('challenge');
    // POST-as-GET reads it; `{}` (§7.5.1) starts validation, once.
    if (v.payload === undefined || authz.status !== 'pending' || challenge.status !== 'pending') return { authz, challenge };
    if (this.running.size >= MAX_VALIDATIONS) {
      throw new KakuinError('KAKUIN_E_ACME_RATE_LIMITED', 'too many validations are running; retry in a few seconds');
    }
    const started: AcmeChallenge = { ...challenge, status: 'processing' };
    const challenges = authz.challenges.map((c) => (c.id === challengeId ? started : c));
    if (!await this.deps.store.updateAuthorization(authz.id, 'pending', { status: 'pending', challenges })) {
      return { authz: (await this.deps.store.authorization(authz.id))!, challenge: started };
    }
    const job = this.validate({ ...authz, challenges }, started, v.account!).catch((e) => this.deps.onBackgroundError?.(e));
    this.running.add(job);
    void job.finally(() => this.running.delete(job));
    return { authz: { ...authz, challenges }, challenge: started };
  }

  private async validate(authz: AcmeAuthorization, challenge: AcmeChallenge, account: AcmeAccount): Promise<void> {
    let error: KakuinError | undefined;
    try {
      await validateChallenge(challenge.type, authz.identifier, challenge.token, account.thumbprint, this.deps.validation);
    } catch (e) {
      error = isKakuinError(e) ? e : new KakuinError('KAKUIN_E_ACME_CONNECTION', 'validation failed', { cause: e });
    }
    const done: AcmeChallenge = error === undefined
      ? { ...challenge, status: 'valid', validatedAt: this.now() }
      : { ...challenge, status: 'invalid', error: (({ type, detail, status }) => ({ type, detail, status }))(problemOf(error)) };
    // §7.1.6: one valid challenge makes the authorization valid; a failed one makes it invalid.
    const challenges = authz.challenges.map((c) => (c.id === challenge.id ? done : c));
    await this.deps.store.updateAuthorization(authz.id, 'pending', { status: error === undefined ? 'valid' : 'invalid', challenges });
    const order = await this.deps.store.order(authz.orderId);
    if (order === undefined || order.status !== 'pending') return;
    if (error !== undefined) {
      await this.deps.store.updateOrder(order.id, 'pending', { status: 'invalid', error: done.error });
      return;
    }
    const all = await Promise.all(order.authorizationIds.map((id) => this.deps.store.authorization(id)));
    if (all.every((a) => a?.status === 'valid')) await this.deps.store.updateOrder(order.id, 'pending', { status: 'ready' });
  }

  // ---- finalize and certificates (§7.4, §7.4.2) -----------------------------------------------

  async finalize(v: VerifiedJws, orderId: string): Promise<AcmeOrder> {
    const order = await this.order(v, orderId);
    if (order.status !== 'ready') throw new KakuinError('KAKUIN_E_ACME_ORDER_NOT_READY', `the order is ${order.status}, not ready`);
    const csrText = (v.payload as { csr?: unknown } | undefined)?.csr;
    if (typeof csrText !== 'string' || !/^[A-Za-z0-9_-]+$/.test(csrText)) throw new KakuinError('KAKUIN_E_ACME_BAD_CSR', 'finalize needs {csr: base64url DER PKCS#10}');
    const spki = this.checkedCsr(Buffer.from(csrText, 'base64url'), order);
    // Only one finalize moves the order to processing; a concurrent one sees orderNotReady.
    if (!await this.deps.store.updateOrder(order.id, 'ready', { status: 'processing' })) {
      throw new KakuinError('KAKUIN_E_ACME_ORDER_NOT_READY', 'the order is being finalized already');
    }
    try {
      const der = await this.deps.issue({
        spki, hostnames: order.identifiers.map((i) => i.value), actor: `acme:${order.accountId}`,
        details: { acmeAccount: order.accountId, acmeOrder: order.id, ...(order.replaces !== undefined && { replaces: order.replaces }) },
      });
      await this.deps.store.updateOrder(order.id, 'processing', { status: 'valid', certificateSerial: parseCertificate(der).serialHex });
    } catch (e) {
      const error = isKakuinError(e) ? e : new KakuinError('KAKUIN_E_INTERNAL', 'issuance failed', { cause: e });
      const p = problemOf(error);
      await this.deps.store.updateOrder(order.id, 'processing', { status: 'invalid', error: { type: p.type, detail: p.detail, status: p.status } });
      throw error;
    }
    return (await this.deps.store.order(order.id))!;
  }

  /** §7.4: the CSR names exactly the order's identifiers (SAN; a CN must be one of them), and proves its key. */
  private checkedCsr(der: Buffer, order: AcmeOrder): Buffer {
    let csr;
    try {
      csr = readCsr(der);
      verifyCsr(csr);
    } catch (e) {
      throw new KakuinError('KAKUIN_E_ACME_BAD_CSR', `the CSR is refused: ${(e as Error).message}`, { cause: e });
    }
    const names = csrRequestedNames(csr);
    if (names.other > 0) throw new KakuinError('KAKUIN_E_ACME_BAD_CSR', 'the CSR asks for names other than DNS names and IP addresses');
    const asked = new Set([...names.dns.map((n) => n.toLowerCase()), ...names.ip, ...names.commonNames.map((n) => n.toLowerCase())]);
    const ordered = new Set(order.identifiers.map((i) => i.value));
    const missing = [...ordered].filter((n) => !asked.has(n));
    const extra = [...asked].filter((n) => !ordered.has(n));
    if (missing.length > 0 || extra.length > 0) {
      throw new KakuinError('KAKUIN_E_ACME_BAD_CSR', `the CSR's names must be exactly the order's identifiers${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; not ordered ${extra.join(', ')}` : ''}`);
    }
    return csr.spki.rawDer;
  }

  /** The certificate an order issued, PEM with the chain (§7.4.2); only to the account that ordered it. */
  async certificateChain(v: VerifiedJws, serialHex: string): Promise<Buffer[]> {
    const order = await this.deps.store.orderByCertificate(serialHex);
    if (order === undefined || order.accountId !== v.account!.id) throw notFound('certificate');
    const record = await this.deps.certificate(serialHex);
    return [record.der, ...this.deps.chain];
  }

  // ---- revocation (§7.6) ----------------------------------------------------------------------

  /** Signed by the account that ordered the certificate, or by the certificate's own key (jwk). */
  async revoke(v: VerifiedJws): Promise<void> {
    const p = v.payload as { certificate?: unknown; reason?: unknown } | undefined;
    if (typeof p?.certificate !== 'string' || !/^[A-Za-z0-9_-]+$/.test(p.certificate)) throw malformed('revokeCert needs {certificate: base64url DER}');
    let cert;
    try {
      cert = parseCertificate(Buffer.from(p.certificate, 'base64url'));
    } catch (e) {
      throw new KakuinError('KAKUIN_E_ACME_MALFORMED', 'the certificate does not parse', { cause: e });
    }
    let reason: CrlReason = 'unspecified';
    if (p.reason !== undefined) {
      const r = typeof p.reason === 'number' ? crlReasonFromCode(p.reason) : undefined;
      if (r === undefined || r === 'certificateHold' || r === 'removeFromCRL' || r === 'aACompromise' || r === 'cACompromise') {
        throw new KakuinError('KAKUIN_E_ACME_BAD_REVOCATION_REASON', 'reason must be an RFC 5280 CRLReason code: 0, 1, 3, 4, 5, 6 or 9');
      }
      reason = r;
    }
    const order = await this.deps.store.orderByCertificate(cert.serialHex);
    if (order === undefined) throw notFound('certificate');
    const record = await this.deps.certificate(cert.serialHex);
    if (!record.der.equals(cert.rawDer)) throw notFound('certificate');
    if (v.account !== undefined) {
      if (v.account.id !== order.accountId) throw new KakuinError('KAKUIN_E_ACME_UNAUTHORIZED', 'this account did not order that certificate');
    } else {
      // Signed with the certificate's own key: the jwk must be that key.
      const certKey = await thumbprintOf(await spkiJwk(cert.spki.rawDer));
      if (certKey !== await thumbprintOf(v.jwk!)) throw new KakuinError('KAKUIN_E_ACME_UNAUTHORIZED', 'the JWS key is not the certificate\'s key');
    }
    if (record.status === 'revoked') throw new KakuinError('KAKUIN_E_ACME_ALREADY_REVOKED', 'the certificate is revoked already');
    try {
      await this.deps.revoke(cert.serialHex, reason, v.account !== undefined ? `acme:${v.account.id}` : `acme-key:${cert.serialHex}`);
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_CERTIFICATE_STATE')) throw new KakuinError('KAKUIN_E_ACME_ALREADY_REVOKED', 'the certificate is revoked already');
      throw e;
    }
  }

  // ---- renewal information (RFC 9773) ---------------------------------------------------------

  private serialOfCertId(certId: string): string {
    const parts = certId.split('.');
    if (parts.length !== 2 || !parts.every((x) => /^[A-Za-z0-9_-]+$/.test(x))) throw malformed('an ARI certID is base64url(keyIdentifier).base64url(serial)');
    if (!Buffer.from(parts[0], 'base64url').equals(this.deps.issuerKeyId)) throw notFound('certificate of this CA');
    let serial = Buffer.from(parts[1], 'base64url');
    while (serial.length > 1 && serial[0] === 0) serial = serial.subarray(1);
    return serial.toString('hex').toUpperCase();
  }

  /**
   * RFC 9773 §4.2: the window in which to renew. kakuin suggests the middle of the last third of
   * the validity (from 2/3 to 5/6 of it, as Let's Encrypt does); a revoked certificate gets a window
   * that has begun already, so clients renew at once (§4.2: "the window in the past").
   */
  async renewalInfo(certId: string): Promise<{ suggestedWindow: { start: string; end: string }; retryAfterSeconds: number }> {
    const serialHex = this.serialOfCertId(certId);
    let record: CertificateRecord;
    try {
      record = await this.deps.certificate(serialHex);
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_CERTIFICATE_NOT_FOUND')) throw notFound('certificate');
      throw e;
    }
    if (record.status === 'revoked') {
      const now = this.now().getTime();
      return { suggestedWindow: { start: iso(new Date(now - 2 * 3600_000))!, end: iso(new Date(now - 3600_000))! }, retryAfterSeconds: 3600 };
    }
    const from = record.notBefore.getTime();
    const life = record.notAfter.getTime() - from;
    return {
      suggestedWindow: { start: iso(new Date(from + (life * 2) / 3))!, end: iso(new Date(from + (life * 5) / 6))! },
      retryAfterSeconds: 6 * 3600,
    };
  }

  /** Waits for the validations in flight (service shutdown). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}

/** A JWK of a DER SubjectPublicKeyInfo (for revokeCert signed by the certificate's key). */
async function spkiJwk(spki: Buffer): Promise<JWK> {
  return createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' }) as JWK;
}
