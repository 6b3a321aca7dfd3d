/** Building `pkcs11:` URIs for keys kakuin names itself (RFC 7512 §2.3 percent-encoding). */
import { randomBytes } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { parseKeyUri } from '../key-uri.js';
import { refuseSecrets } from './pkcs11-key-store.js';

/** RFC 7512 pk11-pchar without "%": unreserved characters and the few sub-delims allowed unescaped. */
const PLAIN = /[A-Za-z0-9\-._~:[\]@!$'()*+,=&]/;

function encode(value: string | Buffer): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += typeof value === 'string' && b < 0x80 && PLAIN.test(c) ? c : `%${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/**
 * The token a `--keys` URI names. Only `token=` (and the module identification RFC 7512 allows:
 * `manufacturer`, `model`, `serial`, `slot-*`, which kakuin does not use) may be given: kakuin
 * chooses each key's label and CKA_ID itself.
 */
export function tokenOfKeysUri(uri: string): string {
  const parsed = parseKeyUri(uri);
  if (parsed.scheme !== 'pkcs11') throw new KakuinError('KAKUIN_E_KEY_URI_INVALID', `${uri} is not a pkcs11: URI`);
  refuseSecrets(uri, parsed);
  const token = parsed.path.token;
  if (!token) throw new KakuinError('KAKUIN_E_KEY_URI_INVALID', `${uri} names no token ("pkcs11:token=...")`);
  if (parsed.path.object !== undefined || parsed.id !== undefined) {
    throw new KakuinError('KAKUIN_E_KEY_URI_INVALID', `${uri} names a key; give only the token, kakuin names the keys in it`);
  }
  return token;
}

/**
 * A URI for a new key in `token`: the label says what the key is, and a random CKA_ID keeps it
 * apart from keys an earlier installation left in the same token. The label comes last, so a
 * name ending in `-<generation>` (OCSP responder keys) still ends the URI.
 */
export function newPkcs11KeyUri(token: string, label: string): string {
  return `pkcs11:token=${encode(token)};id=${encode(randomBytes(16))};object=${encode(label)}`;
}

/** The token of a `pkcs11:` key URI, or undefined for keys of other stores. */
export function tokenOfKeyUri(uri: string): string | undefined {
  if (!uri.startsWith('pkcs11:')) return undefined;
  const parsed = parseKeyUri(uri);
  return parsed.scheme === 'pkcs11' ? parsed.path.token : undefined;
}
