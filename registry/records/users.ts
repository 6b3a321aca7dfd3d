/**
 * The users port's checks, shared by every adapter (as CheckedRegistry is for the Registry port):
 * each public method checks and normalises its input once, then calls the adapter's `...Checked`
 * method, so SQLite and MongoDB accept and refuse exactly the same values with the same codes.
 */
import { randomUUID } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { TOKEN_ROLES, type ListPage, type NewAuditEvent } from '../port.js';
import type { CredentialChange, LoginFailures, NewUser, User, UserSession, UserStore } from '../users.js';
import { auditEventValues, normalizeSha256Hex, requiredBytes, requiredText, toMillis, type AuditEventValues } from './values.js';

function invalid(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_VALIDATION', message);
}

/** A user as the adapters store it: milliseconds, absent fields null. */
export interface UserValues {
  id: string; name: string; role: string; manufacturer_id: string | null; password_hash: string; totp_secret: Buffer | null;
  totp_last_step: number | null; created_at: number; password_changed_at: number; disabled_at: number | null; last_login_at: number | null;
}

export interface SessionValues { id_hmac: string; user_id: string; created_at: number; last_seen_at: number; expires_at: number }

export function userFromValues(v: UserValues): User {
  return {
    id: v.id, name: v.name, role: v.role as User['role'],
    ...(v.manufacturer_id !== null && { manufacturerId: v.manufacturer_id }),
    passwordHash: v.password_hash,
    ...(v.totp_secret !== null && { totpSecret: Buffer.from(v.totp_secret) }),
    ...(v.totp_last_step !== null && { totpLastStep: v.totp_last_step }),
    createdAt: new Date(v.created_at), passwordChangedAt: new Date(v.password_changed_at),
    ...(v.disabled_at !== null && { disabledAt: new Date(v.disabled_at) }),
    ...(v.last_login_at !== null && { lastLoginAt: new Date(v.last_login_at) }),
  };
}

export function sessionFromValues(v: SessionValues): UserSession {
  return { idHmac: v.id_hmac, userId: v.user_id, createdAt: new Date(v.created_at), lastSeenAt: new Date(v.last_seen_at), expiresAt: new Date(v.expires_at) };
}

const PASSWORD_HASH = /^scrypt\$ln=\d{1,2},r=\d{1,2},p=\d{1,2}\$[A-Za-z0-9+/=_-]{8,}\$[A-Za-z0-9+/=_-]{16,}$/;

function passwordHash(value: unknown): string {
  if (typeof value !== 'string' || !PASSWORD_HASH.test(value)) throw invalid('passwordHash must be a scrypt$ln=..,r=..,p=..$salt$hash string');
  return value;
}

function throttleKeys(keys: unknown): string[] {
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > 8) throw invalid('login failure keys must be a list of 1 to 8 keys');
  return [...new Set(keys.map((k) => {
    const key = requiredText(k, 'key');
    if (key.length > 300) throw invalid('a login failure key is at most 300 characters');
    return key;
  }))];
}

export abstract class CheckedUserStore implements UserStore {
  async createUser(input: NewUser, audit: NewAuditEvent): Promise<User> {
    if (input === null || typeof input !== 'object') throw invalid('a new user must be an object');
    if (!(TOKEN_ROLES as readonly unknown[]).includes(input.role)) throw invalid(`role must be one of ${TOKEN_ROLES.join(', ')}`);
    if ((input.role === 'manufacturer') !== (input.manufacturerId !== undefined)) throw invalid('manufacturerId is given exactly for the manufacturer role');
    const now = Date.now();
    const values: UserValues = {
      id: randomUUID(), name: requiredText(input.name, 'name'), role: input.role,
      manufacturer_id: input.manufacturerId === undefined ? null : requiredText(input.manufacturerId, 'manufacturerId'),
      password_hash: passwordHash(input.passwordHash),
      totp_secret: input.totpSecret === undefined ? null : requiredBytes(input.totpSecret, 'totpSecret'),
      totp_last_step: null, created_at: now, password_changed_at: now, disabled_at: null, last_login_at: null,
    };
    return this.createUserChecked(values, auditEventValues(audit, now));
  }

  protected abstract createUserChecked(user: UserValues, audit: AuditEventValues): Promise<User>;

  async findUser(name: string): Promise<User | undefined> {
    return typeof name === 'string' && name.length > 0 ? this.findUserChecked(name) : undefined;
  }

  protected abstract findUserChecked(name: string): Promise<User | undefined>;

  abstract listUsers(page?: ListPage): Promise<User[]>;

  async setUserDisabled(name: string, disabledAt: Date | undefined, audit: NewAuditEvent): Promise<User> {
    const at = disabledAt === undefined ? null : toMillis(disabledAt, 'disabledAt');
    return this.setUserDisabledChecked(requiredText(name, 'name'), at, auditEventValues(audit, Date.now()));
  }

  protected abstract setUserDisabledChecked(name: string, disabledAtMs: number | null, audit: AuditEventValues): Promise<User>;

