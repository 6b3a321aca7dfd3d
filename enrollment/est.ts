/**
 * EST (RFC 7030, with the RFC 8951 clarifications) under /.well-known/est/ on the management port.
 *
 *   GET  /.well-known/est/cacerts        anyone   base64 certs-only: the device issuing CA and the root (§4.1.3)
 *   GET  /.well-known/est/csrattrs       anyone   base64 CsrAttrs (§4.5.2): a P-256 key, ecdsa-with-SHA256, the subject serialNumber
 *   POST /.well-known/est/simpleenroll   station (HTTP Basic `<stationId>:<apiKey>`, or its station certificate over mTLS)
 *                                        base64 DER PKCS#10 → base64 certs-only
 *   POST /.well-known/est/simplereenroll device (mTLS with its current certificate)   base64 DER PKCS#10 → base64 certs-only;
 *                                        the certificate's status is read from the registry on every request, keep-alive or not
 *   POST /.well-known/est/serverkeygen   station (HTTP Basic)   base64 DER PKCS#10 naming the device → multipart/mixed:
 *                                        an application/pkcs8 part (the new key, unencrypted: TLS protects it, §4.4.2)
 *                                        and a certs-only part. Only the CSR's subject serialNumber is used —
 *                                        unless the CSR carries AsymmetricDecryptKeyIdentifier naming its own
 *                                        key (§4.4.1.2): then the key part is CMS EnvelopedData to that key
 *                                        (key transport for RSA, ECDH key agreement for EC), smime-type=server-generated-key.
 *
 * RFC 8951 §3: bodies are base64 whatever Content-Transfer-Encoding says (it is ignored), and
 * whitespace inside the base64 is allowed. The device is the one whose serial number the CSR subject's
 * serialNumber attribute names, within the station's manufacturer.
 *
 * Errors on these paths are text/plain (`KAKUIN_E_...: message`), not JSON, with the same statuses.
 *
 * A certificate profile is chosen by RFC 7030 §3.2.2's arbitrary label:
 * `/.well-known/est/<profile>/simpleenroll` (and `/serverkeygen`); without a label, `device`.
 */
import type { TLSSocket } from 'node:tls';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ApiRoutes } from '../api-schema/routes.js';
import { randomBytes } from 'node:crypto';
import {
  derOid, derSequence, derSet, encodeCertsOnly, encodeServerGeneratedKey, OID_AT_SERIAL_NUMBER, OID_EC_PUBLIC_KEY, OID_ECDSA_WITH_SHA256, OID_P256, readCsr,
  serverKeyRecipient, verifySignature,
} from '../pkix/index.js';
import { routeNotFound } from '../management-api/http-errors.js';
import { subjectSerialNumber } from './enrollment-service.js';
import { hasCode, KakuinError } from '../errors/index.js';
import type { AdminAuthenticator } from '../management-api/admin-tokens.js';
import type { EnrollmentService } from './enrollment-service.js';
import type { StationCertificateAuthenticator } from './station-certificate-auth.js';

const CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';
/** RFC 7030 §4.4.2: the encrypted key part. */
const SERVER_GENERATED_KEY = 'application/pkcs7-mime; smime-type=server-generated-key';
const MAX_CSR_BYTES = 64 * 1024;

export interface EstDeps {
  enrollment: EnrollmentService;
  authenticator: AdminAuthenticator;
  /** Stations may authenticate by their station certificate (TLS client authentication) instead. */
  certificates?: StationCertificateAuthenticator;
}

/** Base64 with a line break every 64 characters, as RFC 7030 servers commonly send it. */
function base64Lines(der: Buffer): string {
  return `${der.toString('base64').replace(/.{1,64}/g, '$&\r\n')}`;
}

function sendCertsOnly(res: Response, certificates: Buffer[]): void {
  // A Buffer, not a string: express would add `; charset=utf-8`, which RFC 8551 and RFC 7030 do not
  // define for these types (verifiers flag it).
  res.status(200).set('Content-Type', CERTS_ONLY).set('Content-Transfer-Encoding', 'base64').send(Buffer.from(base64Lines(encodeCertsOnly(certificates)), 'latin1'));
}

