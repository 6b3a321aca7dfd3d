/**
 * The device registry port: the one store behind the CA, the OCSP responder, the gateway and the
 * legacy token path. It is asynchronous (MongoDB needs it) and speaks in domain records, not rows.
 *
 * Adapters: `sqlite/` (embedded default) and `mongodb/`, chosen by `storage.type` from the adapter
 * table (adapters.ts). Each extends CheckedRegistry (records/), which checks every input once, and
 * none imports another (registry/README.md). One contract suite in
 * `test/contract/registry.contract.ts` runs against every adapter.
 *
 * Errors: adapters throw `KakuinError` with the codes named on each method, never their driver's
 * errors (a driver error becomes KAKUIN_E_REGISTRY_UNAVAILABLE or KAKUIN_E_INTERNAL with the
 * driver error as `cause`).
 */

import type { Decommission } from './jobs.js';
import type { CrlReason } from '../pkix/index.js';

export type { CrlReason };

export type DeviceStatus = 'registered' | 'active' | 'suspended' | 'revoked' | 'retired';

/** Identifiers a manufacturer uses for a device; each is unique within that manufacturer. */
export interface DeviceIdentifiers {
  mac?: string;
  imei?: string;
  hardwareId?: string;
}

/** IEEE 802.1AR HardwareModuleName: a hardware type OID and the module's serial octets (hex). */
export interface HardwareModuleName {
  hwType: string;
  hwSerialHex: string;
}

export interface Manufacturer {
  id: string;
  name: string;
  createdAt: Date;
}

export interface Device {
  id: string;
  manufacturerId: string;
  /** Goes into the certificate subject's serialNumber attribute (PrintableString). */
  serialNumber: string;
  identifiers: DeviceIdentifiers;
  model?: string;
  hardwareModuleName?: HardwareModuleName;
  status: DeviceStatus;
  createdAt: Date;
  updatedAt: Date;
  /** A retired device's disposal record (registry/jobs.ts Decommission): why, the ticket, the evidence note. */
  decommission?: Decommission;
}

export type IssuerKind = 'root' | 'device' | 'station' | 'infrastructure' | 'ocsp-signer';

export interface Issuer {
  /** Short stable name used in URLs: `root`, `device`, `infrastructure`, ... */
  id: string;
  kind: IssuerKind;
  /** The CA certificate (DER). */
  certificateDer: Buffer;
  /** URI of the signing key in a KeyStore (`file:...`, `pkcs11:...`). */
  keyUri: string;
  /** Issuer id of the CA that signed this one; undefined for a self-signed root. */
  parentId?: string;
  createdAt: Date;
}

export type CertificateStatus = 'good' | 'revoked' | 'held';

export interface CertificateRecord {
  /** Uppercase hex without separators, as `openssl x509 -serial` prints it. Unique across all issuers. */
  serialHex: string;
  issuerId: string;
  /** Device the certificate identifies; undefined for infrastructure certificates (TLS servers, OCSP signers). */
  deviceId?: string;
  /** Profile name that shaped it (`device`, `tls-server`, ...). */
  profile: string;
  status: CertificateStatus;
  der: Buffer;
  /** SHA-256 of the whole certificate DER, lowercase hex. */
  fingerprintSha256: string;
  /** SHA-256 of the SubjectPublicKeyInfo DER, lowercase hex. */
  publicKeySha256: string;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
  revokedAt?: Date;
  /** RFC 5280 CRLReason when revoked, `certificateHold` when held. */
  reason?: CrlReason;
  invalidityDate?: Date;
}

