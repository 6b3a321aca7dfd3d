/**
 * CMP PKIMessage reading (RFC 9810, which obsoletes RFC 4210; profile RFC 9483). The CMP module is
 * EXPLICIT TAGS (RFC 9810 Appendix F), the CRMF one (RFC 4211 Appendix B) IMPLICIT TAGS.
 *
 *   PKIMessage ::= SEQUENCE {
 *       header           PKIHeader,
 *       body             PKIBody,
 *       protection   [0] PKIProtection OPTIONAL,
 *       extraCerts   [1] SEQUENCE SIZE (1..MAX) OF CMPCertificate OPTIONAL }
 *
 *   PKIHeader ::= SEQUENCE {
 *       pvno                INTEGER     { cmp1999(1), cmp2000(2), cmp2021(3) },
 *       sender              GeneralName,
 *       recipient           GeneralName,
 *       messageTime     [0] GeneralizedTime         OPTIONAL,
 *       protectionAlg   [1] AlgorithmIdentifier     OPTIONAL,
 *       senderKID       [2] KeyIdentifier           OPTIONAL,
 *       recipKID        [3] KeyIdentifier           OPTIONAL,
 *       transactionID   [4] OCTET STRING            OPTIONAL,
 *       senderNonce     [5] OCTET STRING            OPTIONAL,
 *       recipNonce      [6] OCTET STRING            OPTIONAL,
 *       freeText        [7] PKIFreeText             OPTIONAL,
 *       generalInfo     [8] SEQUENCE SIZE (1..MAX) OF InfoTypeAndValue OPTIONAL }
 *
 *   ProtectedPart ::= SEQUENCE { header PKIHeader, body PKIBody }
 *
 * The header and body keep their DER as received: protection is checked over those bytes, and the
 * idempotence of a retried transaction compares them, never a re-encoding.
 */
import { type AlgorithmIdentifier, describeSignatureAlgorithm, parseAlgorithmIdentifier } from '../algorithm.js';
import type { ParsedCertificate } from '../certificate.js';
import { OID_SHA256, OID_SHA384 } from '../oids.js';
import { KakuinError } from '../../errors/index.js';
import {
  type DerNode, derChildren, derRaw, expectChildren, expectTag, guardDer, malformed, readBitString, readDer, readOctetString,
  readOid, readSmallInteger, readUnsignedInteger,
} from '../der-reader.js';
import { TAG_SEQUENCE } from '../der.js';
import { parseExtensionsNode, type ParsedExtension } from '../extensions-read.js';
import { parseNameNode, type ParsedName } from '../name.js';
import { parseSpkiNode, type PublicKeyInfo } from '../spki.js';
import { parseCsr, type ParsedCsr } from '../csr.js';
import { crlReasonFromCode, OID_CE_CRL_REASON, type CrlReason } from '../crl.js';

/** PKIBody CHOICE tag numbers (RFC 9810 §5.1.2) that kakuin reads or writes. */
export const CMP_BODY = {
  ir: 0, ip: 1, cr: 2, cp: 3, p10cr: 4, kur: 7, kup: 8, rr: 11, rp: 12, pkiconf: 19, genm: 21, genp: 22, error: 23, certConf: 24,
} as const;
export type CmpBodyType = keyof typeof CMP_BODY;
const BODY_NAMES = new Map<number, CmpBodyType>(Object.entries(CMP_BODY).map(([k, v]) => [v, k as CmpBodyType]));

/** RFC 9810 §5.1.3.1 PasswordBasedMac and §5.1.3.3 signature: the protectionAlg OIDs. */
export const OID_PASSWORD_BASED_MAC = '1.2.840.113533.7.66.13';

export interface PkiHeader {
  rawDer: Buffer;
  pvno: number;
  /** GeneralName DER as received (directoryName [4] for kakuin's peers). */
  senderDer: Buffer;
  /** The sender's directoryName, when it is one. */
  senderName?: ParsedName;
  recipientDer: Buffer;
  messageTime?: Date;
  protectionAlg?: AlgorithmIdentifier;
  senderKID?: Buffer;
  recipKID?: Buffer;
  transactionID?: Buffer;
  senderNonce?: Buffer;
  recipNonce?: Buffer;
  /** generalInfo InfoTypeAndValue OIDs (implicitConfirm is 1.3.6.1.5.5.7.4.13). */
  generalInfoTypes: string[];
}

