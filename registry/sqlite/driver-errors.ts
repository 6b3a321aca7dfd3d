/**
 * Turns whatever better-sqlite3 throws into a KakuinError, so no driver error crosses the port.
 *
 * - environmental failures (busy, locked, I/O, disk full, cannot open, ...) → KAKUIN_E_REGISTRY_UNAVAILABLE:
 *   the caller may retry;
 * - unique-constraint violations → the "exists" code of the table that refused the row;
 * - foreign-key violations → the "not found" code the calling operation names, if it names one;
 * - everything else → KAKUIN_E_INTERNAL.
 * The driver error is always kept as `cause` (for the log, never for the client).
 */
import Database from 'better-sqlite3';
import { KakuinError, type ErrorCode } from '../../errors/index.js';

/** Primary result codes (the part before the extended suffix) that mean "try again later". */
const UNAVAILABLE_PRIMARY_CODES = new Set([
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_FULL',
  'SQLITE_CANTOPEN',
  'SQLITE_PROTOCOL',
  'SQLITE_READONLY',
  'SQLITE_NOMEM',
  'SQLITE_NOLFS',
  'SQLITE_PERM',
  'SQLITE_INTERRUPT',
]);

/** Which table's unique constraint (or primary key) means which domain conflict. */
const EXISTS_BY_TABLE: Record<string, { code: ErrorCode; message: (columns: string[]) => string }> = {
  manufacturers: { code: 'KAKUIN_E_MANUFACTURER_EXISTS', message: () => 'a manufacturer with that name exists already' },
  devices: {
    code: 'KAKUIN_E_DEVICE_EXISTS',
    message: (columns) => `the manufacturer already has a device with that ${describeDeviceColumns(columns)}`,
  },
  certificates: { code: 'KAKUIN_E_SERIAL_EXISTS', message: () => 'a certificate with that serial number is already recorded' },
  public_key_bindings: { code: 'KAKUIN_E_PUBLIC_KEY_IN_USE', message: () => 'the public key is already bound to another device' },
  admin_tokens: { code: 'KAKUIN_E_TOKEN_EXISTS', message: () => 'an admin token with that name exists already' },
  users: { code: 'KAKUIN_E_USER_EXISTS', message: () => 'a user with that name exists already' },
  stations: { code: 'KAKUIN_E_STATION_EXISTS', message: () => 'the manufacturer already has a station with that name' },
  acme_eab_keys: { code: 'KAKUIN_E_ACME_EAB_EXISTS', message: () => 'an EAB key with that key id is recorded already' },
  acme_accounts: { code: 'KAKUIN_E_ACME_ACCOUNT_EXISTS', message: () => 'another ACME account has that key already' },
  acme_orders: { code: 'KAKUIN_E_SERIAL_EXISTS', message: () => 'another ACME order issued that certificate' },
  common_auth_ids: { code: 'KAKUIN_E_COMMON_AUTH_ID_EXISTS', message: () => 'a common auth ID with that name exists already' },
  legacy_credentials: {
    code: 'KAKUIN_E_LEGACY_CREDENTIALS_EXIST',
    message: (columns) => columns.includes('verifier')
      ? 'another device already has that secret' : 'another device already has that unique ID under the common auth ID',
  },
};

const DEVICE_COLUMN_NAMES: Record<string, string> = {
  serial_number: 'serial number',
  mac: 'MAC',
  imei: 'IMEI',
  hardware_id: 'hardware id',
};

function describeDeviceColumns(columns: string[]): string {
  const named = columns.map((c) => DEVICE_COLUMN_NAMES[c]).filter((c): c is string => c !== undefined);
  return named.length > 0 ? named.join(' and ') : 'identifier';
}

export interface ErrorContext {
  /** What was being done, for the message of unexpected failures (`recording an issuance`). */
  operation: string;
  /** The code (and message) a foreign-key violation means for this operation. */
  foreignKey?: { code: ErrorCode; message: string };
}

export function isSqliteError(e: unknown): e is InstanceType<typeof Database.SqliteError> {
  return e instanceof Database.SqliteError;
}

/** The KakuinError for `e`; a KakuinError passes through unchanged. */
export function toKakuinError(e: unknown, context: ErrorContext): KakuinError {
  if (e instanceof KakuinError) return e;
  if (isSqliteError(e)) {
    const code = e.code;
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      const conflict = uniqueConflict(e.message);
      if (conflict) {
        const known = EXISTS_BY_TABLE[conflict.table];
        if (known) return new KakuinError(known.code, known.message(conflict.columns), { cause: e });
      }
    }
    if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY' && context.foreignKey) {
      return new KakuinError(context.foreignKey.code, context.foreignKey.message, { cause: e });
    }
    if (UNAVAILABLE_PRIMARY_CODES.has(primaryCode(code))) {
      return new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', `the registry is unavailable while ${context.operation}; retry`, { cause: e });
    }
  }
  return new KakuinError('KAKUIN_E_INTERNAL', `unexpected registry failure while ${context.operation}`, { cause: e });
}

/** `SQLITE_IOERR_SHORT_READ` → `SQLITE_IOERR`. */
function primaryCode(code: string): string {
  const [a, b] = code.split('_');
  return `${a}_${b}`;
}

/** Parses `UNIQUE constraint failed: devices.mac, devices.manufacturer_id`. */
function uniqueConflict(message: string): { table: string; columns: string[] } | undefined {
  const m = /constraint failed: (.+)$/.exec(message);
  if (!m) return undefined;
  const parts = m[1].split(',').map((p) => p.trim().split('.'));
  const table = parts[0]?.[0];
  if (!table) return undefined;
  return { table, columns: parts.map((p) => p[1]).filter((c): c is string => c !== undefined) };
}
