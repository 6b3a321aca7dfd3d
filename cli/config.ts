/**
 * One typed, validated configuration: defaults ← config file ← environment, frozen at start.
 * Every option is documented in docs/configuration.md (a test checks the two agree).
 *
 * The file is JSON, `$KAKUIN_CONFIG` or else `<dataDir>/kakuin.json` when it exists; unknown keys
 * are refused so that a typo never silently falls back to a default.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { availableParallelism } from 'node:os';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../hsm-adapters/port.js';
import { defaultVerifierWorkers } from '../ca/pop-verifier.js';
import { KakuinError } from '../errors/index.js';
import { DEFAULT_TOPIC_TEMPLATE, parseTopicTemplate } from '../gateway-auth/mqtt/topic-policy.js';
import { resolveRoutes } from '../gateway-auth/http/routes-options.js';
import { resolveTcpListeners } from '../gateway-auth/tcp/options.js';
import { checkSyslogUrl } from '../operations/events/syslog.js';
import { checkWebhookUrl } from '../operations/events/webhook.js';
import { isEventPattern } from '../operations/events/event.js';
import { registryAdapter, STORAGE_TYPES, type StorageSettings, type StorageType } from '../registry/adapters.js';

export interface KakuinConfig {
  dataDir: string;
  /** The file the configuration was read from, if any. */
  configFile?: string;
  bindHost: string;
  api: { port: number; maxBodyBytes: number };
  /** People's logins (management-api/logins.ts): session timeouts, and the scrypt cost of new passwords. */
  users: { sessionIdleMinutes: number; sessionMaxHours: number; passwordKdfCost: number };
  ocsp: {
    port: number;
    /** nextUpdate − thisUpdate of OCSP responses, in minutes (`ocsp.validityHours` is its deprecated alias). */
    validityMinutes: number;
    /** Live signing (nonces, several CertIDs, cache misses): at most this many per second. */
    liveRatePerSecond: number;
    signerValidityDays: number;
    signerRenewWithinDays: number;
  };
  crl: { coalesceMs: number; fullCoalesceMs: number; fullValidityHours: number; fullRebuildMinutes: number; deltaValidityMinutes: number };
  gateway: {
    port: number;
    statusSource: 'feed' | 'ocsp';
    statusGraceMs: number;
    /** Reconnect-storm bounds (gateway-auth/connection-limits.ts). perSourceBurst undefined: twice the rate. */
    maxPendingHandshakes: number;
    perSourceConnectionsPerSecond: number;
    perSourceBurst?: number;
    /** Gateway processes sharing its ports under node:cluster (gateway-auth/cluster/); 1 = in this process. */
    workers: number;
    /** ocsp status source: the responder to ask (kakuin's own by default). */
    ocspUrl?: string;
    upstreamUrl?: string;
    upstreamCaFile?: string;
    bodyLimitBytes: number;
    telemetryDir: string;
    /** The MQTT front end (on only when upstreamUrl is set): TLS listener, broker behind it, topic policy. */
    mqtt: {
      port: number;
      upstreamUrl?: string;
      upstreamCaFile?: string;
      /** Its contents go into every upstream CONNECT as the password (never logged). */
      upstreamPasswordFile?: string;
      clientId: 'require-device-id' | 'replace';
      publishTopics: string[];
      subscribeTopics: string[];
    };
    /** Proxied HTTP routes of the gateway port (gateway-auth/http/routes.ts); upstreamCaFile resolved against the data dir. */
    routes: { prefix: string; upstreamUrl: string; upstreamCaFile?: string; bodyLimitBytes?: number }[];
    /** Raw TCP front ends (gateway-auth/tcp/): TLS port → plain TCP upstream `host:port`, PROXY v2 header first. */
    tcp: { port: number; upstream: string }[];
  };
  /** Per-device activity rollups (operations/activity). */
  activity: { enabled: boolean; flushSeconds: number; retentionDays: number; addressPrefix: 'none' | '24/48' | '16/32' };
  /** Detection templates and detections (operations/detections): rules over the activity stream. */
  detections: { enabled: boolean; silenceCheckSeconds: number };
  /** Bulk actions on cohorts of devices (operations/bulk): the largest device set one job may freeze. */
  bulk: { maxDevices: number };
  /** Two-person approval (management-api/approvals.ts): bulk jobs above the threshold, CA-level acts. */
  approvals: { bulkThreshold: number; ttlMinutes: number };
  /** Events out (operations/events): the audit trail to webhooks and a syslog collector, at least once. */
  events: { webhooks: WebhookConfig[]; syslog?: SyslogConfig };
  /** The tamper-evident audit trail's checkpoints (operations/audit, docs/audit-trail.md). */
  audit: { checkpointEvery: number; checkpointMinutes: number; signerValidityDays: number };
  legacy: {
    port: number;
    /** Lifetime of a legacy token. */
    tokenTtlSeconds: number;
    /** Failures or authentications within a minute for one identity that raise `legacy.burst` (`legacy.deviceFailureLimit` is its deprecated alias). */
    burstLimit: number;
    /** A failure's backoff: the first one's delay, doubled per further failure within the minute, up to the max. */
    backoffBaseMs: number;
    backoffMaxMs: number;
    commonAuthIdFailureLimit: number;
    sourceFailureLimit: number;
    throttleDelayMs: number;
    /** Whether X-Forwarded-For names the client (only behind a proxy you run). */
    trustProxy: boolean;
    /** Usual hours (UTC `HH-HH`) of device classes that name none; unset: no unusual-hour events. */
    usualHoursUtc?: string;
    bodyLimitBytes: number;
  };
  enrollment: {
    /** Hours (fractions allowed) a superseded certificate stays good after an allowed re-enrollment (0: revoked at once). */
    overlapHours: number;
    /** Largest pre-registration upload (POST /api/v1/devices/import), in bytes. */
    importBodyLimitBytes: number;
    /** Largest NDJSON batch body (POST /api/v1/enroll/batch), in bytes. */
    batchBodyLimitBytes: number;
    /** Enrollments per second per station (token bucket; 0: unlimited) and the bucket's size. */
    stationPerSecond: number;
    stationBurst: number;
    /** A station API key stops working this many days after it was made or rotated; 0: never. */
    stationKeyMaxAgeDays: number;
  };
  /** SCEP (enrollment/scep/): always at /scep on the management port; on the plain-HTTP port too when set. */
  scep: {
    plainHttp: boolean;
  };
  /** ACME for infrastructure certificates (enrollment/acme, README "ACME for brokers and proxies"). */
  acme: {
    enabled: boolean;
    /** Validity of the TLS server certificates ACME issues (infrastructure CA). */
    validityDays: number;
    /** Where validation connects: http-01 and tls-alpn-01 (RFC 8737) ports. */
    validationPorts: { http: number; tlsAlpn: number };
    /** Name → address validation connects to instead of resolving the name (tests, split horizon). */
    resolve: Record<string, string>;
    /** dns-01: a command run with `_acme-challenge.<name>` that prints the TXT values there; unset: no dns-01. */
    dnsHook?: string;
    validationTimeoutSeconds: number;
  };
  /**
   * Base of the OCSP, CRL and caIssuers URLs written into certificates. Recorded in the registry at
   * init; when not set explicitly, an opened installation uses the recorded value (cli/public-url.ts).
   */
  publicHttpUrl: string;
  tls: { hostnames: string[]; validityDays: number; renewWithinDays: number };
  /**
   * `sqlite` (embedded, `path`, `synchronous`) or `mongodb` (`uri`, `database`; docs/mongodb.md).
   * The URI may carry credentials: log it only through redactUri (registry/mongodb).
   */
  storage: StorageSettings & { type: StorageType };
  keys: {
    directory: string;
    passphraseFile: string;
    /** log2 of scrypt's N for software key files written from now on (hsm-adapters/software/key-encryption.ts). */
    kdfCost: number;
    /** The PKCS#11 module for `pkcs11:` keys; the PIN comes from KAKUIN_PKCS11_PIN or `pinFile`. */
    pkcs11: { module: string; pinFile?: string };
  };
  secrets: { directory: string };
  ca: {
    organization: string;
    rootKeyAlgorithm: KeyAlgorithm;
    issuingKeyAlgorithm: KeyAlgorithm;
    rootValidityYears: number;
    issuingValidityYears: number;
    /** An offline root's delegated OCSP responder: the longest lifetime `ca import-root-publications` takes. */
    rootResponderValidityDays: number;
    device: { validityDays: number | 'no-well-defined-expiration'; backdateSeconds: number; commonName: DeviceCommonName };
    /** Named device profiles beside `device` (a manufacturer uses those an admin allowed it); no commonName: `ca.device`'s. */
    profiles: Record<string, { validityDays: number | 'no-well-defined-expiration'; backdateSeconds: number; commonName?: DeviceCommonName }>;
    /** Station certificates (mTLS client certificates of factory stations, from the station CA). */
    station: { validityDays: number };
    /** Worker threads checking CSR signatures; 0 checks on the main thread. */
    verifyWorkers: number;
  };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  /** Deprecated options that were set, each with what replaces it (logged as warnings at start). */
  deprecations: string[];
  /** The options the config file or the environment set (the rest are defaults). */
  setOptions: string[];
}

