/**
 * The users port on SQLite (schema step 12): users, their sessions and the failed-login counters.
 * Every change with an audit event commits with it in one IMMEDIATE transaction; disabling a user
 * or resetting a credential deletes the user's sessions in the same transaction.
 */
import type Database from 'better-sqlite3';
import { KakuinError, type ErrorCode } from '../../errors/index.js';
import type { ListPage } from '../port.js';
import type { LoginFailures, User, UserSession } from '../users.js';
import type { AuditEventValues } from '../records/index.js';
import { normalizeLimit } from '../records/index.js';
import {
  CheckedUserStore, sessionFromValues, userFromValues, userNotFound, userStateError, type CheckedCredentialChange, type SessionValues, type UserValues,
} from '../records/users.js';
import { toKakuinError } from './driver-errors.js';
import type { AuditAppender } from './audit-appender.js';

interface FailureRow { key: string; failures: number; last_failed_at: number }

const failureFromRow = (r: FailureRow): LoginFailures => ({ key: r.key, failures: r.failures, lastFailedAt: new Date(r.last_failed_at) });

export class SqliteUserStore extends CheckedUserStore {
  private readonly statements = new Map<string, Database.Statement>();

  /** `insertAudit` is the registry's chain appender: every event goes onto this instance's hash chain. */
  constructor(private readonly db: Database.Database, private readonly insertAudit: AuditAppender) {
    super();
  }

  /** Prepared once per SQL text (a session is read on every request). */
  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (statement === undefined) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  private run<T>(operation: string, fn: () => T, foreignKey?: { code: ErrorCode; message: string }): T {
    try {
      return fn();
    } catch (e) {
      throw toKakuinError(e, { operation, ...(foreignKey && { foreignKey }) });
    }
  }

  private transaction<T>(operation: string, fn: () => T, foreignKey?: { code: ErrorCode; message: string }): T {
    return this.run(operation, () => this.db.transaction(fn).immediate(), foreignKey);
  }

  protected async createUserChecked(user: UserValues, audit: AuditEventValues): Promise<User> {
    this.transaction('creating a user', () => {
      this.sql(`INSERT INTO users (id, name, role, manufacturer_id, password_hash, totp_secret, totp_last_step, created_at, password_changed_at, disabled_at, last_login_at)
        VALUES (:id, :name, :role, :manufacturer_id, :password_hash, :totp_secret, :totp_last_step, :created_at, :password_changed_at, :disabled_at, :last_login_at)`).run(user);
      this.insertAudit.run(audit);
    }, { code: 'KAKUIN_E_MANUFACTURER_NOT_FOUND', message: 'no manufacturer with that id' });
    return userFromValues(user);
  }

  protected async findUserChecked(name: string): Promise<User | undefined> {
    const row = this.run('reading a user', () => this.sql('SELECT * FROM users WHERE name = ?').get(name) as UserValues | undefined);
    return row === undefined ? undefined : userFromValues(row);
  }

  async listUsers(page?: ListPage): Promise<User[]> {
    return this.run('listing users', () => {
      let after = 0;
      if (page?.afterKey !== undefined) {
        const anchor = this.sql('SELECT rowid AS r FROM users WHERE name = ?').get(page.afterKey) as { r: number } | undefined;
        if (anchor === undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'after names no item of this list (a cursor from another list, or a typo?)');
        after = anchor.r;
      }
      const rows = this.sql('SELECT * FROM users WHERE rowid > ? ORDER BY rowid LIMIT ?').all(after, normalizeLimit(page?.limit)) as UserValues[];
      return rows.map(userFromValues);
    });
  }

  private userOrThrow(name: string): UserValues {
    const row = this.sql('SELECT * FROM users WHERE name = ?').get(name) as UserValues | undefined;
    if (row === undefined) throw userNotFound();
    return row;
  }

  protected async setUserDisabledChecked(name: string, disabledAtMs: number | null, audit: AuditEventValues): Promise<User> {
    return this.transaction(disabledAtMs === null ? 'enabling a user' : 'disabling a user', () => {
      const row = this.userOrThrow(name);
      if ((row.disabled_at !== null) === (disabledAtMs !== null)) throw userStateError(name, disabledAtMs !== null);
      this.sql('UPDATE users SET disabled_at = ? WHERE id = ?').run(disabledAtMs, row.id);
      if (disabledAtMs !== null) this.sql('DELETE FROM user_sessions WHERE user_id = ?').run(row.id);
      this.insertAudit.run(audit);
      return userFromValues({ ...row, disabled_at: disabledAtMs });
    });
  }

