/**
 * Admin bearer tokens. A token is 256 random bits shown once; the registry keeps only its
 * HMAC-SHA-256 under the pepper, which lives outside the database (DESIGN.md "Storage"), so a copied
 * database file yields no usable token and checking one costs a single HMAC.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { TOKEN_ROLES, type AdminToken, type Registry, type Station, type TokenRole } from '../registry/port.js';

/** A token's last use is written at most this often (per token and process): an admin API call is not worth a write each. */
const LAST_USED_RESOLUTION_MS = 60_000;
import { KakuinError } from '../errors/index.js';

const TOKEN_PREFIX = 'kkadm_';

export function newAdminTokenSecret(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function tokenHmac(pepper: Buffer, token: string): string {
  return createHmac('sha256', pepper).update(token, 'utf8').digest('hex');
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export function checkTokenName(name: string): string {
  if (!TOKEN_NAME.test(name)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'a token name is 1 to 64 characters: letters, digits, . _ @ -, starting with a letter or digit', { field: 'name' });
  }
  return name;
}

/**
 * A new admin token (256 random bits, the secret returned once), with its `token.created` audit
 * event in the same transaction. `expiresAt`, when given, must lie in the future.
 */
export async function createAdminToken(registry: Registry, pepper: Buffer, name: string, actor: string, options: { expiresAt?: Date; now?: Date; role?: string; manufacturerId?: string } = {}): Promise<{ token: string; record: AdminToken }> {
  checkTokenName(name);
  const role = checkTokenRole(options.role ?? 'admin');
  const manufacturerId = options.manufacturerId;
  if (role === 'manufacturer' && manufacturerId === undefined) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'a manufacturer token is bound to one manufacturer: give manufacturerId', { field: 'manufacturerId' });
  }
  if (role !== 'manufacturer' && manufacturerId !== undefined) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'manufacturerId is only for the manufacturer role', { field: 'manufacturerId' });
  }
  // KAKUIN_E_MANUFACTURER_NOT_FOUND for an unknown one, before anything is written.
  if (manufacturerId !== undefined) await registry.getManufacturer(manufacturerId);
  const now = options.now ?? new Date();
  const expiresAt = options.expiresAt;
  if (expiresAt !== undefined && (Number.isNaN(expiresAt.getTime()) || expiresAt.getTime() <= now.getTime())) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'expiresAt must be an ISO 8601 time in the future', { field: 'expiresAt' });
  }
  const token = newAdminTokenSecret();
  const record = await registry.createAdminToken({ name, tokenHmac: tokenHmac(pepper, token), role, ...(manufacturerId !== undefined && { manufacturerId }), ...(expiresAt && { expiresAt }) },
    { type: 'token.created', actor, details: { name, role, ...(manufacturerId !== undefined && { manufacturerId }), ...(expiresAt && { expiresAt: expiresAt.toISOString() }) } });
  return { token, record };
}

export function checkTokenRole(role: string): TokenRole {
  if (!(TOKEN_ROLES as readonly string[]).includes(role)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `a token role is one of ${TOKEN_ROLES.join(', ')}`, { field: 'role' });
  }
  return role as TokenRole;
}

/** Revoke a token by name, with its `token.revoked` audit event; it authenticates no request from the commit on, in any process. */
export async function revokeAdminToken(registry: Registry, name: string, actor: string, now = new Date()): Promise<AdminToken> {
  checkTokenName(name);
  return registry.revokeAdminToken(name, now, { type: 'token.revoked', actor, details: { name } });
}

/** How a token is shown (never its secret or HMAC). */
export function adminTokenJson(t: AdminToken, now = Date.now()) {
  const status = t.disabledAt !== undefined ? 'revoked' : t.expiresAt !== undefined && t.expiresAt.getTime() <= now ? 'expired' : 'active';
  return {
    name: t.name, role: t.role, manufacturerId: t.manufacturerId, status, createdAt: t.createdAt.toISOString(),
    lastUsedAt: t.lastUsedAt?.toISOString(), expiresAt: t.expiresAt?.toISOString(), revokedAt: t.disabledAt?.toISOString(),
  };
}

/** Who is calling. Devices join this union with their issue. */
export interface AdminCaller {
  kind: 'admin';
  name: string;
  /** The token's role (api-schema/access.ts decides which routes it may call). */
  role: TokenRole;
  /** Set for a `manufacturer` token: the only manufacturer whose devices, stations and imports it sees. */
  manufacturerId?: string;
  /** How audit events name the caller. */
  actor: string;
}

/** A factory station: it may enroll and read its own manufacturer's devices, nothing else. */
export interface StationCaller {
  kind: 'station';
  stationId: string;
  manufacturerId: string;
  name: string;
  /** `station:<id>` */
  actor: string;
}

export type Caller = AdminCaller | StationCaller;

const STATION_KEY_PREFIX = 'kkst_';

/** A station API key: 256 random bits, shown once; the registry keeps its HMAC under the pepper. */
export function newStationApiKey(): string {
  return STATION_KEY_PREFIX + randomBytes(32).toString('base64url');
}

