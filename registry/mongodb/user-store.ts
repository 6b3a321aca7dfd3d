/**
 * The users port on MongoDB (registry/users.ts): `users` (by id, unique name, `ord` for the listing
 * order), `userSessions` (_id = the HMAC of the session id) and `loginFailures` (_id = the throttle
 * key). Writes with an audit event run in one transaction with it, as on SQLite; a disable or a
 * credential reset deletes the user's sessions in the same transaction.
 */
import { Binary, ObjectId } from 'mongodb';
import type { ListPage } from '../port.js';
import type { LoginFailures, User, UserSession } from '../users.js';
import type { AuditEventValues } from '../records/index.js';
import {
  CheckedUserStore, sessionFromValues, userFromValues, userNotFound, userStateError, type CheckedCredentialChange, type SessionValues, type UserValues,
} from '../records/users.js';
import { COLLECTIONS } from './documents.js';
import type { RegistryPlumbing } from './plumbing.js';
import { pageFind } from './queries.js';
import { insertAudit } from './transaction-bodies.js';

interface UserDoc {
  _id: string; name: string; role: string; manufacturerId?: string; passwordHash: string; totpSecret?: Buffer | Binary;
  /** -1 until a code was accepted (a filter `$lt: step` then needs no `$or` on a missing field). */
  totpLastStep: number;
  createdAt: Date; passwordChangedAt: Date; disabledAt?: Date; lastLoginAt?: Date; ord: ObjectId;
}
interface SessionDoc { _id: string; userId: string; createdAt: Date; lastSeenAt: Date; expiresAt: Date }
interface FailureDoc { _id: string; failures: number; lastFailedAt: Date }

function bytes(v: Buffer | Binary | undefined | null): Buffer | null {
  if (v === undefined || v === null) return null;
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer.subarray(0, v.position));
}

function userFromDoc(d: UserDoc): User {
  return userFromValues({
    id: d._id, name: d.name, role: d.role, manufacturer_id: d.manufacturerId ?? null, password_hash: d.passwordHash,
    totp_secret: bytes(d.totpSecret), totp_last_step: d.totpLastStep >= 0 ? d.totpLastStep : null,
    created_at: d.createdAt.getTime(), password_changed_at: d.passwordChangedAt.getTime(),
    disabled_at: d.disabledAt instanceof Date ? d.disabledAt.getTime() : null, last_login_at: d.lastLoginAt instanceof Date ? d.lastLoginAt.getTime() : null,
  });
}

function sessionFromDoc(d: SessionDoc): UserSession {
  return sessionFromValues({ id_hmac: d._id, user_id: d.userId, created_at: d.createdAt.getTime(), last_seen_at: d.lastSeenAt.getTime(), expires_at: d.expiresAt.getTime() });
}

const failureFromDoc = (d: FailureDoc): LoginFailures => ({ key: d._id, failures: d.failures, lastFailedAt: d.lastFailedAt });

export class MongoUserStore extends CheckedUserStore {
  constructor(private readonly p: RegistryPlumbing) {
    super();
  }

  private get users() { return this.p.col<UserDoc>(COLLECTIONS.users); }
  private get sessions() { return this.p.col<SessionDoc>(COLLECTIONS.userSessions); }
  private get failures() { return this.p.col<FailureDoc>(COLLECTIONS.loginFailures); }

  protected async createUserChecked(u: UserValues, audit: AuditEventValues): Promise<User> {
    const doc: UserDoc = {
      _id: u.id, name: u.name, role: u.role, ...(u.manufacturer_id !== null && { manufacturerId: u.manufacturer_id }), passwordHash: u.password_hash,
      ...(u.totp_secret !== null && { totpSecret: u.totp_secret }), totpLastStep: -1,
      createdAt: new Date(u.created_at), passwordChangedAt: new Date(u.password_changed_at), ord: new ObjectId(),
    };
    await this.p.transaction('creating a user', async (session) => {
      if (doc.manufacturerId !== undefined) await this.p.requireManufacturer(doc.manufacturerId, session);
      await this.users.insertOne(doc, { session });
      await insertAudit(this.p, session, [audit]);
    });
    return userFromValues(u);
  }

  protected async findUserChecked(name: string): Promise<User | undefined> {
    const doc = await this.p.read('reading a user', () => this.users.findOne({ name }));
    return doc === null ? undefined : userFromDoc(doc);
  }

  async listUsers(page?: ListPage): Promise<User[]> {
    return this.p.read('listing users', async () => (await pageFind(this.users, {}, 'name', { ...page, limit: page?.limit ?? 100 })).map(userFromDoc));
  }

  protected async setUserDisabledChecked(name: string, disabledAtMs: number | null, audit: AuditEventValues): Promise<User> {
    return this.p.transaction(disabledAtMs === null ? 'enabling a user' : 'disabling a user', async (session) => {
      const doc = await this.users.findOne({ name }, { session });
      if (doc === null) throw userNotFound();
      if ((doc.disabledAt instanceof Date) === (disabledAtMs !== null)) throw userStateError(name, disabledAtMs !== null);
      if (disabledAtMs === null) {
        await this.users.updateOne({ _id: doc._id }, { $unset: { disabledAt: '' } }, { session });
      } else {
        await this.users.updateOne({ _id: doc._id }, { $set: { disabledAt: new Date(disabledAtMs) } }, { session });
        await this.sessions.deleteMany({ userId: doc._id }, { session });
      }
      await insertAudit(this.p, session, [audit]);
      const { disabledAt: _, ...rest } = doc;
      return userFromDoc(disabledAtMs === null ? rest : { ...rest, disabledAt: new Date(disabledAtMs) });
    });
  }

