/**
 * People's logins and sessions on the management API (issue 21 item 2).
 *
 * Login (`POST /api/v1/session`): name + password (+ TOTP code). Wrong name and wrong password
 * get one answer, KAKUIN_E_LOGIN_FAILED, after the same scrypt work (an unknown name is checked
 * against a decoy hash), so answers and timing do not tell which names exist. Failures are
 * counted per user name — names nobody has too, so a lockout does not tell either — and per
 * source address, in the registry (every API process sees the same counters); past the free
 * attempts each failure locks the key for an exponentially growing time (KAKUIN_E_LOGIN_THROTTLED
 * with Retry-After; the password is then not even checked). A TOTP code (RFC 6238) is accepted
 * once: the step it matched is recorded atomically and a code of that step or earlier is refused.
 *
 * A session is an opaque 256-bit id in a cookie `__Host-kakuin_session` (the `__Host-` prefix makes
 * browsers insist on Secure, Path=/ and no Domain; RFC 6265bis §4.1.3.2), HttpOnly and
 * SameSite=Strict; the registry keeps only the HMAC of the id under the pepper. Requests with the
 * cookie that change something must carry the CSRF token in `X-Kakuin-CSRF`: the token is an HMAC
 * of the session id, so it needs no storage and `GET /api/v1/session` can hand it to a reloaded
 * page. Bearer-token requests need no CSRF token (a browser never adds an Authorization header by
 * itself). Sessions end after `users.sessionIdleMinutes` without a request and `users.sessionMaxHours`
 * after the login, on logout, and at once when the user is disabled or a credential is reset.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KakuinError } from '../errors/index.js';
import type { User, UserStore } from '../registry/users.js';
import type { AdminCaller } from './admin-tokens.js';
import { decoyHash, verifyPassword } from './passwords.js';
import { matchTotp } from './totp.js';
import type { UserAccounts } from './users.js';

export const SESSION_COOKIE = '__Host-kakuin_session';
export const CSRF_HEADER = 'x-kakuin-csrf';

/** Failures a user name may have before each further one locks it. */
export const USER_FREE_FAILURES = 5;
/** Failures one source address may have (over all names) before each further one locks it. */
export const SOURCE_FREE_FAILURES = 20;
/** The first lock; each further failure doubles it, up to LOCK_MAX_MS. */
const LOCK_BASE_MS = 30_000;
const LOCK_MAX_MS = 15 * 60_000;
/** A counter whose last failure is older than this starts again. */
const RESTART_AFTER_MS = 60 * 60_000;

export interface UserLoginOptions {
  sessionIdleMs: number;
  sessionMaxMs: number;
  /** The scrypt cost of the decoy hash (the one new passwords get). */
  passwordKdfCost?: number;
  now?: () => number;
}

/** What a session caller carries beyond a token caller's fields. */
export interface SessionInfo {
  idHmac: string;
  csrfToken: string;
  createdAt: Date;
  /** The absolute end. */
  expiresAt: Date;
  /** When it ends without another request. */
  idleExpiresAt: Date;
}

export type SessionCaller = AdminCaller & { session: SessionInfo };

export interface LoginResult {
  /** The cookie value: shown to the browser once, never stored. */
  sessionId: string;
  caller: SessionCaller;
}

/** The lock a counter puts on its key: until when, or undefined. */
export function lockedUntil(failures: number, lastFailedAt: number, free: number): number | undefined {
  if (failures < free) return undefined;
  return lastFailedAt + Math.min(LOCK_BASE_MS * 2 ** Math.min(failures - free, 20), LOCK_MAX_MS);
}