export interface AuthenticatorOptions {
  /**
   * A station API key is refused this long after it was made or last rotated
   * (`enrollment.stationKeyMaxAgeDays`; KAKUIN_E_STATION_KEY_EXPIRED). 0: keys never expire.
   */
  stationKeyMaxAgeMs?: number;
  now?: () => number;
}

export class AdminAuthenticator {
  private readonly bootstrapHmac?: Buffer;
  private readonly stationKeyMaxAgeMs: number;
  private readonly now: () => number;
  private readonly lastUseWritten = new Map<string, number>();

  /**
   * @param bootstrapToken `KAKUIN_ADMIN_TOKEN`, accepted as the admin named `bootstrap` without
   *   being stored, so an operator can always get in with the environment they control.
   */
  constructor(private readonly registry: Registry, private readonly pepper: Buffer, bootstrapToken?: string, options: AuthenticatorOptions = {}) {
    if (bootstrapToken) this.bootstrapHmac = Buffer.from(tokenHmac(pepper, bootstrapToken), 'hex');
    this.stationKeyMaxAgeMs = options.stationKeyMaxAgeMs ?? 0;
    this.now = options.now ?? Date.now;
  }

  /** When the station's current API key stops working; undefined when keys do not expire. */
  stationKeyExpiresAt(station: Pick<Station, 'createdAt' | 'keyRotatedAt' | 'keyAgeFrom'>): Date | undefined {
    if (this.stationKeyMaxAgeMs <= 0) return undefined;
    const from = Math.max((station.keyRotatedAt ?? station.createdAt).getTime(), station.keyAgeFrom?.getTime() ?? 0);
    return new Date(from + this.stationKeyMaxAgeMs);
  }

  /** The caller named by an `Authorization` header, or undefined. */
  async authenticate(authorization: string | undefined): Promise<Caller | undefined> {
    const m = authorization ? /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(authorization) : null;
    if (!m) return undefined;
    const hmac = tokenHmac(this.pepper, m[1]);
    if (this.bootstrapHmac && timingSafeEqual(this.bootstrapHmac, Buffer.from(hmac, 'hex'))) {
      return { kind: 'admin', name: 'bootstrap', role: 'admin', actor: 'token:bootstrap' };
    }
    // Looking up by HMAC leaks nothing useful through timing: the HMAC of a guess says nothing
    // about the HMAC of the real token.
    if (m[1].startsWith(STATION_KEY_PREFIX)) return this.stationByHmac(hmac);
    // Read on every request, never cached: a revocation committed by any process holds from the next request on.
    const record = await this.registry.findAdminTokenByHmac(hmac);
    if (!record || record.disabledAt) return undefined;
    const now = this.now();
    if (record.expiresAt !== undefined && now >= record.expiresAt.getTime()) return undefined;
    this.noteUse(record.name, now);
    return { kind: 'admin', name: record.name, role: record.role, ...(record.manufacturerId !== undefined && { manufacturerId: record.manufacturerId }), actor: `token:${record.name}` };
  }

  /**
   * EST's HTTP Basic `<stationId>:<apiKey>` (RFC 7030 §3.2.3): the key decides, and the id must name
   * the same station, so a key presented under another station's id is refused.
   */
  async authenticateBasic(authorization: string | undefined): Promise<StationCaller | undefined> {
    const m = authorization ? /^Basic ([A-Za-z0-9+/=]{4,1024})$/.exec(authorization) : null;
    if (!m) return undefined;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1) return undefined;
    const id = decoded.slice(0, colon);
    const key = decoded.slice(colon + 1);
    if (!key.startsWith(STATION_KEY_PREFIX) || key.length > 512) return undefined;
    const caller = await this.stationByHmac(tokenHmac(this.pepper, key));
    return caller?.stationId === id ? caller : undefined;
  }

  /** Records the token's last use, at most once a minute; a failed write never fails the request. */
  private noteUse(name: string, now: number): void {
    const last = this.lastUseWritten.get(name);
    if (last !== undefined && now - last < LAST_USED_RESOLUTION_MS) return;
    this.lastUseWritten.set(name, now);
    this.registry.touchAdminToken(name, new Date(now)).catch(() => this.lastUseWritten.delete(name));
  }

  private async stationByHmac(hmac: string): Promise<StationCaller | undefined> {
    const station = await this.registry.findStationByKeyHmac(hmac);
    if (!station || station.disabledAt) return undefined;
    // The right key, past its age: said as such, so the line knows to have it rotated (a guessed
    // key cannot get here: it would have to match the HMAC of a real one).
    const expiresAt = this.stationKeyExpiresAt(station);
    if (expiresAt !== undefined && this.now() >= expiresAt.getTime()) {
      throw new KakuinError('KAKUIN_E_STATION_KEY_EXPIRED', `the station's API key expired at ${expiresAt.toISOString()}; an admin rotates it (POST /api/v1/stations/{id}/rotate-key)`);
    }
    return { kind: 'station', stationId: station.id, manufacturerId: station.manufacturerId, name: station.name, actor: `station:${station.id}` };
  }
}