  protected async changeUserCredentialsChecked(name: string, change: CheckedCredentialChange, atMs: number, audit: AuditEventValues): Promise<User> {
    return this.p.transaction('changing a user\'s credentials', async (session) => {
      const doc = await this.users.findOne({ name }, { session });
      if (doc === null) throw userNotFound();
      const next: UserDoc = { ...doc };
      const set: Partial<UserDoc> = {};
      if (change.passwordHash !== undefined) Object.assign(set, { passwordHash: change.passwordHash, passwordChangedAt: new Date(atMs) });
      if (change.totpSecret !== undefined) {
        Object.assign(set, { totpLastStep: -1 });
        if (change.totpSecret !== null) set.totpSecret = change.totpSecret;
      }
      Object.assign(next, set);
      const update: Record<string, Record<string, unknown>> = { $set: set };
      if (change.totpSecret === null) {
        update.$unset = { totpSecret: '' };
        delete next.totpSecret;
      }
      await this.users.updateOne({ _id: doc._id }, update, { session });
      await this.sessions.deleteMany({ userId: doc._id }, { session });
      await insertAudit(this.p, session, [audit]);
      return userFromDoc(next);
    });
  }

  protected async useTotpStepChecked(userId: string, step: number): Promise<boolean> {
    const r = await this.p.write('recording a TOTP step', () => this.users.updateOne({ _id: userId, totpLastStep: { $lt: step } }, { $set: { totpLastStep: step } }));
    return r.modifiedCount === 1;
  }

  protected async createSessionChecked(s: SessionValues, audit: AuditEventValues): Promise<void> {
    await this.p.transaction('creating a session', async (session) => {
      const r = await this.users.updateOne({ _id: s.user_id }, { $set: { lastLoginAt: new Date(s.created_at) } }, { session });
      if (r.matchedCount !== 1) throw userNotFound();
      await this.sessions.insertOne({
        _id: s.id_hmac, userId: s.user_id, createdAt: new Date(s.created_at), lastSeenAt: new Date(s.last_seen_at), expiresAt: new Date(s.expires_at),
      }, { session });
      await insertAudit(this.p, session, [audit]);
    });
  }

  protected async findSessionChecked(idHmac: string): Promise<{ session: UserSession; user: User } | undefined> {
    return this.p.read('reading a session', async () => {
      const s = await this.sessions.findOne({ _id: idHmac });
      if (s === null) return undefined;
      const u = await this.users.findOne({ _id: s.userId });
      return u === null ? undefined : { session: sessionFromDoc(s), user: userFromDoc(u) };
    });
  }

  protected async touchSessionChecked(idHmac: string, atMs: number): Promise<void> {
    await this.p.write('recording a session\'s use', () => this.sessions.updateOne({ _id: idHmac }, { $max: { lastSeenAt: new Date(atMs) } }));
  }

  protected async deleteSessionChecked(idHmac: string, audit: AuditEventValues | undefined): Promise<boolean> {
    return this.p.transaction('ending a session', async (session) => {
      const r = await this.sessions.deleteOne({ _id: idHmac }, { session });
      if (r.deletedCount === 1 && audit !== undefined) await insertAudit(this.p, session, [audit]);
      return r.deletedCount === 1;
    });
  }

  protected async deleteEndedSessionsChecked(nowMs: number, idleBeforeMs: number): Promise<number> {
    return this.p.write('deleting ended sessions', async () => {
      const ended = await this.sessions.deleteMany({ expiresAt: { $lte: new Date(nowMs) } });
      const idle = await this.sessions.deleteMany({ lastSeenAt: { $lt: new Date(idleBeforeMs) } });
      return ended.deletedCount + idle.deletedCount;
    });
  }

  protected async readLoginFailuresChecked(keys: string[]): Promise<LoginFailures[]> {
    return this.p.read('reading failed logins', async () => (await this.failures.find({ _id: { $in: keys } }).sort({ _id: 1 }).toArray()).map(failureFromDoc));
  }

  protected async addLoginFailureChecked(keys: string[], atMs: number, restartBeforeMs: number, audit: AuditEventValues): Promise<LoginFailures[]> {
    const at = new Date(atMs);
    return this.p.transaction('recording a failed login', async (session) => {
      const out: LoginFailures[] = [];
      for (const key of keys) {
        const doc = await this.failures.findOne({ _id: key }, { session });
        const next: FailureDoc = doc === null || doc.lastFailedAt.getTime() < restartBeforeMs
          ? { _id: key, failures: 1, lastFailedAt: at }
          : { _id: key, failures: doc.failures + 1, lastFailedAt: doc.lastFailedAt > at ? doc.lastFailedAt : at };
        await this.failures.replaceOne({ _id: key }, next, { upsert: true, session });
        out.push(failureFromDoc(next));
      }
      await insertAudit(this.p, session, [audit]);
      return out;
    });
  }

  protected async clearLoginFailuresChecked(keys: string[]): Promise<void> {
    await this.p.write('clearing failed logins', () => this.failures.deleteMany({ _id: { $in: keys } }));
  }
}
