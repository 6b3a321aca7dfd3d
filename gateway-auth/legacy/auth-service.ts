/**
 * The legacy three-factor authentication: (common auth ID, auth secret, unique ID) → a short-lived
 * token; and the check of (token, device identifier) on every data request.
 *
 * Every refusal of the factors is the same KAKUIN_E_LEGACY_AUTH_FAILED, whichever factor was wrong;
 * an unknown (common auth ID, unique ID) still costs an HMAC, and secrets are compared in constant time.
 * Nothing is ever locked: a correct credential always succeeds at once, and failures are answered
 * after the identity's backoff (abuse.ts).
 */
import { KakuinError } from '../../errors/index.js';
import type { DeviceStatus, Registry } from '../../registry/port.js';
import { NO_ACTIVITY, type ActivityRecorder } from '../activity-recorder.js';
import { isFirmwareVersion } from '../firmware.js';
import type { GatewayLogger } from '../options.js';
import type { LegacyAbuseGuard } from './abuse.js';
import type { LegacyKillSwitch } from './kill-switch.js';
import { hmacVerifier, verifySecret } from './secrets.js';
import type { LegacyTokenSigner } from './tokens.js';

export type LegacyAuthRegistry = Pick<Registry,
  'findLegacyCredentials' | 'getDevice' | 'getCommonAuthId' | 'appendAuditEvent' | 'countLegacyFailures'>;

export interface LegacyAuthOptions {
  registry: LegacyAuthRegistry;
  pepper: Buffer;
  tokens: LegacyTokenSigner;
  killSwitch: LegacyKillSwitch;
  abuse: LegacyAbuseGuard;
  logger: GatewayLogger;
  tokenTtlMs: number;
  /** Least delay before a throttled failure (429) is answered; the identity's backoff when longer. */
  throttleDelayMs: number;
  /** Default usual hours (UTC `HH-HH`) for classes that name none; undefined: no unusual-hour events. */
  usualHoursUtc?: string;
  /** Token results, refusals and firmware per device (operations/activity); default: recording off. */
  activity?: ActivityRecorder;
  now?: () => number;
}

const USABLE: ReadonlySet<DeviceStatus> = new Set(['registered', 'active']);
const FACTOR_MAX = 256;

function authFailed(): KakuinError {
  return new KakuinError('KAKUIN_E_LEGACY_AUTH_FAILED', 'authentication failed');
}

function tokenInvalid(): KakuinError {
  return new KakuinError('KAKUIN_E_LEGACY_TOKEN_INVALID', 'the token is not valid for this device');
}

