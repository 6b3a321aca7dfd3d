/**
 * The registry's SQLite schema as an ordered list of migrations.
 *
 * Rules for whoever adds a migration:
 * - append, never edit or reorder a released step (databases in the field have run it);
 * - one step = one `BEGIN IMMEDIATE` transaction, so a crash leaves the file at the previous version;
 * - keep steps short (the event loop waits): a backfill of millions of rows belongs in a worker.
 *
 * The version is stamped twice, in `PRAGMA user_version` (one read, no table needed) and as a row in
 * `schema_migrations` (when and what ran); the higher of the two counts. A file stamped higher than
 * LATEST_SCHEMA_VERSION was written by a newer kakuin and is refused (KAKUIN_E_SCHEMA_TOO_NEW):
 * running old code on it could silently drop what the new code relies on.
 *
 * Conventions: times are INTEGER milliseconds since the epoch (UTC); ids are random UUIDs
 * (audit events excepted: an increasing integer); serial numbers are uppercase hex; hashes are
 * lowercase hex. Tables are STRICT, so a wrongly typed value is an error, not a silent conversion.
 *
 * The revocation feed (step 2) is append-only and written in the same transaction as each status
 * change it reports. SQLite has one writer at a time, so seq values are assigned in commit order
 * and "every entry after N" never skips one that commits later; read-only processes poll it.
 */