/** One `events.webhooks` entry; files are resolved against the data directory. */
export interface WebhookConfig { url: string; secretFile: string; caFile?: string; events: string[] }
/** `events.syslog`: RFC 5424 over `tcp://` or `tls://` (octet counting). */
export interface SyslogConfig { url: string; caFile?: string; hostname?: string; events: string[] }

/** What a device certificate's subject CN holds, if anything (ca/profiles.ts DeviceProfilePolicy.commonName). */
export type DeviceCommonName = 'none' | 'serialNumber' | 'deviceId';
const DEVICE_COMMON_NAMES: readonly DeviceCommonName[] = ['none', 'serialNumber', 'deviceId'];

type Env = Record<string, string | undefined>;
type Json = Record<string, unknown>;

/** The options a config file may set (dotted paths) and how each is checked. */
const FILE_OPTIONS: Record<string, (v: unknown, key: string) => unknown> = {
  bindHost: str,
  'api.port': port,
  'api.maxBodyBytes': (v, k) => int(v, k, 1024, 64 * 1024 * 1024),
  'users.sessionIdleMinutes': (v, k) => int(v, k, 1, 24 * 60),
  'users.sessionMaxHours': (v, k) => int(v, k, 1, 30 * 24),
  // log2 of scrypt's N; 128·N·8 octets per login (2^15: 32 MiB). Stored with each hash, so raising it keeps old passwords valid.
  'users.passwordKdfCost': (v, k) => int(v, k, 10, 20),
  'ocsp.port': port,
  // RFC 5019 §6.2 / RFC 6960 §4.2.2.1: a relying party may cache an answer until nextUpdate, so this
  // bounds how long a revoked certificate can still pass a caching relying party (nginx ssl_ocsp_cache).
  'ocsp.validityMinutes': (v, k) => int(v, k, 2, 60 * 24 * 14),
  /** Deprecated alias of ocsp.validityMinutes (warned at start). */
  'ocsp.validityHours': (v, k) => int(v, k, 1, 24 * 14),
  'ocsp.liveRatePerSecond': (v, k) => int(v, k, 1, 1_000_000),
  'ocsp.signerValidityDays': (v, k) => int(v, k, 2, 365),
  'ocsp.signerRenewWithinDays': (v, k) => int(v, k, 1, 364),
  'crl.coalesceMs': (v, k) => int(v, k, 0, 600_000),
  'crl.fullCoalesceMs': (v, k) => int(v, k, 0, 3_600_000),
  'crl.fullValidityHours': (v, k) => int(v, k, 1, 24 * 31),
  'crl.fullRebuildMinutes': (v, k) => int(v, k, 1, 24 * 60 * 31),
  'crl.deltaValidityMinutes': (v, k) => int(v, k, 2, 24 * 60 * 7),
  'gateway.port': port,
  'gateway.statusSource': (v, k) => oneOf(v, k, ['feed', 'ocsp']),
  'gateway.statusGraceMs': (v, k) => int(v, k, 100, 3600_000),
  'gateway.maxPendingHandshakes': (v, k) => int(v, k, 1, 100_000),
  'gateway.perSourceConnectionsPerSecond': (v, k) => int(v, k, 0, 1_000_000),
  'gateway.perSourceBurst': (v, k) => int(v, k, 1, 1_000_000),
  'gateway.workers': (v, k) => int(v, k, 1, 256),
  'gateway.ocspUrl': anyHttpUrl,
  'gateway.upstreamUrl': anyHttpUrl,
  'gateway.upstreamCaFile': str,
  'gateway.bodyLimitBytes': (v, k) => int(v, k, 1, 64 * 1024 * 1024),
  'gateway.telemetryDir': str,
  'activity.enabled': bool,
  'activity.flushSeconds': (v, k) => int(v, k, 1, 3600),
  'activity.retentionDays': (v, k) => int(v, k, 1, 3650),
  'activity.addressPrefix': (v, k) => oneOf(v, k, ['none', '24/48', '16/32']),
  'detections.enabled': bool,
  'detections.silenceCheckSeconds': (v, k) => int(v, k, 1, 3600),
  'bulk.maxDevices': (v, k) => int(v, k, 1, 10_000_000),
  'approvals.bulkThreshold': (v, k) => int(v, k, 0, 10_000_000),
  'approvals.ttlMinutes': (v, k) => int(v, k, 1, 7 * 24 * 60),
  'events.webhooks': webhooksOption,
  'events.syslog': syslogOption,
  'audit.checkpointEvery': (v, k) => int(v, k, 1, 10_000_000),
  'audit.checkpointMinutes': (v, k) => int(v, k, 1, 7 * 24 * 60),
  'audit.signerValidityDays': (v, k) => int(v, k, 2, 3650),
  'gateway.mqtt.port': port,
  'gateway.mqtt.upstreamUrl': (v, k) => urlOption(v, k, ['mqtt:', 'mqtts:'], 'an mqtt:// or mqtts:// URL'),
  'gateway.mqtt.upstreamCaFile': str,
  'gateway.mqtt.upstreamPasswordFile': str,
  'gateway.mqtt.clientId': (v, k) => oneOf(v, k, ['require-device-id', 'replace']),
  'gateway.mqtt.publishTopics': topicTemplates,
  'gateway.mqtt.subscribeTopics': topicTemplates,
  'gateway.routes': gatewayRoutes,
  'gateway.tcp': gatewayTcpListeners,
  'legacy.port': port,
  'legacy.tokenTtlSeconds': (v, k) => int(v, k, 60, 86_400),
  // Read only to say it is ignored: the legacy path no longer locks (issue 13).
  'legacy.lockMinutes': (v, k) => int(v, k, 1, 24 * 60),
  'legacy.burstLimit': (v, k) => int(v, k, 3, 1000),
  'legacy.deviceFailureLimit': (v, k) => int(v, k, 3, 1000),
  'legacy.backoffBaseMs': (v, k) => int(v, k, 1, 10_000),
  'legacy.backoffMaxMs': (v, k) => int(v, k, 1, 60_000),
  'legacy.commonAuthIdFailureLimit': (v, k) => int(v, k, 10, 1_000_000),
  'legacy.sourceFailureLimit': (v, k) => int(v, k, 10, 1_000_000),
  'legacy.throttleDelayMs': (v, k) => int(v, k, 0, 10_000),
  'legacy.trustProxy': (v, k) => bool(v, k),
  'legacy.usualHoursUtc': (v, k) => {
    if (typeof v !== 'string' || !/^([01]\d|2[0-3])-([01]\d|2[0-4])$/.test(v)) fail(k, 'must be HH-HH (UTC), e.g. 06-22');
    return v;
  },
  'legacy.bodyLimitBytes': (v, k) => int(v, k, 1024, 64 * 1024 * 1024),
  'enrollment.overlapHours': (v, k) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 24 * 90) fail(k, `must be a number of hours from 0 to ${24 * 90}`);
    return v;
  },
  'enrollment.importBodyLimitBytes': (v, k) => int(v, k, 1024, 256 * 1024 * 1024),
  'enrollment.batchBodyLimitBytes': (v, k) => int(v, k, 1024, 1024 * 1024 * 1024),
  'enrollment.stationPerSecond': (v, k) => int(v, k, 0, 1_000_000),
  'enrollment.stationBurst': (v, k) => int(v, k, 1, 10_000_000),
  'enrollment.stationKeyMaxAgeDays': (v, k) => int(v, k, 0, 3650),
  'scep.plainHttp': bool,
  'acme.enabled': bool,
  'acme.validityDays': (v, k) => int(v, k, 1, 397),
  'acme.validationPorts.http': port,
  'acme.validationPorts.tlsAlpn': port,
  'acme.resolve': acmeResolveOption,
  'acme.dnsHook': str,
  'acme.validationTimeoutSeconds': (v, k) => int(v, k, 1, 120),
  publicHttpUrl: httpUrl,
  'tls.hostnames': hostnames,
  'tls.validityDays': (v, k) => int(v, k, 1, 825),
  'tls.renewWithinDays': (v, k) => int(v, k, 0, 365),
  'storage.type': (v, k) => oneOf(v, k, STORAGE_TYPES),
  'storage.path': str,
  'storage.synchronous': (v, k) => oneOf(v, k, ['NORMAL', 'FULL']),
  // The value is never echoed in an error: a connection string may carry a password.
  'storage.uri': (v, k) => {
    if (typeof v !== 'string' || !/^mongodb(\+srv)?:\/\/[^/?#]+/.test(v)) fail(k, 'must be a mongodb:// or mongodb+srv:// connection string');
    return v;
  },
  'storage.database': (v, k) => {
    if (typeof v !== 'string' || !/^[A-Za-z0-9_-]{1,63}$/.test(v)) fail(k, 'must be 1 to 63 letters, digits, _ or -');
    return v;
  },
  'keys.directory': str,
  'keys.passphraseFile': str,
  'keys.kdfCost': (v, k) => int(v, k, 10, 14),
  'keys.pkcs11.module': str,
  'keys.pkcs11.pinFile': str,
  'secrets.directory': str,
  'ca.organization': (v, k) => printable(v, k, 64),
  'ca.rootKeyAlgorithm': keyAlgorithm,
  'ca.issuingKeyAlgorithm': keyAlgorithm,
  'ca.rootValidityYears': (v, k) => int(v, k, 1, 50),
  'ca.issuingValidityYears': (v, k) => int(v, k, 1, 30),
  'ca.rootResponderValidityDays': (v, k) => int(v, k, 2, 731),
  'ca.device.validityDays': (v, k) => (v === 'no-well-defined-expiration' ? v : int(v, k, 1, 36500)),
  'ca.device.backdateSeconds': (v, k) => int(v, k, 0, 7 * 86400),
  'ca.device.commonName': (v, k) => oneOf(v, k, DEVICE_COMMON_NAMES),
  'ca.profiles': deviceProfilesOption,
  'ca.station.validityDays': (v, k) => int(v, k, 1, 3650),
  'ca.verifyWorkers': (v, k) => int(v, k, 0, 64),
  'log.level': (v, k) => oneOf(v, k, ['debug', 'info', 'warn', 'error']),
};

/** Environment variables and the option each one overrides (values are strings, parsed like JSON scalars). */
export const ENV_OPTIONS: Record<string, string> = {
  KAKUIN_BIND_HOST: 'bindHost',
  KAKUIN_API_PORT: 'api.port',
  KAKUIN_USERS_PASSWORD_KDF_COST: 'users.passwordKdfCost',
  KAKUIN_OCSP_PORT: 'ocsp.port',
  KAKUIN_OCSP_VALIDITY_MINUTES: 'ocsp.validityMinutes',
  KAKUIN_GATEWAY_PORT: 'gateway.port',
  KAKUIN_LEGACY_PORT: 'legacy.port',
  KAKUIN_LEGACY_TOKEN_TTL_SECONDS: 'legacy.tokenTtlSeconds',
  KAKUIN_LEGACY_TRUST_PROXY: 'legacy.trustProxy',
  KAKUIN_ENROLLMENT_STATION_PER_SECOND: 'enrollment.stationPerSecond',
  KAKUIN_ENROLLMENT_STATION_KEY_MAX_AGE_DAYS: 'enrollment.stationKeyMaxAgeDays',
  KAKUIN_SCEP_PLAIN_HTTP: 'scep.plainHttp',
  KAKUIN_ACME_ENABLED: 'acme.enabled',
  KAKUIN_PUBLIC_HTTP_URL: 'publicHttpUrl',
  KAKUIN_TLS_HOSTNAMES: 'tls.hostnames',
  KAKUIN_SQLITE_PATH: 'storage.path',
  KAKUIN_SQLITE_SYNCHRONOUS: 'storage.synchronous',
  KAKUIN_STORAGE_TYPE: 'storage.type',
  KAKUIN_MONGODB_URI: 'storage.uri',
  KAKUIN_MONGODB_DATABASE: 'storage.database',
  KAKUIN_KEY_PASSPHRASE_FILE: 'keys.passphraseFile',
  KAKUIN_KEY_KDF_COST: 'keys.kdfCost',
  KAKUIN_PKCS11_MODULE: 'keys.pkcs11.module',
  KAKUIN_PKCS11_PIN_FILE: 'keys.pkcs11.pinFile',
  KAKUIN_ORGANIZATION: 'ca.organization',
  KAKUIN_DEVICE_COMMON_NAME: 'ca.device.commonName',
  KAKUIN_LOG_LEVEL: 'log.level',
  KAKUIN_CRL_COALESCE_MS: 'crl.coalesceMs',
  KAKUIN_CRL_FULL_COALESCE_MS: 'crl.fullCoalesceMs',
  KAKUIN_GATEWAY_STATUS_SOURCE: 'gateway.statusSource',
  KAKUIN_GATEWAY_MAX_PENDING_HANDSHAKES: 'gateway.maxPendingHandshakes',
  KAKUIN_GATEWAY_WORKERS: 'gateway.workers',
  KAKUIN_GATEWAY_OCSP_URL: 'gateway.ocspUrl',
  KAKUIN_GATEWAY_UPSTREAM_URL: 'gateway.upstreamUrl',
  KAKUIN_GATEWAY_MQTT_PORT: 'gateway.mqtt.port',
  KAKUIN_GATEWAY_MQTT_UPSTREAM_URL: 'gateway.mqtt.upstreamUrl',
  KAKUIN_VERIFY_WORKERS: 'ca.verifyWorkers',
};

/** Options that exist only as environment variables (secrets and locations), read where they are used. */
export const ENV_ONLY = ['KAKUIN_DATA_DIR', 'KAKUIN_CONFIG', 'KAKUIN_KEY_PASSPHRASE', 'KAKUIN_ADMIN_TOKEN', 'KAKUIN_PKCS11_PIN'] as const;

export function configFileOptions(): string[] {
  return Object.keys(FILE_OPTIONS);
}

export function loadConfig(env: Env = process.env, cwd = process.cwd()): Readonly<KakuinConfig> {
  const dataDir = path.resolve(cwd, env.KAKUIN_DATA_DIR || './data');
  const explicitFile = env.KAKUIN_CONFIG ? path.resolve(cwd, env.KAKUIN_CONFIG) : undefined;
  const defaultFile = path.join(dataDir, 'kakuin.json');
  const configFile = explicitFile ?? (existsSync(defaultFile) ? defaultFile : undefined);

  const settings = new Map<string, unknown>();
  if (configFile) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(configFile, 'utf8'));
    } catch (e) {
      throw new KakuinError('KAKUIN_E_CONFIG', `cannot read the config file ${configFile}: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new KakuinError('KAKUIN_E_CONFIG', `${configFile} must hold a JSON object`);
    }
    flatten(parsed as Json, '', settings, configFile);
  }
  for (const [variable, option] of Object.entries(ENV_OPTIONS)) {
    const raw = env[variable];
    if (raw !== undefined && raw !== '') settings.set(option, fromEnv(option, raw));
  }
  const checked = new Map<string, unknown>();
  for (const [key, value] of settings) checked.set(key, FILE_OPTIONS[key](value, key));
  const get = <T>(key: string, fallback: T): T => (checked.has(key) ? (checked.get(key) as T) : fallback);

  if (checked.has('ocsp.validityHours') && checked.has('ocsp.validityMinutes')) {
    fail('ocsp.validityHours', 'is the deprecated alias of ocsp.validityMinutes; set only ocsp.validityMinutes');
  }
  if (checked.has('legacy.deviceFailureLimit') && checked.has('legacy.burstLimit')) {
    fail('legacy.deviceFailureLimit', 'is the deprecated alias of legacy.burstLimit; set only legacy.burstLimit');
  }
  const deprecations = [
    ...(checked.has('ocsp.validityHours') ? ['ocsp.validityHours is deprecated: set ocsp.validityMinutes instead'] : []),
    ...(checked.has('legacy.deviceFailureLimit') ? ['legacy.deviceFailureLimit is deprecated: set legacy.burstLimit instead (it no longer locks; it raises legacy.burst)'] : []),
    ...(checked.has('legacy.lockMinutes') ? ['legacy.lockMinutes is ignored: the legacy path no longer locks credentials; failures back off (legacy.backoffBaseMs, legacy.backoffMaxMs)'] : []),
  ];
  const ocspPort = get('ocsp.port', 8080);
  const within = (p: string) => path.resolve(dataDir, p);
  const config: KakuinConfig = {
    dataDir,
    configFile,
    bindHost: get('bindHost', '127.0.0.1'),
    api: { port: get('api.port', 8443), maxBodyBytes: get('api.maxBodyBytes', 64 * 1024) },
    users: {
      sessionIdleMinutes: get('users.sessionIdleMinutes', 30),
      sessionMaxHours: get('users.sessionMaxHours', 12),
      passwordKdfCost: get('users.passwordKdfCost', 15),
    },
    ocsp: {
      port: ocspPort,
      validityMinutes: checked.has('ocsp.validityHours') ? get('ocsp.validityHours', 24) * 60 : get('ocsp.validityMinutes', 24 * 60),
      liveRatePerSecond: get('ocsp.liveRatePerSecond', 2000),
      signerValidityDays: get('ocsp.signerValidityDays', 30),
      signerRenewWithinDays: get('ocsp.signerRenewWithinDays', 7),
    },
    crl: {
      coalesceMs: get('crl.coalesceMs', 1000),
      fullCoalesceMs: get('crl.fullCoalesceMs', 5000),
      fullValidityHours: get('crl.fullValidityHours', 24),
      fullRebuildMinutes: get('crl.fullRebuildMinutes', 60),
      deltaValidityMinutes: get('crl.deltaValidityMinutes', 60),
    },
    gateway: {
      port: get('gateway.port', 9443),
      statusSource: get('gateway.statusSource', 'feed'),
      statusGraceMs: get('gateway.statusGraceMs', 10_000),
      maxPendingHandshakes: get('gateway.maxPendingHandshakes', 64),
      perSourceConnectionsPerSecond: get('gateway.perSourceConnectionsPerSecond', 0),
      perSourceBurst: get<number | undefined>('gateway.perSourceBurst', undefined),
      // One per core, as the machine reports it (a container's CPU limit included).
      workers: get('gateway.workers', availableParallelism()),
      ocspUrl: get<string | undefined>('gateway.ocspUrl', undefined),
      upstreamUrl: get<string | undefined>('gateway.upstreamUrl', undefined),
      upstreamCaFile: checked.has('gateway.upstreamCaFile') ? path.resolve(dataDir, checked.get('gateway.upstreamCaFile') as string) : undefined,
      bodyLimitBytes: get('gateway.bodyLimitBytes', 64 * 1024),
      telemetryDir: within(get('gateway.telemetryDir', 'telemetry')),
      mqtt: {
        port: get('gateway.mqtt.port', 8883),
        upstreamUrl: get<string | undefined>('gateway.mqtt.upstreamUrl', undefined),
        upstreamCaFile: checked.has('gateway.mqtt.upstreamCaFile') ? within(checked.get('gateway.mqtt.upstreamCaFile') as string) : undefined,
        upstreamPasswordFile: checked.has('gateway.mqtt.upstreamPasswordFile') ? within(checked.get('gateway.mqtt.upstreamPasswordFile') as string) : undefined,
        clientId: get('gateway.mqtt.clientId', 'require-device-id'),
        publishTopics: get('gateway.mqtt.publishTopics', [DEFAULT_TOPIC_TEMPLATE]),
        subscribeTopics: get('gateway.mqtt.subscribeTopics', [DEFAULT_TOPIC_TEMPLATE]),
      },
      routes: get<KakuinConfig['gateway']['routes']>('gateway.routes', []).map((r) => ({
        ...r, ...(r.upstreamCaFile !== undefined && { upstreamCaFile: within(r.upstreamCaFile) }),
      })),
      tcp: get('gateway.tcp', []),
    },
    activity: {
      enabled: get('activity.enabled', true),
      flushSeconds: get('activity.flushSeconds', 10),
      retentionDays: get('activity.retentionDays', 90),
      addressPrefix: get('activity.addressPrefix', 'none'),
    },
    detections: {
      enabled: get('detections.enabled', true),
      silenceCheckSeconds: get('detections.silenceCheckSeconds', 10),
    },
    bulk: { maxDevices: get('bulk.maxDevices', 1_000_000) },
    approvals: {
      bulkThreshold: get('approvals.bulkThreshold', 100),
      ttlMinutes: get('approvals.ttlMinutes', 60),
    },
    events: {
      webhooks: get<WebhookConfig[]>('events.webhooks', []).map((w) => ({
        ...w, secretFile: within(w.secretFile), ...(w.caFile !== undefined && { caFile: within(w.caFile) }),
      })),
      ...(checked.has('events.syslog') && ((s: SyslogConfig) => ({
        syslog: { ...s, ...(s.caFile !== undefined && { caFile: within(s.caFile) }) },
      }))(checked.get('events.syslog') as SyslogConfig)),
    },
    audit: {
      checkpointEvery: get('audit.checkpointEvery', 10_000),
      checkpointMinutes: get('audit.checkpointMinutes', 10),
      signerValidityDays: get('audit.signerValidityDays', 365),
    },
    legacy: {
      port: get('legacy.port', 9444),
      tokenTtlSeconds: get('legacy.tokenTtlSeconds', 3600),
      burstLimit: checked.has('legacy.deviceFailureLimit') ? get('legacy.deviceFailureLimit', 10) : get('legacy.burstLimit', 10),
      backoffBaseMs: get('legacy.backoffBaseMs', 100),
      backoffMaxMs: get('legacy.backoffMaxMs', 8000),
      commonAuthIdFailureLimit: get('legacy.commonAuthIdFailureLimit', 1000),
      sourceFailureLimit: get('legacy.sourceFailureLimit', 100),
      throttleDelayMs: get('legacy.throttleDelayMs', 1000),
      trustProxy: get('legacy.trustProxy', false),
      usualHoursUtc: get<string | undefined>('legacy.usualHoursUtc', undefined),
      bodyLimitBytes: get('legacy.bodyLimitBytes', 64 * 1024),
    },
    enrollment: {
      overlapHours: get('enrollment.overlapHours', 0),
      importBodyLimitBytes: get('enrollment.importBodyLimitBytes', 16 * 1024 * 1024),
      batchBodyLimitBytes: get('enrollment.batchBodyLimitBytes', 64 * 1024 * 1024),
      stationPerSecond: get('enrollment.stationPerSecond', 0),
      stationBurst: get('enrollment.stationBurst', 10_000),
      stationKeyMaxAgeDays: get('enrollment.stationKeyMaxAgeDays', 365),
    },
    scep: {
      plainHttp: get('scep.plainHttp', false),
    },
    acme: {
      enabled: get('acme.enabled', true),
      validityDays: get('acme.validityDays', 90),
      validationPorts: { http: get('acme.validationPorts.http', 80), tlsAlpn: get('acme.validationPorts.tlsAlpn', 443) },
      resolve: get<Record<string, string>>('acme.resolve', {}),
      ...(checked.has('acme.dnsHook') && { dnsHook: within(checked.get('acme.dnsHook') as string) }),
      validationTimeoutSeconds: get('acme.validationTimeoutSeconds', 10),
    },
    publicHttpUrl: get('publicHttpUrl', `http://localhost:${ocspPort}`).replace(/\/+$/, ''),
    tls: {
      hostnames: get('tls.hostnames', ['localhost', '127.0.0.1', '::1']),
      validityDays: get('tls.validityDays', 397),
      renewWithinDays: get('tls.renewWithinDays', 30),
    },
    storage: {
      type: get<StorageType>('storage.type', 'sqlite'),
      path: within(get('storage.path', 'kakuin.db')),
      synchronous: get('storage.synchronous', 'NORMAL'),
      ...(checked.has('storage.uri') && { uri: checked.get('storage.uri') as string }),
      database: get('storage.database', 'kakuin'),
    },
    keys: {
      directory: within(get('keys.directory', 'keys')),
      passphraseFile: within(get('keys.passphraseFile', 'secrets/key-passphrase')),
      kdfCost: get('keys.kdfCost', 14),
      pkcs11: {
        // Debian's SoftHSM2; any PKCS#11 v2.40 module works.
        module: get('keys.pkcs11.module', '/usr/lib/softhsm/libsofthsm2.so'),
        ...(checked.has('keys.pkcs11.pinFile') ? { pinFile: within(get('keys.pkcs11.pinFile', '')) } : {}),
      },
    },
    secrets: { directory: within(get('secrets.directory', 'secrets')) },
    ca: {
      organization: get('ca.organization', 'kakuin development'),
      rootKeyAlgorithm: get('ca.rootKeyAlgorithm', 'ecdsa-p384'),
      issuingKeyAlgorithm: get('ca.issuingKeyAlgorithm', 'ecdsa-p256'),
      rootValidityYears: get('ca.rootValidityYears', 20),
      issuingValidityYears: get('ca.issuingValidityYears', 10),
      rootResponderValidityDays: get('ca.rootResponderValidityDays', 400),
      device: {
        validityDays: get('ca.device.validityDays', 3650),
        backdateSeconds: get('ca.device.backdateSeconds', 3600),
        commonName: get<DeviceCommonName>('ca.device.commonName', 'none'),
      },
      profiles: get('ca.profiles', { 'short-lived': { validityDays: 30, backdateSeconds: 3600 } }),
      station: { validityDays: get('ca.station.validityDays', 365) },
      verifyWorkers: get('ca.verifyWorkers', defaultVerifierWorkers()),
    },
    log: { level: get('log.level', 'info') },
    deprecations,
    setOptions: [...checked.keys()].sort(),
  };
  for (const { setting, hint } of registryAdapter(config.storage.type).requires) {
    if (config.storage[setting] === undefined) fail(`storage.${setting}`, `is required when storage.type is ${config.storage.type} (${hint})`);
  }
  if (config.legacy.backoffBaseMs > config.legacy.backoffMaxMs) fail('legacy.backoffBaseMs', 'must not exceed legacy.backoffMaxMs');
  if (config.ocsp.signerRenewWithinDays >= config.ocsp.signerValidityDays) {
    fail('ocsp.signerRenewWithinDays', 'must be less than ocsp.signerValidityDays');
  }
  return deepFreeze(config);
}

