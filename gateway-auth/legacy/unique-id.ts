/**
 * The legacy path's third factor, the unique ID, must be one of the device's own identifiers
 * (issue 13): its IMEI, MAC, serial number or hardware id as registered. An arbitrary string, or
 * another device's IMEI, would bind a credential to a name that says nothing about the device.
 * Uniqueness per common auth ID is the registry's (KAKUIN_E_LEGACY_CREDENTIALS_EXIST).
 */
import type { Device } from '../../registry/port.js';
import { KakuinError } from '../../errors/index.js';

/** Why `uniqueId` is not one of the device's identifiers, or undefined when it is. */
export function uniqueIdProblem(device: Pick<Device, 'serialNumber' | 'identifiers'>, uniqueId: string): string | undefined {
  const ids = device.identifiers ?? {};
  if (uniqueId === device.serialNumber || uniqueId === ids.imei || uniqueId === ids.hardwareId) return undefined;
  // A MAC in any of its usual spellings (the registry keeps aa:bb:cc:dd:ee:ff).
  if (ids.mac !== undefined && uniqueId.replace(/[:.-]/g, '').toLowerCase() === ids.mac.replace(/:/g, '')) return undefined;
  const known = [['serial number', device.serialNumber], ['IMEI', ids.imei], ['MAC', ids.mac], ['hardware id', ids.hardwareId]]
    .filter(([, v]) => v !== undefined).map(([k]) => k);
  return `unique ID ${JSON.stringify(uniqueId)} is not one of the device's identifiers (${known.join(', ')})`;
}

export function checkUniqueIdOfDevice(device: Pick<Device, 'id' | 'serialNumber' | 'identifiers'>, uniqueId: string): void {
  const problem = uniqueIdProblem(device, uniqueId);
  if (problem !== undefined) {
    throw new KakuinError('KAKUIN_E_LEGACY_UNIQUE_ID_NOT_OWN', `${problem}; register the identifier on the device first, or use one it has`);
  }
}
