/**
 * The users port (DESIGN.md "registry/": small consumer-named ports): people who log in to the
 * management API with a password and, for admins always, a TOTP second factor (issue 21 item 2),
 * their sessions, and the failed-login counters that throttle guessing. Kept apart from the
 * Registry port: only the process that serves the management API needs it.
 *
 * The store keeps what management-api/users.ts hands it and decides nothing about credentials:
 * the password hash is an opaque `scrypt$...` string, the TOTP secret opaque bytes (encrypted
 * under a key that is not in the database), a session is known only by the HMAC of its id.
 * Every change that matters afterwards (created, disabled, reset, logged in, logged out) carries
 * its audit event, appended in the same transaction.
 */
import type { ListPage, NewAuditEvent, TokenRole } from './port.js';

export interface User {
  id: string;
  /** The login name; audit events name the user `user:<name>`. Unique. */
  name: string;
  /** The same roles as tokens (api-schema/access.ts). */
  role: TokenRole;
  /** Set exactly for the `manufacturer` role. */
  manufacturerId?: string;
  /** `scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>` (management-api/passwords.ts). */
  passwordHash: string;
  /** The TOTP secret, encrypted (management-api/totp-secrets.ts); absent: no second factor. */
  totpSecret?: Buffer;
  /** The last RFC 6238 time step a code was accepted for: a code of that step or earlier is a replay. */
  totpLastStep?: number;
  createdAt: Date;
  /** When the password was set last (creation or reset). */
  passwordChangedAt: Date;
  disabledAt?: Date;
  lastLoginAt?: Date;
}

export interface NewUser {
  name: string;
  role: TokenRole;
  manufacturerId?: string;
  passwordHash: string;
  totpSecret?: Buffer;
}

export interface UserSession {
  /** HMAC-SHA-256 of the session id under the pepper, lowercase hex: the id itself is never stored. */
  idHmac: string;
  userId: string;
  createdAt: Date;
  /** The last request the session made, recorded at most once a minute: the idle timeout counts from it. */
  lastSeenAt: Date;
  /** The absolute end, whatever the activity. */
  expiresAt: Date;
}

/** Failed logins under one throttle key (`user:<name>`, `source:<address>`). */
export interface LoginFailures {
  key: string;
  failures: number;
  lastFailedAt: Date;
}

/** What a credential reset changes; the user's sessions end in the same transaction. */
export interface CredentialChange {
  passwordHash?: string;
  /** A new secret (its replay mark restarts), or null: no second factor any more. */
  totpSecret?: Buffer | null;
}

export interface UserStore {
  /** KAKUIN_E_USER_EXISTS, KAKUIN_E_MANUFACTURER_NOT_FOUND. */
  createUser(input: NewUser, audit: NewAuditEvent): Promise<User>;
  findUser(name: string): Promise<User | undefined>;
  /** In creation order; `afterKey` is a user name. */
  listUsers(page?: ListPage): Promise<User[]>;
  /**
   * Disables (`disabledAt` given) or enables (undefined) the user, with its audit event; disabling
   * deletes every session of the user in the same transaction, so none outlives it.
   * KAKUIN_E_USER_NOT_FOUND; KAKUIN_E_USER_STATE when the user is in that state already.
   */
  setUserDisabled(name: string, disabledAt: Date | undefined, audit: NewAuditEvent): Promise<User>;
  /** Sets a new password hash and/or TOTP secret and deletes the user's sessions. KAKUIN_E_USER_NOT_FOUND. */
  changeUserCredentials(name: string, change: CredentialChange, at: Date, audit: NewAuditEvent): Promise<User>;
  /**
   * Marks the TOTP time step as used if it is later than the last one used: true when it was,
   * false for a step already used (or an earlier one): a replayed code. Atomic across processes.
   */
  useTotpStep(userId: string, step: number): Promise<boolean>;

  /** A new session, the user's `lastLoginAt`, and the login's audit event, in one transaction. */
  createSession(session: UserSession, audit: NewAuditEvent): Promise<void>;
  /** The session and its user (read on every request, never cached, so a disable holds at once). */
  findSession(idHmac: string): Promise<{ session: UserSession; user: User } | undefined>;
  /** Moves the session's `lastSeenAt` forward (never back). */
  touchSession(idHmac: string, at: Date): Promise<void>;
  /** Ends one session, with its audit event when given; false when there was none. */
  deleteSession(idHmac: string, audit?: NewAuditEvent): Promise<boolean>;
  /** Deletes sessions whose absolute end is at or before `now`, or that were last seen before `idleBefore`. */
  deleteEndedSessions(now: Date, idleBefore: Date): Promise<number>;

  /** The counters of the given keys that exist. */
  readLoginFailures(keys: string[]): Promise<LoginFailures[]>;
  /**
   * One more failure under each key at `at`, with the failure's audit event, in one transaction;
   * a counter whose last failure is before `restartBefore` starts again at 1. Returns the counters.
   */
  addLoginFailure(keys: string[], at: Date, restartBefore: Date, audit: NewAuditEvent): Promise<LoginFailures[]>;
  clearLoginFailures(keys: string[]): Promise<void>;
}