function flatten(obj: Json, prefix: string, out: Map<string, unknown>, file: string): void {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix + k;
    if (key in FILE_OPTIONS) {
      out.set(key, v);
    } else if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(FILE_OPTIONS).some((o) => o.startsWith(`${key}.`))) {
      flatten(v as Json, `${key}.`, out, file);
    } else {
      throw new KakuinError('KAKUIN_E_CONFIG', `${file}: unknown option ${JSON.stringify(key)} (see docs/configuration.md)`);
    }
  }
}

function fromEnv(option: string, raw: string): unknown {
  if (option === 'tls.hostnames') return raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (/^-?[0-9]+$/.test(raw)) return Number(raw);
  return raw;
}

function fail(key: string, what: string): never {
  throw new KakuinError('KAKUIN_E_CONFIG', `option ${key} ${what}`);
}

function str(v: unknown, key: string): string {
  if (typeof v !== 'string' || v.length === 0) fail(key, 'must be a non-empty string');
  return v;
}

function printable(v: unknown, key: string, max: number): string {
  const s = str(v, key);
  // eslint-disable-next-line no-control-regex
  if (s.length > max || /[\u0000-\u001f]/.test(s)) fail(key, `must be at most ${max} printable characters`);
  return s;
}

function bool(v: unknown, key: string): boolean {
  // From the environment a boolean arrives as text.
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === 0) return false;
  if (v === 1) return true;
  if (typeof v !== 'boolean') fail(key, 'must be true or false');
  return v;
}

