/**
 * Users for people (issue 21 item 2): a login name, one of the token roles, a password (scrypt,
 * passwords.ts) and a TOTP second factor (totp.ts) that every admin has and others may have.
 * What a person is shown once — a generated password, the `otpauth://` URI of a new TOTP secret —
 * is returned by these functions and never stored in the clear. Each change is one transaction
 * with its audit event (registry/users.ts); disabling a user or resetting a credential ends the
 * user's sessions in that same transaction.
 */
import { KakuinError } from '../errors/index.js';
import type { Registry } from '../registry/port.js';
import type { User, UserStore } from '../registry/users.js';
import { checkTokenRole } from './admin-tokens.js';
import { checkPasswordStrength, DEFAULT_PASSWORD_KDF_COST, generatePassword, hashPassword } from './passwords.js';
import { newTotpSecret, otpauthUri, TotpSecretBox } from './totp.js';

export interface NewUserRequest {
  name: string;
  role: string;
  manufacturerId?: string;
  /** The chosen password; absent: one is generated and returned once. */
  password?: string;
  /** A TOTP second factor for a non-admin (admins always get one). */
  totp?: boolean;
}

/** What the person (or the admin handing it over) is shown once. */
export interface OneTimeCredentials {
  /** Set when kakuin generated the password. */
  password?: string;
  /** Set when a new TOTP secret was made: for the authenticator app (a QR code of this text). */
  totpUri?: string;
}

export interface UserAccountsOptions {
  /** log2 of scrypt's N for passwords set from now on (`users.passwordKdfCost`). */
  passwordKdfCost?: number;
  /** The issuer name authenticator apps show beside the account. */
  totpIssuer?: string;
}

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** A login name: as a token name, 1 to 64 letters, digits, . _ @ -. */
export function checkUserName(name: string): string {
  if (typeof name !== 'string' || !USER_NAME.test(name)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'a user name is 1 to 64 characters: letters, digits, . _ @ -, starting with a letter or digit', { field: 'name' });
  }
  return name;
}

/** How a user is shown: never the password hash or the TOTP secret. */
export function userJson(u: User) {
  return {
    name: u.name, role: u.role, manufacturerId: u.manufacturerId, status: u.disabledAt === undefined ? 'active' : 'disabled',
    totp: u.totpSecret !== undefined, createdAt: u.createdAt.toISOString(), passwordChangedAt: u.passwordChangedAt.toISOString(),
    lastLoginAt: u.lastLoginAt?.toISOString(), disabledAt: u.disabledAt?.toISOString(),
  };
}

export class UserAccounts {
  private readonly box: TotpSecretBox;
  private readonly cost: number;
  private readonly issuer: string;

  constructor(private readonly registry: Pick<Registry, 'getManufacturer'>, private readonly store: UserStore, pepper: Buffer, options: UserAccountsOptions = {}) {
    this.box = new TotpSecretBox(pepper);
    this.cost = options.passwordKdfCost ?? DEFAULT_PASSWORD_KDF_COST;
    this.issuer = options.totpIssuer ?? 'kakuin';
  }

  /** The TOTP secret of a user, decrypted; undefined when the user has none. */
  totpSecretOf(user: User): Buffer | undefined {
    return user.totpSecret === undefined ? undefined : this.box.open(user.totpSecret, user.name);
  }

  async create(input: NewUserRequest, actor: string): Promise<{ user: User } & OneTimeCredentials> {
    const name = checkUserName(input.name);
    const role = checkTokenRole(input.role);
    if (role === 'manufacturer' && input.manufacturerId === undefined) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'a manufacturer user is bound to one manufacturer: give manufacturerId', { field: 'manufacturerId' });
    }
    if (role !== 'manufacturer' && input.manufacturerId !== undefined) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'manufacturerId is only for the manufacturer role', { field: 'manufacturerId' });
    }
    if (role === 'admin' && input.totp === false) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'every admin has a TOTP second factor', { field: 'totp' });
    }
    if (input.manufacturerId !== undefined) await this.registry.getManufacturer(input.manufacturerId);
    const password = input.password === undefined ? generatePassword() : checkPasswordStrength(input.password);
    const secret = role === 'admin' || input.totp === true ? newTotpSecret() : undefined;
    const user = await this.store.createUser({
      name, role, ...(input.manufacturerId !== undefined && { manufacturerId: input.manufacturerId }),
      passwordHash: await hashPassword(password, this.cost), ...(secret !== undefined && { totpSecret: this.box.seal(secret, name) }),
    }, { type: 'user.created', actor, details: { name, role, ...(input.manufacturerId !== undefined && { manufacturerId: input.manufacturerId }), totp: secret !== undefined } });
    return {
      user, ...(input.password === undefined && { password }), ...(secret !== undefined && { totpUri: otpauthUri(secret, name, this.issuer) }),
    };
  }

  async get(name: string): Promise<User> {
    const user = await this.store.findUser(checkUserName(name));
    if (user === undefined) throw new KakuinError('KAKUIN_E_USER_NOT_FOUND', 'no user with that name');
    return user;
  }

  /** Disables the user; its sessions end in the same transaction. */
  async disable(name: string, actor: string, now = new Date()): Promise<User> {
    return this.store.setUserDisabled(checkUserName(name), now, { type: 'user.disabled', actor, details: { name } });
  }

  async enable(name: string, actor: string): Promise<User> {
    return this.store.setUserDisabled(checkUserName(name), undefined, { type: 'user.enabled', actor, details: { name } });
  }

  /** A new password (generated when none is given); the user's sessions end. */
  async resetPassword(name: string, actor: string, chosen?: string, now = new Date()): Promise<{ user: User } & OneTimeCredentials> {
    checkUserName(name);
    const password = chosen === undefined ? generatePassword() : checkPasswordStrength(chosen);
    const user = await this.store.changeUserCredentials(name, { passwordHash: await hashPassword(password, this.cost) }, now,
      { type: 'user.password.reset', actor, details: { name } });
    return { user, ...(chosen === undefined && { password }) };
  }

  /** The user's own new password (logins.ts checked the current one); every session of the user ends. */
  async changeOwnPassword(name: string, chosen: string, actor: string, now = new Date()): Promise<User> {
    const hash = await hashPassword(checkPasswordStrength(chosen), this.cost);
    return this.store.changeUserCredentials(name, { passwordHash: hash }, now, { type: 'user.password.changed', actor, details: { name } });
  }

  /** A new TOTP secret (for a lost phone, or to give a non-admin a second factor); the user's sessions end. */
  async resetTotp(name: string, actor: string, now = new Date()): Promise<{ user: User } & OneTimeCredentials> {
    checkUserName(name);
    const secret = newTotpSecret();
    const user = await this.store.changeUserCredentials(name, { totpSecret: this.box.seal(secret, name) }, now,
      { type: 'user.totp.reset', actor, details: { name } });
    return { user, totpUri: otpauthUri(secret, name, this.issuer) };
  }
}
