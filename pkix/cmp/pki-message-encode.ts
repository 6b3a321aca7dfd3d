/**
 * CMP PKIMessage writing (RFC 9810; Lightweight CMP profile RFC 9483) through pkix's DER writer:
 * the headers and bodies kakuin answers with (ip/cp/kup, rp, pkiconf, genp, error).
 *
 *   PKIStatusInfo ::= SEQUENCE { status PKIStatus, statusString PKIFreeText OPTIONAL, failInfo PKIFailureInfo OPTIONAL }
 *   PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String
 *   CertRepMessage ::= SEQUENCE { caPubs [1] SEQUENCE SIZE (1..MAX) OF CMPCertificate OPTIONAL, response SEQUENCE OF CertResponse }
 *   CertResponse ::= SEQUENCE { certReqId INTEGER, status PKIStatusInfo, certifiedKeyPair CertifiedKeyPair OPTIONAL, rspInfo OCTET STRING OPTIONAL }
 *   CertifiedKeyPair ::= SEQUENCE { certOrEncCert CertOrEncCert, ... }
 *   CertOrEncCert ::= CHOICE { certificate [0] CMPCertificate, encryptedCert [1] EncryptedKey }
 *   RevRepContent ::= SEQUENCE { status SEQUENCE SIZE (1..MAX) OF PKIStatusInfo, revCerts [0] ... OPTIONAL, crls [1] ... OPTIONAL }
 *   GenRepContent ::= SEQUENCE OF InfoTypeAndValue
 *   ErrorMsgContent ::= SEQUENCE { pKIStatusInfo PKIStatusInfo, errorCode INTEGER OPTIONAL, errorDetails PKIFreeText OPTIONAL }
 */
import {
  derBitString, derExplicit, derGeneralizedTime, derInteger, derNull, derOctetString, derOid, derSequence, derUtf8String,
} from '../der.js';
import { CMP_BODY } from './pki-message.js';
import { OID_EC_PUBLIC_KEY, OID_P256 } from '../oids.js';

/** PKIStatus (RFC 9810 §5.2.3). */
export const PKI_STATUS = { accepted: 0, grantedWithMods: 1, rejection: 2, waiting: 3, revocationWarning: 4, revocationNotification: 5 } as const;

/** PKIFailureInfo named bits (RFC 9810 §5.2.3). */
export const PKI_FAILURE_INFO = {
  badAlg: 0, badMessageCheck: 1, badRequest: 2, badTime: 3, badCertId: 4, badDataFormat: 5, wrongAuthority: 6, incorrectData: 7,
  missingTimeStamp: 8, badPOP: 9, certRevoked: 10, certConfirmed: 11, wrongIntegrity: 12, badRecipientNonce: 13, timeNotAvailable: 14,
  unacceptedPolicy: 15, unacceptedExtension: 16, addInfoNotAvailable: 17, badSenderNonce: 18, badCertTemplate: 19, signerNotTrusted: 20,
  transactionIdInUse: 21, unsupportedVersion: 22, notAuthorized: 23, systemUnavail: 24, systemFailure: 25, duplicateCertReq: 26,
} as const;
export type PkiFailureInfo = keyof typeof PKI_FAILURE_INFO;

/** InfoType OIDs (RFC 9810 §5.3.19, RFC 9483 §4.3). */
export const OID_IT_IMPLICIT_CONFIRM = '1.3.6.1.5.5.7.4.13';
export const OID_IT_CA_CERTS = '1.3.6.1.5.5.7.4.17';
export const OID_IT_ROOT_CA_KEY_UPDATE = '1.3.6.1.5.5.7.4.18';
export const OID_IT_CERT_REQ_TEMPLATE = '1.3.6.1.5.5.7.4.19';
export const OID_IT_ROOT_CA_CERT = '1.3.6.1.5.5.7.4.20';
/** RFC 4211 §6.5 id-regCtrl-algId (RFC 9483 §4.3.3: the key type a certReqTemplate asks for). */
export const OID_REG_CTRL_ALG_ID = '1.3.6.1.5.5.7.5.1.11';

/**
 * A named-bit BIT STRING in DER (X.690 §11.2.2): bit 0 is the first octet's high bit, trailing
 * zero bits are removed, and the unused-bits octet says how many of the last octet are padding.
 */
export function encodeFailureInfo(bits: readonly PkiFailureInfo[]): Buffer {
  const numbers = bits.map((b) => PKI_FAILURE_INFO[b]);
  if (numbers.length === 0) return derBitString(Buffer.alloc(0));
  const highest = Math.max(...numbers);
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (const n of numbers) bytes[n >> 3] |= 0x80 >> (n & 7);
  return derBitString(bytes, 7 - (highest & 7));
}

export function encodeFreeText(text: string): Buffer {
  return derSequence(derUtf8String(text));
}

export function encodeStatusInfo(status: number, options: { text?: string; failInfo?: readonly PkiFailureInfo[] } = {}): Buffer {
  return derSequence(
    derInteger(status),
    ...(options.text !== undefined ? [encodeFreeText(options.text)] : []),
    ...(options.failInfo !== undefined && options.failInfo.length > 0 ? [encodeFailureInfo(options.failInfo)] : []),
  );
}