  async changeUserCredentials(name: string, change: CredentialChange, at: Date, audit: NewAuditEvent): Promise<User> {
    if (change === null || typeof change !== 'object') throw invalid('a credential change must be an object');
    const checked: CheckedCredentialChange = {
      ...(change.passwordHash !== undefined && { passwordHash: passwordHash(change.passwordHash) }),
      ...(change.totpSecret !== undefined && { totpSecret: change.totpSecret === null ? null : requiredBytes(change.totpSecret, 'totpSecret') }),
    };
    if (Object.keys(checked).length === 0) throw invalid('a credential change sets a password hash, a TOTP secret, or both');
    return this.changeUserCredentialsChecked(requiredText(name, 'name'), checked, toMillis(at, 'at'), auditEventValues(audit, Date.now()));
  }

  protected abstract changeUserCredentialsChecked(name: string, change: CheckedCredentialChange, atMs: number, audit: AuditEventValues): Promise<User>;

  async useTotpStep(userId: string, step: number): Promise<boolean> {
    if (!Number.isSafeInteger(step) || step < 0) throw invalid('a TOTP step must be a non-negative integer');
    return this.useTotpStepChecked(requiredText(userId, 'userId'), step);
  }

  protected abstract useTotpStepChecked(userId: string, step: number): Promise<boolean>;

  async createSession(session: UserSession, audit: NewAuditEvent): Promise<void> {
    if (session === null || typeof session !== 'object') throw invalid('a session must be an object');
    const values: SessionValues = {
      id_hmac: normalizeSha256Hex(session.idHmac, 'idHmac'), user_id: requiredText(session.userId, 'userId'),
      created_at: toMillis(session.createdAt, 'createdAt'), last_seen_at: toMillis(session.lastSeenAt, 'lastSeenAt'), expires_at: toMillis(session.expiresAt, 'expiresAt'),
    };
    if (values.expires_at <= values.created_at) throw invalid('a session must end after it starts');
    return this.createSessionChecked(values, auditEventValues(audit, values.created_at));
  }

  protected abstract createSessionChecked(session: SessionValues, audit: AuditEventValues): Promise<void>;

  async findSession(idHmac: string): Promise<{ session: UserSession; user: User } | undefined> {
    return typeof idHmac === 'string' && /^[0-9a-fA-F]{64}$/.test(idHmac) ? this.findSessionChecked(idHmac.toLowerCase()) : undefined;
  }

  protected abstract findSessionChecked(idHmac: string): Promise<{ session: UserSession; user: User } | undefined>;

  async touchSession(idHmac: string, at: Date): Promise<void> {
    return this.touchSessionChecked(normalizeSha256Hex(idHmac, 'idHmac'), toMillis(at, 'at'));
  }

  protected abstract touchSessionChecked(idHmac: string, atMs: number): Promise<void>;

  async deleteSession(idHmac: string, audit?: NewAuditEvent): Promise<boolean> {
    return this.deleteSessionChecked(normalizeSha256Hex(idHmac, 'idHmac'), audit === undefined ? undefined : auditEventValues(audit, Date.now()));
  }

  protected abstract deleteSessionChecked(idHmac: string, audit: AuditEventValues | undefined): Promise<boolean>;

  async deleteEndedSessions(now: Date, idleBefore: Date): Promise<number> {
    return this.deleteEndedSessionsChecked(toMillis(now, 'now'), toMillis(idleBefore, 'idleBefore'));
  }

  protected abstract deleteEndedSessionsChecked(nowMs: number, idleBeforeMs: number): Promise<number>;

  async readLoginFailures(keys: string[]): Promise<LoginFailures[]> {
    return this.readLoginFailuresChecked(throttleKeys(keys));
  }

  protected abstract readLoginFailuresChecked(keys: string[]): Promise<LoginFailures[]>;

  async addLoginFailure(keys: string[], at: Date, restartBefore: Date, audit: NewAuditEvent): Promise<LoginFailures[]> {
    const atMs = toMillis(at, 'at');
    return this.addLoginFailureChecked(throttleKeys(keys), atMs, toMillis(restartBefore, 'restartBefore'), auditEventValues(audit, atMs));
  }

  protected abstract addLoginFailureChecked(keys: string[], atMs: number, restartBeforeMs: number, audit: AuditEventValues): Promise<LoginFailures[]>;

  async clearLoginFailures(keys: string[]): Promise<void> {
    return this.clearLoginFailuresChecked(throttleKeys(keys));
  }

  protected abstract clearLoginFailuresChecked(keys: string[]): Promise<void>;
}

export interface CheckedCredentialChange { passwordHash?: string; totpSecret?: Buffer | null }

/** The USER_STATE refusal both adapters give. */
export function userStateError(name: string, disabling: boolean): KakuinError {
  return new KakuinError('KAKUIN_E_USER_STATE', disabling ? `the user ${name} is disabled already` : `the user ${name} is not disabled`);
}

export function userNotFound(): KakuinError {
  return new KakuinError('KAKUIN_E_USER_NOT_FOUND', 'no user with that name');
}
