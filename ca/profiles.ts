/**
 * Certificate profiles: what a certificate of each kind looks like, apart from who it names.
 *
 * Device (IEEE 802.1AR DevID-like) certificates: subject serialNumber = device serial number,
 * SAN URI `urn:kakuin:device:<id>` (+ optional HardwareModuleName), keyUsage digitalSignature,
 * extKeyUsage clientAuth, CRL distribution point and AIA (OCSP + caIssuers).
 */

export type ValidityPolicy = { days: number } | 'no-well-defined-expiration';

export interface DeviceProfilePolicy {
  /**
   * Lifetime of a device certificate. `no-well-defined-expiration` writes RFC 5280 §4.1.2.5's
   * GeneralizedTime 99991231235959Z, as IEEE 802.1AR allows for IDevIDs that outlive any CA.
   */
  validity: ValidityPolicy;
  /**
   * notBefore is set back by this much: devices without a battery-backed clock often boot with a
   * time slightly behind the CA's, and would otherwise reject their own fresh certificate.
   */
  backdateSeconds: number;
  /**
   * What the subject's CN holds: nothing (`none`, the default: the serialNumber attribute and the
   * SAN URI name the device), the serial number, or the device id — for relying parties that can
   * only read a CN (Mosquitto `use_identity_as_username`, FreeRADIUS `check_cert_cn`).
   */
  commonName?: 'none' | 'serialNumber' | 'deviceId';
}

export const DEFAULT_DEVICE_PROFILE: DeviceProfilePolicy = {
  validity: { days: 3650 },
  backdateSeconds: 3600,
};

export interface ValidityWindow {
  notBefore: Date;
  notAfter: Date | 'no-well-defined-expiration';
}

const DAY_MS = 86_400_000;

export function validityWindow(policy: { validity: ValidityPolicy; backdateSeconds: number }, now: Date): ValidityWindow {
  // Whole seconds: X.509 times carry no fractions (RFC 5280 §4.1.2.5.1/.2).
  const nowMs = Math.floor(now.getTime() / 1000) * 1000;
  const notBefore = new Date(nowMs - policy.backdateSeconds * 1000);
  const notAfter = policy.validity === 'no-well-defined-expiration'
    ? 'no-well-defined-expiration'
    : new Date(nowMs + policy.validity.days * DAY_MS);
  return { notBefore, notAfter };
}

/** The device's URI in the SAN, the key the gateway uses to find its registry record. */
export function deviceUri(deviceId: string): string {
  return `urn:kakuin:device:${deviceId}`;
}

/** Parse `urn:kakuin:device:<id>`; undefined for anything else. */
export function deviceIdFromUri(uri: string): string | undefined {
  const m = /^urn:kakuin:device:([A-Za-z0-9-]{1,64})$/.exec(uri);
  return m ? m[1] : undefined;
}

/** The profile every enrollment gets unless it names another; shaped by `ca.device`. */
export const DEVICE_PROFILE_NAME = 'device';

/**
 * Named device profiles (`ca.profiles` in the config, plus `device` from `ca.device`): same shape
 * as `device` (subject, SAN, clientAuth), different lifetime. A manufacturer may use only the ones
 * an admin allowed it (POST /api/v1/manufacturers/{id}/profiles); with no list, only `device`.
 */
export type DeviceProfiles = ReadonlyMap<string, DeviceProfilePolicy>;

/** Profile names: lowercase, as they appear in URLs (EST's arbitrary label, RFC 7030 §3.2.2). */
export const PROFILE_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** Names no configured device profile may take: they shape other kinds of certificate. */
export const RESERVED_PROFILE_NAMES: ReadonlySet<string> = new Set(['station', 'tls-server', 'ocsp-signer', 'root-ca', 'sub-ca']);

/** The default extra profile: a month-long certificate for test benches and pilot runs. */
export const DEFAULT_EXTRA_PROFILES: Record<string, DeviceProfilePolicy> = {
  'short-lived': { validity: { days: 30 }, backdateSeconds: 3600 },
};

export function deviceProfiles(device: DeviceProfilePolicy, extra: Record<string, DeviceProfilePolicy> = DEFAULT_EXTRA_PROFILES): DeviceProfiles {
  return new Map([[DEVICE_PROFILE_NAME, device], ...Object.entries(extra)]);
}

/**
 * Station certificates (mTLS client certificates of factory stations, issued by the station CA):
 * subject O=<manufacturer name>, CN=<station name>, serialNumber=<station id>; SAN URI
 * `urn:kakuin:station:<id>`; keyUsage digitalSignature; extKeyUsage clientAuth. Short-lived: a
 * station is rotated by issuing it a new certificate.
 */
export const STATION_PROFILE_NAME = 'station';

export interface StationProfilePolicy {
  validity: { days: number };
  backdateSeconds: number;
}

export const DEFAULT_STATION_PROFILE: StationProfilePolicy = { validity: { days: 365 }, backdateSeconds: 300 };

export function stationUri(stationId: string): string {
  return `urn:kakuin:station:${stationId}`;
}