/** RFC 8951 §3.2: base64 with any whitespace; a client sending raw DER is accepted too. */
export function estBody(raw: unknown): Buffer {
  if (!Buffer.isBuffer(raw) || raw.length === 0) throw new KakuinError('KAKUIN_E_BAD_REQUEST', 'the body must be a base64 DER PKCS#10 request');
  if (raw[0] === 0x30) return raw;
  const compact = raw.toString('latin1').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', 'the body is not base64');
  return Buffer.from(compact, 'base64');
}

export function mountEst(routes: ApiRoutes, deps: EstDeps): void {
  const { enrollment, authenticator, certificates } = deps;
  const raw = express.raw({ type: () => true, limit: MAX_CSR_BYTES });

  // RFC 7030 §3.2.3: without (valid) credentials the server answers 401 with a Basic challenge.
  const station = async (req: Request, res: Response, next: NextFunction) => {
    const authorization = req.get('authorization');
    const challenge = () => res.set('WWW-Authenticate', 'Basic realm="kakuin EST", charset="UTF-8"');
    // A management token is no EST credential, but it is a known principal: the role table
    // (api-schema/access.ts) refuses it with 403, as on every other route it may not call.
    if (authorization?.startsWith('Bearer ')) {
      const token = await authenticator.authenticate(authorization).catch(() => undefined);
      if (token?.kind === 'admin') {
        req.caller = token;
        next();
        return;
      }
    }
    let caller;
    try {
      caller = authorization === undefined && certificates
        ? await certificates.authenticate(req)
        : await authenticator.authenticateBasic(authorization);
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_UNAUTHENTICATED') || hasCode(e, 'KAKUIN_E_STATION_KEY_EXPIRED')) challenge();
      throw e;
    }
    if (!caller) {
      challenge();
      // Credentials that were sent but do not match are not "missing": say which case it is.
      throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', authorization === undefined
        ? 'EST requires HTTP Basic credentials: <stationId>:<apiKey>'
        : 'the HTTP Basic credentials were not accepted: the station id is unknown, disabled, or the API key is not its current one');
    }
    req.caller = caller;
    next();
  };

  const base64Csr = { 'application/pkcs10': { parser: raw, description: 'base64 DER PKCS#10 (RFC 8951 §3: any Content-Transfer-Encoding, whitespace allowed; raw DER too)' } };
  // RFC 7030 §3.2.2: a label selects a CA/profile for every operation, so these answer under a label too (the same).
  const labelled = (op: string) => [`/.well-known/est/${op}`, `/.well-known/est/{label}/${op}`];

  for (const path of labelled('cacerts')) {
    routes.add({
      method: 'get', path, summary: 'EST: base64 certs-only, the device issuing CA and the root', callers: ['anyone'],
      handler: ({ res }) => sendCertsOnly(res, enrollment.chain),
    });
  }

  for (const path of labelled('csrattrs')) {
    routes.add({
      method: 'get', path, summary: 'EST: base64 CsrAttrs', callers: ['anyone'],
      handler: ({ res }) => {
        res.status(200).set('Content-Type', 'application/csrattrs').set('Content-Transfer-Encoding', 'base64').send(Buffer.from(base64Lines(CSR_ATTRS), 'latin1'));
      },
    });
  }

  for (const path of labelled('simpleenroll')) {
    routes.add({
      method: 'post', path, summary: 'EST enrollment: base64 DER CSR → base64 certs-only', callers: ['station'], use: [station],
      body: { media: base64Csr },
      handler: async ({ req, res }) => {
        const caller = req.caller!;
        if (caller.kind !== 'station') throw new KakuinError('KAKUIN_E_FORBIDDEN', 'EST enrollment admits stations only');
        const r = await enrollment.enroll({ manufacturerId: caller.manufacturerId, csr: estBody(req.body), actor: caller.actor, profile: req.params.label });
        sendCertsOnly(res, [r.der]);
      },
    });
  }

  routes.add({
    method: 'post', path: '/.well-known/est/simplereenroll', summary: 'EST renewal over mTLS with the current certificate', callers: ['device'],
    body: { media: base64Csr },
    handler: async ({ req, res }) => {
      const socket = req.socket as TLSSocket;
      const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
      if (!socket.authorized || !peer?.raw) {
        throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'simplereenroll needs the device\'s current certificate (TLS client authentication)');
      }
      const r = await enrollment.reenrollWithCertificate(peer.raw, estBody(req.body));
      sendCertsOnly(res, [r.der]);
    },
  });

  for (const path of labelled('serverkeygen')) {
    routes.add({
      method: 'post', path, summary: 'EST server-side key generation → multipart/mixed: PKCS#8 key + certs-only', callers: ['station'], use: [station],
      body: { media: base64Csr },
      handler: async ({ req, res }) => {
        const caller = req.caller!;
        if (caller.kind !== 'station') throw new KakuinError('KAKUIN_E_FORBIDDEN', 'EST enrollment admits stations only');
        const csr = readCsr(estBody(req.body));
        const serialNumber = subjectSerialNumber(csr);
        // §4.4.1.2: the CSR may name a key to encrypt the new one to; it must be the CSR's own, and
        // its signature shows the client holds it. Checked before anything is issued.
        const recipient = serverKeyRecipient(csr);
        if (recipient && !verifySignature(csr.certificationRequestInfoDer, csr.signatureAlgorithm, csr.signature, csr.spki)) {
          throw new KakuinError('KAKUIN_E_CSR_SIGNATURE_INVALID', 'the CSR signature does not verify under the key it asks the new key to be encrypted to');
        }
        const { enrollment: r, privateKey } = await enrollment.enrollWithServerKey({ manufacturerId: caller.manufacturerId, serialNumber, actor: caller.actor, profile: req.params.label });
        const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
        const boundary = `est-${randomBytes(12).toString('hex')}`;
        const part = (type: string, der: Buffer) => `--${boundary}\r\nContent-Type: ${type}\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64Lines(der)}`;
        const keyPart = recipient
          ? part(SERVER_GENERATED_KEY, encodeServerGeneratedKey(pkcs8, recipient))
          : part('application/pkcs8', pkcs8);
        res.status(200).set('Content-Type', `multipart/mixed; boundary=${boundary}`)
          .send(Buffer.from(`${keyPart}${part(CERTS_ONLY, encodeCertsOnly([r.der]))}--${boundary}--\r\n`, 'latin1'));
      },
    });
  }

  // Unknown EST paths and every error on these paths: text/plain (see plainTextErrors).
  routes.use('/.well-known/est', routeNotFound, plainTextErrors);
}

