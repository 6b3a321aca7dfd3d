/**
 * Device registration: validation of what a manufacturer says about a device before it enters the
 * registry. Identifiers are normalised here so that the registry's uniqueness per manufacturer
 * holds across spellings (`AA-BB-...` and `aa:bb:...` are one MAC).
 */
import { isPrintableString } from '../pkix/index.js';
import type { Device, DeviceIdentifiers, HardwareModuleName, NewDevice, Registry } from '../registry/port.js';
import { KakuinError } from '../errors/index.js';

/** RFC 5280 Appendix A: ub-serial-number INTEGER ::= 64. */
const MAX_SERIAL_NUMBER_LENGTH = 64;

export function validateSerialNumber(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_SERIAL_NUMBER_LENGTH) {
    throw new KakuinError('KAKUIN_E_INVALID_SERIAL_NUMBER', `serialNumber must be a string of 1 to ${MAX_SERIAL_NUMBER_LENGTH} characters`);
  }
  // X.520 serialNumber is a PrintableString (RFC 5280 Appendix A, X520SerialNumber).
  if (!isPrintableString(value) || value.trim() !== value) {
    throw new KakuinError('KAKUIN_E_INVALID_SERIAL_NUMBER',
      'serialNumber may hold only PrintableString characters (A-Z a-z 0-9 space \' ( ) + , - . / : = ?), without leading or trailing spaces');
  }
  return value;
}

/** MAC-48 in any of the usual spellings → lowercase, colon-separated. */
export function normalizeMac(value: unknown): string {
  if (typeof value !== 'string') throw new KakuinError('KAKUIN_E_INVALID_IDENTIFIER', 'mac must be a string');
  const hex = value.replace(/[:.-]/g, '').toLowerCase();
  if (!/^[0-9a-f]{12}$/.test(hex)) {
    throw new KakuinError('KAKUIN_E_INVALID_IDENTIFIER', 'mac must be 6 octets in hex (aa:bb:cc:dd:ee:ff, aa-bb-..., aabb.ccdd.eeff)');
  }
  return hex.match(/../g)!.join(':');
}

/** IMEI: 15 digits whose last is the Luhn check digit (3GPP TS 23.003 §6.2.1). */
export function validateImei(value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9]{15}$/.test(value)) {
    throw new KakuinError('KAKUIN_E_INVALID_IDENTIFIER', 'imei must be 15 digits');
  }
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    let d = value.charCodeAt(i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  if (sum % 10 !== 0) throw new KakuinError('KAKUIN_E_INVALID_IDENTIFIER', 'imei check digit (Luhn) does not match');
  return value;
}

function boundedText(field: string, value: unknown, max: number): string {
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value.length === 0 || value.length > max || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new KakuinError('KAKUIN_E_INVALID_IDENTIFIER', `${field} must be 1 to ${max} printable characters`);
  }
  return value;
}

export function validateIdentifiers(value: unknown): DeviceIdentifiers {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'identifiers must be an object {mac?, imei?, hardwareId?}');
  }
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (!['mac', 'imei', 'hardwareId'].includes(k)) throw new KakuinError('KAKUIN_E_VALIDATION', `unknown identifier ${JSON.stringify(k)}`);
  }
  const out: DeviceIdentifiers = {};
  if (v.mac !== undefined) out.mac = normalizeMac(v.mac);
  if (v.imei !== undefined) out.imei = validateImei(v.imei);
  if (v.hardwareId !== undefined) out.hardwareId = boundedText('hardwareId', v.hardwareId, 128);
  return out;
}

export function validateHardwareModuleName(value: unknown): HardwareModuleName | undefined {
  if (value === undefined || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v !== 'object' || typeof v.hwType !== 'string' || typeof v.hwSerialHex !== 'string'
    || !/^[0-2](\.(0|[1-9][0-9]{0,8})){1,20}$/.test(v.hwType) || !/^([0-9a-fA-F]{2}){1,64}$/.test(v.hwSerialHex)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'hardwareModuleName must be {hwType: dotted OID, hwSerialHex: 1 to 64 octets in hex}');
  }
  return { hwType: v.hwType, hwSerialHex: v.hwSerialHex.toLowerCase() };
}

export interface DeviceRegistration {
  manufacturerId: unknown;
  serialNumber: unknown;
  identifiers?: unknown;
  model?: unknown;
  hardwareModuleName?: unknown;
}

export function validateDeviceRegistration(input: DeviceRegistration): NewDevice {
  if (typeof input.manufacturerId !== 'string' || input.manufacturerId.length === 0 || input.manufacturerId.length > 64) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'manufacturerId must be a manufacturer id');
  }
  return {
    manufacturerId: input.manufacturerId,
    serialNumber: validateSerialNumber(input.serialNumber),
    identifiers: validateIdentifiers(input.identifiers),
    model: input.model === undefined ? undefined : boundedText('model', input.model, 128),
    hardwareModuleName: validateHardwareModuleName(input.hardwareModuleName),
  };
}

/** Register a device (status `registered`) and record who did it. */
export async function registerDevice(registry: Registry, input: DeviceRegistration, actor: string): Promise<Device> {
  const valid = validateDeviceRegistration(input);
  // One transaction: a crash never leaves a device without its registration event.
  return registry.createDevice(valid, {
    type: 'device.registered', actor,
    details: { manufacturerId: valid.manufacturerId, serialNumber: valid.serialNumber },
  });
}
