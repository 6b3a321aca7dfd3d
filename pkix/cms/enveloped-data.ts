/**
 * CMS EnvelopedData (RFC 5652 §6) with AES-CBC content encryption (RFC 3565), for one recipient:
 * key transport to an RSA key (KeyTransRecipientInfo, RSAES-PKCS1-v1_5: what SCEP clients speak,
 * RFC 8894 §3.1) or ephemeral-static ECDH to an EC key (KeyAgreeRecipientInfo, RFC 5753 §3.1:
 * dhSinglePass-stdDH-sha256kdf-scheme with AES-256 key wrap).
 *
 *   EnvelopedData ::= SEQUENCE {
 *     version CMSVersion,
 *     originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
 *     recipientInfos RecipientInfos,
 *     encryptedContentInfo EncryptedContentInfo,
 *     unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
 *   EncryptedContentInfo ::= SEQUENCE {
 *     contentType ContentType,
 *     contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
 *     encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
 *   KeyTransRecipientInfo ::= SEQUENCE {
 *     version CMSVersion,  -- always set to 0 or 2
 *     rid RecipientIdentifier,                     -- issuerAndSerialNumber | [0] subjectKeyIdentifier
 *     keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
 *     encryptedKey EncryptedKey }
 *   KeyAgreeRecipientInfo ::= SEQUENCE {           -- [1] IMPLICIT in RecipientInfo
 *     version CMSVersion,  -- always set to 3
 *     originator [0] EXPLICIT OriginatorIdentifierOrKey,   -- originatorKey [1] OriginatorPublicKey
 *     ukm [1] EXPLICIT UserKeyingMaterial OPTIONAL,
 *     keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
 *     recipientEncryptedKeys RecipientEncryptedKeys }
 *   ECC-CMS-SharedInfo ::= SEQUENCE {                        -- RFC 5753 §7.2, the KDF's SharedInfo
 *     keyInfo AlgorithmIdentifier, entityUInfo [0] EXPLICIT OCTET STRING OPTIONAL, suppPubInfo [2] EXPLICIT OCTET STRING }
 */
import {
  createCipheriv, createDecipheriv, createHash, diffieHellman, generateKeyPairSync, publicEncrypt, randomBytes,
  constants,
} from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { parseAlgorithmIdentifier } from '../algorithm.js';
import { parseCertificate } from '../certificate.js';
import {
  derBitString, derExplicit, derImplicit, derInteger, derNull, derOctetString, derOid, derSequence, derSet,
} from '../der.js';
import {
  derChildren, derContent, derRaw, expectChildren, expectTag, guardDer, malformed, readDer, readIntegerBytes, readOid,
  readSmallInteger, type DerNode,
} from '../der-reader.js';
import { OID_EC_PUBLIC_KEY, OID_RSA_ENCRYPTION } from '../oids.js';
import { publicKeyObject } from '../signature.js';
import { parseSpki } from '../spki.js';
import {
  OID_AES128_CBC, OID_AES192_CBC, OID_AES256_CBC, OID_AES256_WRAP, OID_CMS_DATA, OID_CMS_ENVELOPED_DATA,
  OID_DH_SINGLE_PASS_STD_DH_SHA256_KDF,
} from './oids.js';

const CBC: Readonly<Record<string, { cipher: string; keyLength: number }>> = {
  [OID_AES128_CBC]: { cipher: 'aes-128-cbc', keyLength: 16 },
  [OID_AES192_CBC]: { cipher: 'aes-192-cbc', keyLength: 24 },
  [OID_AES256_CBC]: { cipher: 'aes-256-cbc', keyLength: 32 },
};

/** RFC 3394 §2.2.3.1: the default initial value of AES key wrap. */
const KEY_WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

function unsupported(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', message);
}

/**
 * DER of a ContentInfo holding EnvelopedData: `content` (as id-data) encrypted with AES-256-CBC
 * under a fresh key, which is transported to the key of `recipientCertificate`: RSA by key
 * transport, EC (P-256, P-384) by key agreement. Or `recipientKey`: an SPKI and a subject key
 * identifier naming it (RFC 7030 §4.4.2's AsymmetricDecryptKeyIdentifier), when there is no certificate.
 */
