/**
 * SCEP (RFC 8894) over kakuin's one enrollment core (enrollment-service.ts): the same
 * pre-registration, clone refusal, profiles, rate limits and audit as REST and EST.
 *
 *   GetCACaps     §3.5.2   the capabilities, one per line
 *   GetCACert     §4.2     certs-only: the RA certificate, the device CA and the root
 *   PKIOperation  §4.3     a pkiMessage (GET ?message=<base64>, or POST) → a CertRep
 *     PKCSReq     §3.3.1   a CSR with a one-time challengePassword a station issued for one device,
 *                          signed with the CSR's own key (a self-signed certificate)
 *     RenewalReq  §3.3.1.2 a CSR signed with the device's current certificate (no challenge)
 *     CertPoll    §3.3.3   the answer to a request that was PENDING (here: over the station's rate limit)
 *
 * Every refusal of a message that could be read is a CertRep FAILURE with a failInfo (docs/errors.md
 * maps each KAKUIN_E_* code to one); only a message that is no pkiMessage at all gets HTTP 400,
 * since a CertRep needs the request's transactionID and nonce. A request carries its own
 * idempotence: a PKCSReq retried with the same transactionID and key gets the same certificate.
 */
import { randomBytes } from 'node:crypto';
import {
  decryptEnvelopedData, encodeCertsOnly, encodeEnvelopedData, encodeScepMessage, OID_PKCS9_CHALLENGE_PASSWORD, parseEnvelopedData,
  parseIssuerAndSubject, parseScepRequest, readCsr, readDer, readString, signingTimeOf, verifySigner,
  type ParsedCertificate, type ParsedCsr, type ScepFailInfo, type ScepPkiStatus, type ScepRequest,
} from '../../pkix/index.js';
import type { Registry } from '../../registry/port.js';
import type { ScepStore, ScepTransaction } from '../../registry/scep.js';
import { hasCode, isKakuinError, KakuinError, type ErrorCode } from '../../errors/index.js';
import { tokenHmac } from '../../management-api/admin-tokens.js';
import { publicKeySha256 } from '../../ca/records.js';
import type { EnrollmentService, Enrollment } from '../enrollment-service.js';
import type { ScepRa } from './ra.js';

export const SCEP_CAPABILITIES = ['POSTPKIOperation', 'SHA-256', 'AES', 'Renewal', 'SCEPStandard'];

/** RFC 8894 §3.2.1.4: how far a request's signingTime may be from the clock before badTime. */
const MAX_CLOCK_SKEW_MS = 3600_000;

/** Each refusal's failInfo (RFC 8894 §3.2.1.4); docs/errors.md says the same. */
const FAIL_INFO: Partial<Record<ErrorCode, ScepFailInfo>> = {
  KAKUIN_E_ALGORITHM_UNSUPPORTED: 'badAlg',
  KAKUIN_E_KEY_UNSUPPORTED: 'badAlg',
  KAKUIN_E_KEY_TOO_WEAK: 'badAlg',
  KAKUIN_E_CMS_SIGNATURE_INVALID: 'badMessageCheck',
  KAKUIN_E_CMS_DECRYPT: 'badMessageCheck',
  KAKUIN_E_CSR_SIGNATURE_INVALID: 'badMessageCheck',
  KAKUIN_E_SCEP_SIGNER_INVALID: 'badMessageCheck',
  KAKUIN_E_SCEP_BAD_TIME: 'badTime',
  KAKUIN_E_SCEP_TRANSACTION_UNKNOWN: 'badCertId',
};

export function scepFailInfo(e: unknown): ScepFailInfo {
  if (isKakuinError(e)) {
    return FAIL_INFO[e.code] ?? 'badRequest';
  }
  return 'badRequest';
}

export interface ScepDeps {
  store: ScepStore;
  registry: Registry;
  enrollment: EnrollmentService;
  /** The RA identity, made on first use (ra.ts). */
  ra: () => Promise<ScepRa>;
  /** The device CA and the root, as GetCACert lists them after the RA. */
  caCertificates: () => Buffer[];
  pepper: Buffer;
  clock?: () => Date;
}

export interface ScepAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** Time spent inside the enrollment core during one request. */
interface Spent {
  issueMs: number;
}

interface Outcome {
  status: ScepPkiStatus;
  failInfo?: ScepFailInfo;
  /** The certificate for a SUCCESS. */
  certificate?: Buffer;
}

