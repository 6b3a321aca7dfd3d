/**
 * SCEP pkiMessages (RFC 8894 §3): a SignedData (signed-data.ts) whose signed attributes carry
 *
 *   transactionID   PrintableString   -- §3.2.1.1, the same in every message of one transaction
 *   messageType     PrintableString   -- §3.2.1.2: "3" CertRep, "17" RenewalReq, "19" PKCSReq, "20" CertPoll, "21" GetCert, "22" GetCRL
 *   pkiStatus       PrintableString   -- §3.2.1.3: "0" SUCCESS, "2" FAILURE, "3" PENDING (CertRep only)
 *   failInfo        PrintableString   -- §3.2.1.4: "0" badAlg .. "4" badCertId (FAILURE only)
 *   senderNonce     OCTET STRING      -- §3.2.1.5, 16 octets
 *   recipientNonce  OCTET STRING      -- the request's senderNonce, echoed (CertRep only)
 *
 * and whose content, the pkcsPKIEnvelope, is an EnvelopedData (enveloped-data.ts) of the
 * messageData: a PKCS#10 request (PKCSReq, RenewalReq), an IssuerAndSubject (CertPoll), or, in a
 * successful CertRep, a certs-only SignedData with the issued certificate (§3.3.2).
 *
 *   IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }      -- §3.3.3
 */
import { KakuinError } from '../../errors/index.js';
import { derOctetString, derPrintableString, derSequence } from '../der.js';
import { derContent, expectChildren, expectTag, guardDer, malformed, readDer, readString, type DerNode } from '../der-reader.js';
import { parseNameNode } from '../name.js';
import type { ParsedCertificate } from '../certificate.js';
import {
  OID_CMS_DATA, OID_SCEP_FAIL_INFO, OID_SCEP_MESSAGE_TYPE, OID_SCEP_PKI_STATUS, OID_SCEP_RECIPIENT_NONCE, OID_SCEP_SENDER_NONCE,
  OID_SCEP_TRANSACTION_ID,
} from './oids.js';
import {
  encodeSignedData, parseSignedData, signerCertificate, singleAttribute, type CmsAttribute, type ParsedSignedData, type ParsedSignerInfo,
} from './signed-data.js';

export const SCEP_MESSAGE_TYPES = { CertRep: '3', RenewalReq: '17', PKCSReq: '19', CertPoll: '20', GetCert: '21', GetCRL: '22' } as const;
export type ScepMessageType = keyof typeof SCEP_MESSAGE_TYPES;
export const SCEP_PKI_STATUS = { SUCCESS: '0', FAILURE: '2', PENDING: '3' } as const;
export type ScepPkiStatus = keyof typeof SCEP_PKI_STATUS;
export const SCEP_FAIL_INFO = { badAlg: '0', badMessageCheck: '1', badRequest: '2', badTime: '3', badCertId: '4' } as const;
export type ScepFailInfo = keyof typeof SCEP_FAIL_INFO;

export interface ScepRequest {
  signed: ParsedSignedData;
  signer: ParsedSignerInfo;
  /** The certificate the signer identifier names (self-signed for PKCSReq, the current one for RenewalReq); undefined when not carried. */
  signerCertificate?: ParsedCertificate;
  /** undefined for a message type kakuin does not know (answered badRequest). */
  messageType?: ScepMessageType;
  messageTypeValue: string;
  transactionId: string;
  senderNonce: Buffer;
  /** The pkcsPKIEnvelope: the DER EnvelopedData, the SignedData's content. */
  envelope: Buffer;
}

function printable(v: Buffer | undefined, what: string): string | undefined {
  if (v === undefined) return undefined;
  return guardDer(what, () => {
    const node = readDer(v);
    // RFC 8894 §3.2.1: PrintableString; some clients write UTF8String or IA5String, read alike.
    return readString(node, what);
  });
}

function octetString(v: Buffer | undefined, what: string): Buffer | undefined {
  if (v === undefined) return undefined;
  return guardDer(what, () => Buffer.from(derContent(expectTag(readDer(v), 0x04, what))));
}

/** Parses a PKIOperation message. KAKUIN_E_DER_MALFORMED when it is no SCEP pkiMessage. */
export function parseScepRequest(der: Buffer): ScepRequest {
  const signed = parseSignedData(der);
  if (signed.signers.length !== 1) throw malformed('a SCEP pkiMessage has exactly one signer (RFC 8894 §3.1)');
  const signer = signed.signers[0];
  const messageTypeValue = printable(singleAttribute(signer, OID_SCEP_MESSAGE_TYPE), 'messageType');
  const transactionId = printable(singleAttribute(signer, OID_SCEP_TRANSACTION_ID), 'transactionID');
  const senderNonce = octetString(singleAttribute(signer, OID_SCEP_SENDER_NONCE), 'senderNonce');
  if (messageTypeValue === undefined || transactionId === undefined || senderNonce === undefined) {
    throw malformed('a SCEP request needs the messageType, transactionID and senderNonce signed attributes (RFC 8894 §3.2.1)');
  }
  if (transactionId.length === 0 || transactionId.length > 256) throw malformed('transactionID must be 1 to 256 characters');
  if (senderNonce.length < 8 || senderNonce.length > 64) throw malformed('senderNonce must be 8 to 64 octets (RFC 8894 §3.2.1.5: 16)');
  if (signed.eContentType !== OID_CMS_DATA || signed.eContent === undefined) throw malformed('the pkcsPKIEnvelope must be encapsulated id-data');
  const messageType = (Object.keys(SCEP_MESSAGE_TYPES) as ScepMessageType[]).find((k) => SCEP_MESSAGE_TYPES[k] === messageTypeValue);
  return {
    signed, signer, signerCertificate: signerCertificate(signer, signed.certificates), messageTypeValue,
    ...(messageType !== undefined && { messageType }), transactionId, senderNonce, envelope: signed.eContent,
  };
}

