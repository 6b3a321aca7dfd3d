/**
 * The Lightweight CMP profile (RFC 9483 on RFC 9810) over the enrollment core: one PKIMessage in,
 * one PKIMessage out. Requests go through the same EnrollmentService calls as REST and EST
 * (pre-registration, clone refusal, idempotence by key, profiles, rate limits, quotas, audit):
 *
 *   ir / cr     CRMF CertReqMessages (POPOSigningKey checked here) → ip / cp
 *   p10cr       PKCS#10 → cp
 *   kur         signed with the device's current certificate → kup (the old certificate is superseded)
 *   rr          signed with the device's current certificate, naming it → rp (revoked)
 *   certConf    → pkiConf (a rejected certificate is revoked)
 *   genm        caCerts, rootCaCert, certReqTemplate (RFC 9483 §4.3) → genp
 *
 * Every refusal is a CMP error message (RFC 9810 §5.3.21) with a PKIFailureInfo bit
 * (failure-info.ts) and the KAKUIN_E_* code as its text. A transactionID is one transaction: the
 * same message again (a retry) gets the same answer from the CMP store; another message under it
 * is refused with transactionIdInUse.
 */
import {
  certRequestAsCsr, certStatusHashName, encodeCaCertsValue, encodeCertRepBody, encodeCertReqTemplateValue, encodeErrorBody,
  encodeGenpBody, encodePkiConfBody, encodePkiMessage, encodeResponseHeader, encodeRevRepBody, encodeStatusInfo,
  OID_IT_CA_CERTS, OID_IT_CERT_REQ_TEMPLATE, OID_IT_IMPLICIT_CONFIRM, OID_IT_ROOT_CA_CERT, OID_IT_ROOT_CA_KEY_UPDATE, parseCertificate,
  parsePkiMessage, PKI_STATUS, revocationReasonOf, verifyCsr, certRepCertificate, type CertReqMessage, type PkiMessage, type RevDetails,
} from '../../pkix/index.js';
import { createHash } from 'node:crypto';
import type { CmpStore, CmpTransaction } from '../../registry/cmp.js';
import type { Registry } from '../../registry/port.js';
import { isKakuinError, KakuinError } from '../../errors/index.js';
import type { RevocationService } from '../../ca/revocation.js';
import type { EnrollmentService, Enrollment } from '../enrollment-service.js';
import { subjectSerialNumber } from '../enrollment-service.js';
import { type CmpProtection, type CmpSender, newNonce, sha256Hex } from './cmp-protection.js';
import { failureInfoOf } from './failure-info.js';

/** How long a transaction's answers are kept for retries (RFC 9483 leaves it to the PKI). */
const TRANSACTION_LIFETIME_MS = 24 * 3_600_000;

export interface CmpServerDeps {
  enrollment: EnrollmentService;
  registry: Registry;
  revocation: RevocationService;
  store: CmpStore;
  protection: CmpProtection;
  clock?: () => Date;
  /** Unexpected failures (answered systemFailure; the cause is never sent). */
  onError?: (e: unknown) => void;
}

interface Answer {
  body: Buffer;
  extraCerts: Buffer[];
  implicitConfirm?: boolean;
  /** Kept in the CMP store for retries (requests that change something). */
  record: boolean;
}

function messageInvalid(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_CMP_MESSAGE_INVALID', message);
}

export class CmpServer {
  private readonly clock: () => Date;
  private lastPrune = 0;