export class ScepService {
  /** Counts of CertRep outcomes since start (bench and metrics). */
  readonly outcomes = { success: 0, pending: 0, failure: 0 };
  /**
   * Milliseconds spent per phase since start (bench/scep.ts): parsing the pkiMessage; checking it
   * (signature, signingTime, decryption, challenge and transaction); issuing (the enrollment core,
   * which signs the certificate); the reply (envelope and the RA's signature).
   */
  readonly timing = { parse: 0, check: 0, issue: 0, reply: 0 };

  constructor(private readonly deps: ScepDeps) {}

  private now(): Date {
    return (this.deps.clock ?? (() => new Date()))();
  }

  /** One HTTP request: `operation` and `message` from the query, `body` for POST. */
  async handle(method: string, operation: unknown, message: unknown, body: Buffer | undefined): Promise<ScepAnswer> {
    switch (operation) {
      case 'GetCACaps':
        return { status: 200, contentType: 'text/plain', body: Buffer.from(`${SCEP_CAPABILITIES.join('\n')}\n`) };
      case 'GetCACert': {
        const ra = await this.deps.ra();
        // §4.2.1.2: with an RA, a certs-only message with the RA and CA certificates.
        return { status: 200, contentType: 'application/x-x509-ca-ra-cert', body: encodeCertsOnly([ra.certificateDer, ...this.deps.caCertificates()]) };
      }
      case 'PKIOperation': {
        let der: Buffer;
        if (method === 'POST') {
          if (!body || body.length === 0) throw new KakuinError('KAKUIN_E_BAD_REQUEST', 'POST PKIOperation carries the DER pkiMessage as its body');
          der = body;
        } else {
          if (typeof message !== 'string' || message.length === 0) throw new KakuinError('KAKUIN_E_BAD_REQUEST', 'GET PKIOperation needs message=<base64 pkiMessage>');
          // §4.1: base64 in the query; a '+' left unescaped by a client arrives as a space.
          const compact = message.replace(/ /g, '+').replace(/[\r\n]/g, '');
          if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', 'message is not base64');
          der = Buffer.from(compact, 'base64');
        }
        return { status: 200, contentType: 'application/x-pki-message', body: await this.pkiOperation(der) };
      }
      default:
        throw new KakuinError('KAKUIN_E_SCEP_MESSAGE_UNSUPPORTED', 'operation must be GetCACaps, GetCACert or PKIOperation');
    }
  }

  /** A pkiMessage in, its CertRep out (DER). Throws only when the message is not a pkiMessage at all. */
  async pkiOperation(der: Buffer): Promise<Buffer> {
    const t0 = performance.now();
    const request = parseScepRequest(der);
    this.timing.parse += performance.now() - t0;
    let outcome: Outcome;
    try {
      outcome = await this.answer(request);
    } catch (e) {
      if (!isKakuinError(e) || e.status >= 500) throw e;
      await this.deps.registry.appendAuditEvent({
        type: 'enrollment.refused', actor: 'scep',
        details: { via: 'scep', reason: e.code, transactionId: request.transactionId, messageType: request.messageTypeValue },
      }).catch(() => undefined);
      outcome = { status: 'FAILURE', failInfo: scepFailInfo(e) };
    }
    this.outcomes[outcome.status === 'SUCCESS' ? 'success' : outcome.status === 'PENDING' ? 'pending' : 'failure']++;
    const t1 = performance.now();
    const reply = await this.certRep(request, outcome);
    this.timing.reply += performance.now() - t1;
    return reply;
  }

  private async certRep(request: ScepRequest, outcome: Outcome): Promise<Buffer> {
    const ra = await this.deps.ra();
    let envelope: Buffer = Buffer.alloc(0);
    if (outcome.certificate) {
      // §3.3.2: the issued certificate, certs-only, encrypted to the key that signed the request.
      envelope = encodeEnvelopedData(encodeCertsOnly([outcome.certificate]), { certificate: request.signerCertificate!.rawDer });
    }
    return encodeScepMessage({
      fields: {
        messageType: 'CertRep', transactionId: request.transactionId, senderNonce: randomBytes(16), recipientNonce: request.senderNonce,
        pkiStatus: outcome.status, ...(outcome.failInfo && { failInfo: outcome.failInfo }),
      },
      envelope, signerCertificate: ra.certificateDer, certificates: this.deps.caCertificates().slice(0, 1),
      keyType: 'rsa', sign: (data) => ra.signer.sign(data), signingTime: this.now(),
    });
  }

  private async answer(request: ScepRequest): Promise<Outcome> {
    const t0 = performance.now();
    const spent = { issueMs: 0 };
    try {
      return await this.answerChecked(request, spent);
    } finally {
      this.timing.issue += spent.issueMs;
      this.timing.check += performance.now() - t0 - spent.issueMs;
    }
  }