/** The roles a token can have (README "Roles"); stations are a principal of their own. */
export const TOKEN_ROLES = ['admin', 'operator', 'auditor', 'manufacturer'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

export interface AdminToken {
  id: string;
  /** Human-readable name (`alice`, `ops-bot`): audit events name it. Unique. */
  name: string;
  /** HMAC-SHA-256 of the token under the pepper, lowercase hex. The token itself is never stored. */
  tokenHmac: string;
  /** What the token may do (api-schema/access.ts); tokens made before roles are `admin`. */
  role: TokenRole;
  /** The one manufacturer a `manufacturer` token is bound to (set exactly for that role). */
  manufacturerId?: string;
  createdAt: Date;
  /** Revoked (or disabled): the token authenticates no one from then on. */
  disabledAt?: Date;
  /** The token stops working then; undefined: it does not expire. */
  expiresAt?: Date;
  /** When the token last authenticated a request (recorded at most once a minute per token). */
  lastUsedAt?: Date;
}

export interface AuditEvent {
  /** Assigned by the registry, increasing. */
  id: number;
  at: Date;
  type: string;
  /** Who acted: `token:<name>`, `cli`, `system`. */
  actor: string;
  deviceId?: string;
  serialHex?: string;
  details?: Record<string, unknown>;
  /**
   * Its link in its writer's hash chain (registry/records/audit-chain.ts); absent on events written
   * before the chains existed (the virtual `legacy` chain).
   */
  chain?: AuditChainLink;
}

/** An audit event's place in the hash chain of the registry instance that wrote it. */
export interface AuditChainLink {
  /** The writer's chain id (host:pid:random). */
  chain: string;
  /** 1, 2, ... within the chain. */
  seq: number;
  /** The hash of the chain's previous event; 64 zeros for the first. */
  prev: string;
  /** SHA-256 of the RFC 8785 encoding of the event with chain, seq and prev (lowercase hex). */
  hash: string;
}

/** A chain's newest event: what an audit checkpoint signs for it. */
export interface AuditChainHead {
  chain: string;
  seq: number;
  hash: string;
  /** The audit event id of that newest event. */
  eventId: number;
}

export type NewAuditEvent = Omit<AuditEvent, 'id' | 'at' | 'chain'> & { at?: Date };

export interface DeviceQuery {
  manufacturerId?: string;
  serialNumber?: string;
  mac?: string;
  imei?: string;
  hardwareId?: string;
  status?: DeviceStatus;
  /** The model given at registration, exactly. */
  model?: string;
  /**
   * Paging: only devices listed after the device with this id (in the adapter's stable listing
   * order, oldest first). KAKUIN_E_VALIDATION when no device has that id.
   */
  afterId?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}

/**
 * Paging through a short list (a manufacturer's stations, a station's certificates, the admin
 * tokens): at most `limit` (at most 1000) items listed after the one whose key is `afterKey`
 * (a station id, a serial number, a token name), oldest first. Without it, the whole list.
 * KAKUIN_E_VALIDATION when `afterKey` names no item of the list.
 */
export interface ListPage {
  afterKey?: string;
  limit?: number;
}

export interface AuditQuery {
  deviceId?: string;
  type?: string;
  since?: Date;
  /** Exclusive. */
  until?: Date;
  /** Who acted, exactly (`station:<id>`): e.g. every certificate a station had issued. */
  actor?: string;
  /** Events with a larger id only: for paging through more than `limit`. */
  afterId?: number;
  /** Default 100, at most 1000. */
  limit?: number;
}

export interface NewDevice {
  manufacturerId: string;
  serialNumber: string;
  identifiers?: DeviceIdentifiers;
  model?: string;
  hardwareModuleName?: HardwareModuleName;
}

/** One issued certificate to record, with the device it moves to `active` and its audit event. */
export interface IssuanceRecord {
  certificate: Omit<CertificateRecord, 'createdAt' | 'status' | 'revokedAt' | 'reason' | 'invalidityDate'>;
  audit: NewAuditEvent;
}

// ---- revocation (issue 3) -----------------------------------------------------------------------

/**
 * One entry of the revocation feed: every status change of a certificate (issued → good, revoked,
 * held, released → good) or of a device gets one, with a sequence number that increases with
 * commit order. Consumers read "everything after N" (`readFeed`) and never miss an entry.
 */
export interface FeedEntry {
  seq: number;
  at: Date;
  /**
   * `legacy-credentials` (issue 5): a device's legacy credentials were set, replaced or deleted.
   * Consumers that only care about certificates or devices must skip kinds they do not know.
   */
  kind: 'certificate' | 'device' | 'legacy-credentials';
  /** Certificate entries. */
  serialHex?: string;
  issuerId?: string;
  /** Device entries; also set on certificate entries of device certificates. */
  deviceId?: string;
  /** The new status: a CertificateStatus for certificate entries, a DeviceStatus for device entries, enabled/deleted for legacy credentials. */
  status: CertificateStatus | DeviceStatus | LegacyCredentialStatus;
  /** The status before the change; absent for a newly issued certificate (and a device's first activation is `registered`). */
  previousStatus?: CertificateStatus | DeviceStatus | LegacyCredentialStatus;
  /** Legacy-credentials entries: the credential generation now current (tokens of other generations fail). */
  generation?: number;
  reason?: CrlReason;
  revokedAt?: Date;
  invalidityDate?: Date;
}

/** A guarded status change of one certificate. */
export interface CertificateTransition {
  serialHex: string;
  /** Refused with KAKUIN_E_CERTIFICATE_STATE unless the certificate's status is one of these now. */
  from: CertificateStatus[];
  to: CertificateStatus;
  /** Required when `to` is revoked (any reason but certificateHold/removeFromCRL) or held (certificateHold). */
  reason?: CrlReason;
  /** Required when `to` is revoked or held. */
  revokedAt?: Date;
  invalidityDate?: Date;
}

/**
 * Applied atomically by `applyStatusChange`: all of it or nothing. Each certificate or device whose
 * status actually changes appends one feed entry, in the same transaction.
 */
export interface StatusChange {
  device?: {
    id: string;
    /** Refused with KAKUIN_E_DEVICE_STATE unless the device's status is one of these now. */
    from: DeviceStatus[];
    to: DeviceStatus;
    /**
     * Applied, inside the same transaction, to every certificate of the device whose status is in
     * `from` (the others are left alone), so that a certificate committed a moment before is not missed.
     */
    certificates?: Omit<CertificateTransition, 'serialHex'>;
    /** Kept with the device when it becomes `retired` in this change (README "Bulk actions"). */
    decommission?: Decommission;
  };
  certificates: CertificateTransition[];
  audit: NewAuditEvent[];
  /**
   * A bulk job's step (registry/jobs.ts) settled `acted` in this same transaction; a step already
   * settled refuses the whole change (KAKUIN_E_JOB_STEP_SETTLED), so no device is acted on twice.
   */
  jobStep?: { jobId: string; deviceId: string };
}

/** A signed CRL as published. Full and delta CRLs share one number sequence per issuer (RFC 5280 §5.2.4). */
export interface CrlRecord {
  issuerId: string;
  kind: 'full' | 'delta';
  number: bigint;
  /** Delta CRLs: the number of the full CRL it is based on. */
  baseNumber?: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** The feed sequence number the CRL reflects: every change up to it, none after. */
  feedSeq: number;
  der: Buffer;
}

/** A pre-signed OCSP response for one certificate (SHA-1 CertID, RFC 5019 §2.1.1). */
export interface StoredOcspResponse {
  issuerId: string;
  serialHex: string;
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** One row for CRL building or bulk OCSP signing; plain arguments, so no object is kept per row. */
export type CertificateStatusRow = (
  serialHex: string, status: CertificateStatus, revokedAtMs: number | undefined, reason: CrlReason | undefined,
  invalidityDateMs: number | undefined, notAfterMs: number,
) => void;

// ---- legacy three-factor path (issue 5) -----------------------------------------------------------

export type LegacyCredentialStatus = 'enabled' | 'deleted';

/** How the auth secret is kept: `hmac` (server-generated, HMAC-SHA-256 under the pepper) or `scrypt` (imported). */
export type LegacyVerifierKind = 'hmac' | 'scrypt';

/** A common auth ID: shared by a service or product line (a "device class"). */
export interface CommonAuthId {
  id: string;
  name: string;
  manufacturerId?: string;
  /** Usual hours of authentication for this class, UTC, `HH-HH` (e.g. `06-22`); outside it a success is an audit event. */
  usualHoursUtc?: string;
  createdAt: Date;
}

export interface NewLegacyCredential {
  deviceId: string;
  commonAuthId: string;
  /** IMEI, MAC address or serial as the device presents it. Unique per common auth ID among enabled credentials. */
  uniqueId: string;
  verifierKind: LegacyVerifierKind;
  /** Opaque to the registry; imported (scrypt) verifiers are unique among enabled credentials (no shared secret). */
  verifier: string;
}

export interface LegacyCredential extends NewLegacyCredential {
  /** Increases with every set, replace or delete of the device's credentials; tokens carry it. */
  generation: number;
  createdAt: Date;
  lockedUntil?: Date;
}

/** What the kill switch needs of every device with enabled legacy credentials. */
export interface LegacyCredentialState {
  deviceId: string;
  generation: number;
  deviceStatus: DeviceStatus;
}

/** Failure counts of one key in the current fixed window and the one before it. */
export interface FailureCount {
  current: number;
  previous: number;
}

// ---- production-line enrollment (issue 6) ----------------------------------------------------------

/** A factory station: scoped to one manufacturer, authenticated by an API key (kept as an HMAC only). */
export interface Station {
  id: string;
  manufacturerId: string;
  name: string;
  /** HMAC-SHA-256 of the API key under the pepper, lowercase hex. */
  keyHmac: string;
  createdAt: Date;
  keyRotatedAt?: Date;
  /**
   * Set on stations that existed before API keys could expire (the upgrade's time): their key's
   * age counts from here, not from a creation or rotation that may lie years back.
   */
  keyAgeFrom?: Date;
  disabledAt?: Date;
  /** Issuance quota: at most this many certificates through this station; undefined: none. */
  maxIssuances?: number;
}

/** A certificate waiting to be revoked as `superseded` at `at` (re-enrollment with `enrollment.overlapHours` > 0). */
export interface PendingSupersede {
  serialHex: string;
  at: Date;
  /** Who caused it (the re-enrollment's actor), for the revocation's audit event. */
  actor: string;
}

export interface Registry {
  /** Schema version after migrations. */
  schemaVersion(): Promise<number>;

  // ---- issuers ----
  /** Insert or replace an issuer record (by id). */
  putIssuer(issuer: Omit<Issuer, 'createdAt'> & { createdAt?: Date }): Promise<Issuer>;
  /** KAKUIN_E_ISSUER_NOT_FOUND */
  getIssuer(id: string): Promise<Issuer>;
  listIssuers(): Promise<Issuer[]>;

  // ---- manufacturers ----
  /** KAKUIN_E_MANUFACTURER_EXISTS on a duplicate name. */
  createManufacturer(input: { name: string }): Promise<Manufacturer>;
  /** KAKUIN_E_MANUFACTURER_NOT_FOUND */
  getManufacturer(id: string): Promise<Manufacturer>;
  listManufacturers(page?: ListPage): Promise<Manufacturer[]>;

  // ---- devices ----
  /**
   * Create a device in status `registered`. KAKUIN_E_MANUFACTURER_NOT_FOUND; KAKUIN_E_DEVICE_EXISTS
   * when the manufacturer already has that serial number, MAC, IMEI or hardware id.
   * `audit`, when given, is appended for the new device (its deviceId) in the same transaction.
   */
  createDevice(input: NewDevice, audit?: Omit<NewAuditEvent, 'deviceId'>): Promise<Device>;
  /** KAKUIN_E_DEVICE_NOT_FOUND */
  getDevice(id: string): Promise<Device>;
  findDevices(query: DeviceQuery): Promise<Device[]>;

  // ---- certificates ----
  /**
   * Record an issued certificate durably, atomically with: binding its public key to the device
   * (KAKUIN_E_PUBLIC_KEY_IN_USE when the key is bound to another device), moving a `registered`
   * device to `active`, and appending the audit event. Serial must be new (KAKUIN_E_SERIAL_EXISTS).
   * The promise resolves only after the commit; adapters may group concurrent calls into one
   * transaction (at most 100), but one failing record never fails or undoes the others.
   */
  recordIssuance(record: IssuanceRecord): Promise<CertificateRecord>;
  /** KAKUIN_E_CERTIFICATE_NOT_FOUND. `serialHex` in any case. */
  getCertificate(serialHex: string): Promise<CertificateRecord>;
  listCertificatesOfDevice(deviceId: string): Promise<CertificateRecord[]>;
  /** The device a public key (SHA-256 of SPKI, hex) is bound to, if any. */
  findDeviceIdByPublicKey(publicKeySha256: string): Promise<string | undefined>;

  // ---- admin tokens ----
  /**
   * KAKUIN_E_TOKEN_EXISTS on a duplicate name. `audit`, when given, is appended in the same
   * transaction (a token and its `token.created` event exist together or not at all).
   */
  createAdminToken(input: { name: string; tokenHmac: string; role: TokenRole; manufacturerId?: string; expiresAt?: Date }, audit?: NewAuditEvent): Promise<AdminToken>;
  findAdminTokenByHmac(tokenHmac: string): Promise<AdminToken | undefined>;
  listAdminTokens(page?: ListPage): Promise<AdminToken[]>;
  /**
   * Revoke the named token at `at`, atomically with its audit event. Every process checks a token
   * against this record on each request (nothing caches it), so it fails everywhere from the commit
   * on. KAKUIN_E_TOKEN_NOT_FOUND; KAKUIN_E_TOKEN_STATE when it is revoked already.
   */
  revokeAdminToken(name: string, at: Date, audit: NewAuditEvent): Promise<AdminToken>;
  /** Record that the token authenticated a request at `at` (best effort, never a transaction of its own the caller waits on). */
  touchAdminToken(name: string, at: Date): Promise<void>;

  // ---- audit ----
  appendAuditEvent(event: NewAuditEvent): Promise<AuditEvent>;
  listAuditEvents(query: AuditQuery): Promise<AuditEvent[]>;
  /** The newest link of every stored chain (what an audit checkpoint signs), ordered by chain id. */
  auditChainHeads(): Promise<AuditChainHead[]>;

  // ---- revocation (issue 3) ----
  /** See StatusChange. Returns the feed entries it appended, in order. */
  applyStatusChange(change: StatusChange): Promise<FeedEntry[]>;
  /** Feed entries with seq > afterSeq, ascending, at most `limit` (default 1000, at most 10000). */
  readFeed(afterSeq: number, limit?: number): Promise<FeedEntry[]>;
  /** The highest feed seq committed (0 when empty). */
  latestFeedSeq(): Promise<number>;
  /**
   * Optional low-latency wake-up: calls `wake` soon after feed entries are committed by any process
   * (MongoDB: a change stream). Advisory only — followers still read `readFeed` and poll anyway;
   * this shortens the wait from one poll interval to one round trip. Returns a function that stops it.
   * Adapters whose followers poll a local file cheaply (SQLite) leave it out.
   */
  watchFeed?(wake: () => void): () => void;
  /**
   * Calls `row` for each certificate of the issuer that belongs on a CRL: for a full CRL
   * (`changedAfterSeq` undefined) every revoked or held certificate; for a delta CRL those revoked
   * or held after that feed seq, plus those released from hold after it (status `good`, listed as
   * removeFromCRL). Streams: nothing is collected per row (a CRL may have millions of entries).
   */
  forEachCrlEntry(issuerId: string, options: { changedAfterSeq?: number }, row: CertificateStatusRow): Promise<void>;
  /** Every certificate of the issuer (any status): for signing all OCSP responses. Streams like forEachCrlEntry. */
  forEachCertificateStatus(issuerId: string, row: CertificateStatusRow): Promise<void>;
  /** Reserve the next number of the issuer's CRL-number sequence (1, 2, ...), atomically. */
  nextCrlNumber(issuerId: string): Promise<bigint>;
  /** Store a signed CRL as the latest of its kind for its issuer. */
  putCrl(crl: CrlRecord): Promise<void>;
  getLatestCrl(issuerId: string, kind: 'full' | 'delta'): Promise<CrlRecord | undefined>;
  /** Insert or replace pre-signed OCSP responses, in one transaction. */
  putOcspResponses(responses: StoredOcspResponse[]): Promise<void>;
  getOcspResponse(issuerId: string, serialHex: string): Promise<StoredOcspResponse | undefined>;
  /** Every stored response (of one issuer, or all): for loading the responder's cache at start. */
  forEachOcspResponse(issuerId: string | undefined, row: (r: StoredOcspResponse) => void): Promise<void>;

  // ---- legacy three-factor path (issue 5) ----
  /** KAKUIN_E_COMMON_AUTH_ID_EXISTS on a duplicate name; KAKUIN_E_MANUFACTURER_NOT_FOUND. */
  createCommonAuthId(input: { name: string; manufacturerId?: string; usualHoursUtc?: string }): Promise<CommonAuthId>;
  /** KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND */
  getCommonAuthId(id: string): Promise<CommonAuthId>;
  /**
   * Sets (or replaces) the legacy credentials of each listed device, all or nothing, with one
   * `legacy-credentials` feed entry per device and the audit events, in one transaction.
   * KAKUIN_E_DEVICE_NOT_FOUND, KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND; KAKUIN_E_DEVICE_STATE for a
   * suspended, revoked or retired device; KAKUIN_E_LEGACY_CREDENTIALS_EXIST when another device
   * has that (commonAuthId, uniqueId) or the same scrypt verifier.
   */
  putLegacyCredentials(credentials: NewLegacyCredential[], audit: NewAuditEvent[]): Promise<LegacyCredential[]>;
  /** The device's enabled credentials, if any. */
  getLegacyCredentials(deviceId: string): Promise<LegacyCredential | undefined>;
  /** Enabled credentials by (commonAuthId, uniqueId). */
  findLegacyCredentials(commonAuthId: string, uniqueId: string): Promise<LegacyCredential | undefined>;
  /** Which of these verifiers (of that kind) belong to enabled credentials, and of which device. */
  findLegacyVerifiers(kind: LegacyVerifierKind, verifiers: string[]): Promise<{ verifier: string; deviceId: string }[]>;
  /** Switches the path off for the device (feed entry + audit). KAKUIN_E_LEGACY_CREDENTIALS_NOT_FOUND. */
  deleteLegacyCredentials(deviceId: string, audit: NewAuditEvent): Promise<FeedEntry>;
  /** Locks enabled credentials until `until` (audit event in the same transaction). */
  lockLegacyCredentials(deviceId: string, until: Date, audit: NewAuditEvent): Promise<void>;
  /**
   * Adds one failure to each key in the fixed window starting at `windowStart` and returns the
   * counts of that window and the one before (`windowMs` earlier). Shared by every process on the
   * registry. Windows older than that are dropped.
   */
  countLegacyFailures(keys: string[], windowStart: Date, windowMs: number): Promise<FailureCount[]>;
  /** Every device with enabled legacy credentials: for loading the kill switch at start. */
  listLegacyCredentialStates(): Promise<LegacyCredentialState[]>;

  // ---- production-line enrollment (issue 6) ----
  /** KAKUIN_E_MANUFACTURER_NOT_FOUND; KAKUIN_E_STATION_EXISTS for a duplicate name (per manufacturer) or key HMAC. */
  createStation(input: { manufacturerId: string; name: string; keyHmac: string }, audit: NewAuditEvent): Promise<Station>;
  /** KAKUIN_E_STATION_NOT_FOUND */
  getStation(id: string): Promise<Station>;
  findStationByKeyHmac(keyHmac: string): Promise<Station | undefined>;
  listStations(manufacturerId: string, page?: ListPage): Promise<Station[]>;
  /** Replace the key HMAC and/or disable (`disable: false` enables again); with its audit event, atomically. KAKUIN_E_STATION_NOT_FOUND. */
  updateStation(id: string, change: { keyHmac?: string; disable?: boolean; maxIssuances?: number | null }, audit: NewAuditEvent): Promise<Station>;
  /** Certificates issued through the station: `certificate.issued` audit events naming `station:<id>`. */
  countStationIssuances(stationId: string): Promise<number>;
  /** Set (replace) the device's re-enrollment allowance. KAKUIN_E_DEVICE_NOT_FOUND. */
  allowReenrollment(deviceId: string, until: Date, audit: NewAuditEvent): Promise<void>;
  /** The allowance's end, if one is pending. */
  getReenrollmentAllowance(deviceId: string): Promise<Date | undefined>;
  /** Remove the allowance (it is used up by the enrollment it allowed). True when one was removed. */
  consumeReenrollmentAllowance(deviceId: string): Promise<boolean>;

  // ---- station certificates, profiles, durable supersede (issue 6, part 2) ----
  /**
   * Record a station's mTLS certificate (issued by the station CA, profile `station`), bound to the
   * station, atomically with its audit event; like recordIssuance without a device (no key binding,
   * no device change). KAKUIN_E_STATION_NOT_FOUND; KAKUIN_E_SERIAL_EXISTS; KAKUIN_E_ISSUER_NOT_FOUND;
   * KAKUIN_E_VALIDATION for a malformed record.
   */
  recordStationCertificate(stationId: string, record: IssuanceRecord): Promise<CertificateRecord>;
  /** The station a certificate was issued to; undefined when it is not a station certificate (or unknown). */
  findStationOfCertificate(serialHex: string): Promise<string | undefined>;
  /** The station's certificates (any status), oldest first. KAKUIN_E_STATION_NOT_FOUND. */
  listStationCertificates(stationId: string, page?: ListPage): Promise<CertificateRecord[]>;
  /**
   * Replace the manufacturer's allowed device certificate profiles (names, validated by the caller
   * against the configured ones), with its audit event, atomically. KAKUIN_E_MANUFACTURER_NOT_FOUND;
   * KAKUIN_E_VALIDATION for a list that is not 1..32 non-empty strings.
   */
  setManufacturerProfiles(manufacturerId: string, profiles: string[], audit: NewAuditEvent): Promise<void>;
  /** The manufacturer's allowed profiles; undefined when never set (then only `device` is allowed). */
  getManufacturerProfiles(manufacturerId: string): Promise<string[] | undefined>;
  /**
   * Record pending supersessions (insert or replace by serial), durably: a sweeper revokes them when
   * due, across restarts. KAKUIN_E_CERTIFICATE_NOT_FOUND for an unknown serial (nothing is recorded).
   */
  scheduleSupersede(entries: PendingSupersede[]): Promise<void>;
  /** Pending supersessions with `at` <= now, earliest first, at most `limit` (default 100, at most 1000). */
  listDueSupersedes(now: Date, limit?: number): Promise<PendingSupersede[]>;
  /** Forget pending supersessions (done, or the certificate was revoked otherwise). Unknown serials are ignored. */
  clearSupersedes(serialHexes: string[]): Promise<void>;

  close(): Promise<void>;
}