function int(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(key, `must be an integer from ${min} to ${max}`);
  return v;
}

/** `acme.resolve`: `{"broker-1.example.internal": "127.0.0.1", ...}`: names to IP addresses. */
function acmeResolveOption(v: unknown, key: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(key, 'must be an object of name → IP address');
  const out: Record<string, string> = {};
  for (const [name, address] of Object.entries(v as Json)) {
    if (!/^[a-z0-9*.-]{1,253}$/.test(name)) fail(`${key}.${name}`, 'is not a lowercase DNS name');
    if (typeof address !== 'string' || isIP(address) === 0) fail(`${key}.${name}`, 'must be an IP address');
    out[name] = address;
  }
  return out;
}

/** `ca.profiles`: `{"<name>": {"validityDays": n | "no-well-defined-expiration", "backdateSeconds"?: n, "commonName"?: ...}}`. */
function deviceProfilesOption(v: unknown, key: string): KakuinConfig['ca']['profiles'] {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(key, 'must be an object of named profiles');
  const out: KakuinConfig['ca']['profiles'] = {};
  for (const [name, p] of Object.entries(v as Json)) {
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(name) || ['device', 'station', 'tls-server', 'ocsp-signer', 'root-ca', 'sub-ca'].includes(name)) {
      fail(`${key}.${name}`, 'is not a usable profile name (lowercase letters, digits, -; not device, station or another built-in)');
    }
    if (typeof p !== 'object' || p === null || Array.isArray(p)) fail(`${key}.${name}`, 'must be an object {validityDays, backdateSeconds?, commonName?}');
    const { validityDays, backdateSeconds = 3600, commonName, ...rest } = p as Json;
    if (Object.keys(rest).length > 0) fail(`${key}.${name}`, `has unknown fields: ${Object.keys(rest).join(', ')}`);
    out[name] = {
      validityDays: validityDays === 'no-well-defined-expiration' ? validityDays : int(validityDays, `${key}.${name}.validityDays`, 1, 36500),
      backdateSeconds: int(backdateSeconds, `${key}.${name}.backdateSeconds`, 0, 7 * 86400),
      ...(commonName !== undefined && { commonName: oneOf(commonName, `${key}.${name}.commonName`, DEVICE_COMMON_NAMES) }),
    };
  }
  return out;
}

