/**
 * The indexes of every collection, as plain specifications (`createIndexes` takes them as they are).
 * Unique indexes carry the registry's invariants, so the driver-error translation (driver-errors.ts)
 * names each one: a duplicate-key error says which index refused, and so which KAKUIN_E_* code.
 *
 * Identifiers (MAC, IMEI, hardware id) are unique per manufacturer only when present: the partial
 * filter `{$type: 'string'}` leaves devices without that identifier out of the index (a sparse
 * compound index would still index them, with null). Legacy credentials are unique only while
 * enabled (`state: 'enabled'`; partial filters cannot say "field absent").
 */
import type { IndexDescription } from 'mongodb';
import { COLLECTIONS, type CollectionName } from './documents.js';

export const INDEXES: Readonly<Partial<Record<CollectionName, readonly IndexDescription[]>>> = {
  [COLLECTIONS.manufacturers]: [
    { name: 'manufacturers_name', key: { name: 1 }, unique: true },
    { name: 'manufacturers_ord', key: { ord: 1 } },
  ],
  [COLLECTIONS.activityHourly]: [
    { name: 'activity_hourly_device', key: { deviceId: 1, hour: 1 } },
    { name: 'activity_hourly_prune', key: { hour: 1 } },
  ],
  [COLLECTIONS.activityLastSeen]: [{ name: 'activity_last_seen_at', key: { at: 1 } }],
  [COLLECTIONS.activityRefusals]: [
    { name: 'activity_refusals_device', key: { deviceId: 1, at: -1, order: -1 } },
    { name: 'activity_refusals_prune', key: { at: 1 } },
  ],
  [COLLECTIONS.activitySessions]: [
    { name: 'activity_sessions_recorder', key: { recorderId: 1 } },
    { name: 'activity_sessions_device', key: { deviceId: 1, updatedAt: 1 } },
  ],
  [COLLECTIONS.scepChallenges]: [{ name: 'scep_challenges_device', key: { deviceId: 1 } }],
  // ACME (acme-store.ts): an account key is one account's; an issued certificate comes from one order.
  [COLLECTIONS.acmeEabKeys]: [{ name: 'acme_eab_keys_created', key: { createdAt: 1, _id: 1 } }],
  [COLLECTIONS.acmeAccounts]: [{ name: 'acme_accounts_thumbprint', key: { thumbprint: 1 }, unique: true }],
  [COLLECTIONS.acmeOrders]: [
    { name: 'acme_orders_certificate', key: { certificateSerial: 1 }, unique: true, partialFilterExpression: { certificateSerial: { $type: 'string' } } },
  ],
  [COLLECTIONS.activityFirmware]: [{ name: 'activity_firmware_device', key: { deviceId: 1, lastAt: 1 } }],
  [COLLECTIONS.detectionTemplates]: [{ name: 'detection_templates_latest', key: { id: 1, version: -1 } }],
  [COLLECTIONS.detections]: [
    { name: 'detections_newest', key: { order: -1 } },
    { name: 'detections_device', key: { deviceId: 1, order: -1 } },
    { name: 'detections_state', key: { state: 1, order: -1 } },
  ],
  [COLLECTIONS.bulkJobs]: [
    { name: 'bulk_jobs_ord', key: { ord: 1 } },
    { name: 'bulk_jobs_state', key: { state: 1, ord: 1 } },
  ],
  // pendingJobDevices: a job's pending steps in frozen order.
  [COLLECTIONS.bulkJobDevices]: [{ name: 'bulk_job_devices_pending', key: { jobId: 1, outcome: 1, seq: 1 } }, { name: 'bulk_job_devices_seq', key: { jobId: 1, seq: 1 } }],
  [COLLECTIONS.approvals]: [{ name: 'approvals_ord', key: { ord: 1 } }, { name: 'approvals_state', key: { state: 1, ord: 1 } }],
  [COLLECTIONS.cmpSecrets]: [
    { name: 'cmp_secrets_device', key: { deviceId: 1 } },
    { name: 'cmp_secrets_expires', key: { expiresAt: 1 } },
  ],
  [COLLECTIONS.cmpTransactions]: [{ name: 'cmp_transactions_expires', key: { expiresAt: 1 } }],
  [COLLECTIONS.devices]: [
    { name: 'devices_serial_number', key: { manufacturerId: 1, serialNumber: 1 }, unique: true },
    { name: 'devices_mac', key: { manufacturerId: 1, 'identifiers.mac': 1 }, unique: true, partialFilterExpression: { 'identifiers.mac': { $type: 'string' } } },
    { name: 'devices_imei', key: { manufacturerId: 1, 'identifiers.imei': 1 }, unique: true, partialFilterExpression: { 'identifiers.imei': { $type: 'string' } } },
    {
      name: 'devices_hardware_id', key: { manufacturerId: 1, 'identifiers.hardwareId': 1 }, unique: true,
      partialFilterExpression: { 'identifiers.hardwareId': { $type: 'string' } },
    },
    // findDevices across manufacturers by serial number, by status, and the default listing order.
    { name: 'devices_serial_lookup', key: { serialNumber: 1 } },
    { name: 'devices_status', key: { status: 1, ord: 1 } },
    { name: 'devices_ord', key: { ord: 1 } },
  ],
  [COLLECTIONS.certificates]: [
    // _id is the serial: unique across all issuers.
    { name: 'certificates_device', key: { deviceId: 1, ord: 1 }, partialFilterExpression: { deviceId: { $type: 'string' } } },
    { name: 'certificates_station', key: { stationId: 1, ord: 1 }, partialFilterExpression: { stationId: { $type: 'string' } } },
    // Full and delta CRLs: only revoked and held certificates are in it (a CRL never scans good ones).
    // `$gt: 'good'` selects exactly 'held' and 'revoked' (the three statuses sort good < held <
    // revoked). Older servers accept only equality, $exists, comparisons, $type and $and in a
    // partial filter (no $in), and a query `status: {$in: ['revoked', 'held']}` is still answered
    // from this index, both values being > 'good'.
    {
      name: 'certificates_on_crl', key: { issuerId: 1, statusSeq: 1 },
      partialFilterExpression: { status: { $gt: 'good' } },
    },
    { name: 'certificates_released', key: { issuerId: 1, releasedSeq: 1 }, partialFilterExpression: { releasedSeq: { $type: 'number' } } },
    { name: 'certificates_issuer', key: { issuerId: 1, _id: 1 } },
  ],
  [COLLECTIONS.keyBindings]: [
    { name: 'public_key_bindings_device', key: { deviceId: 1 } },
  ],
  [COLLECTIONS.adminTokens]: [
    { name: 'admin_tokens_name', key: { name: 1 }, unique: true },
    { name: 'admin_tokens_hmac', key: { tokenHmac: 1 }, unique: true },
  ],
  [COLLECTIONS.users]: [
    { name: 'users_name', key: { name: 1 }, unique: true },
    { name: 'users_ord', key: { ord: 1 } },
  ],
  // userSessions: _id is the HMAC of the session id.
  [COLLECTIONS.userSessions]: [
    { name: 'user_sessions_user', key: { userId: 1 } },
    { name: 'user_sessions_expires', key: { expiresAt: 1 } },
  ],
  [COLLECTIONS.auditEvents]: [
    { name: 'audit_events_device', key: { deviceId: 1, _id: 1 }, partialFilterExpression: { deviceId: { $type: 'string' } } },
    { name: 'audit_events_type', key: { type: 1, _id: 1 } },
    { name: 'audit_events_actor', key: { actor: 1, type: 1, at: 1 } },
    { name: 'audit_events_at', key: { at: 1 } },
    // One writer per chain: a seq taken twice is a duplicate key, never a fork (registry/records/audit-chain.ts).
    { name: 'audit_events_chain', key: { 'chain.chain': 1, 'chain.seq': 1 }, unique: true, partialFilterExpression: { 'chain.chain': { $type: 'string' } } },
  ],
  // revocationFeed: _id is the seq; readFeed walks the _id index in order.
  // crlChunks: a large CRL's chunks in order (crl-chunks.ts), and the sweep of a generation.
  [COLLECTIONS.crlChunks]: [{ name: 'crl_chunks_generation', key: { crlId: 1, generation: 1, index: 1 } }],
  [COLLECTIONS.ocspResponses]: [
    { name: 'ocsp_responses_issuer', key: { issuerId: 1 } },
  ],
  [COLLECTIONS.commonAuthIds]: [
    { name: 'common_auth_ids_name', key: { name: 1 }, unique: true },
  ],
  [COLLECTIONS.legacyCredentials]: [
    {
      name: 'legacy_credentials_factors', key: { commonAuthId: 1, uniqueId: 1 }, unique: true,
      partialFilterExpression: { state: { $eq: 'enabled' } },
    },
    // Imported verifiers are deterministic (gateway-auth/legacy/secrets.ts): no two devices share a secret.
    {
      name: 'legacy_credentials_verifier', key: { verifierKind: 1, verifier: 1 }, unique: true,
      partialFilterExpression: { state: { $eq: 'enabled' } },
    },
    { name: 'legacy_credentials_ord', key: { state: 1, ord: 1 } },
  ],
  [COLLECTIONS.legacyFailures]: [
    { name: 'legacy_failures_window', key: { windowStart: 1 } },
  ],
  [COLLECTIONS.stations]: [
    { name: 'stations_name', key: { manufacturerId: 1, name: 1 }, unique: true },
    { name: 'stations_key_hmac', key: { keyHmac: 1 }, unique: true },
    { name: 'stations_ord', key: { manufacturerId: 1, ord: 1 } },
  ],
  [COLLECTIONS.supersedes]: [
    { name: 'pending_supersedes_at', key: { at: 1, _id: 1 } },
  ],
};