  constructor(private readonly deps: CmpServerDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  /** Answers one request; never throws (every failure is a CMP error message). `profile`: /.well-known/cmp/p/<profile>. */
  async handle(der: Buffer, profile?: string): Promise<Buffer> {
    let msg: PkiMessage | undefined;
    let sender: CmpSender | undefined;
    try {
      msg = parsePkiMessage(der);
      const h = msg.header;
      if (h.pvno !== 2 && h.pvno !== 3) throw new KakuinError('KAKUIN_E_CMP_UNSUPPORTED_VERSION', `pvno ${h.pvno} is not supported (2 or 3)`);
      if (h.transactionID === undefined || h.transactionID.length === 0 || h.transactionID.length > 64) throw messageInvalid('RFC 9483 §3.1: the header must carry a transactionID (1 to 64 octets)');
      if (h.senderNonce === undefined) throw messageInvalid('RFC 9483 §3.1: the header must carry a senderNonce');
      if (msg.body === undefined) throw messageInvalid(`PKIBody [${msg.bodyTag}] is not a request this server answers`);
      const transactionId = h.transactionID.toString('hex');
      sender = await this.deps.protection.authenticate(msg, transactionId);
      this.prune();
      return await this.answer(msg, sender, transactionId, profile);
    } catch (e) {
      if (!isKakuinError(e)) this.deps.onError?.(e);
      return this.error(msg, sender, e);
    }
  }

  private async answer(msg: PkiMessage, sender: CmpSender, transactionId: string, profile: string | undefined): Promise<Buffer> {
    const body = msg.body!;
    if (body.type === 'certConf') return this.confirm(msg, sender, transactionId);
    const requestSha256 = sha256Hex(msg.protectedPartDer);
    const existing = await this.deps.store.findCmpTransaction(transactionId);
    if (existing !== undefined) return this.retried(existing, sender, requestSha256);
    if (sender.kind === 'secret' && body.type !== 'genm') {
      if (!(await this.deps.store.bindCmpSecret(sender.secret.reference, transactionId))) {
        throw new KakuinError('KAKUIN_E_CMP_SECRET_UNKNOWN', 'the CMP secret was used by another transaction');
      }
    }
    const a = await this.dispatch(msg, sender, profile);
    const response = await this.respond(msg, sender, a);
    if (!a.record) return response;
    const now = this.clock();
    const saved = await this.deps.store.saveCmpTransaction({
      transactionId, owner: sender.owner, requestSha256, responseDer: response, createdAt: now, expiresAt: new Date(now.getTime() + TRANSACTION_LIFETIME_MS),
    });
    // Two copies of one message at once: the first recorded answer is the answer.
    return saved === 'saved' ? response : this.retried(saved, sender, requestSha256);
  }

  private retried(existing: CmpTransaction, sender: CmpSender, requestSha256: string): Buffer {
    if (existing.owner === sender.owner && existing.requestSha256 === requestSha256) return existing.responseDer;
    throw new KakuinError('KAKUIN_E_CMP_TRANSACTION_IN_USE', 'this transactionID belongs to an earlier, different message');
  }

  private async dispatch(msg: PkiMessage, sender: CmpSender, profile: string | undefined): Promise<Answer> {
    const body = msg.body!;
    switch (body.type) {
      case 'p10cr': {
        const r = await this.enroll(sender, body.csr, profile);
        return this.certRep('cp', -1, r, msg);
      }
      case 'ir':
      case 'cr': {
        const req = onlyRequest(body.requests);
        const csr = popVerified(req);
        const r = await this.enroll(sender, csr, profile, true);
        return this.certRep(body.type === 'ir' ? 'ip' : 'cp', req.certReqId, r, msg, body.type === 'ir' && sender.kind === 'secret');
      }
      case 'kur': {
        if (sender.kind !== 'device') throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'kur is signed with the device\'s current certificate (RFC 9483 §4.1.3)');
        const req = onlyRequest(body.requests);
        const csr = popVerified(req);
        const r = await this.deps.enrollment.reenrollWithCertificate(sender.record.der, csr, { via: 'cmp-kur', proofOfPossession: 'verified-by-caller', subjectMayBeEmpty: true });
        return this.certRep('kup', req.certReqId, r, msg);
      }
      case 'rr':
        return this.revoke(body.revocations, sender);
      case 'genm':
        return this.general(body.infos.map((i) => i.infoType));
      default:
        throw messageInvalid(`a ${body.type} is not a request`);
    }
  }

