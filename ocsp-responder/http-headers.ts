/**
 * Header values of the OCSP/CRL listener, memoised: many answers share a thisUpdate second (a
 * batch is signed within one) and a max-age, so the hot path formats almost nothing.
 */
const httpDates = new Map<number, string>();
const cacheControls = new Map<number, string>();

/** IMF-fixdate (RFC 9110 §5.6.7) of a time in seconds since 1970. */
export function httpDate(seconds: number): string {
  let s = httpDates.get(seconds);
  if (s === undefined) {
    if (httpDates.size >= 4096) httpDates.clear();
    s = new Date(seconds * 1000).toUTCString();
    httpDates.set(seconds, s);
  }
  return s;
}

/**
 * RFC 5019 §6.2: "Cache-Control: max-age=<n>, public, no-transform, must-revalidate", where n is
 * "a time value later than thisUpdate but earlier than nextUpdate" (the seconds left until then).
 */
export function ocspCacheControl(maxAgeSeconds: number): string {
  let s = cacheControls.get(maxAgeSeconds);
  if (s === undefined) {
    if (cacheControls.size >= 4096) cacheControls.clear();
    s = `max-age=${maxAgeSeconds}, public, no-transform, must-revalidate`;
    cacheControls.set(maxAgeSeconds, s);
  }
  return s;
}

/** True for `application/ocsp-request` (RFC 6960 Appendix A.1.1, RFC 5019 §5), any case, parameters ignored. */
export function isOcspRequestType(value: string): boolean {
  if (value === 'application/ocsp-request') return true;
  const semi = value.indexOf(';');
  return (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase() === 'application/ocsp-request';
}
