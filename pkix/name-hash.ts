/**
 * The subject-name hash OpenSSL names files by in a hashed certificate directory (`openssl rehash`,
 * c_rehash; `X509_NAME_hash_ex`): what `openssl x509 -hash` and `openssl crl -hash` print. A relying
 * party given a `CApath` (FreeRADIUS `ca_path`) looks a CA certificate up as `<hash>.0` and its CRLs
 * as `<hash>.r0`, `<hash>.r1`, … (OpenSSL `X509_LOOKUP_hash_dir`).
 *
 * The hash is over OpenSSL's canonical encoding of the Name (crypto/x509/x_name.c, x509_name_canon):
 * each RDN as its DER SET OF AttributeTypeAndValue, concatenated without the outer SEQUENCE; every
 * value of a character string type (UTF8, BMP, Universal, Printable, Teletex, IA5, Visible) becomes
 * a UTF8String with ASCII letters lower-cased, leading and trailing white space removed and inner
 * runs of white space collapsed to one space; other values are kept as they are. The first four
 * octets of the SHA-1 of that, read little-endian, are the hash, as eight hex digits.
 */
import { createHash } from 'node:crypto';
import {
  derSequence, derSet, encodeTlv, TAG_BMP_STRING, TAG_IA5_STRING, TAG_PRINTABLE_STRING, TAG_SEQUENCE, TAG_SET, TAG_T61_STRING,
  TAG_UNIVERSAL_STRING, TAG_UTF8_STRING, TAG_VISIBLE_STRING,
} from './der.js';
import { derRaw, expectChildren, guardDer, readDer, readString, malformed } from './der-reader.js';
import type { ParsedName } from './name.js';

/** The string types OpenSSL canonicalises (ASN1_MASK_CANON); NumericString is not among them. */
const CANON_TAGS = new Set([TAG_UTF8_STRING, TAG_BMP_STRING, TAG_UNIVERSAL_STRING, TAG_PRINTABLE_STRING, TAG_T61_STRING, TAG_IA5_STRING, TAG_VISIBLE_STRING]);

/** OpenSSL's ossl_isspace: space and \t \n \v \f \r. */
const isSpace = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);

/** asn1_string_canon on the UTF-8 octets: only ASCII octets are folded or collapsed. */
function canonicalValue(utf8: Buffer): Buffer {
  let start = 0;
  let end = utf8.length;
  while (start < end && isSpace(utf8[start])) start++;
  while (end > start && isSpace(utf8[end - 1])) end--;
  const out: number[] = [];
  for (let i = start; i < end; i++) {
    const b = utf8[i];
    if (isSpace(b)) {
      while (i + 1 < end && isSpace(utf8[i + 1])) i++;
      out.push(0x20);
    } else out.push(b >= 0x41 && b <= 0x5a ? b + 0x20 : b);
  }
  return Buffer.from(out);
}

/** The canonical encoding of a Name (x509_name_canon), the input of the hash. */
export function canonicalNameEncoding(name: ParsedName): Buffer {
  return guardDer('Name', () => {
    const parts: Buffer[] = [];
    for (const rdn of expectChildren(readDer(name.rawDer), TAG_SEQUENCE, 'Name')) {
      const atvs = expectChildren(rdn, TAG_SET, 'Name RDN').map((atv) => {
        const [type, value] = expectChildren(atv, TAG_SEQUENCE, 'Name AttributeTypeAndValue');
        if (type === undefined || value === undefined) throw malformed('Name AttributeTypeAndValue must have two components');
        const v = CANON_TAGS.has(value.tag)
          ? encodeTlv(TAG_UTF8_STRING, canonicalValue(Buffer.from(readString(value, 'Name attribute value'), 'utf8')))
          : derRaw(value);
        return derSequence(derRaw(type), v);
      });
      parts.push(derSet(...atvs)); // sorted as DER SET OF is (X.690 §11.6), as OpenSSL's i2d does
    }
    return Buffer.concat(parts);
  });
}

/** `openssl x509 -subject_hash` of a Name: eight lower-case hex digits. */
export function opensslNameHash(name: ParsedName): string {
  const md = createHash('sha1').update(canonicalNameEncoding(name)).digest();
  return md.readUInt32LE(0).toString(16).padStart(8, '0');
}
