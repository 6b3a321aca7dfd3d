/**
 * PKCS#10 certification requests: parsing, policy and proof of possession.
 *
 * RFC 2986 §4 (Appendix A):
 *   CertificationRequestInfo ::= SEQUENCE {
 *        version       INTEGER { v1(0) } (v1,...),
 *        subject       Name,
 *        subjectPKInfo SubjectPublicKeyInfo{{ PKInfoAlgorithms }},
 *        attributes    [0] Attributes{{ CRIAttributes }}
 *   }
 *
 *   Attributes { ATTRIBUTE:IOSet } ::= SET OF Attribute{{ IOSet }}
 *
 *   Attribute { ATTRIBUTE:IOSet } ::= SEQUENCE {
 *        type   ATTRIBUTE.&id({IOSet}),
 *        values SET SIZE(1..MAX) OF ATTRIBUTE.&Type({IOSet}{@type})
 *   }
 *
 *   CertificationRequest ::= SEQUENCE {
 *        certificationRequestInfo CertificationRequestInfo,
 *        signatureAlgorithm AlgorithmIdentifier{{ SignatureAlgorithms }},
 *        signature          BIT STRING
 *   }
 *
 * RFC 2985 §5.4.2:
 *   extensionRequest ATTRIBUTE ::= {
 *        WITH SYNTAX ExtensionRequest
 *        SINGLE VALUE TRUE
 *        ID pkcs-9-at-extensionRequest }
 *   ExtensionRequest ::= Extensions
 */
import { KakuinError } from '../errors/index.js';
import { type AlgorithmIdentifier, parseAlgorithmIdentifier } from './algorithm.js';
import { derChildren, derRaw, expectChildren, guardDer, malformed, readDer, readOctetAlignedBitString, readOid, readSmallInteger } from './der-reader.js';
import { parseExtensionsNode, type ParsedExtension } from './extensions-read.js';
import { parseNameNode, type ParsedName } from './name.js';
import { OID_PKCS9_EXTENSION_REQUEST } from './oids.js';
import { fromPemAny } from './pem.js';
import { verifySignature } from './signature.js';
import { parseSpkiNode, type PublicKeyInfo } from './spki.js';

export interface ParsedCsr {
  /** The request exactly as received. */
  rawDer: Buffer;
  /** The CertificationRequestInfo exactly as received: the signed bytes. */
  certificationRequestInfoDer: Buffer;
  subject: ParsedName;
  spki: PublicKeyInfo;
  signatureAlgorithmOid: string;
  signatureAlgorithm: AlgorithmIdentifier;
  signature: Buffer;
  /** Every attribute with the DER of each of its values. */
  attributes: { oid: string; values: Buffer[] }[];
  /** The extensions of an extensionRequest attribute (empty when none). */
  requestedExtensions: ParsedExtension[];
}

/** Parses a DER PKCS#10 request. KAKUIN_E_DER_MALFORMED on any malformation, whatever the input. */
export function parseCsr(der: Buffer): ParsedCsr {
  // RFC 2986 §4.2: CertificationRequest ::= SEQUENCE. Input that does not even start with one (text
  // taken for base64, a stray file) is named as what it is not, rather than by a DER detail.
  if (der.length === 0 || der[0] !== 0x30) {
    throw new KakuinError('KAKUIN_E_DER_MALFORMED', 'this is not a PKCS#10 certification request in PEM, DER or base64 (it does not start with a DER SEQUENCE)');
  }
  return guardDer('certification request', () => {
    const root = readDer(der);
    const parts = expectChildren(root, 0x30, 'CertificationRequest');
    if (parts.length !== 3) throw malformed('CertificationRequest must have three components');
    const info = expectChildren(parts[0], 0x30, 'CertificationRequestInfo');
    if (readSmallInteger(info[0], 'CertificationRequestInfo.version') !== 0) throw malformed('CertificationRequestInfo.version must be v1 (0)');
    const subject = parseNameNode(info[1], 'subject');
    if (info[2] === undefined) throw malformed('subjectPKInfo is missing');
    const spki = parseSpkiNode(info[2]);
    const attributes: ParsedCsr['attributes'] = [];
    let requestedExtensions: ParsedExtension[] = [];
    // The attributes field is mandatory in RFC 2986, but some encoders leave it out when empty; read both.
    if (info.length > 4) throw malformed('CertificationRequestInfo has unexpected trailing components');
    if (info[3] !== undefined) {
      for (const attr of expectChildren(info[3], 0xa0, 'attributes')) {
        const a = expectChildren(attr, 0x30, 'Attribute');
        if (a.length !== 2) throw malformed('Attribute must have two components');
        const oid = readOid(a[0], 'Attribute.type');
        const values = expectChildren(a[1], 0x31, 'Attribute.values');
        if (values.length === 0) throw malformed('Attribute.values is empty');
        for (const v of values) if (v.constructed) derChildren(v);
        attributes.push({ oid, values: values.map(derRaw) });
        if (oid === OID_PKCS9_EXTENSION_REQUEST) {
          if (values.length !== 1) throw malformed('extensionRequest must have a single value');
          requestedExtensions = parseExtensionsNode(values[0], 'extensionRequest');
        }
      }
    }
    const signatureAlgorithm = parseAlgorithmIdentifier(parts[1], 'CertificationRequest.signatureAlgorithm');
    const signature = readOctetAlignedBitString(parts[2], 'CertificationRequest.signature');
    return {
      rawDer: derRaw(root), certificationRequestInfoDer: derRaw(parts[0]), subject, spki,
      signatureAlgorithmOid: signatureAlgorithm.oid, signatureAlgorithm, signature, attributes, requestedExtensions,
    };
  });
}