import type Database from 'better-sqlite3';
import { KakuinError } from '../../errors/index.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'issuers, manufacturers, devices, certificates, key bindings, admin tokens, audit events',
    sql: `
      CREATE TABLE issuers (
        id              TEXT PRIMARY KEY,
        kind            TEXT NOT NULL CHECK (kind IN ('root', 'device', 'station', 'infrastructure', 'ocsp-signer')),
        certificate_der BLOB NOT NULL,
        key_uri         TEXT NOT NULL,
        parent_id       TEXT,
        created_at      INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE manufacturers (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE devices (
        id              TEXT PRIMARY KEY,
        manufacturer_id TEXT NOT NULL REFERENCES manufacturers (id),
        serial_number   TEXT NOT NULL,
        mac             TEXT,
        imei            TEXT,
        hardware_id     TEXT,
        model           TEXT,
        -- IEEE 802.1AR HardwareModuleName: both parts or neither.
        hw_type         TEXT,
        hw_serial_hex   TEXT,
        status          TEXT NOT NULL CHECK (status IN ('registered', 'active', 'suspended', 'revoked', 'retired')),
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        CHECK ((hw_type IS NULL) = (hw_serial_hex IS NULL)),
        UNIQUE (manufacturer_id, serial_number)
      ) STRICT;
      -- Identifier first: the same index answers "this MAC anywhere" and "this MAC at this manufacturer".
      CREATE UNIQUE INDEX devices_mac ON devices (mac, manufacturer_id) WHERE mac IS NOT NULL;
      CREATE UNIQUE INDEX devices_imei ON devices (imei, manufacturer_id) WHERE imei IS NOT NULL;
      CREATE UNIQUE INDEX devices_hardware_id ON devices (hardware_id, manufacturer_id) WHERE hardware_id IS NOT NULL;
      CREATE INDEX devices_serial_number ON devices (serial_number);
      CREATE INDEX devices_status ON devices (status);

      CREATE TABLE certificates (
        serial_hex         TEXT PRIMARY KEY,
        issuer_id          TEXT NOT NULL REFERENCES issuers (id),
        device_id          TEXT REFERENCES devices (id),
        profile            TEXT NOT NULL,
        status             TEXT NOT NULL CHECK (status IN ('good', 'revoked', 'held')),
        der                BLOB NOT NULL,
        fingerprint_sha256 TEXT NOT NULL,
        public_key_sha256  TEXT NOT NULL,
        not_before         INTEGER NOT NULL,
        not_after          INTEGER NOT NULL,
        created_at         INTEGER NOT NULL,
        revoked_at         INTEGER,
        reason             TEXT,
        invalidity_date    INTEGER,
        -- RFC 5280 §5.3: a CRL entry (revoked or on hold) always has a revocation date.
        CHECK ((status = 'good') = (revoked_at IS NULL))
      ) STRICT;
      CREATE INDEX certificates_device ON certificates (device_id) WHERE device_id IS NOT NULL;
      CREATE INDEX certificates_public_key ON certificates (public_key_sha256);

      -- One row per key ever bound to a device: the primary key makes "a public key already bound
      -- to another device is refused" a constraint, not a race between a read and a write.
      CREATE TABLE public_key_bindings (
        public_key_sha256 TEXT PRIMARY KEY,
        device_id         TEXT NOT NULL REFERENCES devices (id),
        bound_at          INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX public_key_bindings_device ON public_key_bindings (device_id);

      CREATE TABLE admin_tokens (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        token_hmac  TEXT NOT NULL UNIQUE,
        role        TEXT NOT NULL CHECK (role IN ('admin')),
        created_at  INTEGER NOT NULL,
        disabled_at INTEGER
      ) STRICT;

      -- AUTOINCREMENT: an id is never reused, even after the newest rows are deleted, so readers
      -- that remember "last seen id" never miss or repeat an event.
      CREATE TABLE audit_events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        at         INTEGER NOT NULL,
        type       TEXT NOT NULL,
        actor      TEXT NOT NULL,
        device_id  TEXT,
        serial_hex TEXT,
        details    TEXT CHECK (details IS NULL OR json_valid(details))
      ) STRICT;
      CREATE INDEX audit_events_device ON audit_events (device_id, id) WHERE device_id IS NOT NULL;
      CREATE INDEX audit_events_type ON audit_events (type, id);
      CREATE INDEX audit_events_at ON audit_events (at);
    `,
  },
  {
    version: 2,
    name: 'revocation feed, certificate status sequence, CRL numbers, published CRLs, pre-signed OCSP responses',
    sql: `
      -- One row per status change of a certificate (issued good, revoked, held, released good) or a
      -- device. AUTOINCREMENT: a seq is never reused, even if the newest entries are ever pruned.
      CREATE TABLE revocation_feed (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        at              INTEGER NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN ('certificate', 'device')),
        serial_hex      TEXT,
        issuer_id       TEXT,
        device_id       TEXT,
        status          TEXT NOT NULL,
        -- NULL for a newly issued certificate.
        previous_status TEXT,
        reason          TEXT,
        revoked_at      INTEGER,
        invalidity_date INTEGER,
        CHECK (kind <> 'certificate' OR (serial_hex IS NOT NULL AND issuer_id IS NOT NULL AND status IN ('good', 'revoked', 'held')
          AND (previous_status IS NULL OR previous_status IN ('good', 'revoked', 'held')))),
        CHECK (kind <> 'device' OR (device_id IS NOT NULL AND serial_hex IS NULL
          AND status IN ('registered', 'active', 'suspended', 'revoked', 'retired')
          AND previous_status IN ('registered', 'active', 'suspended', 'revoked', 'retired')))
      ) STRICT;

      -- status_seq: feed seq of the row's last status change (0: before the feed existed).
      -- released_seq: feed seq of its last release from hold (a delta CRL lists it as removeFromCRL).
      ALTER TABLE certificates ADD COLUMN status_seq INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE certificates ADD COLUMN released_seq INTEGER;
      -- What CRLs are built from. Partial, so issuing a (good) certificate costs no entry here;
      -- covering, so a million-entry CRL is one ordered walk of this index and never touches the
      -- table rows (certificate DER). issuer_id alone serves a full CRL, (issuer_id, status_seq) a delta.
      CREATE INDEX certificates_on_crl
        ON certificates (issuer_id, status_seq, serial_hex, status, revoked_at, reason, invalidity_date, not_after)
        WHERE status IN ('revoked', 'held');
      CREATE INDEX certificates_released
        ON certificates (issuer_id, released_seq, serial_hex, not_after)
        WHERE status = 'good' AND released_seq IS NOT NULL;

      -- RFC 5280 §5.2.3: one increasing CRLNumber sequence per issuer, shared by full and delta CRLs.
      CREATE TABLE crl_numbers (
        issuer_id   TEXT PRIMARY KEY REFERENCES issuers (id),
        last_number INTEGER NOT NULL CHECK (last_number >= 1)
      ) STRICT;

      -- The latest published CRL of each kind. Numbers are decimal TEXT: a CRLNumber may have up to
      -- 20 octets (RFC 5280 §5.2.3), more than an INTEGER column holds.
      CREATE TABLE crls (
        issuer_id   TEXT NOT NULL REFERENCES issuers (id),
        kind        TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
        number      TEXT NOT NULL,
        base_number TEXT,
        this_update INTEGER NOT NULL,
        next_update INTEGER NOT NULL,
        feed_seq    INTEGER NOT NULL,
        der         BLOB NOT NULL,
        PRIMARY KEY (issuer_id, kind),
        CHECK ((kind = 'delta') = (base_number IS NOT NULL))
      ) STRICT;

      CREATE TABLE ocsp_responses (
        issuer_id   TEXT NOT NULL REFERENCES issuers (id),
        serial_hex  TEXT NOT NULL,
        der         BLOB NOT NULL,
        this_update INTEGER NOT NULL,
        next_update INTEGER NOT NULL,
        PRIMARY KEY (issuer_id, serial_hex)
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'legacy three-factor path: common auth IDs, legacy credentials, shared failure counters, legacy-credentials feed entries',
    sql: `
      -- SQLite cannot alter a CHECK constraint, so the feed is rebuilt (the documented "create, copy,
      -- drop, rename" procedure) to admit 'legacy-credentials' entries and their generation. Seqs are
      -- copied as they are and the AUTOINCREMENT counter carried over, so no reader sees a seq twice.
      CREATE TABLE revocation_feed_v3 (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        at              INTEGER NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN ('certificate', 'device', 'legacy-credentials')),
        serial_hex      TEXT,
        issuer_id       TEXT,
        device_id       TEXT,
        status          TEXT NOT NULL,
        previous_status TEXT,
        reason          TEXT,
        revoked_at      INTEGER,
        invalidity_date INTEGER,
        generation      INTEGER,
        CHECK (kind <> 'certificate' OR (serial_hex IS NOT NULL AND issuer_id IS NOT NULL AND status IN ('good', 'revoked', 'held')
          AND (previous_status IS NULL OR previous_status IN ('good', 'revoked', 'held')))),
        CHECK (kind <> 'device' OR (device_id IS NOT NULL AND serial_hex IS NULL
          AND status IN ('registered', 'active', 'suspended', 'revoked', 'retired')
          AND previous_status IN ('registered', 'active', 'suspended', 'revoked', 'retired'))),
        CHECK (kind <> 'legacy-credentials' OR (device_id IS NOT NULL AND serial_hex IS NULL AND generation IS NOT NULL
          AND status IN ('enabled', 'deleted') AND (previous_status IS NULL OR previous_status IN ('enabled', 'deleted'))))
      ) STRICT;
      INSERT INTO revocation_feed_v3 (seq, at, kind, serial_hex, issuer_id, device_id, status, previous_status, reason, revoked_at, invalidity_date)
        SELECT seq, at, kind, serial_hex, issuer_id, device_id, status, previous_status, reason, revoked_at, invalidity_date FROM revocation_feed;
      UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'revocation_feed'))
        WHERE name = 'revocation_feed_v3';
      INSERT INTO sqlite_sequence (name, seq) SELECT 'revocation_feed_v3', seq FROM sqlite_sequence
        WHERE name = 'revocation_feed' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocation_feed_v3');
      DROP TABLE revocation_feed;
      ALTER TABLE revocation_feed_v3 RENAME TO revocation_feed;

      CREATE TABLE common_auth_ids (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        manufacturer_id TEXT REFERENCES manufacturers (id),
        usual_hours_utc TEXT,
        created_at      INTEGER NOT NULL
      ) STRICT;

      -- One row per device that ever had legacy credentials; deleting them keeps the row (deleted_at
      -- set) so the generation only ever increases and an old token never becomes valid again.
      CREATE TABLE legacy_credentials (
        device_id      TEXT PRIMARY KEY REFERENCES devices (id),
        common_auth_id TEXT NOT NULL REFERENCES common_auth_ids (id),
        unique_id      TEXT NOT NULL,
        verifier_kind  TEXT NOT NULL CHECK (verifier_kind IN ('hmac', 'scrypt')),
        verifier       TEXT NOT NULL,
        generation     INTEGER NOT NULL CHECK (generation >= 1),
        created_at     INTEGER NOT NULL,
        locked_until   INTEGER,
        deleted_at     INTEGER
      ) STRICT;
      CREATE UNIQUE INDEX legacy_credentials_factors ON legacy_credentials (common_auth_id, unique_id) WHERE deleted_at IS NULL;
      -- Imported verifiers are deterministic (see gateway-auth/legacy/secrets.ts), so "no two devices
      -- share a secret" is a constraint.
      CREATE UNIQUE INDEX legacy_credentials_verifier ON legacy_credentials (verifier_kind, verifier) WHERE deleted_at IS NULL;

      -- Failure counters of the abuse detection, one row per key and fixed window.
      CREATE TABLE legacy_failures (
        key          TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        count        INTEGER NOT NULL,
        PRIMARY KEY (key, window_start)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX legacy_failures_window ON legacy_failures (window_start);
    `,
  },
  {
    version: 4,
    name: 'production-line enrollment: factory stations with API keys, re-enrollment allowances',
    sql: `
      -- A station belongs to one manufacturer; its API key is kept only as HMAC-SHA-256 under the
      -- pepper (like admin tokens). Rotating the key replaces the HMAC; disabling sets disabled_at.
      CREATE TABLE stations (
        id              TEXT PRIMARY KEY,
        manufacturer_id TEXT NOT NULL REFERENCES manufacturers (id),
        name            TEXT NOT NULL,
        key_hmac        TEXT NOT NULL UNIQUE,
        created_at      INTEGER NOT NULL,
        key_rotated_at  INTEGER,
        disabled_at     INTEGER,
        -- Issuance quota: at most this many certificates issued through the station (NULL: no quota).
        max_issuances   INTEGER CHECK (max_issuances IS NULL OR max_issuances >= 0),
        UNIQUE (manufacturer_id, name)
      ) STRICT;

      -- POST /api/v1/devices/{id}/allow-reenrollment: one pending allowance per device, consumed by
      -- the enrollment it allows.
      CREATE TABLE reenrollment_allowances (
        device_id  TEXT PRIMARY KEY REFERENCES devices (id),
        until      INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;

      -- "Everything station X had issued between T1 and T2" (incident response) reads the audit trail:
      -- a certificate.issued event commits in the same transaction as its certificate.
      CREATE INDEX audit_events_actor ON audit_events (actor, type, at);
    `,
  },
  {
    version: 5,
    name: 'station certificates, allowed profiles per manufacturer, durable pending supersessions',
    sql: `
      -- A station's mTLS certificate (station CA, profile 'station') is a certificates row without a
      -- device; this binds it to its station.
      CREATE TABLE station_certificates (
        serial_hex TEXT PRIMARY KEY REFERENCES certificates (serial_hex),
        station_id TEXT NOT NULL REFERENCES stations (id)
      ) STRICT;
      CREATE INDEX station_certificates_station ON station_certificates (station_id);

      -- The device certificate profiles a manufacturer may ask for (a JSON array of names); no row:
      -- only 'device'.
      CREATE TABLE manufacturer_profiles (
        manufacturer_id TEXT PRIMARY KEY REFERENCES manufacturers (id),
        profiles        TEXT NOT NULL,
        updated_at      INTEGER NOT NULL
      ) STRICT;

      -- enrollment.overlapHours > 0: the superseded certificate is revoked at 'at' by a sweeper,
      -- which survives restarts because the pending revocation is a row, not a timer.
      CREATE TABLE pending_supersedes (
        serial_hex TEXT PRIMARY KEY REFERENCES certificates (serial_hex),
        at         INTEGER NOT NULL,
        actor      TEXT NOT NULL
      ) STRICT;
      CREATE INDEX pending_supersedes_at ON pending_supersedes (at);
    `,
  },
  {
    version: 6,
    name: 'drop the unused index of certificates by public key',
    sql: `
      -- "Is this key bound to another device?" reads public_key_bindings (its primary key); no query
      -- ever read certificates by public key, and the index cost a random-page write per issuance.
      DROP INDEX IF EXISTS certificates_public_key;
    `,
  },
  {
    version: 7,
    name: 'station API keys expire: the age of keys made before counts from this upgrade',
    sql: `
      -- enrollment.stationKeyMaxAgeDays counts a key's age from its creation or last rotation; a
      -- station made before keys could expire would be locked out the moment it upgrades. Its age
      -- counts from now instead (NULL for stations made from here on).
      ALTER TABLE stations ADD COLUMN key_age_from INTEGER;
      UPDATE stations SET key_age_from = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
    `,
  },
  {
    version: 8,
    name: 'admin tokens have a lifecycle: an expiry and when each was last used',
    sql: `
      -- NULL: the token does not expire / has not been used since this upgrade.
      ALTER TABLE admin_tokens ADD COLUMN expires_at INTEGER;
      ALTER TABLE admin_tokens ADD COLUMN last_used_at INTEGER;
    `,
  },
  {
    version: 9,
    name: 'device activity: hourly rollups, last seen, open sessions, refusals, firmware history',
    sql: `
      -- Written in batches by operations/activity (activity.flushSeconds), never per message; pruned
      -- after activity.retentionDays. No foreign key to devices: a refused certificate may name a
      -- device the registry does not hold, and that attempt is exactly what an admin wants to see.
      CREATE TABLE device_activity_hourly (
        device_id    TEXT NOT NULL,
        hour         INTEGER NOT NULL,
        messages     INTEGER NOT NULL,
        bytes        INTEGER NOT NULL,
        admitted     INTEGER NOT NULL,
        refused      INTEGER NOT NULL,
        token_ok     INTEGER NOT NULL,
        token_failed INTEGER NOT NULL,
        PRIMARY KEY (device_id, hour)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX device_activity_hourly_hour ON device_activity_hourly (hour);

      CREATE TABLE device_last_seen (
        device_id TEXT PRIMARY KEY,
        at        INTEGER NOT NULL,
        address   TEXT,
        front_end TEXT NOT NULL
      ) STRICT;
      CREATE INDEX device_last_seen_at ON device_last_seen (at);

      -- One row per (device, recording process): that process's sessions open at its last flush.
      CREATE TABLE device_sessions (
        device_id   TEXT NOT NULL,
        recorder_id TEXT NOT NULL,
        addresses   TEXT NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (device_id, recorder_id)
      ) STRICT;
      CREATE INDEX device_sessions_recorder ON device_sessions (recorder_id);

      CREATE TABLE device_refusals (
        id        INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        at        INTEGER NOT NULL,
        reason    TEXT NOT NULL,
        address   TEXT,
        front_end TEXT NOT NULL
      ) STRICT;
      CREATE INDEX device_refusals_device ON device_refusals (device_id, at);
      CREATE INDEX device_refusals_at ON device_refusals (at);

      -- The firmware versions a device reported, each with when it was first and last reported.
      CREATE TABLE device_firmware (
        device_id  TEXT NOT NULL,
        version    TEXT NOT NULL,
        first_at   INTEGER NOT NULL,
        last_at    INTEGER NOT NULL,
        PRIMARY KEY (device_id, version)
      ) STRICT;
    `,
  },
  {
    version: 10,
    name: 'events out: how far each webhook or syslog destination has delivered the audit trail',
    sql: `
      -- operations/events sends audit events out at least once: a destination's cursor is saved
      -- after it delivered, so a restart resumes there (README "Events"). The destination key is
      -- its kind and URL (webhook:https://..., syslog:tls://...).
      CREATE TABLE event_cursors (
        destination    TEXT PRIMARY KEY,
        after_audit_id INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 11,
    name: 'token roles: admin, operator, auditor, manufacturer (bound to one manufacturer)',
    sql: `
      -- A CHECK constraint cannot be altered in SQLite: the table is rebuilt (sqlite.org/lang_altertable.html,
      -- "other kinds of table schema changes"). Nothing references admin_tokens. Existing tokens stay admin.
      CREATE TABLE admin_tokens_v11 (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        token_hmac      TEXT NOT NULL UNIQUE,
        role            TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'manufacturer')),
        manufacturer_id TEXT REFERENCES manufacturers (id),
        created_at      INTEGER NOT NULL,
        disabled_at     INTEGER,
        expires_at      INTEGER,
        last_used_at    INTEGER,
        CHECK ((role = 'manufacturer') = (manufacturer_id IS NOT NULL))
      ) STRICT;
      INSERT INTO admin_tokens_v11 (id, name, token_hmac, role, manufacturer_id, created_at, disabled_at, expires_at, last_used_at)
        SELECT id, name, token_hmac, role, NULL, created_at, disabled_at, expires_at, last_used_at FROM admin_tokens ORDER BY rowid;
      DROP TABLE admin_tokens;
      ALTER TABLE admin_tokens_v11 RENAME TO admin_tokens;
    `,
  },
  {
    version: 12,
    name: 'users for people: password (scrypt) and TOTP logins, their sessions, failed-login counters',
    sql: `
      -- management-api/users.ts: the password hash carries its scrypt parameters; the TOTP secret
      -- is encrypted under a key derived from the pepper (not in this file); a session is known only
      -- by the HMAC of its id. Sessions go with their user.
      CREATE TABLE users (
        id                  TEXT PRIMARY KEY,
        name                TEXT NOT NULL UNIQUE,
        role                TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor', 'manufacturer')),
        manufacturer_id     TEXT REFERENCES manufacturers (id),
        password_hash       TEXT NOT NULL,
        totp_secret         BLOB,
        totp_last_step      INTEGER,
        created_at          INTEGER NOT NULL,
        password_changed_at INTEGER NOT NULL,
        disabled_at         INTEGER,
        last_login_at       INTEGER,
        CHECK ((role = 'manufacturer') = (manufacturer_id IS NOT NULL))
      ) STRICT;
      CREATE TABLE user_sessions (
        id_hmac      TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX user_sessions_user ON user_sessions (user_id);
      CREATE INDEX user_sessions_expires ON user_sessions (expires_at);
      -- Keys: user:<name> (also for names no user has, so the answer does not tell) and source:<address>.
      CREATE TABLE login_failures (
        key            TEXT PRIMARY KEY,
        failures       INTEGER NOT NULL,
        last_failed_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 13,
    name: 'tamper-evident audit trail: each writer\'s hash chain (chain id, seq, prev hash, hash)',
    sql: `
      -- registry/records/audit-chain.ts. Every writing registry instance appends to its own chain, so
      -- writers do not serialise on one head. Events recorded before this step keep NULLs: they form
      -- the virtual chain \`legacy\` (links computed in id order by whoever verifies or checkpoints,
      -- not stored), which the first audit checkpoint signs like any other chain.
      ALTER TABLE audit_events ADD COLUMN chain_id TEXT;
      ALTER TABLE audit_events ADD COLUMN chain_seq INTEGER;
      ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
      ALTER TABLE audit_events ADD COLUMN hash TEXT;
      -- A chain's seq is unique (a second writer on one chain fails loudly); verification reads a chain in seq order.
      CREATE UNIQUE INDEX audit_events_chain ON audit_events (chain_id, chain_seq) WHERE chain_id IS NOT NULL;
      -- Each chain's newest link, upserted with every event: the next link's prev without a scan, and
      -- the heads a checkpoint signs in one read. A convenience, not a proof: audit verify trusts only
      -- the events and the signed checkpoints (an edited head shows as a broken link).
      CREATE TABLE audit_chain_heads (
        chain_id   TEXT PRIMARY KEY,
        seq        INTEGER NOT NULL,
        hash       TEXT NOT NULL,
        event_id   INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 14,
    name: 'detections: templates (every version kept) and the detections they made',
    sql: `
      -- operations/detections (README "Detections"): a template edit is a new row (id, version+1),
      -- so a detection always names the thresholds it was held to. rules/assigned_to/evidence are
      -- JSON checked before they get here (operations/detections/template.ts, registry/records).
      CREATE TABLE detection_templates (
        id          TEXT NOT NULL,
        version     INTEGER NOT NULL CHECK (version >= 1),
        description TEXT NOT NULL,
        assigned_to TEXT NOT NULL,
        rules       TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        created_by  TEXT NOT NULL,
        PRIMARY KEY (id, version)
      ) STRICT;
      -- No foreign key to devices: a detection outlives nothing it names (devices are never deleted),
      -- and evidence is kept even when a device's activity is erased.
      CREATE TABLE detections (
        id               TEXT PRIMARY KEY,
        device_id        TEXT NOT NULL,
        template_id      TEXT NOT NULL,
        template_version INTEGER NOT NULL,
        rule             TEXT NOT NULL,
        action           TEXT NOT NULL CHECK (action IN ('record', 'alert', 'suspend')),
        state            TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
        summary          TEXT NOT NULL,
        evidence         TEXT NOT NULL,
        outcome          TEXT,
        detected_at      INTEGER NOT NULL,
        acknowledged_at  INTEGER,
        acknowledged_by  TEXT,
        acknowledge_note TEXT,
        resolved_at      INTEGER,
        resolved_by      TEXT,
        resolve_note     TEXT,
        FOREIGN KEY (template_id, template_version) REFERENCES detection_templates (id, version)
      ) STRICT;
      CREATE INDEX detections_newest ON detections (detected_at DESC, id DESC);
      CREATE INDEX detections_device ON detections (device_id, detected_at DESC, id DESC);
      CREATE INDEX detections_state ON detections (state, detected_at DESC, id DESC);
    `,
  },
  {
    version: 15,
    name: 'bulk jobs with their frozen device sets, two-person approvals, decommission records of retired devices',
    sql: `
      -- JSON {reason, ticket, evidence, at, actor, jobId?}, set in the status change that retires the device.
      ALTER TABLE devices ADD COLUMN decommission TEXT CHECK (decommission IS NULL OR json_valid(decommission));

      CREATE TABLE bulk_jobs (
        id           TEXT PRIMARY KEY,
        action       TEXT NOT NULL CHECK (action IN ('suspend', 'resume', 'revoke', 'retire')),
        state        TEXT NOT NULL CHECK (state IN ('preparing', 'pending-approval', 'running', 'done', 'failed', 'cancelled')),
        actor        TEXT NOT NULL,
        selection    TEXT NOT NULL CHECK (json_valid(selection)),
        reason       TEXT,
        ticket       TEXT,
        decommission TEXT CHECK (decommission IS NULL OR json_valid(decommission)),
        total        INTEGER NOT NULL DEFAULT 0,
        acted        INTEGER NOT NULL DEFAULT 0,
        skipped      INTEGER NOT NULL DEFAULT 0,
        approval_id  TEXT,
        error        TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        started_at   INTEGER,
        finished_at  INTEGER
      ) STRICT;
      CREATE INDEX bulk_jobs_state ON bulk_jobs (state);

      -- The frozen device set: one row per device, in selection order (rowid). A step leaves
      -- 'pending' once, in the transaction that acts on the device (or skips it).
      CREATE TABLE bulk_job_devices (
        job_id     TEXT NOT NULL REFERENCES bulk_jobs (id),
        device_id  TEXT NOT NULL,
        outcome    TEXT NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'acted', 'skipped')),
        note       TEXT,
        settled_at INTEGER,
        PRIMARY KEY (job_id, device_id)
      ) STRICT;
      CREATE INDEX bulk_job_devices_pending ON bulk_job_devices (job_id) WHERE outcome = 'pending';

      CREATE TABLE approvals (
        id           TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        request      TEXT NOT NULL CHECK (json_valid(request)),
        summary      TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        decided_by   TEXT,
        decided_at   INTEGER,
        note         TEXT,
        result       TEXT CHECK (result IS NULL OR json_valid(result))
      ) STRICT;
      CREATE INDEX approvals_state ON approvals (state);
    `,
  },
  {
    version: 16,
    name: 'CMP: one-time MAC secrets per device and the transactions in flight',
    sql: `
      -- enrollment/cmp (registry/cmp.ts). The secret itself is never stored: it is
      -- HMAC-SHA-256(pepper, nonce), and the pepper is kept outside the database.
      CREATE TABLE cmp_secrets (
        reference       TEXT PRIMARY KEY,
        device_id       TEXT NOT NULL,
        manufacturer_id TEXT NOT NULL,
        issued_by       TEXT NOT NULL,
        nonce           BLOB NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        transaction_id  TEXT
      ) STRICT;
      CREATE INDEX cmp_secrets_device ON cmp_secrets (device_id);
      CREATE INDEX cmp_secrets_expires ON cmp_secrets (expires_at);

      -- A retried message gets the stored answer; another message under a used transactionID is refused.
      CREATE TABLE cmp_transactions (
        transaction_id   TEXT PRIMARY KEY,
        owner            TEXT NOT NULL,
        request_sha256   TEXT NOT NULL,
        response         BLOB NOT NULL,
        confirm_sha256   TEXT,
        confirm_response BLOB,
        created_at       INTEGER NOT NULL,
        expires_at       INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX cmp_transactions_expires ON cmp_transactions (expires_at);
    `,
  },
  {
    version: 17,
    name: 'SCEP: challenge passwords, transactions, the RA certificate',
    sql: `
      -- One-time challenge passwords (registry/scep.ts), stored as their HMAC under the pepper.
      CREATE TABLE scep_challenges (
        hmac            TEXT PRIMARY KEY,
        device_id       TEXT NOT NULL,
        manufacturer_id TEXT NOT NULL,
        actor           TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        used_at         INTEGER,
        transaction_id  TEXT
      ) STRICT;
      CREATE INDEX scep_challenges_device ON scep_challenges (device_id);
      CREATE TABLE scep_transactions (
        transaction_id    TEXT PRIMARY KEY,
        device_id         TEXT NOT NULL,
        public_key_sha256 TEXT NOT NULL,
        status            TEXT NOT NULL CHECK (status IN ('pending', 'issued')),
        csr_der           BLOB,
        actor             TEXT NOT NULL,
        manufacturer_id   TEXT NOT NULL,
        serial_hex        TEXT,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL
      ) STRICT;
      -- The RA certificate: one row.
      CREATE TABLE scep_ra (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        certificate_der BLOB NOT NULL,
        key_uri         TEXT NOT NULL,
        created_at      INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 18,
    name: 'ACME (RFC 8555) for infrastructure certificates: EAB keys, accounts, orders, authorizations',
    sql: `
      -- enrollment/acme. An EAB key row holds no key material: the HMAC key is derived from the
      -- pepper outside the database (enrollment/acme/eab.ts). Lists (name patterns, identifiers,
      -- challenges) are JSON text: they are read and written whole, never queried inside.
      CREATE TABLE acme_eab_keys (
        kid        TEXT PRIMARY KEY,
        names      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at INTEGER,
        account_id TEXT UNIQUE
      ) STRICT;
      CREATE TABLE acme_accounts (
        id         TEXT PRIMARY KEY,
        status     TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
        jwk        TEXT NOT NULL,
        thumbprint TEXT NOT NULL UNIQUE,
        contact    TEXT NOT NULL,
        eab_kid    TEXT NOT NULL REFERENCES acme_eab_keys (kid),
        created_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE acme_orders (
        id                 TEXT PRIMARY KEY,
        account_id         TEXT NOT NULL REFERENCES acme_accounts (id),
        status             TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
        identifiers        TEXT NOT NULL,
        authorization_ids  TEXT NOT NULL,
        expires_at         INTEGER NOT NULL,
        not_before         INTEGER,
        not_after          INTEGER,
        error              TEXT,
        certificate_serial TEXT UNIQUE,
        replaces           TEXT,
        created_at         INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX acme_orders_account ON acme_orders (account_id);
      CREATE TABLE acme_authorizations (
        id         TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES acme_accounts (id),
        order_id   TEXT NOT NULL REFERENCES acme_orders (id),
        identifier TEXT NOT NULL,
        wildcard   INTEGER NOT NULL CHECK (wildcard IN (0, 1)),
        status     TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
        expires_at INTEGER NOT NULL,
        challenges TEXT NOT NULL
      ) STRICT;
      CREATE INDEX acme_authorizations_order ON acme_authorizations (order_id);
    `,
  },
];

export const LATEST_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1].version;

/** The file's schema version: 0 for an empty file. */
export function readSchemaVersion(db: Database.Database): number {
  const stamped = db.pragma('user_version', { simple: true }) as number;
  const hasLog = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).get() !== undefined;
  const logged = hasLog
    ? ((db.prepare('SELECT max(version) AS version FROM schema_migrations').get() as { version: number | null }).version ?? 0)
    : 0;
  return Math.max(stamped, logged);
}

function refuseTooNew(version: number, latest = LATEST_SCHEMA_VERSION): void {
  if (version > latest) {
    throw new KakuinError('KAKUIN_E_SCHEMA_TOO_NEW',
      `the registry schema is at version ${version} but this kakuin knows versions up to ${latest}; upgrade kakuin`);
  }
}

/**
 * Brings the file up to LATEST_SCHEMA_VERSION, one step per transaction. Each step re-reads the
 * version under the write lock: another process opening the same file at the same moment may have
 * run it already, and then it is skipped.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  const latest = migrations[migrations.length - 1].version;
  const initial = readSchemaVersion(db);
  refuseTooNew(initial, latest);
  if (initial >= latest) return initial;

  const applyStep = db.transaction((step: Migration) => {
    const current = readSchemaVersion(db);
    refuseTooNew(current, latest);
    if (current >= step.version) return;
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    ) STRICT`);
    db.exec(step.sql);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(step.version, step.name, Date.now());
    // PRAGMA takes no bound parameters; the version is an integer from the list above.
    db.pragma(`user_version = ${Math.trunc(step.version)}`);
  });
  for (const step of migrations) applyStep.immediate(step);
  return readSchemaVersion(db);
}

/**
 * For read-only openings (OCSP responder, gateway): no migration may run, so the file must already
 * be at exactly the version this code reads. A missing or older schema means the read-write
 * process has not (yet) set it up: KAKUIN_E_REGISTRY_UNAVAILABLE, retry later.
 */
export function checkSchemaForReading(db: Database.Database): number {
  const version = readSchemaVersion(db);
  refuseTooNew(version);
  if (version < LATEST_SCHEMA_VERSION) {
    throw new KakuinError('KAKUIN_E_REGISTRY_UNAVAILABLE', version === 0
      ? 'the registry database has no schema yet; start a read-write kakuin process on it first'
      : `the registry schema is at version ${version}, older than ${LATEST_SCHEMA_VERSION}; open it read-write once to migrate it`);
  }
  return version;
}
