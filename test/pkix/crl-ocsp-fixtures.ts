/**
 * Test fixtures shared by the CRL and OCSP suites: a CA (P-256 or RSA) whose self-signed
 * certificate is built with pkix's own certificate encoder, leaf and delegated OCSP responder
 * certificates it issues, and PEM files for the `openssl` command.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { KakuinError } from '../../errors/index.js';
import path from 'node:path';
import {
  authorityKeyIdentifierExt, basicConstraintsExt, encodeCertificate, encodeName, encodeTbsCertificate, extKeyUsageExt,
  keyUsageExt, ocspNoCheckExt, parseSpki, signatureDigest, type SignatureAlgorithmName, subjectKeyIdentifierExt, toPem,
} from '../../pkix/index.js';

export interface TestKey {
  privateKey: KeyObject;
  spkiDer: Buffer;
  /** The SPKI BIT STRING value (what CertID's issuerKeyHash and the ResponderID KeyHash hash). */
  subjectPublicKey: Buffer;
  /** SHA-1 of subjectPublicKey (RFC 5280 §4.2.1.2 method 1; also the OCSP KeyHash). */
  keyId: Buffer;
  alg: SignatureAlgorithmName;
}

export interface TestCa extends TestKey {
  nameDer: Buffer;
  certDer: Buffer;
  certPem: string;
}

export interface TestCert extends TestKey {
  serial: Buffer;
  certDer: Buffer;
  certPem: string;
}

export function makeKey(kind: 'p256' | 'rsa'): TestKey {
  const { privateKey, publicKey } = kind === 'p256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
  const subjectPublicKey = parseSpki(spkiDer).subjectPublicKey;
  return {
    privateKey, spkiDer, subjectPublicKey, keyId: createHash('sha1').update(subjectPublicKey).digest(),
    alg: kind === 'p256' ? 'ecdsa-with-SHA256' : 'sha256WithRSAEncryption',
  };
}

/** Signs with the key's algorithm (ECDSA signatures come out DER-encoded, as X.509 wants them). */
export function signWith(key: TestKey, tbs: Buffer): Buffer {
  return sign(signatureDigest(key.alg), tbs, key.privateKey);
}

/** A positive 16-octet serial (first octet 0x01-0x7f). */
export function newSerial(): Buffer {
  const s = randomBytes(16);
  s[0] = 1 + (s[0] % 127);
  return s;
}

const DAY = 86_400_000;

export function makeCa(kind: 'p256' | 'rsa', cn: string): TestCa {
  const key = makeKey(kind);
  const nameDer = encodeName([{ type: 'O', value: 'kakuin tests' }, { type: 'CN', value: cn }]);
  const now = Date.now();
  const tbs = encodeTbsCertificate({
    serial: newSerial(), signatureAlgorithm: key.alg, issuer: nameDer, subject: nameDer, spki: key.spkiDer,
    notBefore: new Date(now - DAY), notAfter: new Date(now + 3650 * DAY),
    extensions: [
      basicConstraintsExt({ ca: true }), keyUsageExt(['digitalSignature', 'keyCertSign', 'cRLSign']), subjectKeyIdentifierExt(key.keyId),
    ],
  });
  const certDer = encodeCertificate(tbs, key.alg, signWith(key, tbs));
  return { ...key, nameDer, certDer, certPem: toPem('CERTIFICATE', certDer) };
}

/** A certificate issued by `ca`: a device ('leaf') or a delegated OCSP signer ('ocsp-responder', RFC 6960 §4.2.2.2). */
export function issue(ca: TestCa, cn: string, role: 'leaf' | 'ocsp-responder' = 'leaf', serial = newSerial(), extra: Buffer[] = []): TestCert {
  const key = makeKey('p256');
  const now = Date.now();
  const extensions = role === 'leaf'
    ? [basicConstraintsExt({ ca: false }), keyUsageExt(['digitalSignature']), extKeyUsageExt(['clientAuth'])]
    : [basicConstraintsExt({ ca: false }), keyUsageExt(['digitalSignature']), extKeyUsageExt(['OCSPSigning']), ocspNoCheckExt()];
  extensions.push(subjectKeyIdentifierExt(key.keyId), authorityKeyIdentifierExt(ca.keyId), ...extra);
  const tbs = encodeTbsCertificate({
    serial, signatureAlgorithm: ca.alg, issuer: ca.nameDer, subject: encodeName([{ type: 'CN', value: cn }]), spki: key.spkiDer,
    notBefore: new Date(now - DAY), notAfter: new Date(now + 365 * DAY), extensions,
  });
  const certDer = encodeCertificate(tbs, ca.alg, signWith(ca, tbs));
  return { ...key, serial, certDer, certPem: toPem('CERTIFICATE', certDer) };
}

/** Writes `text` or bytes to `dir/name` and returns the path. */
export function writeIn(dir: string, name: string, data: string | Buffer): string {
  const p = path.join(dir, name);
  writeFileSync(p, data);
  return p;
}

/** A small seeded PRNG (xorshift32), so a failing mutation run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** Runs `fn` and returns the code of the KakuinError it throws ("no error" when none); any other exception fails the test. */
export function thrownCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof KakuinError) return e.code;
    throw new Error(`expected a KakuinError, got ${(e as Error)?.stack ?? String(e)}`);
  }
  return 'no error';
}

/** The private key as unencrypted PKCS#8 PEM, for `openssl ... -signkey`. */
export function keyPem(key: TestKey): string {
  return key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}