/**
 * CertReqMsg ::= SEQUENCE { certReq CertRequest, popo ProofOfPossession OPTIONAL, regInfo ... OPTIONAL }
 * CertRequest ::= SEQUENCE { certReqId INTEGER, certTemplate CertTemplate, controls Controls OPTIONAL }
 * CertTemplate ::= SEQUENCE { version [0], serialNumber [1], signingAlg [2], issuer [3] Name,
 *     validity [4], subject [5] Name, publicKey [6] SubjectPublicKeyInfo, issuerUID [7],
 *     subjectUID [8], extensions [9] Extensions }   -- every field OPTIONAL
 * ProofOfPossession ::= CHOICE { raVerified [0] NULL, signature [1] POPOSigningKey, ... }
 * POPOSigningKey ::= SEQUENCE { poposkInput [0] POPOSigningKeyInput OPTIONAL,
 *     algorithmIdentifier AlgorithmIdentifier, signature BIT STRING }
 */
export interface CertTemplate {
  rawDer: Buffer;
  serialNumber?: Buffer;
  /** issuer [3] Name, as received. */
  issuer?: ParsedName;
  subject?: ParsedName;
  publicKey?: PublicKeyInfo;
  extensions: ParsedExtension[];
}

export interface CertReqMessage {
  rawDer: Buffer;
  certReqId: number;
  /** CertRequest exactly as received: what a POPOSigningKey without poposkInput signs (RFC 4211 §4.1). */
  certRequestDer: Buffer;
  template: CertTemplate;
  /** popo signature [1], when present without poposkInput (the only form RFC 9483 §4.1.1 uses). */
  popSignature?: { algorithm: AlgorithmIdentifier; signature: Buffer };
  /** A ProofOfPossession other than signature [1] without poposkInput (raVerified, keyEncipherment, ...). */
  popOther?: number;
}

/** RevDetails ::= SEQUENCE { certDetails CertTemplate, crlEntryDetails Extensions OPTIONAL } */
export interface RevDetails {
  template: CertTemplate;
  crlEntryDetails: ParsedExtension[];
}

/** CertStatus ::= SEQUENCE { certHash OCTET STRING, certReqId INTEGER, statusInfo PKIStatusInfo OPTIONAL, hashAlg [0] ... OPTIONAL } */
export interface CertStatus {
  certHash: Buffer;
  certReqId: number;
  /** PKIStatus of the client's statusInfo (0 accepted when absent). */
  status: number;
  hashAlg?: AlgorithmIdentifier;
}

/** InfoTypeAndValue ::= SEQUENCE { infoType OBJECT IDENTIFIER, infoValue ANY OPTIONAL } */
export interface InfoTypeAndValue {
  infoType: string;
  value?: DerNode;
}

export type PkiBody =
  | { type: 'ir' | 'cr' | 'kur'; requests: CertReqMessage[] }
  | { type: 'p10cr'; csr: ParsedCsr }
  | { type: 'rr'; revocations: RevDetails[] }
  | { type: 'certConf'; statuses: CertStatus[] }
  | { type: 'genm'; infos: InfoTypeAndValue[] }
  | { type: 'pkiconf' | 'error' | 'ip' | 'cp' | 'kup' | 'rp' | 'genp'; node: DerNode };

export interface PkiMessage {
  rawDer: Buffer;
  header: PkiHeader;
  /** The PKIBody element ([n] EXPLICIT) as received. */
  bodyDer: Buffer;
  /** The body's CHOICE number, also for types kakuin does not read. */
  bodyTag: number;
  body?: PkiBody;
  /** The DER of ProtectedPart (header and body bytes as received): what protection covers. */
  protectedPartDer: Buffer;
  protection?: Buffer;
  extraCerts: Buffer[];
}

export function explicitOne(node: DerNode, what: string): DerNode {
  const inner = derChildren(node);
  if (inner.length !== 1) throw malformed(`${what} must hold one element`);
  return inner[0];
}

