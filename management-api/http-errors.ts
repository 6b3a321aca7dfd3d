import type { ErrorRequestHandler, RequestHandler } from 'express';
import { isKakuinError, KakuinError } from '../errors/index.js';

/** What the HTTP layers need of a logger (the composition root provides one). */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const routeNotFound: RequestHandler = (req, _res, next) => {
  next(new KakuinError('KAKUIN_E_ROUTE_NOT_FOUND', `no route ${req.method} ${req.path}`));
};

/** body-parser's own errors carry a `type`; map the ones a client can cause to stable codes. */
function fromBodyParser(err: { type?: string; status?: number; limit?: number; length?: number }): KakuinError | undefined {
  switch (err.type) {
    case 'entity.too.large': return bodyTooLarge(err);
    case 'entity.parse.failed': return new KakuinError('KAKUIN_E_BAD_REQUEST', 'the request body is not valid JSON');
    case 'encoding.unsupported':
    case 'charset.unsupported': return new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', 'unsupported body encoding or charset');
    case 'request.aborted':
    case 'request.size.invalid': return new KakuinError('KAKUIN_E_BAD_REQUEST', 'the request body was cut short');
    default: return undefined;
  }
}

/** 413 with the limit, so the client knows what to send instead (body-parser's error carries it). */
export function bodyTooLarge(err: { limit?: number; length?: number }): KakuinError {
  const limit = typeof err.limit === 'number' ? `; this route takes at most ${err.limit} bytes` : '';
  const length = typeof err.length === 'number' ? ` (${err.length} bytes)` : '';
  return new KakuinError('KAKUIN_E_BODY_TOO_LARGE', `the request body is too large${length}${limit}`);
}

/**
 * Express and its router mark client mistakes they detect themselves (a malformed %-encoding in
 * the path is a URIError with status 400) with a 4xx status: they are bad requests, not bugs.
 */
function fromClientStatus(err: unknown): KakuinError | undefined {
  const status = (err as { status?: unknown; statusCode?: unknown } | undefined)?.status ?? (err as { statusCode?: unknown } | undefined)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new KakuinError('KAKUIN_E_BAD_REQUEST', 'the request could not be read (malformed path or parameters)');
  }
  return undefined;
}

/** Errors become `{code, message}` with the code's status; the internal cause goes to the log only. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let error: KakuinError;
    if (isKakuinError(err)) {
      error = err;
    } else {
      error = fromBodyParser(err as { type?: string }) ?? fromClientStatus(err) ?? new KakuinError('KAKUIN_E_INTERNAL', 'internal error');
    }
    const fields = { code: error.code, method: req.method, path: req.path, status: error.status };
    if (error.status >= 500) {
      logger.error('request failed', { ...fields, cause: describe(isKakuinError(err) ? err.cause ?? err : err) });
    } else {
      logger.info('request refused', { ...fields, message: error.message });
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(error.status).json(error.toJSON());
  };
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack ? `\n${e.stack}` : ''}`;
  return String(e);
}
