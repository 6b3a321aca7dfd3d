/**
 * A small RFC 6960 client: one CertID per request (the RFC 5019 profile every responder answers,
 * kakuin's own and `openssl ocsp` alike), sent by HTTP POST as `application/ocsp-request`
 * (RFC 6960 Appendix A.1), SHA-1 CertID (RFC 5019 §2.1.1: "clients MUST use SHA1 as the hashing
 * algorithm for the CertID.issuerNameHash and the CertID.issuerKeyHash values").
 *
 * An answer is believed only when (RFC 6960 §3.2): it is signed, the signer is the CA itself or a
 * delegated responder the CA issued with id-kp-OCSPSigning (§4.2.2.2), the SingleResponse is for
 * our CertID, and its times are sane (thisUpdate not in the future; nextUpdate, when present, not
 * past). No nonce is sent: RFC 5019 §2.1 responders may ignore it, and freshness comes from
 * thisUpdate/nextUpdate instead (an answer without nextUpdate must be recent).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import {
  encodeCertId, encodeOcspRequest, OID_CE_EXT_KEY_USAGE, OID_KP_OCSP_SIGNING, parseCertificate, parseExtKeyUsage,
  parseOcspResponse, verifyCertificateSignature, verifyOcspResponseSignature, type ParsedCertificate, type ParsedOcspResponse,
  type PublicKeyInfo,
} from '../pkix/index.js';
import type { DeviceIdentity } from './device-identity.js';
import type { DeviceIssuerConfig } from './options.js';

export type OcspCertificateStatus = 'good' | 'revoked' | 'held' | 'unknown';

export interface OcspAnswer {
  status: OcspCertificateStatus;
  thisUpdate: number;
  nextUpdate?: number;
}

export interface OcspClientOptions {
  url: URL;
  caPem?: string[];
  timeoutMs: number;
  issuers: readonly DeviceIssuerConfig[];
  now: () => number;
  /** An answer without nextUpdate must have a thisUpdate at most this old. */
  maxAgeWithoutNextUpdateMs: number;
  clockSkewMs?: number;
}

const MAX_RESPONSE_BYTES = 64 * 1024;

interface IssuerHashes {
  config: DeviceIssuerConfig;
  nameHash: Buffer;
  keyHash: Buffer;
}

function sha1(b: Buffer): Buffer {
  return createHash('sha1').update(b).digest();
}

export class OcspClient {
  private readonly issuers = new Map<string, IssuerHashes>();
  /** Delegated responder certificates already checked against their CA (DER → SPKI). */
  private readonly delegated = new Map<string, PublicKeyInfo>();
  private readonly skew: number;

  constructor(private readonly o: OcspClientOptions) {
    for (const config of o.issuers) {
      this.issuers.set(config.id, { config, nameHash: sha1(config.cert.subject.rawDer), keyHash: sha1(config.cert.spki.subjectPublicKey) });
    }
    this.skew = o.clockSkewMs ?? 60_000;
  }

  /** Asks the responder about one device certificate; throws (with a reason) when no trustworthy answer comes. */
  async query(id: DeviceIdentity): Promise<OcspAnswer> {
    const issuer = this.issuers.get(id.issuerId);
    if (issuer === undefined) throw new Error(`no device issuer ${id.issuerId}`);
    const ca = issuer.config.cert;
    const request = encodeOcspRequest([encodeCertId('sha1', ca.subject.rawDer, ca.spki.subjectPublicKey, id.cert.serial)]);
    const der = await this.post(request);
    return this.read(der, issuer, id);
  }

