/**
 * The one catalogue of kakuin's stable error codes.
 *
 * Every code a client or an operator can see is listed here with the HTTP status it maps to and
 * one line saying what it means. `docs/errors.md` documents each of them; a test fails when a code
 * is missing there, or when source code uses a `KAKUIN_E_*` string that is not in this table.
 * Retired codes stay here marked `retired: true` and are never reused (as boulder does).
 *
 * This module imports nothing, so every layer (including `pkix/`) may depend on it.
 */
export const ERROR_CATALOGUE = {
  // ---- generic request problems -------------------------------------------------------------
  KAKUIN_E_INTERNAL: { status: 500, summary: 'An unexpected internal error; the cause is logged, not sent.' },
  KAKUIN_E_BAD_REQUEST: { status: 400, summary: 'The request body or parameters could not be read.' },
  KAKUIN_E_VALIDATION: { status: 400, summary: 'A field is missing, has the wrong type or is out of range.' },
  KAKUIN_E_UNKNOWN_FIELD: { status: 400, summary: 'The body or query string names a field or filter this route does not know (a typo?); `field` names it, `accepted` lists the known names. Nothing was changed.' },
  KAKUIN_E_INVALID_FIELD: { status: 400, summary: 'A field or query parameter has the wrong JSON type (a number where a string belongs, a list for a single value); `field` names it.' },
  KAKUIN_E_BODY_TOO_LARGE: { status: 413, summary: 'The request body exceeds the configured limit.' },
  KAKUIN_E_UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'The Content-Type is not one this route accepts.' },
  KAKUIN_E_NOT_ACCEPTABLE: { status: 406, summary: 'No representation matches the Accept header.' },
  KAKUIN_E_ROUTE_NOT_FOUND: { status: 404, summary: 'No such route.' },
  KAKUIN_E_UNAUTHENTICATED: { status: 401, summary: 'Missing, unknown or disabled credentials.' },
  KAKUIN_E_FORBIDDEN: { status: 403, summary: 'The caller is authenticated but its role does not admit this route.' },
  KAKUIN_E_CSRF: { status: 403, summary: 'A request made with a session cookie that changes something (not GET) lacks the session\'s CSRF token in the `X-Kakuin-CSRF` header, or carries another one. Nothing was changed.' },
  KAKUIN_E_SESSION_EXPIRED: { status: 401, summary: 'The login session ended: idle longer than `users.sessionIdleMinutes`, or older than `users.sessionMaxHours`. Log in again.' },
  KAKUIN_E_LOGIN_FAILED: { status: 401, summary: 'Wrong user name or password (one answer for both, so it does not tell which names exist).' },
  KAKUIN_E_LOGIN_THROTTLED: { status: 429, summary: 'Too many failed logins for this user name or from this address: wait `Retry-After` seconds. The password was not checked.' },
  KAKUIN_E_TOTP_REQUIRED: { status: 401, summary: 'The password is right and the user has a TOTP second factor (every admin has): send `totp`, the 6-digit code of the authenticator app.' },
  KAKUIN_E_TOTP_INVALID: { status: 401, summary: 'The TOTP code is wrong, outside the ±30 s window, or was used already (a code is accepted once).' },
  KAKUIN_E_USER_DISABLED: { status: 403, summary: 'The user is disabled; an admin enables it (`kakuin user enable`, `POST /api/v1/users/{name}/enable`).' },
  KAKUIN_E_PASSWORD_WEAK: { status: 400, summary: 'A chosen password is shorter than 12 characters or longer than 1024.' },

  // ---- DER / PEM / PKCS#10 (pkix) ----------------------------------------------------------------
  KAKUIN_E_DER_MALFORMED: { status: 400, summary: 'The DER encoding is truncated, has bad lengths or the wrong structure.' },
  KAKUIN_E_PEM_MALFORMED: { status: 400, summary: 'The PEM text has no block of the expected label or bad base64.' },
  KAKUIN_E_CSR_SIGNATURE_INVALID: { status: 400, summary: 'The PKCS#10 self-signature (proof of possession) does not verify.' },
  KAKUIN_E_ALGORITHM_UNSUPPORTED: { status: 400, summary: 'The signature algorithm is refused (for example SHA-1) or unknown.' },
  KAKUIN_E_KEY_UNSUPPORTED: { status: 400, summary: 'The public key type or curve is not accepted.' },
  KAKUIN_E_KEY_TOO_WEAK: { status: 400, summary: 'The public key is too short (RSA below 2048 bits).' },
  KAKUIN_E_ENCODING_INPUT: { status: 400, summary: 'A value cannot be encoded as asked (for example a character outside PrintableString).' },
  KAKUIN_E_CRL_UNSUPPORTED: { status: 400, summary: 'The CRL carries a critical CRL or entry extension kakuin cannot process (RFC 5280 §5.2, §5.3), so it must not be used.' },
  KAKUIN_E_CRL_UNVERIFIED: { status: 502, summary: 'revocation sync refused a fetched CRL or CA certificate: bad signature, another issuer, a delta, a lower CRL number than one already used, or a CA certificate that does not chain to --trust. It keeps what it had.' },
  KAKUIN_E_OCSP_HASH_UNSUPPORTED: { status: 400, summary: 'An OCSP CertID names a hash algorithm other than SHA-1, SHA-256, SHA-384 or SHA-512.' },
  KAKUIN_E_OCSP_NONCE_INVALID: { status: 400, summary: 'The OCSP nonce is not 1 to 32 octets (RFC 8954 §2.1).' },
  KAKUIN_E_CMS_SIGNATURE_INVALID: { status: 400, summary: 'A CMS SignedData (a SCEP pkiMessage) does not verify: its signer certificate is missing, or the message digest or the signature does not match.' },
  KAKUIN_E_CMS_DECRYPT: { status: 400, summary: 'A CMS EnvelopedData (a SCEP pkcsPKIEnvelope) is not encrypted to kakuin\'s RA certificate or does not decrypt.' },

  // ---- keys (hsm-adapters) ---------------------------------------------------------------------
  KAKUIN_E_KEY_URI_INVALID: { status: 500, summary: 'A key URI is malformed or names an unknown key store.' },
  KAKUIN_E_KEY_NOT_FOUND: { status: 500, summary: 'No key exists under the given URI.' },
  KAKUIN_E_KEY_EXISTS: { status: 500, summary: 'A key already exists under the URI being generated.' },
  KAKUIN_E_KEY_PASSPHRASE: { status: 500, summary: 'The key store passphrase is missing or does not decrypt the key.' },
  KAKUIN_E_KEY_ALGORITHM: { status: 500, summary: 'The key algorithm is not supported by this key store.' },
  KAKUIN_E_SIGNING_FAILED: { status: 500, summary: 'The key store failed to produce a signature.' },
  KAKUIN_E_KEY_OFFLINE: { status: 500, summary: 'The CA key is kept offline (an offline root); kakuin cannot sign with it.' },
  KAKUIN_E_PKCS11_MODULE: { status: 500, summary: 'The PKCS#11 module cannot be loaded, initialised or opened, or returned something unusable.' },
  KAKUIN_E_PKCS11_TOKEN_NOT_FOUND: { status: 500, summary: 'No token with the label a pkcs11: URI names is present in the module.' },
  KAKUIN_E_PKCS11_PIN: { status: 500, summary: 'The PKCS#11 user PIN is missing, wrong or locked.' },
  KAKUIN_E_CEREMONY_SHARES: { status: 500, summary: 'Key ceremony shares are too few, inconsistent or do not reproduce the check value.' },

  // ---- registry ---------------------------------------------------------------------------------
  KAKUIN_E_MANUFACTURER_NOT_FOUND: { status: 404, summary: 'No manufacturer with that id.' },
  KAKUIN_E_MANUFACTURER_EXISTS: { status: 409, summary: 'A manufacturer with that name exists already.' },
  KAKUIN_E_DEVICE_NOT_FOUND: { status: 404, summary: 'No device with that id.' },
  KAKUIN_E_DEVICE_EXISTS: { status: 409, summary: 'The manufacturer already has a device with that serial number or identifier.' },
  KAKUIN_E_CERTIFICATE_NOT_FOUND: { status: 404, summary: 'No certificate with that serial number.' },
  KAKUIN_E_ISSUER_NOT_FOUND: { status: 500, summary: 'The named issuing CA does not exist (run `kakuin init`).' },
  KAKUIN_E_ISSUER_UNKNOWN: { status: 404, summary: 'No CA with that issuer id (`GET /api/v1/ca/chain?issuer=`).' },
  KAKUIN_E_SERIAL_EXISTS: { status: 409, summary: 'A certificate with that serial number is already recorded.' },
  KAKUIN_E_PUBLIC_KEY_IN_USE: { status: 409, summary: 'The public key is already bound to another device.' },
  KAKUIN_E_TOKEN_EXISTS: { status: 409, summary: 'An admin token with that name exists already.' },
  KAKUIN_E_TOKEN_NOT_FOUND: { status: 404, summary: 'No admin token with that name.' },
  KAKUIN_E_TOKEN_STATE: { status: 409, summary: 'The admin token is revoked already (a revoked token never comes back; create a new one).' },
  KAKUIN_E_USER_EXISTS: { status: 409, summary: 'A user with that name exists already.' },
  KAKUIN_E_USER_NOT_FOUND: { status: 404, summary: 'No user with that name.' },
  KAKUIN_E_USER_STATE: { status: 409, summary: 'The user is disabled already (disable) or not disabled (enable).' },
  KAKUIN_E_REGISTRY_UNAVAILABLE: { status: 503, summary: 'The registry cannot be reached or is busy; retry.' },
  KAKUIN_E_SCHEMA_TOO_NEW: { status: 500, summary: 'The registry schema is newer than this kakuin; upgrade kakuin.' },

  // ---- CA / issuance ----------------------------------------------------------------------------
  KAKUIN_E_INVALID_SERIAL_NUMBER: { status: 400, summary: 'A device serial number is empty, too long or outside PrintableString.' },
  KAKUIN_E_INVALID_IDENTIFIER: { status: 400, summary: 'A device identifier (MAC, IMEI, ...) has the wrong format.' },
  KAKUIN_E_CSR_SUBJECT_MISMATCH: { status: 400, summary: 'The CSR subject names a different device than the device record.' },
  KAKUIN_E_CERTIFICATE_STATE: { status: 409, summary: 'The certificate status does not allow this change (a revoked certificate never comes back; only a held one can be released).' },
  KAKUIN_E_DEVICE_STATE: { status: 409, summary: 'The device lifecycle state does not allow this operation.' },
  KAKUIN_E_JOB_NOT_FOUND: { status: 404, summary: 'No bulk job with that id.' },
  KAKUIN_E_JOB_STATE: { status: 409, summary: 'The bulk job is not in a state that allows this (it is already running, finished, or waits for approval).' },
  KAKUIN_E_JOB_STEP_SETTLED: { status: 409, summary: 'A bulk job already acted on (or settled) this device; the status change was rolled back, so no device is acted on twice.' },
  KAKUIN_E_BULK_EMPTY: { status: 400, summary: 'The bulk action\'s filter or id list selects no device; no job was created.' },
  KAKUIN_E_BULK_TOO_LARGE: { status: 400, summary: 'The bulk action selects more devices than bulk.maxDevices; narrow the filter. No job was created.' },
  KAKUIN_E_APPROVAL_NOT_FOUND: { status: 404, summary: 'No approval with that id.' },
  KAKUIN_E_APPROVAL_SELF: { status: 403, summary: 'The principal that requested an act cannot approve or reject it: two-person approval needs a different principal.' },
  KAKUIN_E_APPROVAL_ROLE: { status: 403, summary: 'The caller\'s role may not decide this kind of approval (README "Approvals" says which role decides which act).' },
  KAKUIN_E_APPROVAL_EXPIRED: { status: 409, summary: 'The approval was not decided within approvals.ttlMinutes; it is expired and its act will never run. Request it again.' },
  KAKUIN_E_APPROVAL_DECIDED: { status: 409, summary: 'The approval was already approved or rejected; an act runs at most once.' },
  KAKUIN_E_CA_NOT_INITIALIZED: { status: 503, summary: 'The CA hierarchy has not been created yet (run `kakuin init`).' },
  KAKUIN_E_CA_EXISTS: { status: 500, summary: '`kakuin init` found an existing CA hierarchy and will not overwrite it.' },

  // ---- device gateway (mTLS, telemetry) -----------------------------------------------------------
  KAKUIN_E_TELEMETRY_INVALID: { status: 400, summary: 'The telemetry body is not a JSON object (it does not parse, or is an array or a bare value).' },
  KAKUIN_E_TELEMETRY_TOO_LARGE: { status: 413, summary: 'The telemetry body exceeds the gateway\'s configured size limit.' },
  KAKUIN_E_ROUTE_BODY_TOO_LARGE: { status: 413, summary: 'A request body on a proxied route (gateway.routes) exceeds that route\'s bodyLimitBytes; the upstream request is aborted and the connection closed.' },
  KAKUIN_E_UPGRADE_REFUSED: { status: 403, summary: 'The gateway refused a connection upgrade on a proxied route: only WebSocket upgrades pass, and never the `mqtt` subprotocol (it would bypass the MQTT topic policy; use the MQTT front end).' },
  KAKUIN_E_UPSTREAM_UNAVAILABLE: { status: 502, summary: 'The gateway could not deliver the data upstream (connection failed, timed out, or the upstream answered 5xx).' },
  KAKUIN_E_HANDSHAKES_SHED: { status: 503, summary: 'The gateway closed a new device connection before its TLS handshake: gateway.maxPendingHandshakes handshakes were already in flight (reconnect storm). Logged; the device sees a closed connection and should retry with backoff.' },
  KAKUIN_E_SOURCE_RATE_LIMITED: { status: 429, summary: 'The gateway closed a new device connection before its TLS handshake: its source address opened more than gateway.perSourceConnectionsPerSecond. Logged; the device sees a closed connection.' },
  KAKUIN_E_EVENT_DELIVERY: { status: 502, summary: 'An events-out destination (webhook or syslog collector) did not take an event: connection or TLS failure, timeout, or a webhook answer other than 2xx. Logged; the event is retried with backoff and never skipped.' },
  // ---- the tamper-evident audit trail (operations/audit; `kakuin audit verify` exits 3 with one of these) ----
  KAKUIN_E_AUDIT_EVENT_ALTERED: { status: 409, summary: 'An audit event does not match its hash (or is not the event a checkpoint signed at its place): it was edited.' },
  KAKUIN_E_AUDIT_EVENT_MISSING: { status: 409, summary: 'An audit hash chain jumps over sequence numbers: events before the named one were deleted.' },
  KAKUIN_E_AUDIT_EVENT_REORDERED: { status: 409, summary: 'An audit chain\'s events appear out of sequence order (ids swapped, or a duplicate).' },
  KAKUIN_E_AUDIT_EVENT_INSERTED: { status: 409, summary: 'An audit event does not follow its chain (its prev hash differs), or has no chain link after chained events: it was inserted.' },
  KAKUIN_E_AUDIT_TAIL_MISSING: { status: 409, summary: 'A checkpoint (stored or collected off-host) signed a chain head that is no longer in the trail: the newest events were deleted.' },
  KAKUIN_E_AUDIT_CHECKPOINT_INVALID: { status: 409, summary: 'An audit checkpoint is malformed, its signature does not verify, or its signer certificate does not chain to the root with id-kp-documentSigning.' },
  KAKUIN_E_SYNC_UPSTREAM: { status: 502, summary: 'revocation sync could not fetch from kakuin\'s plain-HTTP listener (connection refused, timeout, an unexpected status or an oversized answer); it retries.' },
  KAKUIN_E_ACTIVITY_OFF: { status: 409, summary: 'Device activity is not recorded by this installation (activity.enabled is false, or the registry adapter has no activity store yet), so activity routes and filters cannot answer.' },
  KAKUIN_E_DETECTIONS_OFF: { status: 409, summary: 'Detections are not evaluated or stored by this process (detections.enabled is false, or its registry connection is read-only), so detection routes cannot answer.' },
  KAKUIN_E_DETECTION_NOT_FOUND: { status: 404, summary: 'No detection with that id.' },
  KAKUIN_E_DETECTION_STATE: { status: 409, summary: 'The detection is not in a state that allows this (open → acknowledged → resolved).' },
  KAKUIN_E_DETECTION_TEMPLATE_NOT_FOUND: { status: 404, summary: 'No detection template with that id (or version).' },
  KAKUIN_E_DETECTION_TEMPLATE_EXISTS: { status: 409, summary: 'A detection template with that id exists already (POST), or another writer made the next version first (PUT).' },
  KAKUIN_E_STATUS_STALE: { status: 503, summary: 'The gateway cannot currently confirm revocation status (the feed or OCSP answer is older than statusGraceMs), so it fails closed.' },

  // ---- legacy three-factor token path --------------------------------------------------------------
  KAKUIN_E_COMMON_AUTH_ID_NOT_FOUND: { status: 404, summary: 'No common auth ID with that id.' },
  KAKUIN_E_COMMON_AUTH_ID_EXISTS: { status: 409, summary: 'A common auth ID with that name exists already.' },
  KAKUIN_E_LEGACY_UNIQUE_ID_NOT_OWN: { status: 400, summary: 'The legacy unique ID is not one of the device\'s own identifiers (IMEI, MAC, serial number, hardware id).' },
  KAKUIN_E_LEGACY_CREDENTIALS_EXIST: { status: 409, summary: 'Another device already has that unique ID under the common auth ID, or the same secret.' },
  KAKUIN_E_LEGACY_CREDENTIALS_NOT_FOUND: { status: 404, summary: 'The device has no (enabled) legacy credentials.' },
  KAKUIN_E_LEGACY_IMPORT_REFUSED: { status: 422, summary: 'An import of legacy secrets was refused as a whole: the message names each factory-default, shared or weak secret by row.' },
  KAKUIN_E_LEGACY_AUTH_FAILED: { status: 401, summary: 'Legacy authentication failed; deliberately silent about which factor was wrong.' },
  KAKUIN_E_LEGACY_LOCKED: { status: 429, summary: 'Was: too many failed legacy authentications for this device, locked until Retry-After. Nothing locks since issue 13 (failures back off instead).', retired: true },
  KAKUIN_E_LEGACY_THROTTLED: { status: 429, summary: 'Too many failed legacy authentications from this source or common auth ID: slow down (Retry-After).' },
  KAKUIN_E_LEGACY_TOKEN_INVALID: { status: 401, summary: 'The legacy token is missing, malformed, forged, expired, of another device, or killed (device or credentials changed).' },

  // ---- production-line enrollment ------------------------------------------------------------------
  KAKUIN_E_STATION_NOT_FOUND: { status: 404, summary: 'No factory station with that id.' },
  KAKUIN_E_STATION_EXISTS: { status: 409, summary: 'The manufacturer already has a station with that name.' },
  KAKUIN_E_DEVICE_NOT_REGISTERED: { status: 403, summary: 'Enrollment refused: the manufacturer did not pre-register a device with that serial number (recorded as an audit event).' },
  KAKUIN_E_DEVICE_ALREADY_ENROLLED: { status: 409, summary: 'Issuance refused: the device already has a live certificate for another key (a clone?) and no re-enrollment was allowed.' },
  KAKUIN_E_STATION_RATE_LIMITED: { status: 429, summary: 'The station exceeded its enrollment rate (enrollment.stationPerSecond, burst enrollment.stationBurst); in a batch only the items over it fail.' },
  KAKUIN_E_STATION_QUOTA_EXHAUSTED: { status: 429, summary: 'The station has used up its issuance quota (POST /api/v1/stations/{id}/quota); an admin may raise it.' },
  KAKUIN_E_SCEP_CHALLENGE_INVALID: { status: 403, summary: 'SCEP PKCSReq refused: the challengePassword is missing, unknown, used already, or for another device (POST /api/v1/devices/{id}/scep-challenge issues one).' },
  KAKUIN_E_SCEP_CHALLENGE_EXPIRED: { status: 403, summary: 'SCEP PKCSReq refused: the challengePassword has expired; the station issues a new one.' },
  KAKUIN_E_SCEP_BAD_TIME: { status: 400, summary: 'SCEP request refused: its signingTime is more than an hour from the server\'s clock.' },
  KAKUIN_E_SCEP_TRANSACTION_UNKNOWN: { status: 404, summary: 'SCEP CertPoll refused: no pending or finished request has that transactionID (or it is another requester\'s).' },
  KAKUIN_E_SCEP_TRANSACTION_CONFLICT: { status: 409, summary: 'SCEP request refused: the transactionID was used before for another key or device.' },
  KAKUIN_E_SCEP_SIGNER_INVALID: { status: 400, summary: 'SCEP request refused: a PKCSReq is not signed with the key it asks a certificate for, or a RenewalReq is not signed with a good device certificate kakuin issued.' },
  KAKUIN_E_SCEP_MESSAGE_UNSUPPORTED: { status: 400, summary: 'SCEP request refused: a messageType other than PKCSReq, RenewalReq or CertPoll, or an HTTP operation other than GetCACaps, GetCACert and PKIOperation.' },
  KAKUIN_E_BATCH_TOO_LARGE: { status: 413, summary: 'A batch or import has more items than the limit (10,000); the items beyond it are refused.' },
  KAKUIN_E_BATCH_BODY_TOO_LARGE: { status: 413, summary: 'An NDJSON batch body is larger than `enrollment.batchBodyLimitBytes`: refused before reading when it declares its length, otherwise the lines past the limit are not processed and the connection is closed.' },
  KAKUIN_E_BATCH_ITEM_MALFORMED: { status: 400, summary: 'One line of an NDJSON batch or one row of an import is not a valid item.' },
  KAKUIN_E_CSV_MALFORMED: { status: 400, summary: 'A CSV import is not RFC 4180 CSV (an unclosed quote, text after a closing quote, an overlong row); the message names the line; nothing was imported.' },
  KAKUIN_E_PROFILE_UNKNOWN: { status: 400, summary: 'No certificate profile of that name is configured (`device` and `ca.profiles`).' },
  KAKUIN_E_PROFILE_NOT_ALLOWED: { status: 403, summary: 'The manufacturer is not allowed that certificate profile (POST /api/v1/manufacturers/{id}/profiles); without a list only `device` is.' },
  KAKUIN_E_STATION_KEY_EXPIRED: { status: 401, summary: 'The station API key is older than `enrollment.stationKeyMaxAgeDays`; an admin rotates it.' },
  KAKUIN_E_STATION_CA_UNAVAILABLE: { status: 503, summary: 'There is no station CA to issue station certificates (the root is offline and none was imported: `kakuin ca import --root F --station F`); stations use API keys.' },
  KAKUIN_E_CMP_MESSAGE_INVALID: { status: 400, summary: 'A CMP PKIMessage kakuin cannot act on: an unsupported body type, no transactionID or senderNonce, a request without a key or proof of possession, a certConf for no open transaction (answered as a CMP error, PKIFailureInfo badRequest).' },
  KAKUIN_E_CMP_UNSUPPORTED_VERSION: { status: 400, summary: 'The CMP message has a pvno other than 2 (cmp2000) or 3 (cmp2021) (PKIFailureInfo unsupportedVersion).' },
  KAKUIN_E_CMP_PROTECTION_INVALID: { status: 401, summary: 'The CMP message protection does not verify: a wrong MAC or signature, no protection, or a protection certificate missing from extraCerts (PKIFailureInfo badMessageCheck).' },
  KAKUIN_E_CMP_SECRET_UNKNOWN: { status: 401, summary: 'The CMP MAC secret named by senderKID (`openssl cmp -ref`) is unknown, expired, or was used by another transaction; a station obtains a new one (POST /api/v1/devices/{id}/cmp-secret) (PKIFailureInfo notAuthorized).' },
  KAKUIN_E_CMP_TRANSACTION_IN_USE: { status: 409, summary: 'The CMP transactionID belongs to an earlier, different message (or another sender); a retry must repeat the message byte for byte (PKIFailureInfo transactionIdInUse).' },

  // ---- ACME (enrollment/acme; RFC 8555 §6.7: each answered as application/problem+json with the ACME type named) ----
  KAKUIN_E_ACME_MALFORMED: { status: 400, summary: 'ACME `urn:ietf:params:acme:error:malformed`: the JWS or its payload is not what RFC 8555 §6.2 asks for (flattened JSON, one signature, `url` equal to the request URL, `jwk` xor `kid`, fields of the right type).' },
  KAKUIN_E_ACME_BAD_NONCE: { status: 400, summary: 'ACME `badNonce`: the JWS nonce is missing, unknown, expired or used already (a replay); the answer carries a fresh Replay-Nonce to retry with.' },
  KAKUIN_E_ACME_BAD_SIGNATURE_ALGORITHM: { status: 400, summary: 'ACME `badSignatureAlgorithm`: the JWS `alg` is not ES256, ES384, RS256 or EdDSA (Ed25519), or does not fit the key; `algorithms` lists the accepted ones.' },
  KAKUIN_E_ACME_UNAUTHORIZED: { status: 403, summary: 'ACME `unauthorized`: the JWS signature does not verify with the account key, or the account may not act on this object.' },
  KAKUIN_E_ACME_ACCOUNT_DOES_NOT_EXIST: { status: 400, summary: 'ACME `accountDoesNotExist`: no account with that key or `kid` (newAccount with onlyReturnExisting, or a JWS naming an unknown account).' },
  KAKUIN_E_ACME_ACCOUNT_DEACTIVATED: { status: 403, summary: 'ACME `unauthorized`: the account is deactivated (RFC 8555 §7.3.6) and may do nothing more.' },
  KAKUIN_E_ACME_EXTERNAL_ACCOUNT_REQUIRED: { status: 400, summary: 'ACME `externalAccountRequired`: newAccount without an external account binding; get one with `kakuin acme eab create`.' },
  KAKUIN_E_ACME_EAB_INVALID: { status: 403, summary: 'ACME `unauthorized`: the external account binding names an unknown or revoked key id, its MAC does not verify with that key\'s HMAC key, or it does not bind the account key (RFC 8555 §7.3.4).' },
  KAKUIN_E_ACME_EAB_USED: { status: 403, summary: 'ACME `unauthorized`: that EAB key id already bound an account (one key, one account); create another key.' },
  KAKUIN_E_ACME_EAB_EXISTS: { status: 409, summary: 'An EAB key with that key id is recorded already (a random id collided: retry).' },
  KAKUIN_E_ACME_EAB_NOT_FOUND: { status: 404, summary: '`kakuin acme eab revoke` (or its admin route) names no EAB key id that is recorded.' },
  KAKUIN_E_ACME_ACCOUNT_EXISTS: { status: 409, summary: 'ACME `malformed` (409): another account has that key already (key rollover to a key in use, RFC 8555 §7.3.5).' },
  KAKUIN_E_ACME_NOT_FOUND: { status: 404, summary: 'ACME `malformed` (404): no such account, order, authorization, challenge or certificate, or not this account\'s.' },
  KAKUIN_E_ACME_REJECTED_IDENTIFIER: { status: 400, summary: 'ACME `rejectedIdentifier`: the order names an identifier the account\'s EAB name patterns do not allow (`kakuin acme eab create --names`).' },
  KAKUIN_E_ACME_UNSUPPORTED_IDENTIFIER: { status: 400, summary: 'ACME `unsupportedIdentifier`: an identifier that is not a dns name or IP address, a malformed name, or a wildcard where none can be validated.' },
  KAKUIN_E_ACME_ORDER_NOT_READY: { status: 403, summary: 'ACME `orderNotReady`: finalize before every authorization of the order is valid, or a second finalize.' },
  KAKUIN_E_ACME_BAD_CSR: { status: 400, summary: 'ACME `badCSR`: the finalize CSR does not parse, its signature does not verify, its key is refused, or its names are not exactly the order\'s identifiers.' },
  KAKUIN_E_ACME_CONNECTION: { status: 400, summary: 'ACME `connection`: validation could not reach the server at the identifier\'s address (http-01 on acme.validationPorts.http, tls-alpn-01 on acme.validationPorts.tlsAlpn).' },
  KAKUIN_E_ACME_INCORRECT_RESPONSE: { status: 403, summary: 'ACME `incorrectResponse`: the challenge response did not match the key authorization (http-01 body, tls-alpn-01 acmeIdentifier, dns-01 TXT value).' },
  KAKUIN_E_ACME_TLS: { status: 400, summary: 'ACME `tls`: the tls-alpn-01 handshake did not negotiate acme-tls/1 or its certificate is not a valid RFC 8737 validation certificate.' },
  KAKUIN_E_ACME_DNS: { status: 400, summary: 'ACME `dns`: no dns-01 hook is configured (acme.dnsHook), or it failed or printed no TXT value.' },
  KAKUIN_E_ACME_ALREADY_REVOKED: { status: 400, summary: 'ACME `alreadyRevoked`: revokeCert for a certificate that is revoked already.' },
  KAKUIN_E_ACME_BAD_REVOCATION_REASON: { status: 400, summary: 'ACME `badRevocationReason`: a revocation reason code kakuin does not accept (RFC 5280 §5.3.1; 7 is unused).' },
  KAKUIN_E_ACME_RATE_LIMITED: { status: 429, summary: 'ACME `rateLimited`: too many pending challenge validations at once; retry after the Retry-After seconds.' },

  // ---- configuration / CLI ----------------------------------------------------------------------
  KAKUIN_E_CONFIG: { status: 500, summary: 'The configuration file or an environment override is invalid.' },
  KAKUIN_E_USAGE: { status: 400, summary: 'A `kakuin` command was called with missing or wrong arguments.' },
  KAKUIN_E_PORT_IN_USE: { status: 500, summary: 'A listener cannot bind its port (in use, or not allowed): the message names the listener and the variable that sets its port.' },
  KAKUIN_E_FILE_EXISTS: { status: 409, summary: 'A `kakuin` command would write a file that exists already; it never overwrites: remove it or name another file.' },
  KAKUIN_E_FILE_NOT_FOUND: { status: 404, summary: 'A file a `kakuin` command was given does not exist (or is a directory).' },
  KAKUIN_E_FILE_ACCESS: { status: 403, summary: 'A `kakuin` command may not read or write a file (owner, mode).' },
  KAKUIN_E_BACKUP_INTEGRITY: { status: 500, summary: '`kakuin restore` (or `backup`) found a backup that does not match its manifest (a file missing, added or changed: its SHA-256 differs) or a damaged registry copy; nothing was restored.' },
  KAKUIN_E_RESTORE_TARGET_NOT_EMPTY: { status: 500, summary: '`kakuin restore` refuses a data directory (or a registry, key or secret path) that already holds files, unless --force is given.' },
  KAKUIN_E_SERIAL_NOT_A_FILE_NAME: { status: 400, summary: '`kakuin enroll batch` refuses a device serial number that cannot safely be a file name (path separators, a leading dot, characters file systems dislike); the item goes to errors.ndjson.' },
  KAKUIN_E_SERVER_UNREACHABLE: { status: 503, summary: '`kakuin enroll batch` could not reach the kakuin server (connection refused or dropped, 5xx) after its retries with backoff; it exits 3 and a rerun resumes.' },
} as const satisfies Record<string, { status: number; summary: string; retired?: boolean }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** An error with a stable code. The message is safe to send to a client; `cause` is for the log only. */
export class KakuinError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** The request field or query parameter at fault (dotted path), when one is. */
  readonly field?: string;
  /** The names a route accepts where `field` stands (KAKUIN_E_UNKNOWN_FIELD). */
  readonly accepted?: readonly string[];

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; status?: number; field?: string; accepted?: readonly string[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KakuinError';
    this.code = code;
    this.status = options?.status ?? ERROR_CATALOGUE[code].status;
    if (options?.field !== undefined) this.field = options.field;
    if (options?.accepted !== undefined) this.accepted = options.accepted;
  }

  /** `{code, message}`, with `field` and `accepted` when they are known. */
  toJSON(): { code: ErrorCode; message: string; field?: string; accepted?: readonly string[] } {
    return {
      code: this.code, message: this.message,
      ...(this.field !== undefined && { field: this.field }),
      ...(this.accepted !== undefined && { accepted: this.accepted }),
    };
  }
}

export function isKakuinError(e: unknown): e is KakuinError {
  return e instanceof KakuinError;
}

/** True when `e` is a KakuinError carrying `code`. */
export function hasCode(e: unknown, code: ErrorCode): boolean {
  return e instanceof KakuinError && e.code === code;
}
