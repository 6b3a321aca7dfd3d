/** Object identifiers of CMS (RFC 5652), its algorithms (RFC 3565, RFC 5753, RFC 3394) and SCEP (RFC 8894 §3.2.1). */

// RFC 5652 §4, §5, §6, §11
export const OID_CMS_DATA = '1.2.840.113549.1.7.1';
export const OID_CMS_SIGNED_DATA = '1.2.840.113549.1.7.2';
export const OID_CMS_ENVELOPED_DATA = '1.2.840.113549.1.7.3';
export const OID_ATTR_CONTENT_TYPE = '1.2.840.113549.1.9.3';
export const OID_ATTR_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
export const OID_ATTR_SIGNING_TIME = '1.2.840.113549.1.9.5';

// RFC 3565 §4.1: AES-CBC content encryption (parameters: the 16-octet IV)
export const OID_AES128_CBC = '2.16.840.1.101.3.4.1.2';
export const OID_AES192_CBC = '2.16.840.1.101.3.4.1.22';
export const OID_AES256_CBC = '2.16.840.1.101.3.4.1.42';
// RFC 3394 / RFC 3565 §2.3.2: AES key wrap
export const OID_AES256_WRAP = '2.16.840.1.101.3.4.1.45';
// RFC 5753 §7.1.4 (SEC 1): ephemeral-static ECDH with the X9.63 KDF over SHA-256
export const OID_DH_SINGLE_PASS_STD_DH_SHA256_KDF = '1.3.132.1.11.1';

// RFC 8894 §3.2.1: the SCEP signed attributes (id-attributes, 2.16.840.1.113733.1.9.x)
export const OID_SCEP_MESSAGE_TYPE = '2.16.840.1.113733.1.9.2';
export const OID_SCEP_PKI_STATUS = '2.16.840.1.113733.1.9.3';
export const OID_SCEP_FAIL_INFO = '2.16.840.1.113733.1.9.4';
export const OID_SCEP_SENDER_NONCE = '2.16.840.1.113733.1.9.5';
export const OID_SCEP_RECIPIENT_NONCE = '2.16.840.1.113733.1.9.6';
export const OID_SCEP_TRANSACTION_ID = '2.16.840.1.113733.1.9.7';

// RFC 7030 §4.4.1.1 / §4.4.1.2: the CSR attributes that name a key for serverkeygen to encrypt to
export const OID_DECRYPT_KEY_IDENTIFIER = '1.2.840.113549.1.9.16.2.37';
export const OID_ASYMMETRIC_DECRYPT_KEY_IDENTIFIER = '1.2.840.113549.1.9.16.2.54';
// RFC 5958 §3: the content type of an AsymmetricKeyPackage (SEQUENCE OF OneAsymmetricKey)
export const OID_CT_ASYMMETRIC_KEY_PACKAGE = '2.16.840.1.101.2.1.2.78.5';