/** A destination's `events` filter: event types, `group.*` or `*` (operations/events/event.ts); default everything. */
function eventPatterns(v: unknown, key: string): string[] {
  if (v === undefined) return ['*'];
  if (!Array.isArray(v) || v.length === 0 || !v.every((p) => typeof p === 'string')) fail(key, 'must be a non-empty list of event types (README "Events")');
  const unknown = (v as string[]).filter((p) => !isEventPattern(p));
  if (unknown.length > 0) fail(key, `names no event type: ${unknown.join(', ')} (README "Events" lists them)`);
  return v as string[];
}

function fields(v: unknown, key: string, allowed: string[], what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(key, `must be an object ${what}`);
  const extra = Object.keys(v as Json).filter((f) => !allowed.includes(f));
  if (extra.length > 0) fail(key, `has unknown fields: ${extra.join(', ')}`);
  return v as Json;
}

/** `events.webhooks`: `[{url, secretFile, caFile?, events?}]`; https only (http to the loopback host). */
function webhooksOption(v: unknown, key: string): WebhookConfig[] {
  if (!Array.isArray(v)) fail(key, 'must be a list of {url, secretFile, caFile?, events?}');
  const seen = new Set<string>();
  return v.map((w, i) => {
    const k = `${key}[${i}]`;
    const o = fields(w, k, ['url', 'secretFile', 'caFile', 'events'], '{url, secretFile, caFile?, events?}');
    const url = checkWebhookUrl(str(o.url, `${k}.url`), `option ${k}.url`).href;
    // The URL names the destination's cursor: two entries with one URL would share it.
    if (seen.has(url)) fail(`${k}.url`, 'is listed twice');
    seen.add(url);
    return {
      url,
      secretFile: str(o.secretFile, `${k}.secretFile`),
      ...(o.caFile !== undefined && { caFile: str(o.caFile, `${k}.caFile`) }),
      events: eventPatterns(o.events, `${k}.events`),
    };
  });
}