/** Which unique index (by name; `_id_` per collection) means which domain conflict. */
export const UNIQUE_INDEX_CODES: Readonly<Record<string, { code: import('../../errors/index.js').ErrorCode; message: string }>> = {
  manufacturers_name: { code: 'KAKUIN_E_MANUFACTURER_EXISTS', message: 'a manufacturer with that name exists already' },
  devices_serial_number: { code: 'KAKUIN_E_DEVICE_EXISTS', message: 'the manufacturer already has a device with that serial number' },
  devices_mac: { code: 'KAKUIN_E_DEVICE_EXISTS', message: 'the manufacturer already has a device with that MAC' },
  devices_imei: { code: 'KAKUIN_E_DEVICE_EXISTS', message: 'the manufacturer already has a device with that IMEI' },
  devices_hardware_id: { code: 'KAKUIN_E_DEVICE_EXISTS', message: 'the manufacturer already has a device with that hardware id' },
  'certificates._id_': { code: 'KAKUIN_E_SERIAL_EXISTS', message: 'a certificate with that serial number is already recorded' },
  'publicKeyBindings._id_': { code: 'KAKUIN_E_PUBLIC_KEY_IN_USE', message: 'the public key is already bound to another device' },
  admin_tokens_name: { code: 'KAKUIN_E_TOKEN_EXISTS', message: 'an admin token with that name exists already' },
  admin_tokens_hmac: { code: 'KAKUIN_E_TOKEN_EXISTS', message: 'an admin token with that HMAC exists already' },
  // Two writers on one chain id (never by design: the id names one registry instance): the write is refused, the chain not forked.
  audit_events_chain: { code: 'KAKUIN_E_REGISTRY_UNAVAILABLE', message: 'another writer appended to this audit chain at the same moment; retry' },
  users_name: { code: 'KAKUIN_E_USER_EXISTS', message: 'a user with that name exists already' },
  common_auth_ids_name: { code: 'KAKUIN_E_COMMON_AUTH_ID_EXISTS', message: 'a common auth ID with that name exists already' },
  legacy_credentials_factors: {
    code: 'KAKUIN_E_LEGACY_CREDENTIALS_EXIST', message: 'another device already has that unique ID under the common auth ID',
  },
  legacy_credentials_verifier: { code: 'KAKUIN_E_LEGACY_CREDENTIALS_EXIST', message: 'another device already has that secret' },
  stations_name: { code: 'KAKUIN_E_STATION_EXISTS', message: 'the manufacturer already has a station with that name' },
  stations_key_hmac: { code: 'KAKUIN_E_STATION_EXISTS', message: 'a station with that key exists already' },
  'acmeEabKeys._id_': { code: 'KAKUIN_E_ACME_EAB_EXISTS', message: 'an EAB key with that key id is recorded already' },
  acme_accounts_thumbprint: { code: 'KAKUIN_E_ACME_ACCOUNT_EXISTS', message: 'another ACME account has that key already' },
  acme_orders_certificate: { code: 'KAKUIN_E_SERIAL_EXISTS', message: 'another ACME order issued that certificate' },
};
