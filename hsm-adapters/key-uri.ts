/**
 * Key URIs: `file:<name>` for the software store and RFC 7512 `pkcs11:` URIs for a PKCS#11 module.
 * The URI is what the registry stores in an issuer record, so it is parsed strictly and never
 * normalised: one key, one spelling.
 */
import { KakuinError } from '../errors/index.js';

/**
 * A software key name. It becomes a file name, so no `/`, no leading `.` (no `..`, no hidden or
 * temporary files) and a length every file system accepts.
 */
const FILE_KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ); kakuin accepts lower case only. */
const SCHEME = /^([a-z][a-z0-9+.-]*):/;

export interface FileKeyUri {
  readonly scheme: 'file';
  /** The key's name; its file is `<directory>/<name>.key.pem`. */
  readonly name: string;
}

export interface Pkcs11KeyUri {
  readonly scheme: 'pkcs11';
  /** RFC 7512 path attributes (`token`, `object`, `type`, ...) except `id`, percent-decoded UTF-8. */
  readonly path: Readonly<Record<string, string>>;
  /** The `id` path attribute (CKA_ID), which RFC 7512 §2.3 defines as bytes, not text. */
  readonly id?: Buffer;
  /** RFC 7512 query attributes (`module-path`, `pin-source`, ...), percent-decoded. */
  readonly query: Readonly<Record<string, string>>;
}

export type KeyUri = FileKeyUri | Pkcs11KeyUri;

/** The scheme of a key URI (`file`, `pkcs11`, ...), the part a KeyRing dispatches on. */
export function keyUriScheme(uri: string): string {
  const m = typeof uri === 'string' ? SCHEME.exec(uri) : null;
  if (!m) throw invalid(uri, 'it has no scheme');
  return m[1];
}

export function parseKeyUri(uri: string): KeyUri {
  const scheme = keyUriScheme(uri);
  const rest = uri.slice(scheme.length + 1);
  switch (scheme) {
    case 'file': return parseFileKeyUri(uri);
    case 'pkcs11': return parsePkcs11(uri, rest);
    default: throw invalid(uri, `the scheme "${scheme}" is not a key store kakuin knows`);
  }
}

/** Parse a `file:<name>` URI; anything else (other schemes, paths, traversal) is refused. */
export function parseFileKeyUri(uri: string): FileKeyUri {
  if (typeof uri !== 'string' || !uri.startsWith('file:')) throw invalid(uri, 'it is not a file: URI');
  const name = uri.slice('file:'.length);
  if (!FILE_KEY_NAME.test(name)) {
    throw invalid(uri, 'a file: key name is 1 to 128 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit');
  }
  return { scheme: 'file', name };
}

/**
 * RFC 7512 §2.3: `pkcs11:` pk11-path [ "?" pk11-query ], path attributes separated by ";", query
 * attributes by "&", values percent-encoded. An attribute may appear only once in the path.
 */
function parsePkcs11(uri: string, rest: string): Pkcs11KeyUri {
  const q = rest.indexOf('?');
  const path = attributes(uri, q < 0 ? rest : rest.slice(0, q), ';', true);
  const query = attributes(uri, q < 0 ? '' : rest.slice(q + 1), '&', false);
  if (Object.keys(path).length === 0) throw invalid(uri, 'a pkcs11: URI needs at least one path attribute');
  const text = (values: Record<string, Buffer>, skip?: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [name, bytes] of Object.entries(values)) {
      if (name === skip) continue;
      try {
        out[name] = UTF8.decode(bytes);
      } catch (cause) {
        throw invalid(uri, `the value of "${name}" is not UTF-8 text`, cause);
      }
    }
    return out;
  };
  return { scheme: 'pkcs11', path: text(path, 'id'), query: text(query), ...(path.id ? { id: path.id } : {}) };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function attributes(uri: string, text: string, separator: string, unique: boolean): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  if (text === '') return out;
  for (const part of text.split(separator)) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? '' : part.slice(0, eq);
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw invalid(uri, `"${part}" is not a name=value attribute`);
    if (unique && Object.hasOwn(out, name)) throw invalid(uri, `the attribute "${name}" appears twice`);
    out[name] = percentDecode(uri, name, part.slice(eq + 1));
  }
  return out;
}

function percentDecode(uri: string, name: string, value: string): Buffer {
  if (/%(?![0-9A-Fa-f]{2})/.test(value)) throw invalid(uri, `the value of "${name}" has a bad percent-encoding`);
  const escaped = /^%[0-9A-Fa-f]{2}$/;
  return Buffer.concat(value.split(/(%[0-9A-Fa-f]{2})/).map((chunk) =>
    escaped.test(chunk) ? Buffer.of(parseInt(chunk.slice(1), 16)) : Buffer.from(chunk, 'utf8')));
}

function invalid(uri: unknown, why: string, cause?: unknown): KakuinError {
  const shown = typeof uri === 'string' ? JSON.stringify(uri.length > 200 ? `${uri.slice(0, 200)}...` : uri) : typeof uri;
  return new KakuinError('KAKUIN_E_KEY_URI_INVALID', `invalid key URI ${shown}: ${why}`, cause === undefined ? undefined : { cause });
}
