/**
 * Server-side key generation for devices that cannot make keys: kakuin makes the key pair, builds
 * and signs the CSR itself (so issuance takes the one path every enrollment takes), and returns the
 * key once, as PKCS#12 (RFC 7292) protected by the caller's password. The private key is not kept
 * anywhere.
 *
 * The PKCS#12 is pkix/pkcs12.ts's: PBES2 with PBKDF2-HMAC-SHA-256 and AES-256-CBC, an HMAC-SHA-256
 * MAC, 100,000 iterations each. `legacy: true` asks for node-forge's older form instead
 * (pbeWithSHAAnd3-KeyTripleDES-CBC, SHA-1 MAC, 2,048 iterations) for devices whose PKCS#12 reader
 * knows nothing newer; it is weaker, so it is never the default.
 *
 * RSA-2048: node-forge's PKCS#12 writer wraps RSA private keys only, and the legacy form needs it.
 */
import { createHash, generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, encodePkcs12, toPem } from '../pkix/index.js';
import { KakuinError } from '../errors/index.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface KeygenRequest {
  /** Protects the PKCS#12 (or the encrypted PEM key); 16 to 256 characters. */
  password: string;
  /** `pkcs12` (default) or `pem`: an encrypted PKCS#8 PEM key (PBES2, AES-256-CBC) followed by the certificate chain. */
  format: 'pkcs12' | 'pem';
  /** PKCS#12 only: 3DES and a SHA-1 MAC, for devices that cannot read PBES2/AES-256 (weaker; off by default). */
  legacy: boolean;
}

export function validateKeygen(value: unknown): KeygenRequest {
  const v = value as Record<string, unknown> | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KakuinError('KAKUIN_E_VALIDATION', 'keygen must be an object {password}');
  if (typeof v.password !== 'string' || v.password.length < 16 || v.password.length > 256) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'keygen.password must be 16 to 256 characters');
  }
  const format = v.format ?? 'pkcs12';
  if (format !== 'pkcs12' && format !== 'pem') throw new KakuinError('KAKUIN_E_VALIDATION', 'keygen.format must be "pkcs12" or "pem"');
  const legacy = v.legacy ?? false;
  if (typeof legacy !== 'boolean') throw new KakuinError('KAKUIN_E_VALIDATION', 'keygen.legacy must be true or false');
  if (legacy && format !== 'pkcs12') throw new KakuinError('KAKUIN_E_VALIDATION', 'keygen.legacy applies to format "pkcs12" only');
  return { password: v.password, format, legacy };
}

/** The encrypted-PEM bundle: `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2 with AES-256-CBC), then the chain, leaf first. */
export function toEncryptedPemBundle(privateKey: KeyObject, certificates: Buffer[], password: string): string {
  const key = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: password }) as string;
  return key + certificates.map((der) => toPem('CERTIFICATE', der)).join('');
}

export interface GeneratedKey {
  privateKey: KeyObject;
  csrDer: Buffer;
}

/** A fresh RSA-2048 key pair and a CSR for the device, signed with it. */
export async function generateDeviceKey(serialNumber: string): Promise<GeneratedKey> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  const info = encodeCertificationRequestInfo(encodeName([{ type: 'serialNumber', value: serialNumber }]), publicKey.export({ type: 'spki', format: 'der' }));
  const csrDer = encodeCertificationRequest(info, 'sha256WithRSAEncryption', sign('sha256', info, privateKey));
  return { privateKey, csrDer };
}

/**
 * PKCS#12 with the key and the certificate chain, leaf first, HMAC-protected: PBES2/AES-256 with
 * SHA-256 throughout (pkix/pkcs12.ts), or with `legacy` node-forge's 3DES/SHA-1 form.
 */
export function toPkcs12(privateKey: KeyObject, certificates: Buffer[], password: string, friendlyName: string, legacy = false): Buffer {
  const localKeyId = createHash('sha1').update(certificates[0]).digest();
  if (legacy) return toLegacyPkcs12(privateKey, certificates, password, friendlyName, localKeyId.toString('hex'));
  return encodePkcs12({ privateKeyInfo: privateKey.export({ type: 'pkcs8', format: 'der' }), certificates, password, friendlyName, localKeyId });
}

/**
 * The legacy form, by node-forge.
 *
 * node-forge re-encodes certificates from its own parsed form and parses RSA certificates only;
 * kakuin's CA certificates are ECDSA. So forge is handed the DER as it is: its
 * `certificateToAsn1` is replaced, for this one synchronous call, by a function that returns the
 * certificate's original bytes (the same bytes get hashed and signed everywhere else in kakuin).
 */
function toLegacyPkcs12(privateKey: KeyObject, certificates: Buffer[], password: string, friendlyName: string, localKeyId: string): Buffer {
  const key = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
  const handles = certificates.map((der) => ({ der }) as unknown as forge.pki.Certificate);
  const pki = forge.pki as unknown as { certificateToAsn1: (c: unknown) => forge.asn1.Asn1 };
  const original = pki.certificateToAsn1;
  pki.certificateToAsn1 = (c) => forge.asn1.fromDer(forge.util.createBuffer((c as { der: Buffer }).der.toString('binary')));
  try {
    const p12 = forge.pkcs12.toPkcs12Asn1(key, handles, password, { algorithm: '3des', friendlyName, localKeyId, generateLocalKeyId: false });
    return Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary');
  } finally {
    pki.certificateToAsn1 = original;
  }
}