  private async answerChecked(request: ScepRequest, spent: Spent): Promise<Outcome> {
    const signer = request.signerCertificate;
    if (!signer) throw new KakuinError('KAKUIN_E_CMS_SIGNATURE_INVALID', 'the pkiMessage does not carry its signer\'s certificate');
    if (!verifySigner(request.signer, request.signed.eContentType, request.envelope, signer)) {
      throw new KakuinError('KAKUIN_E_CMS_SIGNATURE_INVALID', 'the pkiMessage signature does not verify');
    }
    const signingTime = signingTimeOf(request.signer);
    if (signingTime && Math.abs(signingTime.getTime() - this.now().getTime()) > MAX_CLOCK_SKEW_MS) {
      throw new KakuinError('KAKUIN_E_SCEP_BAD_TIME', `signingTime ${signingTime.toISOString()} is more than an hour from the server's clock`);
    }
    if (request.messageType !== 'PKCSReq' && request.messageType !== 'RenewalReq' && request.messageType !== 'CertPoll') {
      throw new KakuinError('KAKUIN_E_SCEP_MESSAGE_UNSUPPORTED', `messageType ${request.messageTypeValue} is not supported (PKCSReq, RenewalReq, CertPoll)`);
    }
    const ra = await this.deps.ra();
    const content = await decryptEnvelopedData(parseEnvelopedData(request.envelope), ra.certificateDer, (k, n) => ra.signer.unwrapKeyTransport(k, n));
    switch (request.messageType) {
      case 'PKCSReq': return this.pkcsReq(request, signer, readCsr(content), spent);
      case 'RenewalReq': return this.renewalReq(request, signer, content, spent);
      case 'CertPoll': return this.certPoll(request, signer, content, spent);
    }
  }

  private async pkcsReq(request: ScepRequest, signer: ParsedCertificate, csr: ParsedCsr, spent: Spent): Promise<Outcome> {
    // §2.3: without a certificate the requester signs with the key it asks a certificate for; the
    // reply is encrypted to that key, so it must be the CSR's.
    if (!signer.spki.rawDer.equals(csr.spki.rawDer)) {
      throw new KakuinError('KAKUIN_E_SCEP_SIGNER_INVALID', 'a PKCSReq must be signed with the key of its CSR (a self-signed certificate)');
    }
    const password = challengePassword(csr);
    const hmac = tokenHmac(this.deps.pepper, password);
    const challenge = await this.deps.store.findScepChallenge(hmac);
    if (!challenge) throw new KakuinError('KAKUIN_E_SCEP_CHALLENGE_INVALID', 'the challengePassword is not one kakuin issued (or a newer one replaced it)');
    const keyHash = publicKeySha256(csr.spki.rawDer);
    const earlier = await this.deps.store.getScepTransaction(request.transactionId);
    if (earlier && (earlier.deviceId !== challenge.deviceId || earlier.publicKeySha256 !== keyHash)) {
      throw new KakuinError('KAKUIN_E_SCEP_TRANSACTION_CONFLICT', 'this transactionID was used for another key or device');
    }
    if (earlier) return this.resume(earlier, spent);
    if (challenge.expiresAt.getTime() <= this.now().getTime()) throw new KakuinError('KAKUIN_E_SCEP_CHALLENGE_EXPIRED', `the challengePassword expired at ${challenge.expiresAt.toISOString()}`);
    const device = await this.deps.registry.getDevice(challenge.deviceId);
    const subjectSerial = csr.subject.attributes.find((a) => a.oid === '2.5.4.5')?.value;
    if (subjectSerial !== undefined && subjectSerial !== device.serialNumber) {
      throw new KakuinError('KAKUIN_E_SCEP_CHALLENGE_INVALID', 'the challengePassword was issued for another device than the CSR subject names');
    }
    if (!(await this.deps.store.useScepChallenge(hmac, request.transactionId, this.now()))) {
      throw new KakuinError('KAKUIN_E_SCEP_CHALLENGE_INVALID', 'the challengePassword was used already');
    }
    const now = this.now();
    const transaction: ScepTransaction = {
      transactionId: request.transactionId, deviceId: device.id, publicKeySha256: keyHash, status: 'pending', csrDer: csr.rawDer,
      actor: challenge.actor, manufacturerId: challenge.manufacturerId, createdAt: now, updatedAt: now,
    };
    return this.resume(transaction, spent);
  }