/**
 * kakuin's key policy for device keys: EC P-256 or P-384, Ed25519, RSA of 2048 bits or more.
 * KAKUIN_E_KEY_UNSUPPORTED for other types and curves, KAKUIN_E_KEY_TOO_WEAK for short RSA.
 */
export function checkKeyPolicy(spki: PublicKeyInfo): void {
  switch (spki.keyType) {
    case 'ec':
      if (spki.curve !== 'P-256' && spki.curve !== 'P-384') {
        throw new KakuinError('KAKUIN_E_KEY_UNSUPPORTED', `EC curve ${spki.curve ?? 'unknown'} is not accepted (P-256 or P-384)`);
      }
      return;
    case 'ed25519':
      return;
    case 'rsa':
      if ((spki.rsaBits ?? 0) < 2048) throw new KakuinError('KAKUIN_E_KEY_TOO_WEAK', `RSA key of ${spki.rsaBits ?? 0} bits is too short (2048 at least)`);
      return;
    default:
      throw new KakuinError('KAKUIN_E_KEY_UNSUPPORTED', `${spki.keyType} keys (${spki.algorithmOid}) are not accepted`);
  }
}

/**
 * Policy and proof of possession (RFC 2986 §3: the request is signed with the subject's private
 * key). Checks, in order: the key (checkKeyPolicy), the signature algorithm (SHA-1, MD5 and
 * unknown ones → KAKUIN_E_ALGORITHM_UNSUPPORTED), then the signature over the ORIGINAL
 * CertificationRequestInfo bytes → KAKUIN_E_CSR_SIGNATURE_INVALID.
 */
export function verifyCsr(csr: ParsedCsr): void {
  checkKeyPolicy(csr.spki);
  if (!verifySignature(csr.certificationRequestInfoDer, csr.signatureAlgorithm, csr.signature, csr.spki)) {
    throw new KakuinError('KAKUIN_E_CSR_SIGNATURE_INVALID', 'the certification request signature does not verify');
  }
}

const CSR_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'] as const;

/**
 * A request from PEM ("CERTIFICATE REQUEST", or "NEW CERTIFICATE REQUEST" as older tools write it)
 * or DER bytes. Exactly one request is expected (KAKUIN_E_PEM_MALFORMED otherwise).
 */
export function readCsr(input: Buffer | string): ParsedCsr {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else if (Buffer.isBuffer(input)) {
    if (input.length === 0 || input[0] === 0x30 || !input.includes('-----BEGIN')) return parseCsr(input);
    text = input.toString('latin1');
  } else {
    throw new KakuinError('KAKUIN_E_DER_MALFORMED', 'a certification request must be PEM text or DER bytes');
  }
  const blocks = fromPemAny(text, CSR_LABELS);
  if (blocks.length !== 1) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', `expected one certification request, found ${blocks.length}`);
  return parseCsr(blocks[0].der);
}
