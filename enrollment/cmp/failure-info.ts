/**
 * Which PKIFailureInfo bit (RFC 9810 §5.2.3) answers each refusal on the CMP paths; docs/errors.md
 * lists the same mapping for operators.
 */
import { isKakuinError } from '../../errors/index.js';
import type { PkiFailureInfo } from '../../pkix/index.js';

const BY_CODE: Readonly<Record<string, PkiFailureInfo>> = {
  KAKUIN_E_DER_MALFORMED: 'badDataFormat',
  KAKUIN_E_PEM_MALFORMED: 'badDataFormat',
  KAKUIN_E_BAD_REQUEST: 'badRequest',
  KAKUIN_E_VALIDATION: 'badRequest',
  KAKUIN_E_CMP_MESSAGE_INVALID: 'badRequest',
  KAKUIN_E_PROFILE_UNKNOWN: 'badRequest',
  KAKUIN_E_CMP_UNSUPPORTED_VERSION: 'unsupportedVersion',
  KAKUIN_E_CMP_PROTECTION_INVALID: 'badMessageCheck',
  KAKUIN_E_CMP_SECRET_UNKNOWN: 'notAuthorized',
  KAKUIN_E_UNAUTHENTICATED: 'notAuthorized',
  KAKUIN_E_FORBIDDEN: 'notAuthorized',
  KAKUIN_E_STATION_KEY_EXPIRED: 'notAuthorized',
  KAKUIN_E_DEVICE_NOT_REGISTERED: 'notAuthorized',
  KAKUIN_E_DEVICE_ALREADY_ENROLLED: 'notAuthorized',
  KAKUIN_E_DEVICE_STATE: 'notAuthorized',
  KAKUIN_E_PROFILE_NOT_ALLOWED: 'notAuthorized',
  KAKUIN_E_CMP_TRANSACTION_IN_USE: 'transactionIdInUse',
  KAKUIN_E_CSR_SIGNATURE_INVALID: 'badPOP',
  KAKUIN_E_ALGORITHM_UNSUPPORTED: 'badAlg',
  KAKUIN_E_KEY_UNSUPPORTED: 'badCertTemplate',
  KAKUIN_E_KEY_TOO_WEAK: 'badCertTemplate',
  KAKUIN_E_CSR_SUBJECT_MISMATCH: 'badCertTemplate',
  KAKUIN_E_PUBLIC_KEY_IN_USE: 'badCertTemplate',
  KAKUIN_E_CERTIFICATE_STATE: 'certRevoked',
  KAKUIN_E_CERTIFICATE_NOT_FOUND: 'badCertId',
  KAKUIN_E_STATION_RATE_LIMITED: 'systemUnavail',
  KAKUIN_E_STATION_QUOTA_EXHAUSTED: 'systemUnavail',
  KAKUIN_E_REGISTRY_UNAVAILABLE: 'systemUnavail',
};

/** The failure bit for an error; systemFailure for anything unexpected (its cause is logged, not sent). */
export function failureInfoOf(e: unknown): PkiFailureInfo {
  return (isKakuinError(e) && BY_CODE[e.code]) || 'systemFailure';
}

export const CMP_FAILURE_BY_CODE = BY_CODE;