function parseHeader(node: DerNode): PkiHeader {
  const f = expectChildren(node, TAG_SEQUENCE, 'PKIHeader');
  if (f.length < 3) throw malformed('PKIHeader needs pvno, sender and recipient');
  const pvno = readSmallInteger(f[0], 'pvno');
  const sender = f[1];
  const header: PkiHeader = {
    rawDer: derRaw(node), pvno, senderDer: derRaw(sender), recipientDer: derRaw(f[2]), generalInfoTypes: [],
  };
  // GeneralName directoryName [4] (a CHOICE inside an implicit [4]: explicit).
  if (sender.tag === 0xa4) header.senderName = parseNameNode(explicitOne(sender, 'sender directoryName'), 'sender');
  let last = -1;
  for (const field of f.slice(3)) {
    const n = field.tag - 0xa0;
    if (n < 0 || n > 8 || n <= last) throw malformed('PKIHeader has an unexpected or repeated field');
    last = n;
    const v = explicitOne(field, `PKIHeader [${n}]`);
    switch (n) {
      case 0: header.messageTime = readGeneralizedTime(v); break;
      case 1: header.protectionAlg = parseAlgorithmIdentifier(v, 'protectionAlg'); break;
      case 2: header.senderKID = readOctetString(v, 'senderKID'); break;
      case 3: header.recipKID = readOctetString(v, 'recipKID'); break;
      case 4: header.transactionID = readOctetString(v, 'transactionID'); break;
      case 5: header.senderNonce = readOctetString(v, 'senderNonce'); break;
      case 6: header.recipNonce = readOctetString(v, 'recipNonce'); break;
      case 7: expectTag(v, TAG_SEQUENCE, 'freeText'); break;
      case 8: header.generalInfoTypes = expectChildren(v, TAG_SEQUENCE, 'generalInfo').map((i) => readOid(expectChildren(i, TAG_SEQUENCE, 'InfoTypeAndValue')[0], 'infoType')); break;
    }
  }
  return header;
}

