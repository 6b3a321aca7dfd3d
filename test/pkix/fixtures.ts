/**
 * Test fixtures for pkix: keys generated at test time, a small certificate builder on top of pkix
 * (the way `ca/` uses it), pkijs set up with Node's webcrypto as the independent oracle, and
 * openssl helpers that work on temporary files.
 */
import { generateKeyPairSync, type KeyObject, sign, webcrypto } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as pkijs from 'pkijs';
import { expect } from 'chai';
import {
  authorityInfoAccessExt, authorityKeyIdentifierExt, basicConstraintsExt, crlDistributionPointsExt, encodeCertificate,
  encodeName, encodeTbsCertificate, extKeyUsageExt, keyIdentifier, keyUsageExt, type NameAttribute, type SignatureAlgorithmName,
  signatureDigest, subjectAltNameExt, subjectKeyIdentifierExt, toPem,
} from '../../pkix/index.js';
import { isKakuinError } from '../../errors/index.js';
import { makeTempDir, openssl, vectorPath } from '../support/index.js';

// pkijs types its engine with the DOM Crypto type, which this project's lib setting does not include.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as any }));

export { pkijs };

export type KeyKind = 'P-256' | 'P-384' | 'Ed25519' | 'RSA-2048';
export const KEY_KINDS: readonly KeyKind[] = ['P-256', 'P-384', 'Ed25519', 'RSA-2048'];

export interface TestKey {
  kind: KeyKind;
  privateKey: KeyObject;
  publicKey: KeyObject;
  spki: Buffer;
  algorithm: SignatureAlgorithmName;
}

const keyCache = new Map<string, TestKey>();

/** A fresh key pair (cached per label so a suite does not regenerate RSA keys). */
export function testKey(kind: KeyKind, label = 'default'): TestKey {
  const cacheKey = `${kind}/${label}`;
  const cached = keyCache.get(cacheKey);
  if (cached) return cached;
  const pair = kind === 'P-256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : kind === 'P-384' ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
      : kind === 'Ed25519' ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const algorithm: SignatureAlgorithmName = kind === 'P-256' ? 'ecdsa-with-SHA256' : kind === 'P-384' ? 'ecdsa-with-SHA384'
    : kind === 'Ed25519' ? 'Ed25519' : 'sha256WithRSAEncryption';
  const key: TestKey = {
    kind, algorithm, privateKey: pair.privateKey, publicKey: pair.publicKey,
    spki: pair.publicKey.export({ type: 'spki', format: 'der' }),
  };
  keyCache.set(cacheKey, key);
  return key;
}

export function signWith(key: TestKey, tbs: Buffer): Buffer {
  return sign(signatureDigest(key.algorithm), tbs, key.privateKey);
}

export const URLS = {
  ocsp: 'http://pki.kakuin.test/ocsp',
  caIssuers: 'http://pki.kakuin.test/ca/device.cer',
  crl: 'http://pki.kakuin.test/crl/device.crl',
};

export interface CertSpec {
  issuerKey: TestKey;
  issuerName: Buffer;
  subjectKey: TestKey;
  subjectName: Buffer;
  serial?: Buffer;
  notBefore?: Date;
  notAfter?: Date | 'no-well-defined-expiration';
  ca?: { pathLen?: number };
  extensions?: Buffer[];
}

/** A certificate signed by `issuerKey`, with the extension set of a CA or a device certificate. */
export function buildCert(spec: CertSpec): Buffer {
  const subjectKeyId = keyIdentifier(spec.subjectKey.spki);
  const authorityKeyId = keyIdentifier(spec.issuerKey.spki);
  const extensions = spec.extensions ?? (spec.ca
    ? [
      basicConstraintsExt({ ca: true, ...(spec.ca.pathLen === undefined ? {} : { pathLen: spec.ca.pathLen }) }),
      keyUsageExt(['keyCertSign', 'cRLSign']),
      subjectKeyIdentifierExt(subjectKeyId),
      authorityKeyIdentifierExt(authorityKeyId),
    ]
    : [
      basicConstraintsExt({ ca: false }),
      keyUsageExt(['digitalSignature']),
      extKeyUsageExt(['clientAuth']),
      subjectAltNameExt([
        { uri: 'urn:kakuin:device:0f3c9a52-7d1e-4a8b-9c21-6b5e3f1d2a90' },
        { hardwareModuleName: { hwType: '1.3.6.1.4.1.59999.1.1', hwSerial: Buffer.from('SN-000042') } },
      ]),
      subjectKeyIdentifierExt(subjectKeyId),
      authorityKeyIdentifierExt(authorityKeyId),
      crlDistributionPointsExt([URLS.crl]),
      authorityInfoAccessExt({ ocsp: [URLS.ocsp], caIssuers: [URLS.caIssuers] }),
    ]);
  const tbs = encodeTbsCertificate({
    serial: spec.serial ?? Buffer.from('3a5f0c9e1d2b4c6a8e0f1a2b3c4d5e6f', 'hex'),
    signatureAlgorithm: spec.issuerKey.algorithm,
    issuer: spec.issuerName,
    notBefore: spec.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: spec.notAfter ?? new Date(Date.now() + 365 * 86_400_000),
    subject: spec.subjectName,
    spki: spec.subjectKey.spki,
    extensions,
  });
  return encodeCertificate(tbs, spec.issuerKey.algorithm, signWith(spec.issuerKey, tbs));
}

export function caName(cn: string): Buffer {
  return encodeName([{ type: 'C', value: 'JP' }, { type: 'O', value: 'Kakuin Test' }, { type: 'CN', value: cn }]);
}

export const DEVICE_NAME_ATTRS: NameAttribute[] = [
  { type: 'O', value: 'Kakuin Test Devices' },
  { type: 'serialNumber', value: 'SN-000042' },
  { type: 'CN', value: 'device SN-000042' },
];

export function readVector(name: string): Buffer {
  return readFileSync(vectorPath(name));
}

/** Writes files into a temporary directory, runs `fn` with their paths, then removes it. */
export function withFiles<T>(files: Record<string, Buffer | string>, fn: (p: (name: string) => string) => T): T {
  const { dir, cleanup } = makeTempDir('kakuin-pkix-');
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
    return fn((name) => path.join(dir, name));
  } finally {
    cleanup();
  }
}

/** `openssl x509 -text` of a DER certificate. */
export function opensslCertText(der: Buffer): string {
  const r = openssl(['x509', '-inform', 'DER', '-noout', '-text'], der);
  expect(r.status, r.stderr).to.equal(0);
  return r.stdout;
}

/** `openssl asn1parse` of DER bytes. */
export function asn1parse(der: Buffer): string {
  const r = openssl(['asn1parse', '-inform', 'DER'], der);
  expect(r.status, r.stderr).to.equal(0);
  return r.stdout;
}

export function certPem(der: Buffer): string {
  return toPem('CERTIFICATE', der);
}

/** Runs `fn` and returns the KakuinError code it throws (fails the test when it throws anything else or nothing). */
export function thrownCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!isKakuinError(e)) throw new Error(`expected a KakuinError, got ${String(e)}`, { cause: e });
    return e.code;
  }
  throw new Error('expected a KakuinError, nothing was thrown');
}

export function hex(b: ArrayBuffer | Uint8Array | Buffer): string {
  return Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b).toString('hex');
}
