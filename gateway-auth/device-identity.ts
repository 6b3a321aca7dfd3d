/**
 * From the peer certificate of a TLS connection to a device identity, or a refusal.
 *
 * The handshake already verified the chain up to a trust anchor, but the anchors may include CAs
 * that do not issue devices (a station certificate carries clientAuth too), and a resumed session
 * is not re-verified at all. So the leaf must name a device issuing CA as its issuer — the issuer
 * Name DER equal to that CA's subject (RFC 5280 §4.1.2.4: compared as the bytes the CA wrote) and
 * the AuthorityKeyIdentifier equal to its SubjectKeyIdentifier (§4.2.1.1) — and its signature must
 * verify under that CA's key. Its device id comes from the SAN URI `urn:kakuin:device:<id>`.
 *
 * What depends only on the certificate bytes is cached per certificate (a device reconnects with
 * the same one); validity dates are checked on every connection.
 */
import { deviceIdFromUri } from '../ca/profiles.js';
import {
  OID_CE_EXT_KEY_USAGE, OID_CE_SUBJECT_ALT_NAME, OID_KP_CLIENT_AUTH, parseCertificate, parseExtKeyUsage, parseSubjectAltName,
  verifyCertificateSignature, type ParsedCertificate,
} from '../pkix/index.js';
import type { DeviceIssuerConfig } from './options.js';

const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

export interface DeviceIdentity {
  issuerId: string;
  /** Uppercase hex, as the registry keys certificates. */
  serialHex: string;
  deviceId: string;
  notBefore: number;
  notAfter: number;
  /** `<issuerId>/<serialHex>`: how connections and statuses are keyed. */
  certKey: string;
  /** The certificate DER (for matching the registry record). */
  der: Buffer;
  cert: ParsedCertificate;
}

export type IdentityResult = { ok: true; identity: DeviceIdentity } | { ok: false; reason: string };

export function certKeyOf(issuerId: string, serialHex: string): string {
  return `${issuerId}/${serialHex.toUpperCase()}`;
}

/** Reads device identities from peer certificates, caching per certificate DER (bounded). */
export class DeviceIdentityReader {
  private readonly cache = new Map<string, IdentityResult>();

  constructor(private readonly issuers: readonly DeviceIssuerConfig[], private readonly maxCached = 20_000) {}

  read(der: Buffer | undefined, nowMs: number): IdentityResult {
    if (der === undefined || der.length === 0) return { ok: false, reason: 'no peer certificate' };
    const key = der.toString('latin1');
    let result = this.cache.get(key);
    if (result === undefined) {
      result = this.examine(der);
      if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, result);
    }
    if (!result.ok) return result;
    // The handshake checked the dates, but a resumed session carries the certificate of its first handshake.
    if (nowMs < result.identity.notBefore) return { ok: false, reason: 'certificate not yet valid' };
    if (nowMs > result.identity.notAfter) return { ok: false, reason: 'certificate expired' };
    return result;
  }

  private examine(der: Buffer): IdentityResult {
    let cert: ParsedCertificate;
    try {
      cert = parseCertificate(der);
    } catch {
      return { ok: false, reason: 'peer certificate does not parse' };
    }
    const issuer = this.issuers.find((i) => i.cert.subject.rawDer.equals(cert.issuer.rawDer)
      && (i.cert.subjectKeyIdentifier === undefined || cert.authorityKeyIdentifier === undefined
        || i.cert.subjectKeyIdentifier.equals(cert.authorityKeyIdentifier)));
    if (issuer === undefined) return { ok: false, reason: 'issuer is not a device issuing CA' };
    try {
      if (!verifyCertificateSignature(cert, issuer.cert.spki)) return { ok: false, reason: 'signature does not verify under the device issuing CA' };
    } catch {
      return { ok: false, reason: 'signature algorithm refused' };
    }
    if (cert.basicConstraints?.ca === true) return { ok: false, reason: 'a CA certificate is not a device' };
    let deviceId: string | undefined;
    try {
      for (const ext of cert.extensions) {
        if (ext.oid === OID_CE_EXT_KEY_USAGE) {
          // RFC 5280 §4.2.1.12: when present, the key may only be used for the purposes listed.
          const purposes = parseExtKeyUsage(ext.value);
          if (!purposes.includes(OID_KP_CLIENT_AUTH) && !purposes.includes(ANY_EXTENDED_KEY_USAGE)) {
            return { ok: false, reason: 'extendedKeyUsage lacks clientAuth' };
          }
        } else if (ext.oid === OID_CE_SUBJECT_ALT_NAME) {
          for (const name of parseSubjectAltName(ext.value)) {
            if ('uri' in name) deviceId ??= deviceIdFromUri(name.uri);
          }
        }
      }
    } catch {
      return { ok: false, reason: 'certificate extensions do not parse' };
    }
    if (deviceId === undefined) return { ok: false, reason: 'no urn:kakuin:device: URI in subjectAltName' };
    return {
      ok: true,
      identity: {
        issuerId: issuer.id, serialHex: cert.serialHex, deviceId, certKey: certKeyOf(issuer.id, cert.serialHex),
        notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime(), der, cert,
      },
    };
  }
}
