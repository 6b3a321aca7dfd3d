/**
 * Small caches in front of the registry for what every new connection reads: the device record
 * (its lifecycle status) and the certificate record (that the registry knows this certificate and
 * binds it to that device).
 *
 * A device's status changes; the feed says so (`invalidate`/`setStatus`), and a read that was in
 * flight when the feed spoke is not cached (a per-id version number guards that race). In `ocsp`
 * mode there is no feed, so entries also expire after `ttlMs`. A certificate record's identity
 * fields never change, so those are cached without expiry; its status is not taken from here.
 */
import { hasCode } from '../errors/index.js';
import type { DeviceStatus } from '../registry/port.js';
import type { DeviceIdentity } from './device-identity.js';
import type { GatewayRegistry } from './options.js';

/** Insertion-ordered map dropping its oldest entry past `max` (a cheap LRU for hot device ids). */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (super.has(key)) super.delete(key);
    else if (this.size >= this.max) super.delete(this.keys().next().value as K);
    return super.set(key, value);
  }
}

interface CachedDevice {
  status: DeviceStatus | 'unknown';
  at: number;
  /**
   * Certificates presented for a not-active device since this entry was cached. A device's first
   * certificate makes a `registered` device `active` without a device feed entry, so a device cached
   * as `registered` (say, suspended and resumed before its first certificate) is read once more
   * when a certificate this entry has not seen is presented; never more than once per certificate.
   */
  seen?: Set<string>;
}

/** Re-reads are bounded per entry: a device has few certificates, an entry that saw many reads no more. */
const MAX_SEEN = 8;

export class DeviceStatusCache {
  private readonly cache: BoundedMap<string, CachedDevice>;
  private readonly versions = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<DeviceStatus | 'unknown'>>();

  constructor(
    private readonly registry: Pick<GatewayRegistry, 'getDevice'>,
    private readonly now: () => number,
    private readonly ttlMs: number = Number.POSITIVE_INFINITY,
    maxEntries = 100_000,
  ) {
    this.cache = new BoundedMap(maxEntries);
  }

  /**
   * The device's status; 'unknown' when the registry has no such device. Registry errors reject.
   * `certKey`: the certificate presented, so that a device cached as not active is read again once
   * when it presents a certificate newer than the cached record knows (CachedDevice.seen).
   */
  status(deviceId: string, certKey?: string): DeviceStatus | 'unknown' | Promise<DeviceStatus | 'unknown'> {
    const hit = this.cache.get(deviceId);
    let seen: Set<string> | undefined;
    if (hit !== undefined && this.now() - hit.at < this.ttlMs) {
      if (hit.status === 'active' || certKey === undefined) return hit.status;
      seen = hit.seen ?? new Set();
      if (seen.has(certKey) || seen.size >= MAX_SEEN) return hit.status;
      seen.add(certKey);
      hit.seen = seen;
    }
    const pending = this.inFlight.get(deviceId);
    if (pending !== undefined) return pending;
    const version = this.versions.get(deviceId) ?? 0;
    const read = this.registry.getDevice(deviceId).then(
      (d) => d.status,
      (e: unknown) => {
        if (hasCode(e, 'KAKUIN_E_DEVICE_NOT_FOUND')) return 'unknown' as const;
        throw e;
      },
    ).then((status) => {
      if ((this.versions.get(deviceId) ?? 0) === version) {
        const known = seen ?? (certKey === undefined ? undefined : new Set([certKey]));
        this.cache.set(deviceId, { status, at: this.now(), ...(status !== 'active' && known !== undefined && { seen: known }) });
      }
      return status;
    }).finally(() => this.inFlight.delete(deviceId));
    this.inFlight.set(deviceId, read);
    return read;
  }

  /** A device feed entry: its new status is authoritative and newer than any read in flight. */
  setStatus(deviceId: string, status: DeviceStatus): void {
    this.versions.set(deviceId, (this.versions.get(deviceId) ?? 0) + 1);
    this.inFlight.delete(deviceId);
    this.cache.set(deviceId, { status, at: this.now() });
  }
}

/** Why a certificate record does not back a connection, or undefined when it does. */
export type CertificateRecordCheck = string | undefined;

/** Checks (once per certificate) that the registry recorded exactly this certificate for this device. */
export class CertificateRecordCache {
  private readonly known: BoundedMap<string, true>;

  constructor(private readonly registry: Pick<GatewayRegistry, 'getCertificate'>, maxEntries = 100_000) {
    this.known = new BoundedMap(maxEntries);
  }

  check(id: DeviceIdentity): CertificateRecordCheck | Promise<CertificateRecordCheck> {
    if (this.known.has(id.certKey)) return undefined;
    return this.registry.getCertificate(id.serialHex).then((record) => {
      if (record.issuerId !== id.issuerId) return 'the registry records this serial under another issuer';
      if (!record.der.equals(id.der)) return 'the registry records a different certificate under this serial';
      if (record.deviceId !== id.deviceId) return 'the registry binds this certificate to another device';
      this.known.set(id.certKey, true);
      return undefined;
    }, (e: unknown) => {
      if (hasCode(e, 'KAKUIN_E_CERTIFICATE_NOT_FOUND')) return 'the registry does not know this certificate';
      throw e;
    });
  }
}