/** `HH-HH` (UTC), wrapping past midnight when from > to. */
export function withinHours(window: string, date: Date): boolean {
  const m = /^(\d{2})-(\d{2})$/.exec(window);
  if (!m) return true;
  const from = Number(m[1]);
  const to = Number(m[2]);
  const h = date.getUTCHours();
  return from <= to ? h >= from && h < to : h >= from || h < to;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LegacyAuthService {
  private readonly activity: ActivityRecorder;

  constructor(private readonly o: LegacyAuthOptions) {
    this.activity = o.activity ?? NO_ACTIVITY;
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  /** `firmwareVersion` (optional, the token request's field) is kept only when the factors are good. */
  async authenticate(factors: { commonAuthId: unknown; authSecret: unknown; uniqueId: unknown; firmwareVersion?: unknown }, source: string): Promise<{ token: string; deviceId: string; expiresAt: Date }> {
    const { commonAuthId, authSecret, uniqueId, firmwareVersion } = factors;
    if (firmwareVersion !== undefined && !isFirmwareVersion(firmwareVersion)) {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'firmwareVersion must be 1 to 64 characters: letters, digits and . _ + ~ : - (starting with a letter or digit)', { field: 'firmwareVersion' });
    }
    for (const [name, v] of Object.entries({ commonAuthId, authSecret, uniqueId })) {
      if (typeof v !== 'string' || v.length === 0 || v.length > FACTOR_MAX) {
        throw new KakuinError('KAKUIN_E_VALIDATION', `${name} must be a non-empty string of at most ${FACTOR_MAX} characters`);
      }
    }
    const cai = commonAuthId as string;
    const uid = uniqueId as string;
    const secret = authSecret as string;
    const now = this.now();
    // A lockedUntil written by an older version is not read: nothing locks a credential any more.
    const cred = await this.o.registry.findLegacyCredentials(cai, uid);
    let ok = false;
    if (cred === undefined) {
      hmacVerifier(this.o.pepper, secret); // same work as a known device with a generated secret
    } else {
      ok = await verifySecret(this.o.pepper, cred.verifierKind, cred.verifier, secret);
    }
    let deviceStatus: DeviceStatus | undefined;
    if (ok && cred !== undefined) {
      deviceStatus = (await this.o.registry.getDevice(cred.deviceId)).status;
      ok = USABLE.has(deviceStatus);
    }
    if (!ok || cred === undefined) {
      if (cred !== undefined) {
        this.activity.tokenResult(cred.deviceId, false, source);
        // A revoked or suspended device that tries again is what an admin asks about first (issue 19).
        this.activity.refused(cred.deviceId, deviceStatus === undefined ? 'wrong auth secret' : `device ${deviceStatus}`, source, 'legacy');
      }
      return this.failure(cai, uid, source, cred?.deviceId, now);
    }

    const expiresAt = new Date(now + this.o.tokenTtlMs);
    const token = this.o.tokens.issue(cred.deviceId, cred.generation, expiresAt);
    this.activity.tokenResult(cred.deviceId, true, source);
    if (firmwareVersion !== undefined) this.activity.firmware(cred.deviceId, firmwareVersion as string, 'legacy');
    await this.noteUnusualHour(cai, cred.deviceId, source, new Date(now));
    const burst = this.o.abuse.recordSuccess(cai, uid, now);
    if (burst !== undefined) await this.noteBurst('authentications', burst, cai, uid, source, cred.deviceId);
    this.o.logger.info('legacy token issued', { deviceId: cred.deviceId, generation: cred.generation });
    return { token, deviceId: cred.deviceId, expiresAt };
  }

  private async failure(cai: string, uid: string, source: string, deviceId: string | undefined, now: number): Promise<never> {
    const verdict = await this.o.abuse.recordFailure(cai, uid, source, now);
    this.o.logger.info('legacy authentication failed', { commonAuthId: cai, source });
    for (const scope of verdict.alerts) {
      await this.o.registry.appendAuditEvent({
        type: 'legacy.throttled', actor: 'system', details: { scope, commonAuthId: cai, ...(scope === 'source' && { source }) },
      });
    }
    if (verdict.burst !== undefined) await this.noteBurst('failures', verdict.burst.count, cai, uid, source, deviceId);
    if (verdict.throttled) {
      await sleep(Math.max(verdict.delayMs, this.o.throttleDelayMs));
      throw new KakuinError('KAKUIN_E_LEGACY_THROTTLED', 'too many failed attempts; slow down');
    }
    // Held for the identity's backoff, never refused outright: the owner's next correct attempt passes.
    await sleep(verdict.delayMs);
    throw authFailed();
  }

  /** The seed's rule: `burstLimit` failures or authentications within a minute for one identity. */
  private async noteBurst(kind: 'failures' | 'authentications', count: number, cai: string, uid: string, source: string, deviceId: string | undefined): Promise<void> {
    this.o.logger.warn('legacy burst', { kind, commonAuthId: cai, count });
    await this.o.registry.appendAuditEvent({
      type: 'legacy.burst', actor: 'system', ...(deviceId !== undefined && { deviceId }),
      details: { kind, count, commonAuthId: cai, uniqueId: uid, source },
    });
  }

  private async noteUnusualHour(cai: string, deviceId: string, source: string, at: Date): Promise<void> {
    let window = this.o.usualHoursUtc;
    try {
      window = (await this.o.registry.getCommonAuthId(cai)).usualHoursUtc ?? window;
    } catch {
      // The class record is only for the window; the authentication itself already succeeded.
    }
    if (window === undefined || withinHours(window, at)) return;
    await this.o.registry.appendAuditEvent({
      type: 'legacy.unusual-hour', actor: 'system', deviceId, details: { commonAuthId: cai, source, usualHoursUtc: window, at: at.toISOString() },
    });
  }

  /** The device a data request comes from: the token must be valid, alive, and the identifier its device's. */
  validate(authorization: string | undefined, deviceIdHeader: string | undefined, source?: string): string {
    const m = authorization === undefined ? null : /^Bearer (\S{1,200})$/.exec(authorization);
    if (!m) throw new KakuinError('KAKUIN_E_LEGACY_TOKEN_INVALID', 'no legacy token: send Authorization: Bearer <token> (from POST /legacy/v1/token)');
    // A missing header is the client's mistake, not a bad token: say so (nothing about the token is revealed).
    if (deviceIdHeader === undefined || deviceIdHeader === '') {
      throw new KakuinError('KAKUIN_E_VALIDATION', 'the X-Device-Id header is missing: send the deviceId that POST /legacy/v1/token answered with the token');
    }
    const claims = this.o.tokens.verify(m[1], this.now());
    if (claims === undefined || typeof deviceIdHeader !== 'string' || deviceIdHeader.length !== claims.deviceId.length) throw tokenInvalid();
    let diff = 0;
    for (let i = 0; i < deviceIdHeader.length; i++) diff |= deviceIdHeader.charCodeAt(i) ^ claims.deviceId.charCodeAt(i);
    if (diff !== 0) throw tokenInvalid();
    if (!this.o.killSwitch.isFresh()) throw new KakuinError('KAKUIN_E_STATUS_STALE', 'device status cannot be confirmed right now; retry later');
    if (!this.o.killSwitch.allows(claims.deviceId, claims.generation)) {
      // A token of a device shut out since (revoked, suspended, credentials replaced): its retry is recorded.
      this.activity.refused(claims.deviceId, `legacy token refused: ${this.o.killSwitch.refusalReason(claims.deviceId)}`, source, 'legacy');
      throw tokenInvalid();
    }
    this.activity.traffic(claims.deviceId, 1, 0);
    return claims.deviceId;
  }
}
