/**
 * PKCS#12 (RFC 7292) as a current reader expects it and node-forge cannot write: the key in a
 * pkcs8ShroudedKeyBag under PBES2 (RFC 8018 §6.2) with PBKDF2-HMAC-SHA-256 and AES-256-CBC, the
 * certificates in certBags, and an HMAC-SHA-256 MAC keyed by the PKCS#12 KDF (RFC 7292 Appendix B)
 * — what `openssl pkcs12 -export` writes by default, with more iterations. node-forge's writer
 * derives with HMAC-SHA-1 and MACs with SHA-1 at 2,048 iterations.
 *
 *   PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo, macData MacData OPTIONAL }
 *   MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
 *   AuthenticatedSafe ::= SEQUENCE OF ContentInfo      -- each id-data here
 *   SafeContents ::= SEQUENCE OF SafeBag
 *   SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OF PKCS12Attribute OPTIONAL }
 *   CertBag ::= SEQUENCE { certId OID (x509Certificate), certValue [0] EXPLICIT OCTET STRING }
 *
 * The certificates are not encrypted (as `-certpbe NONE`): they are public, and every reader takes
 * a plain certBag. Certificate DER is placed as given, never re-encoded.
 */
import * as nodeCrypto from 'node:crypto';
import { createCipheriv, createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { KakuinError } from '../errors/index.js';
import { derExplicit, derInteger, derNull, derOctetString, derOid, derSequence, derSet, TAG_SEQUENCE } from './der.js';
import { OID_HMAC_SHA256, OID_PBES2, OID_PBKDF2 } from './encrypted-private-key.js';
import { OID_AES256_CBC } from './cms/oids.js';

const OID_DATA = '1.2.840.113549.1.7.1';
const OID_SHROUDED_KEY_BAG = '1.2.840.113549.1.12.10.1.2';
const OID_CERT_BAG = '1.2.840.113549.1.12.10.1.3';
const OID_X509_CERTIFICATE = '1.2.840.113549.1.9.22.1';
const OID_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const OID_LOCAL_KEY_ID = '1.2.840.113549.1.9.21';
const OID_SHA256 = '2.16.840.1.101.3.4.2.1';

/** At least what the issue asks of a reviewer-proof file; the same count for the key and the MAC. */
export const PKCS12_ITERATIONS = 100_000;

export interface Pkcs12Input {
  /** PKCS#8 PrivateKeyInfo DER (unencrypted; encrypted here). */
  privateKeyInfo: Buffer;
  /** Certificate DERs, leaf first. */
  certificates: Buffer[];
  password: string;
  friendlyName?: string;
  /** Ties the key bag to the leaf's cert bag (RFC 7292 §4.2: localKeyId). */
  localKeyId: Buffer;
  iterations?: number;
}

function contentInfoData(content: Buffer): Buffer {
  return derSequence(derOid(OID_DATA), derExplicit(0, derOctetString(content)));
}

/** A BMPString (UCS-2 big-endian) of a friendly name: RFC 7292 §4.2 friendlyName is BMPString. */
function bmpString(s: string): Buffer {
  const units = Buffer.alloc(s.length * 2);
  for (let i = 0; i < s.length; i++) units.writeUInt16BE(s.charCodeAt(i), 2 * i);
  return Buffer.concat([Buffer.from([0x1e]), derLength(units.length), units]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function bagAttributes(localKeyId: Buffer, friendlyName: string | undefined): Buffer {
  const attrs = [derSequence(derOid(OID_LOCAL_KEY_ID), derSet(derOctetString(localKeyId)))];
  if (friendlyName !== undefined) attrs.unshift(derSequence(derOid(OID_FRIENDLY_NAME), derSet(bmpString(friendlyName))));
  return derSet(...attrs);
}

/**
 * RFC 7292 Appendix B.2 with SHA-256 (u = 32, v = 64): the MAC key (ID 3) from the password as a
 * BMPString with its two-octet terminator (B.1). One output block is all a 32-octet key needs.
 */
export function pkcs12Kdf(password: string, salt: Buffer, id: number, iterations: number, length: number): Buffer {
  const u = 32;
  const v = 64;
  if (length > u) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'the PKCS#12 KDF is used here for one block only');
  const pass = Buffer.alloc((password.length + 1) * 2);
  for (let i = 0; i < password.length; i++) pass.writeUInt16BE(password.charCodeAt(i), 2 * i);
  const fill = (b: Buffer) => {
    if (b.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(b.length / v));
    for (let i = 0; i < out.length; i++) out[i] = b[i % b.length];
    return out;
  };
  const D = Buffer.alloc(v, id);
  let A: Buffer = createHash('sha256').update(D).update(fill(salt)).update(fill(pass)).digest();
  // crypto.hash (Node ≥ 20.12) skips the Hash object: about half the time of the 100,000 rounds.
  const oneShot = (nodeCrypto as { hash?: (alg: string, data: Buffer, enc: 'buffer') => Buffer }).hash;
  if (oneShot !== undefined) {
    for (let i = 1; i < iterations; i++) A = oneShot('sha256', A, 'buffer');
  } else {
    for (let i = 1; i < iterations; i++) A = createHash('sha256').update(A).digest();
  }
  pass.fill(0);
  return A.subarray(0, length);
}

/** The PFX DER: key shrouded (PBES2/PBKDF2-HMAC-SHA-256/AES-256-CBC), certificates, HMAC-SHA-256 MAC. */
export function encodePkcs12(input: Pkcs12Input): Buffer {
  const iterations = input.iterations ?? PKCS12_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'iterations must be a positive integer');
  if (input.certificates.length === 0 || input.certificates.some((c) => !Buffer.isBuffer(c) || c[0] !== TAG_SEQUENCE)) {
    throw new KakuinError('KAKUIN_E_ENCODING_INPUT', 'PKCS#12 needs the certificate DERs, leaf first');
  }
  // PBES2 takes the password's own octets (UTF-8), not the BMPString of the PKCS#12 PBEs (as OpenSSL 3 does).
  const keySalt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(Buffer.from(input.password, 'utf8'), keySalt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(input.privateKeyInfo), cipher.final()]);
  key.fill(0);
  const pbes2 = derSequence(
    derOid(OID_PBES2),
    derSequence(
      derSequence(derOid(OID_PBKDF2), derSequence(derOctetString(keySalt), derInteger(iterations), derSequence(derOid(OID_HMAC_SHA256), derNull()))),
      derSequence(derOid(OID_AES256_CBC), derOctetString(iv)),
    ),
  );
  const keyBag = derSequence(
    derOid(OID_SHROUDED_KEY_BAG), derExplicit(0, derSequence(pbes2, derOctetString(encrypted))), bagAttributes(input.localKeyId, input.friendlyName),
  );
  const certBags = input.certificates.map((der, i) => derSequence(
    derOid(OID_CERT_BAG), derExplicit(0, derSequence(derOid(OID_X509_CERTIFICATE), derExplicit(0, derOctetString(der)))),
    ...(i === 0 ? [bagAttributes(input.localKeyId, input.friendlyName)] : []),
  ));
  const authSafe = derSequence(contentInfoData(derSequence(...certBags)), contentInfoData(derSequence(keyBag)));
  // RFC 7292 §5: the MAC covers the AuthenticatedSafe, the content octets of the outer id-data.
  const macSalt = randomBytes(16);
  const macKey = pkcs12Kdf(input.password, macSalt, 3, iterations, 32);
  const mac = createHmac('sha256', macKey).update(authSafe).digest();
  macKey.fill(0);
  const macData = derSequence(derSequence(derSequence(derOid(OID_SHA256), derNull()), derOctetString(mac)), derOctetString(macSalt), derInteger(iterations));
  return derSequence(derInteger(3), contentInfoData(authSafe), macData);
}
