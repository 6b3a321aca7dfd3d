/**
 * The two DER structures ACME (RFC 8555) needs beyond PKCS#10 itself: the names a finalize CSR
 * asks for, and the acmeIdentifier extension of a tls-alpn-01 validation certificate.
 *
 * RFC 8737 §3:
 *   id-pe-acmeIdentifier OBJECT IDENTIFIER ::= { id-pe 31 }
 *   Authorization ::= OCTET STRING (SIZE (32))
 * "The extension MUST be marked critical." Its value is the SHA-256 digest of the key authorization.
 */
import { KakuinError } from '../errors/index.js';
import { readDer, readOctetString, guardDer } from './der-reader.js';
import { derOctetString } from './der.js';
import { encodeExtension } from './extensions.js';
import { parseSubjectAltName } from './extensions-read.js';
import type { ParsedCertificate } from './certificate.js';
import type { ParsedCsr } from './csr.js';
import { OID_AT_CN, OID_CE_SUBJECT_ALT_NAME, OID_PE_ACME_IDENTIFIER } from './oids.js';

/** The acmeIdentifier extension (critical) carrying a 32-octet digest. */
export function acmeIdentifierExt(digest: Buffer): Buffer {
  if (digest.length !== 32) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'an acmeIdentifier digest is 32 octets (SHA-256)');
  return encodeExtension(OID_PE_ACME_IDENTIFIER, true, derOctetString(digest));
}

/**
 * The digest in a certificate's acmeIdentifier extension; undefined when it has none. RFC 8737 §3
 * requires it critical: a non-critical one, or one that is not a 32-octet OCTET STRING, is
 * KAKUIN_E_DER_MALFORMED.
 */
export function certificateAcmeIdentifier(cert: ParsedCertificate): Buffer | undefined {
  const ext = cert.extensions.find((e) => e.oid === OID_PE_ACME_IDENTIFIER);
  if (ext === undefined) return undefined;
  if (!ext.critical) throw new KakuinError('KAKUIN_E_DER_MALFORMED', 'the acmeIdentifier extension must be critical (RFC 8737 §3)');
  const digest = guardDer('acmeIdentifier', () => {
    const node = readDer(ext.value);
    if (node.end !== ext.value.length) throw new KakuinError('KAKUIN_E_DER_MALFORMED', 'trailing bytes after acmeIdentifier');
    return readOctetString(node, 'acmeIdentifier');
  });
  if (digest.length !== 32) throw new KakuinError('KAKUIN_E_DER_MALFORMED', 'the acmeIdentifier value must be 32 octets (RFC 8737 §3)');
  return digest;
}

/** The dNSName and iPAddress entries of a certificate's subjectAltName (tls-alpn-01 checks them). */
export function certificateSanNames(cert: ParsedCertificate): { dns: string[]; ip: string[]; other: number } {
  const ext = cert.extensions.find((e) => e.oid === OID_CE_SUBJECT_ALT_NAME);
  return ext === undefined ? { dns: [], ip: [], other: 0 } : splitNames(parseSubjectAltName(ext.value));
}

/**
 * What a finalize CSR asks for (RFC 8555 §7.4): the dNSName and iPAddress entries of its requested
 * subjectAltName, the subject commonName (a name it must repeat from the SAN, if present), and how
 * many other kinds of name it asks for (which kakuin refuses).
 */
export function csrRequestedNames(csr: ParsedCsr): { dns: string[]; ip: string[]; commonNames: string[]; other: number } {
  const ext = csr.requestedExtensions.find((e) => e.oid === OID_CE_SUBJECT_ALT_NAME);
  const names = ext === undefined ? { dns: [], ip: [], other: 0 } : splitNames(parseSubjectAltName(ext.value));
  const commonNames = csr.subject.attributes.filter((a) => a.oid === OID_AT_CN).map((a) => a.value);
  return { ...names, commonNames };
}

function splitNames(names: ReturnType<typeof parseSubjectAltName>): { dns: string[]; ip: string[]; other: number } {
  const out = { dns: [] as string[], ip: [] as string[], other: 0 };
  for (const n of names) {
    if ('dns' in n) out.dns.push(n.dns);
    else if ('ip' in n) out.ip.push(n.ip);
    else out.other++;
  }
  return out;
}