  private async enroll(sender: CmpSender, csr: Parameters<EnrollmentService['enroll']>[0]['csr'], profile: string | undefined, popChecked = false): Promise<Enrollment> {
    const pop = popChecked ? { proofOfPossession: 'verified-by-caller' as const } : {};
    if (sender.kind === 'secret') {
      // The secret names the device; a serialNumber in the request must agree (the issuance core checks it).
      const device = await this.deps.registry.getDevice(sender.secret.deviceId);
      return this.deps.enrollment.enroll({ manufacturerId: sender.secret.manufacturerId, serialNumber: device.serialNumber, csr, actor: sender.secret.issuedBy, profile, ...pop });
    }
    if (sender.kind === 'station') {
      const parsed = typeof csr === 'object' && !Buffer.isBuffer(csr) ? csr : undefined;
      const serialNumber = parsed ? subjectSerialNumber(parsed) : undefined;
      return this.deps.enrollment.enroll({ manufacturerId: sender.caller.manufacturerId, serialNumber, csr, actor: sender.caller.actor, profile, ...pop });
    }
    throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'a device certificate may renew (kur) or revoke (rr), not enroll: a station certificate or a CMP secret does');
  }

  private certRep(type: 'ip' | 'cp' | 'kup', certReqId: number, r: Enrollment, msg: PkiMessage, withCaPubs = false): Answer {
    const implicitConfirm = msg.header.generalInfoTypes.includes(OID_IT_IMPLICIT_CONFIRM);
    const root = r.chain[r.chain.length - 1];
    return {
      body: encodeCertRepBody(type, [{ certReqId, statusInfo: encodeStatusInfo(PKI_STATUS.accepted), certificate: r.der }], withCaPubs && root ? [root] : undefined),
      extraCerts: r.chain, implicitConfirm, record: true,
    };
  }

  /** rr: a device revokes its own certificate, the one it signed with (RFC 9483 §4.2). */
  private async revoke(revocations: RevDetails[], sender: CmpSender): Promise<Answer> {
    if (sender.kind !== 'device') throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'rr is signed with the certificate to revoke (RFC 9483 §4.2)');
    if (revocations.length !== 1) throw messageInvalid('RFC 9483 §4.2: one RevDetails per rr');
    const { template } = revocations[0];
    const own = sender.certificate;
    if (template.serialNumber === undefined || !template.serialNumber.equals(own.serial) || (template.issuer !== undefined && !template.issuer.rawDer.equals(own.issuer.rawDer))) {
      throw new KakuinError('KAKUIN_E_FORBIDDEN', 'a device may revoke only the certificate it signs the rr with');
    }
    const reason = revocationReasonOf(revocations[0]);
    if (reason === undefined || reason === 'certificateHold' || reason === 'removeFromCRL') throw messageInvalid('the CRL reason is not one a device may give');
    await this.deps.revocation.revokeCertificate(sender.record.serialHex, { reason }, `device:${sender.record.deviceId}`);
    return { body: encodeRevRepBody([encodeStatusInfo(PKI_STATUS.accepted)]), extraCerts: [], record: true };
  }

  /** genm (RFC 9483 §4.3): CA certificates, the root (no root key update pending), the request template. */
  private general(types: string[]): Answer {
    if (types.length === 0) throw messageInvalid('genm without an InfoTypeAndValue');
    const chain = this.deps.enrollment.chain;
    const infos = types.map((t) => {
      switch (t) {
        case OID_IT_CA_CERTS: return { infoType: t, value: encodeCaCertsValue(chain) };
        // §4.3.2: without an update the answer is rootCaKeyUpdate with its value absent.
        case OID_IT_ROOT_CA_CERT: return { infoType: OID_IT_ROOT_CA_KEY_UPDATE };
        case OID_IT_CERT_REQ_TEMPLATE: return { infoType: t, value: encodeCertReqTemplateValue('P-256') };
        default: return { infoType: t };
      }
    });
    return { body: encodeGenpBody(infos), extraCerts: [], record: false };
  }

  /** certConf → pkiConf, once per transaction; the certificate hash must be that of the certificate sent. */
  private async confirm(msg: PkiMessage, sender: CmpSender, transactionId: string): Promise<Buffer> {
    const body = msg.body as Extract<PkiMessage['body'], { type: 'certConf' }>;
    const t = await this.deps.store.findCmpTransaction(transactionId);
    if (t === undefined || t.owner !== sender.owner) throw messageInvalid('certConf for no open transaction of this sender');
    const confirmSha256 = sha256Hex(msg.protectedPartDer);
    if (t.confirmSha256 !== undefined) {
      if (t.confirmSha256 === confirmSha256) return t.confirmResponseDer!;
      throw new KakuinError('KAKUIN_E_CMP_TRANSACTION_IN_USE', 'this transaction was confirmed already');
    }
    const issued = issuedCertificateOf(t.responseDer);
    if (issued === undefined) throw messageInvalid('certConf for a transaction that issued no certificate');
    if (body.statuses.length !== 1) throw messageInvalid('RFC 9483 §4.1.1: one CertStatus per certConf');
    const status = body.statuses[0];
    const cert = parseCertificate(issued);
    const hash = certStatusHashName(status, cert);
    if (!createHash(hash).update(issued).digest().equals(status.certHash)) throw new KakuinError('KAKUIN_E_CMP_MESSAGE_INVALID', 'certConf certHash is not the hash of the certificate sent');
    if (status.status === PKI_STATUS.rejection) {
      // RFC 9483 §4.1.1: the end entity rejected the new certificate; it must not stay good.
      await this.deps.revocation.revokeCertificate(cert.serialHex, { reason: 'cessationOfOperation' }, sender.owner).catch((e) => {
        if (!(isKakuinError(e) && e.code === 'KAKUIN_E_CERTIFICATE_STATE')) throw e;
      });
    }
    const response = await this.respond(msg, sender, { body: encodePkiConfBody(), extraCerts: [], record: false });
    if (await this.deps.store.confirmCmpTransaction(transactionId, confirmSha256, response)) return response;
    const again = await this.deps.store.findCmpTransaction(transactionId);
    if (again?.confirmSha256 === confirmSha256) return again.confirmResponseDer!;
    throw new KakuinError('KAKUIN_E_CMP_TRANSACTION_IN_USE', 'this transaction was confirmed already');
  }

  private async respond(msg: PkiMessage, sender: CmpSender | undefined, a: Answer): Promise<Buffer> {
    const p = this.deps.protection.answerProtection(sender, a.extraCerts);
    const h = msg.header;
    const header = encodeResponseHeader({
      pvno: h.pvno === 3 ? 3 : 2, senderName: this.deps.protection.senderName, recipientDer: h.senderDer,
      protectionAlgDer: p?.protectionAlgDer, senderKID: p?.senderKID, recipKID: h.senderKID, transactionID: h.transactionID,
      senderNonce: newNonce(), recipNonce: h.senderNonce, messageTime: this.clock(), implicitConfirm: a.implicitConfirm,
    });
    return p === undefined ? encodePkiMessage(header, a.body, undefined, a.extraCerts) : p.finish(header, a.body);
  }

  private async error(msg: PkiMessage | undefined, sender: CmpSender | undefined, e: unknown): Promise<Buffer> {
    const code = isKakuinError(e) ? e.code : 'KAKUIN_E_INTERNAL';
    const text = isKakuinError(e) ? `${code}: ${e.message}` : `${code}: internal error`;
    const body = encodeErrorBody(encodeStatusInfo(PKI_STATUS.rejection, { text, failInfo: [failureInfoOf(e)] }));
    // A message that could not be read is answered with what is known: nothing of the request.
    const fallback = {
      header: { pvno: 2, senderDer: EMPTY_DIRECTORY_NAME, senderKID: undefined, transactionID: undefined, senderNonce: undefined },
    } as unknown as PkiMessage;
    try {
      return await this.respond(msg ?? fallback, sender, { body, extraCerts: [], record: false });
    } catch (inner) {
      this.deps.onError?.(inner);
      return encodePkiMessage(encodeResponseHeader({
        pvno: 2, senderName: this.deps.protection.senderName, recipientDer: EMPTY_DIRECTORY_NAME, senderNonce: newNonce(), messageTime: this.clock(),
      }), body, undefined);
    }
  }

  /** Drops expired secrets and transactions, at most once a minute, off the answer's path. */
  private prune(): void {
    const now = this.clock();
    if (now.getTime() - this.lastPrune < 60_000) return;
    this.lastPrune = now.getTime();
    this.deps.store.pruneCmp(now).catch((e) => this.deps.onError?.(e));
  }
}

