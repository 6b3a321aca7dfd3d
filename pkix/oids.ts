/**
 * Object identifiers kakuin reads or writes, with the document that assigns each. Dotted decimal;
 * their DER encodings are built once by the modules that write them.
 */

// ---- signature algorithms -----------------------------------------------------------------------
/** RFC 5758 §3.2 */
export const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
export const OID_ECDSA_WITH_SHA384 = '1.2.840.10045.4.3.3';
export const OID_ECDSA_WITH_SHA512 = '1.2.840.10045.4.3.4';
/** RFC 3279 §2.2.3 (refused: SHA-1) */
export const OID_ECDSA_WITH_SHA1 = '1.2.840.10045.4.1';
/** RFC 8410 §3 */
export const OID_ED25519 = '1.3.101.112';
export const OID_ED448 = '1.3.101.113';
export const OID_X25519 = '1.3.101.110';
export const OID_X448 = '1.3.101.111';
/** RFC 8017 Appendix C / RFC 4055 §5 */
export const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
export const OID_MD5_WITH_RSA = '1.2.840.113549.1.1.4';
export const OID_SHA1_WITH_RSA = '1.2.840.113549.1.1.5';
export const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
export const OID_SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
export const OID_SHA384_WITH_RSA = '1.2.840.113549.1.1.12';
export const OID_SHA512_WITH_RSA = '1.2.840.113549.1.1.13';
export const OID_MGF1 = '1.2.840.113549.1.1.8';
/** RFC 3279 §2.3.2 */
export const OID_DSA = '1.2.840.10040.4.1';

// ---- hash algorithms (RFC 4055 §2.1, RFC 5754) --------------------------------------------------
export const OID_SHA1 = '1.3.14.3.2.26';
export const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
export const OID_SHA384 = '2.16.840.1.101.3.4.2.2';
export const OID_SHA512 = '2.16.840.1.101.3.4.2.3';

// ---- elliptic curves (RFC 5480 §2.1.1) ----------------------------------------------------------
export const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
export const OID_P256 = '1.2.840.10045.3.1.7';
export const OID_P384 = '1.3.132.0.34';
export const OID_P521 = '1.3.132.0.35';
export const OID_SECP256K1 = '1.3.132.0.10';

// ---- X.520 attribute types (RFC 5280 Appendix A, RFC 4519) ---------------------------------------
export const OID_AT_CN = '2.5.4.3';
export const OID_AT_SERIAL_NUMBER = '2.5.4.5';
export const OID_AT_C = '2.5.4.6';
export const OID_AT_L = '2.5.4.7';
export const OID_AT_ST = '2.5.4.8';
export const OID_AT_O = '2.5.4.10';
export const OID_AT_OU = '2.5.4.11';
export const OID_AT_DC = '0.9.2342.19200300.100.1.25';
export const OID_AT_EMAIL = '1.2.840.113549.1.9.1';

// ---- certificate extensions (RFC 5280 §4.2) ------------------------------------------------------
export const OID_CE_SUBJECT_KEY_IDENTIFIER = '2.5.29.14';
export const OID_CE_KEY_USAGE = '2.5.29.15';
export const OID_CE_SUBJECT_ALT_NAME = '2.5.29.17';
export const OID_CE_BASIC_CONSTRAINTS = '2.5.29.19';
export const OID_CE_CRL_DISTRIBUTION_POINTS = '2.5.29.31';
export const OID_CE_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
export const OID_CE_EXT_KEY_USAGE = '2.5.29.37';
export const OID_PE_AUTHORITY_INFO_ACCESS = '1.3.6.1.5.5.7.1.1';
/** RFC 8737 §6.1: id-pe-acmeIdentifier, the tls-alpn-01 validation certificate's extension. */
export const OID_PE_ACME_IDENTIFIER = '1.3.6.1.5.5.7.1.31';
/** RFC 6960 §4.2.2.2.1 */
export const OID_PKIX_OCSP_NOCHECK = '1.3.6.1.5.5.7.48.1.5';
/** RFC 5280 §4.2.2.1 */
export const OID_AD_OCSP = '1.3.6.1.5.5.7.48.1';
export const OID_AD_CA_ISSUERS = '1.3.6.1.5.5.7.48.2';
/** RFC 4108 §5: id-on-hardwareModuleName (IEEE 802.1AR DevID). */
export const OID_ON_HARDWARE_MODULE_NAME = '1.3.6.1.5.5.7.8.4';

// ---- extended key usages (RFC 5280 §4.2.1.12) -----------------------------------------------------
export const OID_KP_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OID_KP_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
export const OID_KP_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
export const OID_KP_EMAIL_PROTECTION = '1.3.6.1.5.5.7.3.4';
export const OID_KP_TIME_STAMPING = '1.3.6.1.5.5.7.3.8';
export const OID_KP_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
/** RFC 9336 id-kp-documentSigning: the audit signer's certificate (ca/audit-signer.ts) signs audit checkpoints, a document. */
export const OID_KP_DOCUMENT_SIGNING = '1.3.6.1.5.5.7.3.36';

// ---- PKCS#9 attributes (RFC 2985) -------------------------------------------------------------------
export const OID_PKCS9_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
export const OID_PKCS9_CHALLENGE_PASSWORD = '1.2.840.113549.1.9.7';