  /** Issues a pending transaction (or answers an issued one again); over the station's rate limit it stays PENDING. */
  private async resume(t: ScepTransaction, spent: Spent): Promise<Outcome> {
    if (t.status === 'issued') return { status: 'SUCCESS', certificate: (await this.deps.registry.getCertificate(t.serialHex!)).der };
    const device = await this.deps.registry.getDevice(t.deviceId);
    let r: Enrollment;
    const t0 = performance.now();
    try {
      r = await this.deps.enrollment.enroll({ manufacturerId: t.manufacturerId, serialNumber: device.serialNumber, csr: t.csrDer!, actor: t.actor });
      spent.issueMs += performance.now() - t0;
    } catch (e) {
      spent.issueMs += performance.now() - t0;
      // §3.3.2.1: PENDING, and the client polls with CertPoll; the rate limit clears with time.
      if (hasCode(e, 'KAKUIN_E_STATION_RATE_LIMITED')) {
        await this.deps.store.putScepTransaction({ ...t, updatedAt: this.now() });
        return { status: 'PENDING' };
      }
      throw e;
    }
    await this.deps.store.putScepTransaction({ ...t, status: 'issued', csrDer: undefined, serialHex: r.certificate.serialHex, updatedAt: this.now() });
    return { status: 'SUCCESS', certificate: r.der };
  }

  private async renewalReq(request: ScepRequest, signer: ParsedCertificate, csrDer: Buffer, spent: Spent): Promise<Outcome> {
    const csr = readCsr(csrDer);
    const keyHash = publicKeySha256(csr.spki.rawDer);
    const earlier = await this.deps.store.getScepTransaction(request.transactionId);
    if (earlier) {
      // A retry after the answer was lost: the old certificate may be revoked by now (superseded).
      if (earlier.publicKeySha256 !== keyHash || earlier.status !== 'issued') throw new KakuinError('KAKUIN_E_SCEP_TRANSACTION_CONFLICT', 'this transactionID was used for another key');
      const record = await this.deps.registry.getCertificate(earlier.serialHex!);
      if (record.deviceId !== earlier.deviceId) throw new KakuinError('KAKUIN_E_SCEP_TRANSACTION_CONFLICT', 'this transactionID belongs to another device');
      return { status: 'SUCCESS', certificate: record.der };
    }
    let r: Enrollment;
    const t0 = performance.now();
    try {
      r = await this.deps.enrollment.reenrollWithCertificate(signer.rawDer, csr.rawDer, { via: 'scep-renewalreq' });
      spent.issueMs += performance.now() - t0;
    } catch (e) {
      spent.issueMs += performance.now() - t0;
      if (hasCode(e, 'KAKUIN_E_UNAUTHENTICATED')) {
        throw new KakuinError('KAKUIN_E_SCEP_SIGNER_INVALID', `a RenewalReq must be signed with a good device certificate kakuin issued (${(e as Error).message})`);
      }
      throw e;
    }
    const now = this.now();
    await this.deps.store.putScepTransaction({
      transactionId: request.transactionId, deviceId: r.device.id, publicKeySha256: keyHash, status: 'issued', serialHex: r.certificate.serialHex,
      actor: `device:${r.device.id}`, manufacturerId: r.device.manufacturerId, createdAt: now, updatedAt: now,
    });
    return { status: 'SUCCESS', certificate: r.der };
  }

  private async certPoll(request: ScepRequest, signer: ParsedCertificate, content: Buffer, spent: Spent): Promise<Outcome> {
    parseIssuerAndSubject(content);
    const t = await this.deps.store.getScepTransaction(request.transactionId);
    // Only the requester polls: the poll is signed with the key the request was.
    if (!t || t.publicKeySha256 !== publicKeySha256(signer.spki.rawDer)) {
      throw new KakuinError('KAKUIN_E_SCEP_TRANSACTION_UNKNOWN', 'no SCEP request of this requester has that transactionID');
    }
    return this.resume(t, spent);
  }
}

/** The PKCS#9 challengePassword of a CSR (RFC 2985 §5.4.1: a DirectoryString). */
function challengePassword(csr: ParsedCsr): string {
  const attr = csr.attributes.find((a) => a.oid === OID_PKCS9_CHALLENGE_PASSWORD);
  if (!attr || attr.values.length !== 1) throw new KakuinError('KAKUIN_E_SCEP_CHALLENGE_INVALID', 'a PKCSReq needs the challengePassword a station issued for the device');
  const value = readString(readDer(attr.values[0]), 'challengePassword');
  if (value.length === 0 || value.length > 256) throw new KakuinError('KAKUIN_E_SCEP_CHALLENGE_INVALID', 'the challengePassword is empty or too long');
  return value;
}

/** A new challenge password: 160 random bits as hex (a PrintableString, typed or pasted without ambiguity). */
export function newScepChallengePassword(): string {
  return randomBytes(20).toString('hex');
}

export function challengeHmac(pepper: Buffer, password: string): string {
  return tokenHmac(pepper, password);
}