/** `events.syslog`: `{url: "tls://host:port" | "tcp://host:port", caFile?, hostname?, events?}`. */
function syslogOption(v: unknown, key: string): SyslogConfig {
  const o = fields(v, key, ['url', 'caFile', 'hostname', 'events'], '{url, caFile?, hostname?, events?}');
  const url = str(o.url, `${key}.url`);
  checkSyslogUrl(url, `option ${key}.url`);
  return {
    url,
    ...(o.caFile !== undefined && { caFile: str(o.caFile, `${key}.caFile`) }),
    ...(o.hostname !== undefined && { hostname: printable(o.hostname, `${key}.hostname`, 255) }),
    events: eventPatterns(o.events, `${key}.events`),
  };
}

function port(v: unknown, key: string): number {
  return int(v, key, 0, 65535);
}

function oneOf<T extends string>(v: unknown, key: string, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) fail(key, `must be one of ${allowed.join(', ')}`);
  return v as T;
}

function keyAlgorithm(v: unknown, key: string): KeyAlgorithm {
  return oneOf(v, key, KEY_ALGORITHMS);
}

/** An absolute URL whose scheme is one of `protocols`. */
function urlOption(v: unknown, key: string, protocols: string[], what: string): string {
  const s = str(v, key);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    fail(key, 'must be an absolute URL');
  }
  if (!protocols.includes(u.protocol)) fail(key, `must be ${what}`);
  return s;
}

