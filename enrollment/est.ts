/**
 * EST (RFC 7030, with the RFC 8951 clarifications) under /.well-known/est/ on the management port.
 *
 *   GET  /.well-known/est/cacerts        anyone   base64 certs-only: the device issuing CA and the root (§4.1.3)
 *   GET  /.well-known/est/csrattrs       anyone   204: kakuin asks for no particular attributes (§4.5.2)
 *   POST /.well-known/est/simpleenroll   station (HTTP Basic `<stationId>:<apiKey>`)   base64 DER PKCS#10 → base64 certs-only
 *   POST /.well-known/est/simplereenroll device (mTLS with its current certificate)   base64 DER PKCS#10 → base64 certs-only;
 *                                        the certificate's status is read from the registry on every request, keep-alive or not
 *   POST /.well-known/est/serverkeygen   station (HTTP Basic)   base64 DER PKCS#10 naming the device → multipart/mixed:
 *                                        an application/pkcs8 part (the new key, unencrypted: TLS protects it, §4.4.2)
 *                                        and a certs-only part. Only the CSR's subject serialNumber is used.
 *
 * RFC 8951 §3: bodies are base64 whatever Content-Transfer-Encoding says (it is ignored), and
 * whitespace inside the base64 is allowed. The device is the one whose serial number the CSR subject's
 * serialNumber attribute names, within the station's manufacturer.
 */
import type { TLSSocket } from 'node:tls';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { randomBytes } from 'node:crypto';
import { encodeCertsOnly, readCsr } from '../pkix/index.js';
import { subjectSerialNumber } from './enrollment-service.js';
import { KakuinError } from '../errors/index.js';
import type { AdminAuthenticator } from '../ca/api/admin-tokens.js';
import type { EnrollmentService } from './enrollment-service.js';

const CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';
const MAX_CSR_BYTES = 64 * 1024;

export interface EstDeps {
  enrollment: EnrollmentService;
  authenticator: AdminAuthenticator;
}

/** Base64 with a line break every 64 characters, as RFC 7030 servers commonly send it. */
function base64Lines(der: Buffer): string {
  return `${der.toString('base64').replace(/.{1,64}/g, '$&\r\n')}`;
}

function sendCertsOnly(res: Response, certificates: Buffer[]): void {
  res.status(200).set('Content-Type', CERTS_ONLY).set('Content-Transfer-Encoding', 'base64').send(base64Lines(encodeCertsOnly(certificates)));
}

/** RFC 8951 §3.2: base64 with any whitespace; a client sending raw DER is accepted too. */
export function estBody(raw: unknown): Buffer {
  if (!Buffer.isBuffer(raw) || raw.length === 0) throw new KakuinError('KAKUIN_E_BAD_REQUEST', 'the body must be a base64 DER PKCS#10 request');
  if (raw[0] === 0x30) return raw;
  const compact = raw.toString('latin1').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', 'the body is not base64');
  return Buffer.from(compact, 'base64');
}

export function mountEst(app: Express, deps: EstDeps): void {
  const { enrollment, authenticator } = deps;
  const raw = express.raw({ type: () => true, limit: MAX_CSR_BYTES });

  // RFC 7030 §3.2.3: without (valid) credentials the server answers 401 with a Basic challenge.
  const station = async (req: Request, res: Response, next: NextFunction) => {
    const caller = await authenticator.authenticateBasic(req.get('authorization'));
    if (!caller) {
      res.set('WWW-Authenticate', 'Basic realm="kakuin EST", charset="UTF-8"');
      throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'EST requires HTTP Basic credentials: <stationId>:<apiKey>');
    }
    req.caller = caller;
    next();
  };

  app.get('/.well-known/est/cacerts', (_req, res) => {
    sendCertsOnly(res, enrollment.chain);
  });

  app.get('/.well-known/est/csrattrs', (_req, res) => {
    res.status(204).end();
  });

  app.post('/.well-known/est/simpleenroll', station, raw, async (req, res) => {
    const caller = req.caller!;
    if (caller.kind !== 'station') throw new KakuinError('KAKUIN_E_FORBIDDEN', 'EST enrollment admits stations only');
    const r = await enrollment.enroll({ manufacturerId: caller.manufacturerId, csr: estBody(req.body), actor: caller.actor });
    sendCertsOnly(res, [r.der]);
  });

  app.post('/.well-known/est/simplereenroll', raw, async (req, res) => {
    const socket = req.socket as TLSSocket;
    const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    if (!socket.authorized || !peer?.raw) {
      throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'simplereenroll needs the device\'s current certificate (TLS client authentication)');
    }
    const r = await enrollment.reenrollWithCertificate(peer.raw, estBody(req.body));
    sendCertsOnly(res, [r.der]);
  });

  app.post('/.well-known/est/serverkeygen', station, raw, async (req, res) => {
    const caller = req.caller!;
    if (caller.kind !== 'station') throw new KakuinError('KAKUIN_E_FORBIDDEN', 'EST enrollment admits stations only');
    const serialNumber = subjectSerialNumber(readCsr(estBody(req.body)));
    const { enrollment: r, privateKey } = await enrollment.enrollWithServerKey({ manufacturerId: caller.manufacturerId, serialNumber, actor: caller.actor });
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    const boundary = `est-${randomBytes(12).toString('hex')}`;
    const part = (type: string, der: Buffer) => `--${boundary}\r\nContent-Type: ${type}\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(der)}`;
    res.status(200).set('Content-Type', `multipart/mixed; boundary=${boundary}`)
      .send(`${part('application/pkcs8', pkcs8)}${part(CERTS_ONLY, encodeCertsOnly([r.der]))}--${boundary}--\r\n`);
  });
}
