/**
 * X.509 signature algorithms: the AlgorithmIdentifiers kakuin writes, and the description of an
 * AlgorithmIdentifier it reads (what to hand `node:crypto.verify`).
 *
 * RFC 5280 §4.1.1.2:
 *   AlgorithmIdentifier  ::=  SEQUENCE  {
 *        algorithm               OBJECT IDENTIFIER,
 *        parameters              ANY DEFINED BY algorithm OPTIONAL  }
 */
import { KakuinError } from '../errors/index.js';
import { derNull, derOid, derSequence } from './der.js';
import { type DerNode, derChildren, derRaw, expectChildren, malformed, readOid, readSmallInteger } from './der-reader.js';
import {
  OID_ECDSA_WITH_SHA1, OID_ECDSA_WITH_SHA256, OID_ECDSA_WITH_SHA384, OID_ECDSA_WITH_SHA512, OID_ED25519, OID_ED448,
  OID_MD5_WITH_RSA, OID_MGF1, OID_RSASSA_PSS, OID_SHA1, OID_SHA1_WITH_RSA, OID_SHA256, OID_SHA256_WITH_RSA, OID_SHA384,
  OID_SHA384_WITH_RSA, OID_SHA512, OID_SHA512_WITH_RSA,
} from './oids.js';

/** X.509 signature algorithms kakuin writes. */
export type SignatureAlgorithmName = 'ecdsa-with-SHA256' | 'ecdsa-with-SHA384' | 'Ed25519' | 'sha256WithRSAEncryption';

const SIGNATURE_ALGORITHM_OIDS: Readonly<Record<SignatureAlgorithmName, string>> = {
  'ecdsa-with-SHA256': OID_ECDSA_WITH_SHA256,
  'ecdsa-with-SHA384': OID_ECDSA_WITH_SHA384,
  Ed25519: OID_ED25519,
  sha256WithRSAEncryption: OID_SHA256_WITH_RSA,
};

/**
 * Built once. RFC 5758 §3.2: for ecdsa-with-SHA2 "the encoding MUST omit the parameters field";
 * RFC 8410 §3: for Ed25519 "the parameters MUST be absent"; RFC 4055 §5 / RFC 8017 A.2.4: the
 * PKCS #1 v1.5 algorithms carry NULL parameters.
 */
const SIGNATURE_ALGORITHM_DER: Readonly<Record<SignatureAlgorithmName, Buffer>> = {
  'ecdsa-with-SHA256': derSequence(derOid(OID_ECDSA_WITH_SHA256)),
  'ecdsa-with-SHA384': derSequence(derOid(OID_ECDSA_WITH_SHA384)),
  Ed25519: derSequence(derOid(OID_ED25519)),
  sha256WithRSAEncryption: derSequence(derOid(OID_SHA256_WITH_RSA), derNull()),
};

/** The AlgorithmIdentifier DER for `name`. A shared constant: callers must not modify it. */
export function encodeSignatureAlgorithm(name: SignatureAlgorithmName): Buffer {
  const der = SIGNATURE_ALGORITHM_DER[name];
  if (der === undefined) throw new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', `unknown signature algorithm ${String(name)}`);
  return der;
}

export function signatureAlgorithmOid(name: SignatureAlgorithmName): string {
  return SIGNATURE_ALGORITHM_OIDS[name];
}

/** The digest `node:crypto.sign(digest, tbs, key)` takes for `name` (null for Ed25519). */
export function signatureDigest(name: SignatureAlgorithmName): 'sha256' | 'sha384' | null {
  switch (name) {
    case 'ecdsa-with-SHA256':
    case 'sha256WithRSAEncryption':
      return 'sha256';
    case 'ecdsa-with-SHA384':
      return 'sha384';
    case 'Ed25519':
      return null;
    default:
      throw new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', `unknown signature algorithm ${String(name)}`);
  }
}

export interface AlgorithmIdentifier {
  oid: string;
  /** The parameters element when present (NULL included). */
  parameters?: DerNode;
  rawDer: Buffer;
}

export function parseAlgorithmIdentifier(node: DerNode | undefined, what = 'AlgorithmIdentifier'): AlgorithmIdentifier {
  const parts = expectChildren(node, 0x30, what);
  if (parts.length < 1 || parts.length > 2) throw malformed(`${what} has ${parts.length} components`);
  const oid = readOid(parts[0], `${what}.algorithm`);
  return { oid, parameters: parts[1], rawDer: derRaw(node!) };
}

/** How to check a signature made with a given AlgorithmIdentifier using `node:crypto.verify`. */
export interface SignatureVerification {
  keyType: 'ec' | 'rsa' | 'ed25519' | 'ed448';
  /** First argument of `crypto.verify`; null for EdDSA. */
  digest: 'sha256' | 'sha384' | 'sha512' | null;
  /** RSASSA-PSS salt length; absent for every other scheme. */
  pssSaltLength?: number;
}

const HASH_NAMES: Readonly<Record<string, 'sha1' | 'sha256' | 'sha384' | 'sha512'>> = {
  [OID_SHA1]: 'sha1', [OID_SHA256]: 'sha256', [OID_SHA384]: 'sha384', [OID_SHA512]: 'sha512',
};

