/**
 * Counters of the OCSP/CRL listener. Successful requests are counted, never logged (a log line per
 * request would cost more than answering it). Read them in /healthz.
 */
export class OcspMetrics {
  /** OCSP answers by source. */
  presigned = 0;
  liveCached = 0;
  liveSigned = 0;
  /** OCSP error statuses sent (RFC 6960 §2.3). */
  malformedRequest = 0;
  unauthorized = 0;
  tryLater = 0;
  internalError = 0;
  /** HTTP. */
  ocspGet = 0;
  ocspPost = 0;
  notModified = 0;
  crl = 0;
  caCertificate = 0;
  health = 0;
  notFound = 0;
  methodNotAllowed = 0;
  unsupportedMediaType = 0;
  bodyTooLarge = 0;
  uriTooLong = 0;
  clientErrors = 0;

  toJSON(): Record<string, number> {
    return { ...(this as unknown as Record<string, number>) };
  }
}
