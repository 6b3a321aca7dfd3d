/**
 * SubjectPublicKeyInfo, and the key identifier derived from it.
 *
 * RFC 5280 §4.1 (Appendix A.1):
 *   SubjectPublicKeyInfo  ::=  SEQUENCE  {
 *        algorithm            AlgorithmIdentifier,
 *        subjectPublicKey     BIT STRING  }
 *
 * RFC 5480 §2.1.1:
 *   ECParameters ::= CHOICE {
 *     namedCurve         OBJECT IDENTIFIER
 *     -- implicitCurve   NULL
 *     -- specifiedCurve  SpecifiedECDomain
 *   }
 *
 * RFC 8017 Appendix A.1.1:
 *   RSAPublicKey ::= SEQUENCE {
 *       modulus           INTEGER,  -- n
 *       publicExponent    INTEGER   -- e
 *   }
 */
import * as nodeCrypto from 'node:crypto';
import { parseAlgorithmIdentifier } from './algorithm.js';
import { type DerNode, derRaw, expectChildren, guardDer, malformed, readDer, readOctetAlignedBitString, readOid, readUnsignedInteger } from './der-reader.js';
import {
  OID_DSA, OID_EC_PUBLIC_KEY, OID_ED25519, OID_ED448, OID_P256, OID_P384, OID_P521, OID_RSA_ENCRYPTION, OID_RSASSA_PSS,
  OID_SECP256K1, OID_X25519,
} from './oids.js';

export type PublicKeyType = 'ec' | 'rsa' | 'ed25519' | 'ed448' | 'x25519' | 'dsa' | 'unknown';

export interface PublicKeyInfo {
  /** The SubjectPublicKeyInfo exactly as received. */
  rawDer: Buffer;
  keyType: PublicKeyType;
  algorithmOid: string;
  /**
   * EC only: 'P-256', 'P-384', 'P-521', 'secp256k1', the dotted OID of any other named curve, or
   * 'explicit' for curve parameters spelled out (RFC 5480 §2.1.1 forbids them in certificates).
   */
  curve?: 'P-256' | 'P-384' | 'P-521' | string;
  /** RSA only: bit length of the modulus. */
  rsaBits?: number;
  /** The BIT STRING value without the unused-bits octet. */
  subjectPublicKey: Buffer;
}

const CURVE_NAMES: Readonly<Record<string, string>> = {
  [OID_P256]: 'P-256', [OID_P384]: 'P-384', [OID_P521]: 'P-521', [OID_SECP256K1]: 'secp256k1',
};

const KEY_TYPES: Readonly<Record<string, PublicKeyType>> = {
  [OID_EC_PUBLIC_KEY]: 'ec', [OID_RSA_ENCRYPTION]: 'rsa', [OID_RSASSA_PSS]: 'rsa', [OID_ED25519]: 'ed25519',
  [OID_ED448]: 'ed448', [OID_X25519]: 'x25519', [OID_DSA]: 'dsa',
};

function bitLength(magnitude: Buffer): number {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  if (i === magnitude.length) return 0;
  return (magnitude.length - i - 1) * 8 + (32 - Math.clz32(magnitude[i]));
}

/** Parses a DER SubjectPublicKeyInfo; `der` must be exactly one SPKI. */
export function parseSpki(der: Buffer): PublicKeyInfo {
  return guardDer('SubjectPublicKeyInfo', () => parseSpkiNode(readDer(der)));
}

/** Parses an SPKI node found inside a larger structure (certificate, CSR). */
export function parseSpkiNode(node: DerNode): PublicKeyInfo {
  const parts = expectChildren(node, 0x30, 'SubjectPublicKeyInfo');
  if (parts.length !== 2) throw malformed('SubjectPublicKeyInfo must have two components');
  const alg = parseAlgorithmIdentifier(parts[0], 'SubjectPublicKeyInfo.algorithm');
  const subjectPublicKey = readOctetAlignedBitString(parts[1], 'subjectPublicKey');
  const keyType = KEY_TYPES[alg.oid] ?? 'unknown';
  const info: PublicKeyInfo = { rawDer: derRaw(node), keyType, algorithmOid: alg.oid, subjectPublicKey };
  if (keyType === 'ec') {
    if (alg.parameters === undefined || alg.parameters.tag !== 0x06) {
      // RFC 5480 §2.1.1: namedCurve is the only form a conforming certificate uses.
      info.curve = 'explicit';
    } else {
      const curveOid = readOid(alg.parameters, 'namedCurve');
      info.curve = CURVE_NAMES[curveOid] ?? curveOid;
    }
  } else if (keyType === 'rsa') {
    const rsa = expectChildren(readDer(subjectPublicKey), 0x30, 'RSAPublicKey');
    if (rsa.length !== 2) throw malformed('RSAPublicKey must have two components');
    info.rsaBits = bitLength(readUnsignedInteger(rsa[0], 'RSA modulus'));
    readUnsignedInteger(rsa[1], 'RSA public exponent');
  }
  return info;
}

/** crypto.hash (Node >= 20.12): a one-shot digest without a Hash object, about 1.7 times faster than createHash for a key. */
const oneShotHash = (nodeCrypto as { hash?: (alg: string, data: Buffer, enc: 'buffer') => Buffer }).hash;

function sha1(data: Buffer): Buffer {
  return oneShotHash !== undefined ? oneShotHash('sha1', data, 'buffer') : nodeCrypto.createHash('sha1').update(data).digest();
}

/**
 * RFC 5280 §4.2.1.2 method (1): "The keyIdentifier is composed of the 160-bit SHA-1 hash of the
 * value of the BIT STRING subjectPublicKey (excluding the tag, length, and number of unused bits)."
 * Used for the SKI of what kakuin issues and the AKI that points back to it.
 */
export function keyIdentifier(spki: PublicKeyInfo | Buffer): Buffer {
  const info = Buffer.isBuffer(spki) ? parseSpki(spki) : spki;
  return sha1(info.subjectPublicKey);
}