function readGeneralizedTime(node: DerNode): Date {
  expectTag(node, 0x18, 'messageTime');
  const s = node.buf.toString('latin1', node.contentStart, node.end);
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(s);
  if (!m) throw malformed('messageTime is not a DER GeneralizedTime');
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

export function parseCertTemplate(node: DerNode): CertTemplate {
  const t: CertTemplate = { rawDer: derRaw(node), extensions: [] };
  let last = -1;
  for (const field of expectChildren(node, TAG_SEQUENCE, 'CertTemplate')) {
    const n = field.tag & 0x1f;
    if ((field.tag & 0xc0) !== 0x80 || n > 9 || n <= last) throw malformed('CertTemplate has an unexpected or repeated field');
    last = n;
    switch (n) {
      case 1: {
        // [1] IMPLICIT INTEGER: read the contents as an INTEGER's.
        const asInteger = readDer(Buffer.concat([Buffer.from([0x02]), derRaw(field).subarray(1)]));
        t.serialNumber = readUnsignedInteger(asInteger, 'CertTemplate.serialNumber');
        break;
      }
      case 3: t.issuer = parseNameNode(explicitOne(field, 'CertTemplate.issuer'), 'CertTemplate.issuer'); break;
      case 5: t.subject = parseNameNode(explicitOne(field, 'CertTemplate.subject'), 'CertTemplate.subject'); break;
      case 6: {
        // [6] IMPLICIT SubjectPublicKeyInfo: the same contents under a SEQUENCE tag.
        const spkiDer = Buffer.concat([Buffer.from([TAG_SEQUENCE]), derRaw(field).subarray(1)]);
        t.publicKey = parseSpkiNode(readDer(spkiDer));
        break;
      }
      case 9: {
        const extDer = Buffer.concat([Buffer.from([TAG_SEQUENCE]), derRaw(field).subarray(1)]);
        t.extensions = parseExtensionsNode(readDer(extDer));
        break;
      }
      default: break; // version, signingAlg, validity, UIDs: the profile decides them, not the request
    }
  }
  return t;
}

function parseCertReqMessages(node: DerNode): CertReqMessage[] {
  const msgs = expectChildren(node, TAG_SEQUENCE, 'CertReqMessages');
  if (msgs.length === 0) throw malformed('CertReqMessages is empty');
  return msgs.map((m) => {
    const f = expectChildren(m, TAG_SEQUENCE, 'CertReqMsg');
    const req = expectChildren(f[0], TAG_SEQUENCE, 'CertRequest');
    const msg: CertReqMessage = {
      rawDer: derRaw(m), certReqId: readSmallInteger(req[0], 'certReqId'), certRequestDer: derRaw(f[0]), template: parseCertTemplate(req[1]),
    };
    const popo = f[1];
    if (popo !== undefined && popo.tag !== TAG_SEQUENCE) {
      if (popo.tag === 0xa1) {
        const s = derChildren(popo);
        if (s[0]?.tag === 0xa0) msg.popOther = 1;
        else msg.popSignature = { algorithm: parseAlgorithmIdentifier(s[0], 'POPOSigningKey.algorithmIdentifier'), signature: readBitString(s[1], 'POPOSigningKey.signature').bytes };
      } else {
        msg.popOther = popo.tag & 0x1f;
      }
    }
    return msg;
  });
}

function parseBody(tag: number, node: DerNode): PkiBody | undefined {
  const type = BODY_NAMES.get(tag);
  if (type === undefined) return undefined;
  const v = explicitOne(node, `PKIBody ${type}`);
  switch (type) {
    case 'ir': case 'cr': case 'kur':
      return { type, requests: parseCertReqMessages(v) };
    case 'p10cr':
      return { type, csr: parseCsr(Buffer.from(derRaw(v))) };
    case 'rr':
      return {
        type, revocations: expectChildren(v, TAG_SEQUENCE, 'RevReqContent').map((d) => {
          const f = expectChildren(d, TAG_SEQUENCE, 'RevDetails');
          return { template: parseCertTemplate(f[0]), crlEntryDetails: f[1] === undefined ? [] : parseExtensionsNode(f[1]) };
        }),
      };
    case 'certConf':
      return {
        type, statuses: expectChildren(v, TAG_SEQUENCE, 'CertConfirmContent').map((s) => {
          const f = expectChildren(s, TAG_SEQUENCE, 'CertStatus');
          const out: CertStatus = { certHash: readOctetString(f[0], 'certHash'), certReqId: readSmallInteger(f[1], 'certReqId'), status: 0 };
          for (const extra of f.slice(2)) {
            if (extra.tag === TAG_SEQUENCE) out.status = readSmallInteger(expectChildren(extra, TAG_SEQUENCE, 'PKIStatusInfo')[0], 'PKIStatus');
            else if (extra.tag === 0xa0) out.hashAlg = parseAlgorithmIdentifier(explicitOne(extra, 'hashAlg'), 'hashAlg');
            else throw malformed('CertStatus has an unexpected field');
          }
          return out;
        }),
      };
    case 'genm':
      return {
        type, infos: expectChildren(v, TAG_SEQUENCE, 'GenMsgContent').map((i) => {
          const f = expectChildren(i, TAG_SEQUENCE, 'InfoTypeAndValue');
          return { infoType: readOid(f[0], 'infoType'), ...(f[1] !== undefined && { value: f[1] }) };
        }),
      };
    default:
      return { type, node: v };
  }
}

/**
 * Reads a PKIMessage. KAKUIN_E_DER_MALFORMED on any malformation, whatever the input; a body type
 * kakuin does not read leaves `body` undefined (the caller answers badRequest).
 */
export function parsePkiMessage(der: Buffer): PkiMessage {
  return guardDer('PKIMessage', () => {
    const root = readDer(der);
    const f = expectChildren(root, TAG_SEQUENCE, 'PKIMessage');
    if (f.length < 2 || f.length > 4) throw malformed('PKIMessage has the wrong number of components');
    const header = parseHeader(f[0]);
    const bodyNode = f[1];
    if ((bodyNode.tag & 0xe0) !== 0xa0) throw malformed('PKIBody is not a context-specific constructed element');
    const bodyTag = bodyNode.tag & 0x1f;
    const msg: PkiMessage = {
      rawDer: der, header, bodyDer: derRaw(bodyNode), bodyTag, body: parseBody(bodyTag, bodyNode),
      protectedPartDer: protectedPart(header.rawDer, derRaw(bodyNode)), extraCerts: [],
    };
    for (const extra of f.slice(2)) {
      if (extra.tag === 0xa0 && msg.protection === undefined && msg.extraCerts.length === 0) {
        msg.protection = readBitString(explicitOne(extra, 'protection'), 'PKIProtection').bytes;
      } else if (extra.tag === 0xa1 && msg.extraCerts.length === 0) {
        msg.extraCerts = expectChildren(explicitOne(extra, 'extraCerts'), TAG_SEQUENCE, 'extraCerts').map((c) => Buffer.from(derRaw(c)));
        if (msg.extraCerts.length === 0) throw malformed('extraCerts is empty');
      } else {
        throw malformed('PKIMessage has an unexpected component');
      }
    }
    return msg;
  });
}

/** ProtectedPart ::= SEQUENCE { header, body }, from the two elements' DER. */
export function protectedPart(headerDer: Buffer, bodyDer: Buffer): Buffer {
  const len = headerDer.length + bodyDer.length;
  const lenBytes = len < 0x80 ? [len] : len < 0x100 ? [0x81, len] : len < 0x10000 ? [0x82, len >> 8, len & 0xff] : [0x83, len >> 16, (len >> 8) & 0xff, len & 0xff];
  return Buffer.concat([Buffer.from([TAG_SEQUENCE, ...lenBytes]), headerDer, bodyDer]);
}

const EMPTY_NAME_DER = Buffer.from([TAG_SEQUENCE, 0]);

/**
 * A CRMF request in the shape of a parsed PKCS#10 request, for the issuance core: the template's
 * subject (empty when absent), key and extensions; `certificationRequestInfoDer` is the CertRequest,
 * which the POPOSigningKey signs (RFC 4211 §4.1), so `verifyCertReqPop` checks the same bytes.
 */
export function certRequestAsCsr(msg: CertReqMessage): ParsedCsr {
  const spki = msg.template.publicKey;
  if (spki === undefined) throw malformed('CertTemplate has no publicKey');
  if (msg.popSignature === undefined) throw malformed('CertReqMsg has no signature proof of possession');
  return {
    rawDer: msg.rawDer,
    certificationRequestInfoDer: msg.certRequestDer,
    subject: msg.template.subject ?? { rawDer: EMPTY_NAME_DER, attributes: [] },
    spki,
    signatureAlgorithmOid: msg.popSignature.algorithm.oid,
    signatureAlgorithm: msg.popSignature.algorithm,
    signature: msg.popSignature.signature,
    attributes: [],
    requestedExtensions: msg.template.extensions,
  };
}

/**
 * The CRLReason of a RevDetails' crlEntryDetails (RFC 5280 §5.3.1: reasonCode ::= ENUMERATED),
 * `unspecified` when it names none; undefined for a code RFC 5280 does not define.
 */
export function revocationReasonOf(details: RevDetails): CrlReason | undefined {
  const ext = details.crlEntryDetails.find((x) => x.oid === OID_CE_CRL_REASON);
  if (ext === undefined) return 'unspecified';
  return guardDer('CRLReason', () => {
    const n = expectTag(readDer(ext.value), 0x0a, 'CRLReason');
    const c = n.buf.subarray(n.contentStart, n.end);
    if (c.length !== 1) throw malformed('CRLReason must be one octet');
    return crlReasonFromCode(c[0]);
  });
}

/**
 * The hash a certConf's certHash uses (RFC 9810 §5.3.18): its hashAlg when given (cmp2021),
 * otherwise the hash of the certificate's own signature algorithm (SHA-512 for EdDSA, RFC 9810 §5.3.18).
 */
export function certStatusHashName(status: CertStatus, certificate: ParsedCertificate): 'sha256' | 'sha384' | 'sha512' {
  if (status.hashAlg !== undefined) {
    const names: Record<string, 'sha256' | 'sha384' | 'sha512'> = { [OID_SHA256]: 'sha256', [OID_SHA384]: 'sha384', '2.16.840.1.101.3.4.2.3': 'sha512' };
    const n = names[status.hashAlg.oid];
    if (n === undefined) throw new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', `certConf hashAlg ${status.hashAlg.oid} is not SHA-2`);
    return n;
  }
  const d = describeSignatureAlgorithm(certificate.signatureAlgorithm).digest;
  return d ?? 'sha512';
}
