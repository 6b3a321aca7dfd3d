/**
 * The scope of a `manufacturer` token (README "Roles"): it is bound to one manufacturer and sees and
 * changes that manufacturer's devices, stations and imports only. The route table (api-schema/access.ts)
 * decides which routes it may call at all; these checks run inside those routes:
 *   - lists hold only its manufacturer's records;
 *   - another manufacturer's id, named in a path, query or body: 403 KAKUIN_E_FORBIDDEN (the caller
 *     chose the id; the answer is the same whether that manufacturer exists or not);
 *   - another manufacturer's device or station addressed by its own id: 404, exactly as for an id
 *     that does not exist, so a token cannot probe which ids other manufacturers hold.
 * Every other principal is unscoped here (stations are scoped by their own routes).
 */
import { KakuinError } from '../errors/index.js';
import type { Caller } from './admin-tokens.js';

/** The manufacturer the caller is limited to, or undefined for an unscoped token. */
export function manufacturerScope(caller: Caller | undefined): string | undefined {
  return caller?.kind === 'admin' && caller.role === 'manufacturer' ? caller.manufacturerId : undefined;
}

/** 403 when a manufacturer token names another manufacturer. */
export function requireOwnManufacturer(caller: Caller | undefined, manufacturerId: string | undefined): void {
  const own = manufacturerScope(caller);
  if (own !== undefined && manufacturerId !== undefined && manufacturerId !== own) {
    throw new KakuinError('KAKUIN_E_FORBIDDEN', 'a manufacturer token acts for its own manufacturer only');
  }
}

/** 404 (as for an unknown id) when a manufacturer token addresses another manufacturer's device. */
export function requireOwnDevice<T extends { id: string; manufacturerId: string }>(caller: Caller | undefined, device: T): T {
  const own = manufacturerScope(caller);
  if (own !== undefined && device.manufacturerId !== own) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', 'no device with that id');
  return device;
}

/** 404 (as for an unknown id) when a manufacturer token addresses another manufacturer's station. */
export function requireOwnStation<T extends { id: string; manufacturerId: string }>(caller: Caller | undefined, station: T): T {
  const own = manufacturerScope(caller);
  if (own !== undefined && station.manufacturerId !== own) throw new KakuinError('KAKUIN_E_STATION_NOT_FOUND', 'no station with that id');
  return station;
}