export interface ScepReplyFields {
  messageType: ScepMessageType;
  transactionId: string;
  senderNonce: Buffer;
  recipientNonce?: Buffer;
  pkiStatus?: ScepPkiStatus;
  failInfo?: ScepFailInfo;
}

/** The SCEP signed attributes of a message. */
export function scepAttributes(f: ScepReplyFields): CmsAttribute[] {
  const attrs: CmsAttribute[] = [
    { oid: OID_SCEP_TRANSACTION_ID, values: [derPrintableString(f.transactionId)] },
    { oid: OID_SCEP_MESSAGE_TYPE, values: [derPrintableString(SCEP_MESSAGE_TYPES[f.messageType])] },
    { oid: OID_SCEP_SENDER_NONCE, values: [derOctetString(f.senderNonce)] },
  ];
  if (f.recipientNonce) attrs.push({ oid: OID_SCEP_RECIPIENT_NONCE, values: [derOctetString(f.recipientNonce)] });
  if (f.pkiStatus) attrs.push({ oid: OID_SCEP_PKI_STATUS, values: [derPrintableString(SCEP_PKI_STATUS[f.pkiStatus])] });
  if (f.failInfo) attrs.push({ oid: OID_SCEP_FAIL_INFO, values: [derPrintableString(SCEP_FAIL_INFO[f.failInfo])] });
  return attrs;
}

export interface ScepMessageInput {
  fields: ScepReplyFields;
  /** The pkcsPKIEnvelope (DER EnvelopedData); empty for FAILURE and PENDING. */
  envelope: Buffer;
  signerCertificate: Buffer;
  certificates?: Buffer[];
  keyType: 'rsa' | 'ec';
  sign: (data: Buffer) => Promise<Buffer>;
  signingTime?: Date;
}

/**
 * DER of a SCEP pkiMessage (a CertRep from the RA, or a request in tests and benchmarks).
 *
 * RFC 8894 §3.3.2.2 omits the pkcsPKIEnvelope of a FAILURE or PENDING reply; it is written here as
 * an empty encapsulated OCTET STRING instead of a detached content, because OpenSSL's
 * PKCS7_verify (certmonger, sscep) refuses a SignedData without content ("no content") and the
 * client would report the CA unreachable instead of the refusal.
 */
export function encodeScepMessage(input: ScepMessageInput): Promise<Buffer> {
  return encodeSignedData({
    content: input.envelope, signerCertificate: input.signerCertificate, certificates: input.certificates,
    attributes: scepAttributes(input.fields), keyType: input.keyType, sign: input.sign, signingTime: input.signingTime,
  });
}

/** The fields of a CertRep (tests and clients read them back). */
export function scepReplyFields(signer: ParsedSignerInfo): { messageType?: string; pkiStatus?: string; failInfo?: string; transactionId?: string; recipientNonce?: Buffer; senderNonce?: Buffer } {
  return {
    messageType: printable(singleAttribute(signer, OID_SCEP_MESSAGE_TYPE), 'messageType'),
    pkiStatus: printable(singleAttribute(signer, OID_SCEP_PKI_STATUS), 'pkiStatus'),
    failInfo: printable(singleAttribute(signer, OID_SCEP_FAIL_INFO), 'failInfo'),
    transactionId: printable(singleAttribute(signer, OID_SCEP_TRANSACTION_ID), 'transactionID'),
    recipientNonce: octetString(singleAttribute(signer, OID_SCEP_RECIPIENT_NONCE), 'recipientNonce'),
    senderNonce: octetString(singleAttribute(signer, OID_SCEP_SENDER_NONCE), 'senderNonce'),
  };
}

/** CertPoll's messageData (RFC 8894 §3.3.3): the CA's name and the requested subject, each as received. */
export function parseIssuerAndSubject(der: Buffer): { issuerDer: Buffer; subjectDer: Buffer } {
  return guardDer('IssuerAndSubject', () => {
    const parts: DerNode[] = expectChildren(readDer(der), 0x30, 'IssuerAndSubject');
    if (parts.length !== 2) throw malformed('IssuerAndSubject must have two components');
    return { issuerDer: parseNameNode(parts[0], 'issuer').rawDer, subjectDer: parseNameNode(parts[1], 'subject').rawDer };
  });
}

export function encodeIssuerAndSubject(issuerDer: Buffer, subjectDer: Buffer): Buffer {
  return derSequence(issuerDer, subjectDer);
}

/** The OID of a message type (tests name message types kakuin refuses). */
export function scepMessageTypeAttribute(value: string): CmsAttribute {
  if (!/^[0-9]{1,3}$/.test(value)) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'a messageType is a decimal number');
  return { oid: OID_SCEP_MESSAGE_TYPE, values: [derPrintableString(value)] };
}