/** The value of one cookie in a Cookie header (RFC 6265 §5.4), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export class UserLogins {
  private readonly now: () => number;
  private decoy: Promise<string> | undefined;
  private readonly touchEveryMs: number;

  constructor(private readonly store: UserStore, private readonly accounts: UserAccounts, private readonly pepper: Buffer, private readonly options: UserLoginOptions) {
    this.now = options.now ?? Date.now;
    // The idle timeout counts from the last recorded use; recording each request would be a write per call.
    this.touchEveryMs = Math.min(60_000, Math.floor(options.sessionIdleMs / 4));
  }

  /** The `Set-Cookie` value of a new session. */
  sessionCookie(sessionId: string): string {
    return `${SESSION_COOKIE}=${sessionId}; Path=/; Max-Age=${Math.floor(this.options.sessionMaxMs / 1000)}; HttpOnly; Secure; SameSite=Strict`;
  }

  /** The `Set-Cookie` value that removes the cookie. */
  static clearedCookie(): string {
    return `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`;
  }

  private idHmac(sessionId: string): string {
    return createHmac('sha256', this.pepper).update('kakuin session\0').update(sessionId).digest('hex');
  }

  private csrfOf(sessionId: string): string {
    return createHmac('sha256', this.pepper).update('kakuin csrf\0').update(sessionId).digest('base64url');
  }

  async login(input: { name: string; password: string; totp?: string }, source: string): Promise<LoginResult> {
    const now = this.now();
    const userKey = `user:${input.name.slice(0, 128)}`;
    const sourceKey = `source:${source.slice(0, 128)}`;
    await this.refuseWhileLocked([userKey, sourceKey], now);
    const user = await this.store.findUser(input.name);
    // The same scrypt work whether or not the name exists.
    const passwordOk = await verifyPassword(input.password, user?.passwordHash ?? await this.decoyHash());
    const failed = async (reason: string, error: KakuinError): Promise<never> => {
      await this.store.addLoginFailure([userKey, sourceKey], new Date(now), new Date(now - RESTART_AFTER_MS),
        { type: 'user.login.failed', actor: 'anonymous', details: { name: input.name.slice(0, 128), source, reason } });
      throw error;
    };
    if (user === undefined || !passwordOk) return failed('password', new KakuinError('KAKUIN_E_LOGIN_FAILED', 'wrong user name or password'));
    if (user.disabledAt !== undefined) return failed('disabled', new KakuinError('KAKUIN_E_USER_DISABLED', 'this user is disabled'));
    const secret = this.accounts.totpSecretOf(user);
    if (secret === undefined && user.role === 'admin') {
      // Cannot happen through kakuin (every admin is made with a secret); refused rather than let in on a password alone.
      return failed('no second factor', new KakuinError('KAKUIN_E_TOTP_REQUIRED', 'an admin logs in with a TOTP code, and this admin has no TOTP secret: an admin resets it (kakuin user reset-totp)'));
    }
    if (secret !== undefined) {
      if (input.totp === undefined) throw new KakuinError('KAKUIN_E_TOTP_REQUIRED', 'send totp: the 6-digit code of your authenticator app', { field: 'totp' });
      const step = matchTotp(secret, input.totp, now);
      if (step === undefined) return failed('totp', new KakuinError('KAKUIN_E_TOTP_INVALID', 'the TOTP code is wrong or outside the time window', { field: 'totp' }));
      if (!await this.store.useTotpStep(user.id, step)) return failed('totp replay', new KakuinError('KAKUIN_E_TOTP_INVALID', 'this TOTP code was used already; wait for the next one', { field: 'totp' }));
    }
    await this.store.clearLoginFailures([userKey]);
    await this.store.deleteEndedSessions(new Date(now), new Date(now - this.options.sessionIdleMs));
    const sessionId = randomBytes(32).toString('base64url');
    const idHmac = this.idHmac(sessionId);
    const session = { idHmac, userId: user.id, createdAt: new Date(now), lastSeenAt: new Date(now), expiresAt: new Date(now + this.options.sessionMaxMs) };
    await this.store.createSession(session, { type: 'user.login', actor: `user:${user.name}`, details: { source, secondFactor: secret === undefined ? 'none' : 'totp' } });
    return { sessionId, caller: this.callerOf(user, { ...session, csrfToken: this.csrfOf(sessionId) }) };
  }

  private async refuseWhileLocked(keys: string[], now: number): Promise<void> {
    let until = 0;
    for (const f of await this.store.readLoginFailures(keys)) {
      if (f.lastFailedAt.getTime() < now - RESTART_AFTER_MS) continue;
      const lock = lockedUntil(f.failures, f.lastFailedAt.getTime(), f.key.startsWith('user:') ? USER_FREE_FAILURES : SOURCE_FREE_FAILURES);
      if (lock !== undefined && lock > until) until = lock;
    }
    if (until > now) {
      const error = new KakuinError('KAKUIN_E_LOGIN_THROTTLED', 'too many failed logins: wait before trying again') as KakuinError & { retryAfterSeconds: number };
      error.retryAfterSeconds = Math.ceil((until - now) / 1000);
      throw error;
    }
  }

  private decoyHash(): Promise<string> {
    this.decoy ??= decoyHash(this.options.passwordKdfCost);
    return this.decoy;
  }

  private callerOf(user: User, s: { idHmac: string; csrfToken: string; createdAt: Date; lastSeenAt: Date; expiresAt: Date }): SessionCaller {
    const idleEnd = Math.min(s.lastSeenAt.getTime() + this.options.sessionIdleMs, s.expiresAt.getTime());
    return {
      kind: 'admin', name: user.name, role: user.role, ...(user.manufacturerId !== undefined && { manufacturerId: user.manufacturerId }), actor: `user:${user.name}`,
      session: { idHmac: s.idHmac, csrfToken: s.csrfToken, createdAt: s.createdAt, expiresAt: s.expiresAt, idleExpiresAt: new Date(idleEnd) },
    };
  }

  /**
   * The caller of a request that carries the session cookie, or undefined without one (or with one
   * that names no live session). KAKUIN_E_SESSION_EXPIRED past a timeout; KAKUIN_E_CSRF for a
   * request other than GET/HEAD without the session's CSRF token.
   */
  async authenticate(cookieHeader: string | undefined, csrfHeader: string | undefined, method: string): Promise<SessionCaller | undefined> {
    const sessionId = cookieValue(cookieHeader, SESSION_COOKIE);
    if (sessionId === undefined || !/^[A-Za-z0-9_-]{43}$/.test(sessionId)) return undefined;
    const idHmac = this.idHmac(sessionId);
    const found = await this.store.findSession(idHmac);
    if (found === undefined || found.user.disabledAt !== undefined) return undefined;
    const { session, user } = found;
    const now = this.now();
    if (now >= session.expiresAt.getTime() || now >= session.lastSeenAt.getTime() + this.options.sessionIdleMs) {
      await this.store.deleteSession(idHmac);
      throw new KakuinError('KAKUIN_E_SESSION_EXPIRED', now >= session.expiresAt.getTime() ? 'the session reached its maximum age; log in again' : 'the session was idle too long; log in again');
    }
    const csrfToken = this.csrfOf(sessionId);
    if (!['GET', 'HEAD'].includes(method.toUpperCase())) {
      const given = Buffer.from(csrfHeader ?? '');
      const expected = Buffer.from(csrfToken);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new KakuinError('KAKUIN_E_CSRF', `a request with the session cookie that is not a GET carries the session's CSRF token in ${CSRF_HEADER}`);
      }
    }
    let lastSeenAt = session.lastSeenAt;
    if (now - lastSeenAt.getTime() >= this.touchEveryMs) {
      await this.store.touchSession(idHmac, new Date(now));
      lastSeenAt = new Date(now);
    }
    return this.callerOf(user, { ...session, lastSeenAt, csrfToken });
  }

  /**
   * A person changes their own password, giving the current one (a session left open is not
   * enough to take the account over). A wrong current password counts as a failed login of the
   * user and is throttled like one. Every session of the user ends, this one too.
   */
  async changeOwnPassword(caller: SessionCaller, current: string, chosen: string, source: string): Promise<void> {
    const now = this.now();
    const userKey = `user:${caller.name}`;
    await this.refuseWhileLocked([userKey, `source:${source.slice(0, 128)}`], now);
    const user = await this.accounts.get(caller.name);
    if (!await verifyPassword(current, user.passwordHash)) {
      await this.store.addLoginFailure([userKey, `source:${source.slice(0, 128)}`], new Date(now), new Date(now - RESTART_AFTER_MS),
        { type: 'user.login.failed', actor: caller.actor, details: { name: caller.name, source, reason: 'password change' } });
      throw new KakuinError('KAKUIN_E_LOGIN_FAILED', 'the current password is wrong', { field: 'password' });
    }
    await this.accounts.changeOwnPassword(caller.name, chosen, caller.actor, new Date(now));
  }

  /** Ends the caller's session with its `user.logout` audit event. */
  async logout(caller: SessionCaller): Promise<void> {
    await this.store.deleteSession(caller.session.idHmac, { type: 'user.logout', actor: caller.actor, details: {} });
  }
}