export function encodeEnvelopedData(content: Buffer, recipient: { certificate: Buffer } | { spki: Buffer; keyIdentifier: Buffer }, contentType: string = OID_CMS_DATA): Buffer {
  const cek = randomBytes(32);
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', cek, iv);
  const encrypted = Buffer.concat([cipher.update(content), cipher.final()]);
  let spkiDer: Buffer;
  let rid: Buffer;
  // KeyAgreeRecipientIdentifier's key-identifier form is rKeyId [0] IMPLICIT RecipientKeyIdentifier (a SEQUENCE).
  let kariRid: Buffer;
  if ('certificate' in recipient) {
    const cert = parseCertificate(recipient.certificate);
    spkiDer = cert.spki.rawDer;
    rid = derSequence(cert.issuer.rawDer, derInteger(cert.serial));
    kariRid = rid;
  } else {
    spkiDer = recipient.spki;
    rid = derImplicit(0, recipient.keyIdentifier, false);
    kariRid = derImplicit(0, derOctetString(recipient.keyIdentifier), true);
  }
  const spki = parseSpki(spkiDer);
  let recipientInfo: Buffer;
  let version: number;
  if (spki.keyType === 'rsa') {
    const encryptedKey = publicEncrypt({ key: publicKeyObject(spki), padding: constants.RSA_PKCS1_PADDING }, cek);
    // RFC 5652 §6.2.1: version 0 with issuerAndSerialNumber, 2 with subjectKeyIdentifier.
    const ktriVersion = 'certificate' in recipient ? 0 : 2;
    recipientInfo = derSequence(derInteger(ktriVersion), rid, derSequence(derOid(OID_RSA_ENCRYPTION), derNull()), derOctetString(encryptedKey));
    // §6.1: version 0 when every recipient is a v0 KeyTransRecipientInfo, else 2.
    version = ktriVersion === 0 ? 0 : 2;
  } else if (spki.keyType === 'ec' && (spki.curve === 'P-256' || spki.curve === 'P-384')) {
    recipientInfo = keyAgreeRecipientInfo(spki.curve, publicKeyObject(spki), kariRid, cek);
    version = 2;
  } else {
    throw unsupported(`cannot encrypt to a ${spki.keyType} key${spki.curve ? ` (${spki.curve})` : ''}: RSA or EC P-256/P-384 only`);
  }
  const enveloped = derSequence(
    derInteger(version),
    derSet(recipientInfo),
    derSequence(derOid(contentType), derSequence(derOid(OID_AES256_CBC), derOctetString(iv)), derImplicit(0, encrypted, false)),
  );
  return derSequence(derOid(OID_CMS_ENVELOPED_DATA), derExplicit(0, enveloped));
}

/** RFC 5753 §3.1.1: a fresh ephemeral key on the recipient's curve; the CEK wrapped under the X9.63 KDF output. */
function keyAgreeRecipientInfo(curve: 'P-256' | 'P-384', recipientKey: ReturnType<typeof publicKeyObject>, rid: Buffer, cek: Buffer): Buffer {
  const ephemeral = generateKeyPairSync('ec', { namedCurve: curve });
  const z = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipientKey });
  const wrapAlg = derSequence(derOid(OID_AES256_WRAP));
  const kek = x963Kdf(z, wrapAlg, 32);
  const wrapper = createCipheriv('id-aes256-wrap', kek, KEY_WRAP_IV);
  const wrapped = Buffer.concat([wrapper.update(cek), wrapper.final()]);
  const point = parseSpki(ephemeral.publicKey.export({ type: 'spki', format: 'der' })).subjectPublicKey;
  // §3.1.1: originatorKey with id-ecPublicKey; its parameters are absent (the curve is the recipient's).
  const originator = derExplicit(0, derImplicit(1, Buffer.concat([derSequence(derOid(OID_EC_PUBLIC_KEY)), derBitString(point)]), true));
  const kari = Buffer.concat([
    derInteger(3),
    originator,
    derSequence(derOid(OID_DH_SINGLE_PASS_STD_DH_SHA256_KDF), wrapAlg),
    derSequence(derSequence(rid, derOctetString(wrapped))),
  ]);
  return derImplicit(1, kari, true);
}

/** ANSI X9.63 KDF with SHA-256 (RFC 5753 §7.2, SEC 1 §3.6.1); SharedInfo is the DER ECC-CMS-SharedInfo. */
function x963Kdf(z: Buffer, keyInfo: Buffer, keyLength: number): Buffer {
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(keyLength * 8);
  const sharedInfo = derSequence(keyInfo, derExplicit(2, derOctetString(bits)));
  const out: Buffer[] = [];
  for (let counter = 1; out.length * 32 < keyLength; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    out.push(createHash('sha256').update(z).update(c).update(sharedInfo).digest());
  }
  return Buffer.concat(out).subarray(0, keyLength);
}

export interface ParsedKeyTransRecipient {
  rid: { issuerDer: Buffer; serial: Buffer } | { subjectKeyIdentifier: Buffer };
  keyEncryptionAlgorithmOid: string;
  encryptedKey: Buffer;
}

export interface ParsedEnvelopedData {
  recipients: ParsedKeyTransRecipient[];
  contentEncryptionAlgorithmOid: string;
  iv?: Buffer;
  encryptedContent: Buffer;
}

function octets(node: DerNode): Buffer {
  if ((node.tag & 0x20) === 0) return derContent(node);
  return Buffer.concat(derChildren(node).map((c) => octets(c)));
}

/**
 * Parses a ContentInfo holding EnvelopedData; only key-transport recipients are read (the others
 * are skipped: kakuin only ever decrypts what was sent to its RSA RA key).
 */
