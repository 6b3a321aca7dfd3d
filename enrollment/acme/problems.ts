/**
 * ACME problem documents (RFC 8555 §6.7, RFC 7807): every error on /acme/ is answered as
 * `application/problem+json` with the ACME error type, and carries kakuin's stable code beside it.
 * docs/errors.md names the ACME type of each ACME code.
 */
import type { ErrorRequestHandler } from 'express';
import { isKakuinError, KakuinError, type ErrorCode } from '../../errors/index.js';
import type { Logger } from '../../management-api/http-errors.js';

const ACME_ERROR = 'urn:ietf:params:acme:error:';

const TYPES: Partial<Record<ErrorCode, string>> = {
  KAKUIN_E_ACME_MALFORMED: 'malformed',
  KAKUIN_E_ACME_BAD_NONCE: 'badNonce',
  KAKUIN_E_ACME_BAD_SIGNATURE_ALGORITHM: 'badSignatureAlgorithm',
  KAKUIN_E_ACME_UNAUTHORIZED: 'unauthorized',
  KAKUIN_E_ACME_ACCOUNT_DOES_NOT_EXIST: 'accountDoesNotExist',
  KAKUIN_E_ACME_ACCOUNT_DEACTIVATED: 'unauthorized',
  KAKUIN_E_ACME_EXTERNAL_ACCOUNT_REQUIRED: 'externalAccountRequired',
  KAKUIN_E_ACME_EAB_INVALID: 'unauthorized',
  KAKUIN_E_ACME_EAB_USED: 'unauthorized',
  KAKUIN_E_ACME_ACCOUNT_EXISTS: 'malformed',
  KAKUIN_E_ACME_NOT_FOUND: 'malformed',
  KAKUIN_E_ACME_REJECTED_IDENTIFIER: 'rejectedIdentifier',
  KAKUIN_E_ACME_UNSUPPORTED_IDENTIFIER: 'unsupportedIdentifier',
  KAKUIN_E_ACME_ORDER_NOT_READY: 'orderNotReady',
  KAKUIN_E_ACME_BAD_CSR: 'badCSR',
  KAKUIN_E_ACME_CONNECTION: 'connection',
  KAKUIN_E_ACME_INCORRECT_RESPONSE: 'incorrectResponse',
  KAKUIN_E_ACME_TLS: 'tls',
  KAKUIN_E_ACME_DNS: 'dns',
  KAKUIN_E_ACME_ALREADY_REVOKED: 'alreadyRevoked',
  KAKUIN_E_ACME_BAD_REVOCATION_REASON: 'badRevocationReason',
  KAKUIN_E_ACME_RATE_LIMITED: 'rateLimited',
  // Codes of the layers below, as an ACME client should read them.
  KAKUIN_E_BODY_TOO_LARGE: 'malformed',
  KAKUIN_E_BAD_REQUEST: 'malformed',
  KAKUIN_E_VALIDATION: 'malformed',
  KAKUIN_E_UNKNOWN_FIELD: 'malformed',
  KAKUIN_E_INVALID_FIELD: 'malformed',
  KAKUIN_E_ROUTE_NOT_FOUND: 'malformed',
  KAKUIN_E_UNSUPPORTED_MEDIA_TYPE: 'malformed',
  KAKUIN_E_CERTIFICATE_NOT_FOUND: 'malformed',
  KAKUIN_E_REGISTRY_UNAVAILABLE: 'serverInternal',
};

/** The ACME error type of a code (`urn:ietf:params:acme:error:...`). */
export function acmeErrorType(code: ErrorCode): string {
  return ACME_ERROR + (TYPES[code] ?? 'serverInternal');
}

export interface AcmeProblemJson {
  type: string;
  detail: string;
  status: number;
  /**
   * kakuin's stable code. Not `code`: certbot's acme library (messages.Error) has a read-only `code`
   * property of its own and fails on a problem document that carries one.
   */
  kakuinCode: ErrorCode;
  algorithms?: string[];
}

/** A stored or sent problem for a KakuinError (validation failures are kept with their challenge). */
export function problemOf(e: KakuinError): AcmeProblemJson {
  const status = e.status >= 500 ? 500 : e.status;
  return { type: acmeErrorType(e.code), detail: e.status >= 500 ? 'internal error' : e.message, status, kakuinCode: e.code };
}

/** Extra fields a problem carries (badSignatureAlgorithm lists the accepted algorithms, RFC 8555 §6.2). */
export class AcmeError extends KakuinError {
  constructor(code: ErrorCode, message: string, readonly extra: { algorithms?: string[] } = {}, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Errors on /acme/: problem+json with a fresh nonce (badNonce must carry one; every answer may). */
export function acmeProblemHandler(logger: Logger, freshNonce: () => string): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let error: KakuinError;
    if (isKakuinError(err)) error = err;
    else if ((err as { type?: string }).type === 'entity.too.large') error = new KakuinError('KAKUIN_E_BODY_TOO_LARGE', 'the JWS is too large');
    else if (typeof (err as { status?: unknown }).status === 'number' && (err as { status: number }).status < 500) error = new KakuinError('KAKUIN_E_BAD_REQUEST', 'the request could not be read');
    else error = new KakuinError('KAKUIN_E_INTERNAL', 'internal error', { cause: err });
    const fields = { code: error.code, method: req.method, path: req.path, status: error.status };
    if (error.status >= 500) logger.error('ACME request failed', { ...fields, cause: String(error.cause ?? err) });
    else logger.info('ACME request refused', { ...fields, message: error.message });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const problem: AcmeProblemJson = { ...problemOf(error), ...(error instanceof AcmeError && error.extra) };
    res.status(problem.status).set('Replay-Nonce', freshNonce()).type('application/problem+json').send(JSON.stringify(problem));
  };
}