/** GeneralName directoryName [4] of an empty Name: the NULL-DN RFC 9483 §3.1 uses for "unknown". */
const EMPTY_DIRECTORY_NAME = Buffer.from([0xa4, 0x02, 0x30, 0x00]);

function onlyRequest(requests: CertReqMessage[]): CertReqMessage {
  // RFC 9483 §4.1.1: exactly one CertReqMsg.
  if (requests.length !== 1) throw messageInvalid('RFC 9483 §4.1.1: one CertReqMsg per request');
  return requests[0];
}

/** RFC 4211 §4.1: the POPOSigningKey signs the CertRequest with the template's key. */
function popVerified(req: CertReqMessage) {
  if (req.template.publicKey === undefined) throw messageInvalid('the CertTemplate carries no publicKey (central key generation is not offered)');
  if (req.popSignature === undefined) throw new KakuinError('KAKUIN_E_CSR_SIGNATURE_INVALID', 'RFC 9483 §4.1.1: proof of possession by signature is required');
  const csr = certRequestAsCsr(req);
  verifyCsr(csr);
  return csr;
}

/** The certificate of the (one) CertResponse of a stored ip/cp/kup. */
function issuedCertificateOf(responseDer: Buffer): Buffer | undefined {
  const m = parsePkiMessage(responseDer);
  if (m.body?.type !== 'ip' && m.body?.type !== 'cp' && m.body?.type !== 'kup') return undefined;
  return certRepCertificate(m.body.node);
}
