/**
 * The decision for one connection, taken before any of its data is read: the peer certificate must
 * be a device certificate of a device issuing CA, good according to the status source, recorded in
 * the registry for that device (feed mode), and the device record must be `active` (DESIGN.md
 * lifecycle: a suspended, revoked or retired device is refused even while its certificate verifies).
 *
 * Everything answered from memory stays synchronous, so a reconnecting known device costs no
 * promise; the registry is read only on a cache miss.
 */
import type { DeviceStatus } from '../registry/port.js';
import type { DeviceIdentity } from './device-identity.js';
import type { CertificateRecordCache, DeviceStatusCache } from './record-cache.js';
import { GOOD, type CertificateStatusSource, type CertificateVerdict } from './status-source.js';

type MaybePromise<T> = T | Promise<T>;

function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as Promise<T> | undefined)?.then === 'function';
}

function deviceVerdict(status: DeviceStatus | 'unknown'): CertificateVerdict {
  if (status === 'active') return GOOD;
  return { ok: false, reason: status === 'unknown' ? 'the registry has no such device' : `device ${status}` };
}

export class DeviceAdmission {
  constructor(
    private readonly status: CertificateStatusSource,
    private readonly devices: DeviceStatusCache,
    /** Undefined in ocsp mode: the responder, not the registry, is the authority on certificates. */
    private readonly certificates: CertificateRecordCache | undefined,
  ) {}

  /** Resolves to the verdict; rejects only when the registry fails (the caller refuses then). */
  check(id: DeviceIdentity): MaybePromise<CertificateVerdict> {
    const first = this.status.check(id);
    if (isPromise(first)) return first.then((v) => (v.ok ? this.afterStatus(id) : v));
    return first.ok ? this.afterStatus(id) : first;
  }

  private afterStatus(id: DeviceIdentity): MaybePromise<CertificateVerdict> {
    const record = this.certificates?.check(id);
    if (isPromise(record)) return record.then((reason) => (reason === undefined ? this.device(id) : { ok: false, reason }));
    if (record !== undefined) return { ok: false, reason: record };
    return this.device(id);
  }

  private device(id: DeviceIdentity): MaybePromise<CertificateVerdict> {
    const status = this.devices.status(id.deviceId, id.certKey);
    if (!isPromise(status)) return deviceVerdict(status);
    // The feed may have spoken while the registry was read: ask the status source once more.
    return status.then((s) => {
      const v = deviceVerdict(s);
      if (!v.ok) return v;
      const again = this.status.check(id);
      return isPromise(again) ? again : again;
    });
  }
}
