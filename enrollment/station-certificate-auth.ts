/**
 * Station authentication by mTLS certificate (issue 6), the alternative to an API key.
 *
 * The management API's TLS server asks for an optional client certificate and trusts the device
 * chain and the station CA; that only says the chain verified against *one* of them. A station is
 * authenticated when, on this request (keep-alive or not, so a revocation takes effect at once):
 * - the certificate is signed by the station CA (not the device CA: a device is never a station),
 * - now is within its validity,
 * - the registry records it as that station's certificate, byte for byte, and its status is good,
 * - the station is not disabled.
 * Anything else is KAKUIN_E_UNAUTHENTICATED; the reason goes to the log, not to the client.
 */
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Request, RequestHandler } from 'express';
import { parseCertificate, verifyCertificateSignature, type ParsedCertificate } from '../pkix/index.js';
import type { Registry } from '../registry/port.js';
import { hasCode, KakuinError } from '../errors/index.js';
import type { StationCaller } from '../management-api/admin-tokens.js';
import { STATION_CA_ID } from '../ca/hierarchy.js';

export class StationCertificateAuthenticator {
  /** The station CA certificates seen, by DER: the issuer record does not change under a running process. */
  private stationCa: ParsedCertificate | undefined;
  /** Signature checks done per connection (the certificate cannot change within one TLS session). */
  private readonly verified = new WeakMap<object, Buffer>();
  /**
   * Certificates received outside TLS (CMP) whose station-CA signature verified, by SHA-256 of the
   * DER: a station signs every message with the same certificate. Bounded; the per-request checks
   * (validity, registry record and status, station enabled) still run every time.
   */
  private readonly verifiedOutsideTls = new Set<string>();

  constructor(private readonly registry: Registry, private readonly clock: () => Date = () => new Date()) {}

  /** The client certificate of the request's TLS connection, if one was sent. */
  static peerCertificate(req: Request): Buffer | undefined {
    const socket = req.socket as TLSSocket;
    if (typeof socket.getPeerCertificate !== 'function') return undefined;
    const peer = socket.getPeerCertificate();
    return peer?.raw && peer.raw.length > 0 ? peer.raw : undefined;
  }

  /**
   * The station the request's client certificate authenticates; undefined when no certificate was
   * sent; KAKUIN_E_UNAUTHENTICATED when one was sent but is not a good station certificate.
   */
  async authenticate(req: Request): Promise<StationCaller | undefined> {
    const der = StationCertificateAuthenticator.peerCertificate(req);
    if (der === undefined) return undefined;
    const socket = req.socket as TLSSocket;
    const refuse = (why: string): never => {
      throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'the client certificate is not a good station certificate', { cause: new Error(why) });
    };
    if (!socket.authorized) refuse(`TLS chain verification failed: ${String(socket.authorizationError)}`);
    return this.stationOf(der, socket);
  }

  /**
   * The station a certificate received outside TLS authenticates (CMP signature protection, RFC 9483
   * §3.2: the message is signed with it): the same checks as for a TLS client certificate, the
   * chain to the station CA included.
   */
  authenticateCertificate(der: Buffer): Promise<StationCaller> {
    return this.stationOf(der, undefined);
  }

  private async stationOf(der: Buffer, socket: object | undefined): Promise<StationCaller> {
    const refuse = (why: string): never => {
      throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'the client certificate is not a good station certificate', { cause: new Error(why) });
    };
    let cert: ParsedCertificate;
    try {
      cert = parseCertificate(der);
    } catch (e) {
      return refuse(`unreadable: ${String(e)}`);
    }
    const seen = socket === undefined ? undefined : this.verified.get(socket);
    const digest = socket === undefined ? createHash('sha256').update(der).digest('base64') : undefined;
    if ((!seen || !seen.equals(der)) && !(digest !== undefined && this.verifiedOutsideTls.has(digest))) {
      const ca = await this.stationCaCertificate();
      if (!ca || !cert.issuer.rawDer.equals(ca.subject.rawDer) || !verifyCertificateSignature(cert, ca.spki)) refuse('not issued by the station CA');
      if (socket !== undefined) this.verified.set(socket, der);
      if (digest !== undefined) {
        if (this.verifiedOutsideTls.size >= 10_000) this.verifiedOutsideTls.clear();
        this.verifiedOutsideTls.add(digest);
      }
    }
    const now = this.clock().getTime();
    if (now < cert.notBefore.getTime() || now > cert.notAfter.getTime()) refuse('outside its validity');
    const stationId = await this.registry.findStationOfCertificate(cert.serialHex);
    if (stationId === undefined) refuse('not recorded as a station certificate');
    const record = await this.registry.getCertificate(cert.serialHex);
    if (!record.der.equals(der)) refuse('differs from the recorded certificate');
    if (record.status !== 'good') refuse(`the certificate is ${record.status}`);
    let station;
    try {
      station = await this.registry.getStation(stationId!);
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_STATION_NOT_FOUND')) refuse('the station is gone');
      throw e;
    }
    if (station.disabledAt) refuse('the station is disabled');
    return { kind: 'station', stationId: station.id, manufacturerId: station.manufacturerId, name: station.name, actor: `station:${station.id}` };
  }

  private async stationCaCertificate(): Promise<ParsedCertificate | undefined> {
    if (this.stationCa) return this.stationCa;
    try {
      this.stationCa = parseCertificate((await this.registry.getIssuer(STATION_CA_ID)).certificateDer);
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_ISSUER_NOT_FOUND')) return undefined;
      throw e;
    }
    return this.stationCa;
  }
}

/**
 * For routes that admit stations: a request without an Authorization header that shows a client
 * certificate is authenticated by it (a station, or KAKUIN_E_UNAUTHENTICATED); any other request
 * goes to `tokenAdmission` (API keys, admin tokens, and their roles).
 */
export function stationCertificateOr(authenticator: StationCertificateAuthenticator, tokenAdmission: RequestHandler): RequestHandler {
  return async (req, res, next) => {
    if (req.get('authorization') === undefined) {
      const caller = await authenticator.authenticate(req);
      if (caller) {
        req.caller = caller;
        next();
        return;
      }
    }
    await tokenAdmission(req, res, next);
  };
}