function unsupported(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ALGORITHM_UNSUPPORTED', message);
}

function noParametersOrNull(alg: AlgorithmIdentifier, allowNull: boolean): void {
  const p = alg.parameters;
  if (p === undefined) return;
  if (allowNull && p.tag === 0x05 && p.end === p.contentStart) return;
  throw malformed(`unexpected parameters for algorithm ${alg.oid}`);
}

/** Hash of an AlgorithmIdentifier (NULL or absent parameters). */
function hashOf(node: DerNode | undefined, what: string): 'sha1' | 'sha256' | 'sha384' | 'sha512' {
  const alg = parseAlgorithmIdentifier(node, what);
  noParametersOrNull(alg, true);
  const h = HASH_NAMES[alg.oid];
  if (h === undefined) throw unsupported(`${what} ${alg.oid} is not supported`);
  return h;
}

/**
 * RFC 4055 §3.1:
 *   RSASSA-PSS-params  ::=  SEQUENCE  {
 *       hashAlgorithm      [0] HashAlgorithm DEFAULT sha1Identifier,
 *       maskGenAlgorithm   [1] MaskGenAlgorithm DEFAULT mgf1SHA1Identifier,
 *       saltLength         [2] INTEGER DEFAULT 20,
 *       trailerField       [3] INTEGER DEFAULT 1  }
 */
function describePss(alg: AlgorithmIdentifier): SignatureVerification {
  if (alg.parameters === undefined) throw unsupported('RSASSA-PSS without parameters means SHA-1, which is refused');
  let hash: string = 'sha1';
  let mgfHash: string = 'sha1';
  let saltLength = 20;
  let last = -1;
  for (const field of expectChildren(alg.parameters, 0x30, 'RSASSA-PSS-params')) {
    const n = field.tag - 0xa0;
    if (n < 0 || n > 3 || n <= last) throw malformed('RSASSA-PSS-params has an unexpected field');
    last = n;
    const inner = derChildren(field);
    if (inner.length !== 1) throw malformed('RSASSA-PSS-params field is not one explicit value');
    if (n === 0) {
      hash = hashOf(inner[0], 'RSASSA-PSS hashAlgorithm');
    } else if (n === 1) {
      const mgf = parseAlgorithmIdentifier(inner[0], 'RSASSA-PSS maskGenAlgorithm');
      if (mgf.oid !== OID_MGF1) throw unsupported(`mask generation function ${mgf.oid} is not supported`);
      mgfHash = hashOf(mgf.parameters, 'MGF1 hash');
    } else if (n === 2) {
      saltLength = readSmallInteger(inner[0], 'RSASSA-PSS saltLength');
      if (saltLength < 0) throw malformed('RSASSA-PSS saltLength is negative');
    } else if (readSmallInteger(inner[0], 'RSASSA-PSS trailerField') !== 1) {
      throw unsupported('RSASSA-PSS trailerField other than 1 is not supported');
    }
  }
  if (hash === 'sha1') throw unsupported('RSASSA-PSS with SHA-1 is refused');
  // node:crypto uses the signature hash for MGF1 too; a different MGF1 hash cannot be checked.
  if (mgfHash !== hash) throw unsupported('RSASSA-PSS with an MGF1 hash unlike the signature hash is not supported');
  return { keyType: 'rsa', digest: hash as 'sha256' | 'sha384' | 'sha512', pssSaltLength: saltLength };
}

/**
 * What a signature algorithm means for verification. Refuses (KAKUIN_E_ALGORITHM_UNSUPPORTED)
 * SHA-1 and MD5 based algorithms and anything unknown.
 */
export function describeSignatureAlgorithm(alg: AlgorithmIdentifier): SignatureVerification {
  switch (alg.oid) {
    case OID_ECDSA_WITH_SHA256:
    case OID_ECDSA_WITH_SHA384:
    case OID_ECDSA_WITH_SHA512:
      noParametersOrNull(alg, false);
      return { keyType: 'ec', digest: alg.oid === OID_ECDSA_WITH_SHA256 ? 'sha256' : alg.oid === OID_ECDSA_WITH_SHA384 ? 'sha384' : 'sha512' };
    case OID_ED25519:
    case OID_ED448:
      noParametersOrNull(alg, false);
      return { keyType: alg.oid === OID_ED25519 ? 'ed25519' : 'ed448', digest: null };
    case OID_SHA256_WITH_RSA:
    case OID_SHA384_WITH_RSA:
    case OID_SHA512_WITH_RSA:
      noParametersOrNull(alg, true);
      return { keyType: 'rsa', digest: alg.oid === OID_SHA256_WITH_RSA ? 'sha256' : alg.oid === OID_SHA384_WITH_RSA ? 'sha384' : 'sha512' };
    case OID_RSASSA_PSS:
      return describePss(alg);
    case OID_SHA1_WITH_RSA:
    case OID_ECDSA_WITH_SHA1:
      throw unsupported('signatures with SHA-1 are refused');
    case OID_MD5_WITH_RSA:
      throw unsupported('signatures with MD5 are refused');
    default:
      throw unsupported(`signature algorithm ${alg.oid} is not supported`);
  }
}