export function parseEnvelopedData(der: Buffer): ParsedEnvelopedData {
  return guardDer('CMS EnvelopedData', () => {
    const ci = expectChildren(readDer(der), 0x30, 'ContentInfo');
    if (ci.length !== 2) throw malformed('ContentInfo must have two components');
    if (readOid(ci[0], 'ContentInfo.contentType') !== OID_CMS_ENVELOPED_DATA) throw malformed('the ContentInfo is not EnvelopedData');
    const wrapped = derChildren(expectTag(ci[1], 0xa0, 'ContentInfo.content'));
    if (wrapped.length !== 1) throw malformed('ContentInfo.content must hold one value');
    const f = expectChildren(wrapped[0], 0x30, 'EnvelopedData');
    let i = 0;
    readSmallInteger(f[i++], 'EnvelopedData.version');
    if (f[i]?.tag === 0xa0) i++;
    const recipients: ParsedKeyTransRecipient[] = [];
    for (const ri of expectChildren(f[i++], 0x31, 'RecipientInfos')) {
      if (ri.tag !== 0x30) continue;
      const r = expectChildren(ri, 0x30, 'KeyTransRecipientInfo');
      if (r.length !== 4) throw malformed('KeyTransRecipientInfo must have four components');
      readSmallInteger(r[0], 'KeyTransRecipientInfo.version');
      const rid: ParsedKeyTransRecipient['rid'] = r[1].tag === 0x80
        ? { subjectKeyIdentifier: derContent(r[1]) }
        : (() => {
          const ias = expectChildren(r[1], 0x30, 'IssuerAndSerialNumber');
          if (ias.length !== 2) throw malformed('IssuerAndSerialNumber must have two components');
          const serial = readIntegerBytes(ias[1], 'serialNumber');
          return { issuerDer: derRaw(ias[0]), serial: serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial };
        })();
      recipients.push({ rid, keyEncryptionAlgorithmOid: parseAlgorithmIdentifier(r[2], 'keyEncryptionAlgorithm').oid, encryptedKey: derContent(expectTag(r[3], 0x04, 'encryptedKey')) });
    }
    const eci = expectChildren(f[i++], 0x30, 'EncryptedContentInfo');
    const alg = parseAlgorithmIdentifier(eci[1], 'contentEncryptionAlgorithm');
    if (eci[2] === undefined || (eci[2].tag & 0x1f) !== 0 || (eci[2].tag & 0xc0) !== 0x80) throw malformed('encryptedContent [0] is missing');
    const iv = alg.parameters?.tag === 0x04 ? derContent(alg.parameters) : undefined;
    return { recipients, contentEncryptionAlgorithmOid: alg.oid, ...(iv !== undefined && { iv }), encryptedContent: octets(eci[2]) };
  });
}

/**
 * Decrypts EnvelopedData sent to the RSA key whose certificate is `recipientCertificate`:
 * `unwrapKey(encryptedKey, keyLength)` is the key store's RSA operation, which answers a random
 * key of that length when the padding is wrong (RFC 3218 §2.3.2, so that no padding oracle
 * exists); the content decryption then fails as any wrong key does. Throws
 * KAKUIN_E_ALGORITHM_UNSUPPORTED for a content or key algorithm other than AES-CBC / RSA v1.5,
 * KAKUIN_E_CMS_DECRYPT when no recipient is that certificate or the content does not decrypt.
 */
export async function decryptEnvelopedData(
  enveloped: ParsedEnvelopedData, recipientCertificate: Buffer, unwrapKey: (encryptedKey: Buffer, keyLength: number) => Promise<Buffer>,
): Promise<Buffer> {
  const cert = parseCertificate(recipientCertificate);
  const mine = enveloped.recipients.find((r) => 'issuerDer' in r.rid
    ? r.rid.issuerDer.equals(cert.issuer.rawDer) && r.rid.serial.equals(cert.serial)
    : cert.subjectKeyIdentifier !== undefined && r.rid.subjectKeyIdentifier.equals(cert.subjectKeyIdentifier));
  if (mine === undefined) throw new KakuinError('KAKUIN_E_CMS_DECRYPT', 'the message is not encrypted to this RA certificate');
  if (mine.keyEncryptionAlgorithmOid !== OID_RSA_ENCRYPTION) throw unsupported(`key encryption algorithm ${mine.keyEncryptionAlgorithmOid} is not supported (rsaEncryption only)`);
  const cbc = CBC[enveloped.contentEncryptionAlgorithmOid];
  if (cbc === undefined) throw unsupported(`content encryption algorithm ${enveloped.contentEncryptionAlgorithmOid} is not supported (AES-CBC only)`);
  if (enveloped.iv?.length !== 16) throw malformed('the AES-CBC parameters must be a 16-octet IV');
  const cek = await unwrapKey(mine.encryptedKey, cbc.keyLength);
  try {
    const decipher = createDecipheriv(cbc.cipher, cek, enveloped.iv);
    return Buffer.concat([decipher.update(enveloped.encryptedContent), decipher.final()]);
  } catch (cause) {
    throw new KakuinError('KAKUIN_E_CMS_DECRYPT', 'the message content does not decrypt', { cause });
  }
}

