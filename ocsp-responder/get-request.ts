/**
 * The OCSP request carried in a GET path (RFC 6960 Appendix A.1: "GET {url}/{url-encoding of
 * base-64 encoding of the DER encoding of the OCSPRequest}"; RFC 5019 §5).
 *
 * - Percent-encoding is decoded, so raw `+`, `/`, `=` and their %2B, %2F, %3D forms are the same.
 * - `+` is base64's 62nd digit and never a space: this is a path, not a form
 *   (application/x-www-form-urlencoded is what turns `+` into a space, and it does not apply).
 * - Extra slashes before the request are skipped: an AIA URL ending in `/` makes clients send
 *   `/ocsp//MEow...`, and base64 of a DER SEQUENCE never starts with `/` (it starts with `M`).
 * - CR and LF (%0D, %0A) are skipped: some clients wrap the base64 in lines.
 * - base64url digits (`-`, `_`) are accepted as well; padding may be missing.
 * Anything else (a space, `%` not followed by two hex digits, a stray character, `=` before the
 * end, an impossible length) makes the request undecodable: undefined (→ malformedRequest).
 */

const BASE64_DIGIT = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_') BASE64_DIGIT[c.charCodeAt(0)] = 1;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** `path` is the request target; `start` the offset just after `/ocsp/`. */
export function decodeGetRequest(path: string, start: number): Buffer | undefined {
  let s = start;
  while (s < path.length && path.charCodeAt(s) === 47 /* / */) s++;
  let end = path.length;
  const query = path.indexOf('?', s);
  if (query >= 0) end = query;
  if (end <= s) return undefined;
  let text: string;
  if (path.indexOf('%', s) < 0 || path.indexOf('%', s) >= end) {
    text = path.slice(s, end);
    let pad = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 61 /* = */) {
        pad++;
      } else if (pad > 0 || c >= 128 || BASE64_DIGIT[c] === 0) {
        return undefined;
      }
    }
    if (pad > 2) return undefined;
  } else {
    const out: number[] = [];
    let pad = 0;
    for (let i = s; i < end; i++) {
      let c = path.charCodeAt(i);
      if (c === 37 /* % */) {
        const hi = i + 2 < end ? hexValue(path.charCodeAt(i + 1)) : -1;
        const lo = hi >= 0 ? hexValue(path.charCodeAt(i + 2)) : -1;
        if (lo < 0) return undefined;
        c = hi * 16 + lo;
        i += 2;
      }
      if (c === 13 || c === 10) continue;
      if (c === 61) {
        pad++;
      } else if (pad > 0 || c >= 128 || BASE64_DIGIT[c] === 0) {
        return undefined;
      }
      out.push(c);
    }
    if (pad > 2) return undefined;
    text = String.fromCharCode(...out);
  }
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const digits = text.length - padding;
  // 4n+1 digits cannot be base64; padding, when present, must complete the last quantum.
  if (digits === 0 || digits % 4 === 1 || (padding > 0 && text.length % 4 !== 0)) return undefined;
  return Buffer.from(text, 'base64');
}