  private read(der: Buffer, issuer: IssuerHashes, id: DeviceIdentity): OcspAnswer {
    const resp = parseOcspResponse(der);
    if (resp.status !== 'successful') throw new Error(`responder answered ${resp.status}`);
    const single = resp.responses.find((r) => r.certId.hashAlgorithm === 'sha1' && r.certId.issuerNameHash.equals(issuer.nameHash)
      && r.certId.issuerKeyHash.equals(issuer.keyHash) && r.certId.serialHex === id.serialHex);
    if (single === undefined) throw new Error('the response holds no SingleResponse for the CertID asked');
    const signer = this.authorizedSigner(resp, issuer.config.cert);
    if (signer === undefined) throw new Error('the response is not signed by the CA or a delegated responder it issued');
    if (!verifyOcspResponseSignature(resp, signer)) throw new Error('the response signature does not verify');
    const now = this.o.now();
    const thisUpdate = single.thisUpdate.getTime();
    const nextUpdate = single.nextUpdate?.getTime();
    if (thisUpdate > now + this.skew) throw new Error('thisUpdate is in the future');
    // RFC 5019 §4: a response whose nextUpdate has passed is not to be used.
    if (nextUpdate !== undefined && nextUpdate <= now) throw new Error('nextUpdate has passed');
    // RFC 6960 §4.2.2.1: without nextUpdate "newer revocation information is available all the time",
    // so such an answer is only as good as it is recent.
    if (nextUpdate === undefined && thisUpdate < now - this.o.maxAgeWithoutNextUpdateMs - this.skew) {
      throw new Error('an answer without nextUpdate is too old');
    }
    const cs = single.certStatus;
    const status: OcspCertificateStatus = cs.status === 'revoked' ? (cs.reason === 'certificateHold' ? 'held' : 'revoked') : cs.status;
    return { status, thisUpdate, ...(nextUpdate !== undefined && { nextUpdate }) };
  }

  /** The key that may sign for this CA's certificates and matches the ResponderID (RFC 6960 §4.2.2.2, §4.2.2.3). */
  private authorizedSigner(resp: ParsedOcspResponse, ca: ParsedCertificate): PublicKeyInfo | undefined {
    const names = (c: ParsedCertificate): boolean => (resp.responderKeyHash !== undefined
      ? sha1(c.spki.subjectPublicKey).equals(resp.responderKeyHash)
      : resp.responderName !== undefined && c.subject.rawDer.equals(resp.responderName.rawDer));
    if (names(ca)) return ca.spki;
    for (const der of resp.certs) {
      const key = der.toString('latin1');
      const known = this.delegated.get(key);
      let cert: ParsedCertificate;
      try {
        cert = parseCertificate(der);
      } catch {
        continue;
      }
      if (!names(cert)) continue;
      const now = this.o.now();
      if (now < cert.notBefore.getTime() || now > cert.notAfter.getTime()) continue;
      if (known !== undefined) return known;
      if (!cert.issuer.rawDer.equals(ca.subject.rawDer)) continue;
      if (!this.hasOcspSigning(cert)) continue;
      try {
        if (!verifyCertificateSignature(cert, ca.spki)) continue;
      } catch {
        continue;
      }
      if (this.delegated.size > 64) this.delegated.clear();
      this.delegated.set(key, cert.spki);
      return cert.spki;
    }
    return undefined;
  }

  private hasOcspSigning(cert: ParsedCertificate): boolean {
    const ext = cert.extensions.find((e) => e.oid === OID_CE_EXT_KEY_USAGE);
    if (ext === undefined) return false;
    try {
      return parseExtKeyUsage(ext.value).includes(OID_KP_OCSP_SIGNING);
    } catch {
      return false;
    }
  }

  private post(body: Buffer): Promise<Buffer> {
    const url = this.o.url;
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, {
        method: 'POST',
        agent: false,
        timeout: this.o.timeoutMs,
        headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response', 'content-length': body.length },
        ...(url.protocol === 'https:' && this.o.caPem !== undefined && { ca: this.o.caPem }),
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new Error('OCSP response too large'));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`responder answered HTTP ${res.statusCode}`));
          else resolve(Buffer.concat(chunks));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`responder did not answer within ${this.o.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