/**
 * RFC 7030 §4.2.3: an error reply without a CMC response carries "a plaintext human-readable error
 * message"; EST clients print it rather than parse JSON. The API's one error handler still decides
 * code, status (401 keeps its WWW-Authenticate: Basic) and logging: this only has its
 * `{code, message}` written as `KAKUIN_E_...: message` text on this one response.
 */
export function plainTextErrors(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  res.json = (body: unknown) => {
    const { code, message } = (body ?? {}) as { code?: unknown; message?: unknown };
    return res.type('text/plain; charset=utf-8').send(`${String(code)}: ${String(message)}\n`);
  };
  next(err);
}

/**
 * The CSR attributes kakuin asks for (RFC 7030 §4.5.2, with the ASN.1 as RFC 8951 corrects it; as in
 * RFC 7030's own example, the key type is an Attribute whose value names the curve):
 *
 *   CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
 *   AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
 *   Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE(1..MAX) OF ANY }
 *
 * ecdsa-with-SHA256 (the signature kakuin's device profile expects), id-ecPublicKey with secp256r1
 * (the key type; RSA-2048+ and P-384 are accepted too but P-256 is asked for), and the subject
 * serialNumber attribute type (2.5.4.5), which names the device.
 */
const CSR_ATTRS = derSequence(
  derOid(OID_ECDSA_WITH_SHA256),
  derSequence(derOid(OID_EC_PUBLIC_KEY), derSet(derOid(OID_P256))),
  derOid(OID_AT_SERIAL_NUMBER),
);