  protected async changeUserCredentialsChecked(name: string, change: CheckedCredentialChange, atMs: number, audit: AuditEventValues): Promise<User> {
    return this.transaction('changing a user\'s credentials', () => {
      const row = this.userOrThrow(name);
      const next: UserValues = { ...row };
      if (change.passwordHash !== undefined) Object.assign(next, { password_hash: change.passwordHash, password_changed_at: atMs });
      if (change.totpSecret !== undefined) Object.assign(next, { totp_secret: change.totpSecret, totp_last_step: null });
      this.sql('UPDATE users SET password_hash = :password_hash, password_changed_at = :password_changed_at, totp_secret = :totp_secret, totp_last_step = :totp_last_step WHERE id = :id').run(next);
      this.sql('DELETE FROM user_sessions WHERE user_id = ?').run(row.id);
      this.insertAudit.run(audit);
      return userFromValues(next);
    });
  }

  protected async useTotpStepChecked(userId: string, step: number): Promise<boolean> {
    return this.run('recording a TOTP step', () => this.sql(
      'UPDATE users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)').run(step, userId, step).changes === 1);
  }

  protected async createSessionChecked(session: SessionValues, audit: AuditEventValues): Promise<void> {
    this.transaction('creating a session', () => {
      this.sql('INSERT INTO user_sessions (id_hmac, user_id, created_at, last_seen_at, expires_at) VALUES (:id_hmac, :user_id, :created_at, :last_seen_at, :expires_at)').run(session);
      this.sql('UPDATE users SET last_login_at = ? WHERE id = ?').run(session.created_at, session.user_id);
      this.insertAudit.run(audit);
    }, { code: 'KAKUIN_E_USER_NOT_FOUND', message: 'no user with that id' });
  }

  protected async findSessionChecked(idHmac: string): Promise<{ session: UserSession; user: User } | undefined> {
    return this.run('reading a session', () => {
      const s = this.sql('SELECT * FROM user_sessions WHERE id_hmac = ?').get(idHmac) as SessionValues | undefined;
      if (s === undefined) return undefined;
      const u = this.sql('SELECT * FROM users WHERE id = ?').get(s.user_id) as UserValues | undefined;
      return u === undefined ? undefined : { session: sessionFromValues(s), user: userFromValues(u) };
    });
  }

  protected async touchSessionChecked(idHmac: string, atMs: number): Promise<void> {
    this.run('recording a session\'s use', () => this.sql('UPDATE user_sessions SET last_seen_at = ? WHERE id_hmac = ? AND last_seen_at < ?').run(atMs, idHmac, atMs));
  }

  protected async deleteSessionChecked(idHmac: string, audit: AuditEventValues | undefined): Promise<boolean> {
    return this.transaction('ending a session', () => {
      const deleted = this.sql('DELETE FROM user_sessions WHERE id_hmac = ?').run(idHmac).changes === 1;
      if (deleted && audit !== undefined) this.insertAudit.run(audit);
      return deleted;
    });
  }

  protected async deleteEndedSessionsChecked(nowMs: number, idleBeforeMs: number): Promise<number> {
    return this.run('deleting ended sessions', () => this.sql('DELETE FROM user_sessions WHERE expires_at <= ? OR last_seen_at < ?').run(nowMs, idleBeforeMs).changes);
  }

  protected async readLoginFailuresChecked(keys: string[]): Promise<LoginFailures[]> {
    return this.run('reading failed logins', () => (this.sql(`SELECT * FROM login_failures WHERE key IN (${keys.map(() => '?').join(', ')}) ORDER BY key`).all(...keys) as FailureRow[]).map(failureFromRow));
  }

  protected async addLoginFailureChecked(keys: string[], atMs: number, restartBeforeMs: number, audit: AuditEventValues): Promise<LoginFailures[]> {
    return this.transaction('recording a failed login', () => {
      const upsert = this.sql(`INSERT INTO login_failures (key, failures, last_failed_at) VALUES (?, 1, ?)
        ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN last_failed_at < ? THEN 1 ELSE failures + 1 END, last_failed_at = max(last_failed_at, excluded.last_failed_at)
        RETURNING *`);
      const rows = keys.map((k) => upsert.get(k, atMs, restartBeforeMs) as FailureRow);
      this.insertAudit.run(audit);
      return rows.map(failureFromRow);
    });
  }

  protected async clearLoginFailuresChecked(keys: string[]): Promise<void> {
    this.run('clearing failed logins', () => this.sql(`DELETE FROM login_failures WHERE key IN (${keys.map(() => '?').join(', ')})`).run(...keys));
  }
}