export interface ResponseHeaderInput {
  pvno: number;
  /** Our name: a Name (directoryName) DER. */
  senderName: Buffer;
  /** The requester's sender GeneralName as received (RFC 9483 §3.1: the response's recipient). */
  recipientDer: Buffer;
  /** Absent for an unprotected answer. */
  protectionAlgDer?: Buffer;
  senderKID?: Buffer;
  recipKID?: Buffer;
  transactionID?: Buffer;
  senderNonce: Buffer;
  recipNonce?: Buffer;
  messageTime: Date;
  /** generalInfo implicitConfirm: the server grants what the client asked (RFC 9483 §4.1.1). */
  implicitConfirm?: boolean;
}

export function encodeResponseHeader(h: ResponseHeaderInput): Buffer {
  const opt = (n: number, v: Buffer | undefined) => (v === undefined ? [] : [derExplicit(n, v)]);
  return derSequence(
    derInteger(h.pvno),
    derExplicit(4, h.senderName),
    h.recipientDer,
    derExplicit(0, derGeneralizedTime(h.messageTime)),
    ...opt(1, h.protectionAlgDer),
    ...opt(2, h.senderKID && derOctetString(h.senderKID)),
    ...opt(3, h.recipKID && derOctetString(h.recipKID)),
    ...opt(4, h.transactionID && derOctetString(h.transactionID)),
    derExplicit(5, derOctetString(h.senderNonce)),
    ...opt(6, h.recipNonce && derOctetString(h.recipNonce)),
    ...(h.implicitConfirm ? [derExplicit(8, derSequence(derSequence(derOid(OID_IT_IMPLICIT_CONFIRM), derNull())))] : []),
  );
}

export interface CertResponseInput {
  certReqId: number;
  statusInfo: Buffer;
  certificate?: Buffer;
}

/** ip, cp or kup: one CertResponse per request, with the CA chain in caPubs for ip (RFC 9483 §4.1.1). */
export function encodeCertRepBody(type: 'ip' | 'cp' | 'kup', responses: CertResponseInput[], caPubs?: Buffer[]): Buffer {
  const rep = derSequence(
    ...(caPubs !== undefined && caPubs.length > 0 ? [derExplicit(1, derSequence(...caPubs))] : []),
    derSequence(...responses.map((r) => derSequence(
      derInteger(r.certReqId), r.statusInfo, ...(r.certificate !== undefined ? [derSequence(derExplicit(0, r.certificate))] : []),
    ))),
  );
  return derExplicit(CMP_BODY[type], rep);
}

export function encodeRevRepBody(statusInfos: Buffer[]): Buffer {
  return derExplicit(CMP_BODY.rp, derSequence(derSequence(...statusInfos)));
}

/** PKIConfirmContent ::= NULL */
export function encodePkiConfBody(): Buffer {
  return derExplicit(CMP_BODY.pkiconf, derNull());
}

export function encodeGenpBody(infos: { infoType: string; value?: Buffer }[]): Buffer {
  return derExplicit(CMP_BODY.genp, derSequence(...infos.map((i) => derSequence(derOid(i.infoType), ...(i.value !== undefined ? [i.value] : [])))));
}

export function encodeErrorBody(statusInfo: Buffer, details?: string): Buffer {
  return derExplicit(CMP_BODY.error, derSequence(statusInfo, ...(details !== undefined ? [encodeFreeText(details)] : [])));
}

/** PKIMessage from its header, body, protection value (none: an unprotected error, RFC 9483 §3.6.4) and extraCerts. */
export function encodePkiMessage(headerDer: Buffer, bodyDer: Buffer, protection: Buffer | undefined, extraCerts: Buffer[] = []): Buffer {
  return derSequence(
    headerDer, bodyDer, ...(protection !== undefined ? [derExplicit(0, derBitString(protection))] : []),
    ...(extraCerts.length > 0 ? [derExplicit(1, derSequence(...extraCerts))] : []),
  );
}

/** caCerts (RFC 9483 §4.3.1): SEQUENCE SIZE (1..MAX) OF CMPCertificate. */
export function encodeCaCertsValue(certificates: Buffer[]): Buffer {
  return derSequence(...certificates);
}

/** RootCaKeyUpdateContent ::= SEQUENCE { newWithNew CMPCertificate, newWithOld [0] ... OPTIONAL, oldWithNew [1] ... OPTIONAL } */
export function encodeRootCaKeyUpdateValue(newWithNew: Buffer): Buffer {
  return derSequence(newWithNew);
}

/**
 * CertReqTemplateContent ::= SEQUENCE { certTemplate CertTemplate, keySpec Controls OPTIONAL }
 * (RFC 9483 §4.3.3): an empty template (the CA fills subject and extensions from the device record)
 * and the key type as id-regCtrl-algId.
 */
export function encodeCertReqTemplateValue(key: 'P-256' = 'P-256'): Buffer {
  const keyAlgorithm = key === 'P-256' ? derSequence(derOid(OID_EC_PUBLIC_KEY), derOid(OID_P256)) : derSequence();
  return derSequence(derSequence(), derSequence(derSequence(derOid(OID_REG_CTRL_ALG_ID), keyAlgorithm)));
}


