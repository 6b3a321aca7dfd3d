/**
 * PKIMessage protection (RFC 9810 §5.1.3): PasswordBasedMac (§5.1.3.1, what `openssl cmp` 3.0
 * offers with -secret) and the signature over ProtectedPart (§5.1.3.3).
 *
 *   PBMParameter ::= SEQUENCE {
 *       salt                OCTET STRING,
 *       owf                 AlgorithmIdentifier,   -- the one-way function (a hash)
 *       iterationCount      INTEGER,
 *       mac                 AlgorithmIdentifier }  -- an HMAC
 *
 * The key is OWF applied iterationCount times to (secret || salt): BASEKEY = OWF(secret || salt),
 * then BASEKEY = OWF(BASEKEY) iterationCount - 1 more times; the MAC is HMAC(BASEKEY, ProtectedPart).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KakuinError } from '../../errors/index.js';
import { type AlgorithmIdentifier, parseAlgorithmIdentifier } from '../algorithm.js';
import { expectChildren, malformed, readOctetString, readSmallInteger } from '../der-reader.js';
import { derInteger, derNull, derOctetString, derOid, derSequence, TAG_SEQUENCE } from '../der.js';
import { OID_SHA1, OID_SHA256, OID_SHA384 } from '../oids.js';
import { OID_PASSWORD_BASED_MAC } from './pki-message.js';

const OID_SHA512 = '2.16.840.1.101.3.4.2.3';
type Hash = 'sha1' | 'sha256' | 'sha384' | 'sha512';
const OWF: Readonly<Record<string, Hash>> = { [OID_SHA1]: 'sha1', [OID_SHA256]: 'sha256', [OID_SHA384]: 'sha384', [OID_SHA512]: 'sha512' };
/** RFC 9810 §5.1.3.1 hmac-sha1 (1.3.6.1.5.5.8.1.2, which openssl cmp 3.0 uses by default) and RFC 4231 HMAC-SHA-2. */
const MAC: Readonly<Record<string, Hash>> = {
  '1.3.6.1.5.5.8.1.2': 'sha1', '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.9': 'sha256', '1.2.840.113549.2.10': 'sha384', '1.2.840.113549.2.11': 'sha512',
};
const HASH_OIDS: Readonly<Record<Hash, string>> = { sha1: OID_SHA1, sha256: OID_SHA256, sha384: OID_SHA384, sha512: OID_SHA512 };
const HMAC_OIDS: Readonly<Record<Hash, string>> = { sha1: '1.3.6.1.5.5.8.1.2', sha256: '1.2.840.113549.2.9', sha384: '1.2.840.113549.2.10', sha512: '1.2.840.113549.2.11' };

/**
 * RFC 9810 §5.1.3.1 lets the receiver bound iterationCount, "to avoid a denial of service"; openssl
 * cmp 3.0 sends 500. 100,000 SHA-256 rounds are ~20 ms of CPU.
 */
export const PBM_MAX_ITERATIONS = 100_000;

export interface PbmParameters {
  salt: Buffer;
  owf: Hash;
  iterationCount: number;
  mac: Hash;
}

function unsupported(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', message);
}

/** The PBMParameter of a PasswordBasedMac protectionAlg; KAKUIN_E_ALGORITHM_UNSUPPORTED for other algorithms. */
export function readPbmParameters(alg: AlgorithmIdentifier): PbmParameters {
  if (alg.oid !== OID_PASSWORD_BASED_MAC) throw unsupported(`protection algorithm ${alg.oid} is not PasswordBasedMac`);
  const f = expectChildren(alg.parameters, TAG_SEQUENCE, 'PBMParameter');
  if (f.length !== 4) throw malformed('PBMParameter must have four components');
  const salt = readOctetString(f[0], 'PBMParameter.salt');
  const owf = OWF[parseAlgorithmIdentifier(f[1], 'PBMParameter.owf').oid];
  const iterationCount = readSmallInteger(f[2], 'PBMParameter.iterationCount');
  const mac = MAC[parseAlgorithmIdentifier(f[3], 'PBMParameter.mac').oid];
  if (owf === undefined) throw unsupported('PBMParameter.owf is not SHA-1 or SHA-2');
  if (mac === undefined) throw unsupported('PBMParameter.mac is not an HMAC with SHA-1 or SHA-2');
  if (iterationCount < 100 || iterationCount > PBM_MAX_ITERATIONS) throw unsupported(`PBMParameter.iterationCount must be 100 to ${PBM_MAX_ITERATIONS}`);
  if (salt.length < 8 || salt.length > 64) throw unsupported('PBMParameter.salt must be 8 to 64 octets');
  return { salt: Buffer.from(salt), owf, iterationCount, mac };
}

/** The protectionAlg AlgorithmIdentifier of a PasswordBasedMac. */
export function encodePbmAlgorithm(p: PbmParameters): Buffer {
  return derSequence(derOid(OID_PASSWORD_BASED_MAC), derSequence(
    derOctetString(p.salt), derSequence(derOid(HASH_OIDS[p.owf])), derInteger(p.iterationCount), derSequence(derOid(HMAC_OIDS[p.mac]), derNull()),
  ));
}

/** Parameters for a response: the request's functions and count, a fresh salt (§5.1.3.1). */
export function responsePbmParameters(request: PbmParameters): PbmParameters {
  return { ...request, salt: randomBytes(16) };
}

export function passwordBasedMac(secret: Buffer, p: PbmParameters, data: Buffer): Buffer {
  let key = createHash(p.owf).update(secret).update(p.salt).digest();
  for (let i = 1; i < p.iterationCount; i++) key = createHash(p.owf).update(key).digest();
  return createHmac(p.mac, key).update(data).digest();
}

/** Constant-time comparison of a received MAC with the expected one. */
export function macMatches(expected: Buffer, received: Buffer | undefined): boolean {
  return received !== undefined && received.length === expected.length && timingSafeEqual(expected, received);
}
