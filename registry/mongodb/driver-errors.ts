/**
 * Turns whatever the `mongodb` driver throws into a KakuinError, so no driver error crosses the port.
 *
 * - duplicate keys (code 11000/11001, also inside a bulk write) → the "exists" code of the unique
 *   index that refused (indexes.ts UNIQUE_INDEX_CODES), found by the index name in the message, or
 *   by the collection (`_id_`) and the key pattern;
 * - network, server selection, topology closed, primary stepped down, shutdown, time limits,
 *   write-concern failures and transient transaction errors → KAKUIN_E_REGISTRY_UNAVAILABLE (retry);
 * - everything else → KAKUIN_E_INTERNAL.
 * The driver error is kept as `cause` (for the log, never for the client).
 */
import {
  MongoError, MongoNetworkError, MongoNotConnectedError, MongoServerError, MongoServerSelectionError, MongoTopologyClosedError,
  MongoWriteConcernError,
} from 'mongodb';
import { KakuinError } from '../../errors/index.js';
import { UNIQUE_INDEX_CODES } from './indexes.js';

/** Server error codes that mean "the deployment cannot serve this now" (mongo/base/error_codes.yml). */
export const UNAVAILABLE_SERVER_CODES: ReadonlySet<number> = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  50, // MaxTimeMSExpired
  89, // NetworkTimeout
  91, // ShutdownInProgress
  112, // WriteConflict (outside withTransaction's own retries)
  133, // FailedToSatisfyReadPreference
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

export interface ErrorContext {
  /** What was being done (`recording an issuance`), for the message. */
  operation: string;
}

export function isDuplicateKey(e: unknown): boolean {
  return e instanceof MongoError && (e.code === 11000 || e.code === 11001);
}

/** `E11000 duplicate key error collection: kakuin.devices index: devices_mac dup key: { ... }` */
export function duplicateKeyIndex(e: MongoError): { collection?: string; index?: string } {
  const m = /collection: [^.\s]+\.(\S+) index: (\S+) dup key/.exec(e.message);
  if (m) return { collection: m[1], index: m[2] };
  return {};
}

/** The unique index a duplicate-key error names, as a key of UNIQUE_INDEX_CODES. */
export function conflictingIndex(e: MongoError): string | undefined {
  const { collection, index } = duplicateKeyIndex(e);
  if (index !== undefined && index !== '_id_' && index in UNIQUE_INDEX_CODES) return index;
  if (index === '_id_' && collection !== undefined) return `${collection}._id_`;
  // No parseable message (some proxies rewrite it): fall back to the key pattern.
  const pattern = (e as MongoServerError).keyPattern as Record<string, unknown> | undefined;
  if (pattern === undefined) return undefined;
  const keys = Object.keys(pattern).sort().join(',');
  return KEY_PATTERNS[keys];
}

/** Key patterns that name one unique index each (name alone is ambiguous: manufacturers, tokens, common auth IDs). */
const KEY_PATTERNS: Record<string, string> = {
  'manufacturerId,serialNumber': 'devices_serial_number',
  'identifiers.mac,manufacturerId': 'devices_mac',
  'identifiers.imei,manufacturerId': 'devices_imei',
  'identifiers.hardwareId,manufacturerId': 'devices_hardware_id',
  tokenHmac: 'admin_tokens_hmac',
  'commonAuthId,uniqueId': 'legacy_credentials_factors',
  'verifier,verifierKind': 'legacy_credentials_verifier',
  'manufacturerId,name': 'stations_name',
  keyHmac: 'stations_key_hmac',
};

export function isUnavailable(e: unknown): boolean {
  if (e instanceof MongoNetworkError || e instanceof MongoServerSelectionError || e instanceof MongoNotConnectedError
    || e instanceof MongoTopologyClosedError || e instanceof MongoWriteConcernError) {
    return true;
  }
  if (e instanceof MongoError) {
    if (e.hasErrorLabel('TransientTransactionError') || e.hasErrorLabel('RetryableWriteError')
      || e.hasErrorLabel('UnknownTransactionCommitResult')) {
      return true;
    }
    if (typeof e.code === 'number' && UNAVAILABLE_SERVER_CODES.has(e.code)) return true;
  }
  return false;
}

/** The KakuinError for `e`; a KakuinError passes through unchanged. */
export function toKakuinError(e: unknown, context: ErrorContext): KakuinError {
  if (e instanceof KakuinError) return e;
  if (isDuplicateKey(e)) {
    const index = conflictingIndex(e as MongoError);
    const known = index === undefined ? undefined : UNIQUE_INDEX_CODES[index];
    if (known) return new KakuinError(known.code, known.message, { cause: e });
  }
  if (isUnavailable(e)) {
    return new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', `the registry is unavailable while ${context.operation}; retry`, { cause: e });
  }
  return new KakuinError('KAKUIN_E_INTERNAL', `unexpected registry failure while ${context.operation}`, { cause: e });
}

/** A connection string with any password (and user) replaced, for logs and error messages. */
export function redactUri(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/)([^@/]*)@/i, (_m, scheme: string) => `${scheme}***@`);
}