function httpUrl(v: unknown, key: string): string {
  // RFC 5280 §4.2.1.13 / RFC 6960: relying parties fetch CRLs and OCSP over plain HTTP.
  return urlOption(v, key, ['http:'], 'an http:// URL (CRL and OCSP are fetched over plain HTTP)');
}

/** A publicHttpUrl given elsewhere (`kakuin ca set-public-url`), checked and written as the option is. */
export function publicHttpUrlValue(v: string): string {
  return httpUrl(v, 'publicHttpUrl').replace(/\/+$/, '');
}

function anyHttpUrl(v: unknown, key: string): string {
  return urlOption(v, key, ['http:', 'https:'], 'an http:// or https:// URL');
}

/** MQTT topic filter templates (gateway-auth/mqtt/topic-policy.ts checks each). */
function topicTemplates(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.length === 0) fail(key, 'must be a non-empty list of topic filter templates');
  v.forEach((t, i) => parseTopicTemplate(t, `option ${key}[${i}]`));
  return v as string[];
}

/** `gateway.routes`: `[{prefix, upstreamUrl, upstreamCaFile?, bodyLimitBytes?}]` (gateway-auth/http/routes-options.ts checks the rest). */
function gatewayRoutes(v: unknown, key: string): KakuinConfig['gateway']['routes'] {
  if (!Array.isArray(v)) fail(key, 'must be a list of {prefix, upstreamUrl, upstreamCaFile?, bodyLimitBytes?}');
  const routes = v.map((r: unknown, i) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) fail(`${key}[${i}]`, 'must be an object {prefix, upstreamUrl, upstreamCaFile?, bodyLimitBytes?}');
    const { prefix, upstreamUrl, upstreamCaFile, bodyLimitBytes, ...rest } = r as Json;
    if (Object.keys(rest).length > 0) fail(`${key}[${i}]`, `has unknown fields: ${Object.keys(rest).join(', ')}`);
    return {
      prefix: str(prefix, `${key}[${i}].prefix`),
      upstreamUrl: anyHttpUrl(upstreamUrl, `${key}[${i}].upstreamUrl`),
      ...(upstreamCaFile !== undefined && { upstreamCaFile: str(upstreamCaFile, `${key}[${i}].upstreamCaFile`) }),
      ...(bodyLimitBytes !== undefined && { bodyLimitBytes: int(bodyLimitBytes, `${key}[${i}].bodyLimitBytes`, 0, 1024 * 1024 * 1024) }),
    };
  });
  resolveRoutes(routes);
  return routes;
}

/** `gateway.tcp`: `[{port, upstream: "host:port"}]`. */
function gatewayTcpListeners(v: unknown, key: string): KakuinConfig['gateway']['tcp'] {
  if (!Array.isArray(v)) fail(key, 'must be a list of {port, upstream}');
  const listeners = v.map((l: unknown, i) => {
    if (typeof l !== 'object' || l === null || Array.isArray(l)) fail(`${key}[${i}]`, 'must be an object {port, upstream}');
    const { port: p, upstream, ...rest } = l as Json;
    if (Object.keys(rest).length > 0) fail(`${key}[${i}]`, `has unknown fields: ${Object.keys(rest).join(', ')}`);
    return { port: port(p, `${key}[${i}].port`), upstream: str(upstream, `${key}[${i}].upstream`) };
  });
  resolveTcpListeners(listeners);
  return listeners;
}

function hostnames(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((h) => typeof h === 'string' && /^[A-Za-z0-9.:*-]{1,253}$/.test(h))) {
    fail(key, 'must be a non-empty list of host names or IP addresses');
  }
  return v as string[];
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
