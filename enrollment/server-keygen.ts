/**
 * Server-side key generation for devices that cannot make keys: kakuin makes the key pair, builds
 * and signs the CSR itself (so issuance takes the one path every enrollment takes), and returns the
 * key once, as PKCS#12 (RFC 7292, via node-forge) protected by the caller's password. The private
 * key is not kept anywhere.
 *
 * RSA-2048: node-forge's PKCS#12 writer wraps RSA private keys only.
 */
import { createHash, generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, toPem } from '../pkix/index.js';
import { KakuinError } from '../errors/index.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface KeygenRequest {
  /** Protects the PKCS#12 (or the encrypted PEM key); 16 to 256 characters. */
  password: string;
  /** `pkcs12` (default) or `pem`: an encrypted PKCS#8 PEM key (PBES2, AES-256-CBC) followed by the certificate chain. */
  format: 'pkcs12' | 'pem';
}

export function validateKeygen(value: unknown): KeygenRequest {
  const v = value as Record<string, unknown> | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KakuinError('KAKUIN_E_VALIDATION', 'keygen must be an object {password}');
  if (typeof v.password !== 'string' || v.password.length < 16 || v.password.length > 256) {
    throw new KakuinError('KAKUIN_E_VALIDATION', 'keygen.password must be 16 to 256 characters');
  }
  const format = v.format ?? 'pkcs12';
  if (format !== 'pkcs12' && format !== 'pem') throw new KakuinError('KAKUIN_E_VALIDATION', 'keygen.format must be "pkcs12" or "pem"');
  return { password: v.password, format };
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
 * PKCS#12 with the key (PBES2, AES-256) and the certificate chain, leaf first, HMAC-protected.
 *
 * node-forge re-encodes certificates from its own parsed form and parses RSA certificates only;
 * kakuin's CA certificates are ECDSA. So forge is handed the DER as it is: its
 * `certificateToAsn1` is replaced, for this one synchronous call, by a function that returns the
 * certificate's original bytes (the same bytes get hashed and signed everywhere else in kakuin).
 */
export function toPkcs12(privateKey: KeyObject, certificates: Buffer[], password: string, friendlyName: string): Buffer {
  const key = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
  const handles = certificates.map((der) => ({ der }) as unknown as forge.pki.Certificate);
  const pki = forge.pki as unknown as { certificateToAsn1: (c: unknown) => forge.asn1.Asn1 };
  const original = pki.certificateToAsn1;
  pki.certificateToAsn1 = (c) => forge.asn1.fromDer(forge.util.createBuffer((c as { der: Buffer }).der.toString('binary')));
  try {
    const localKeyId = createHash('sha1').update(certificates[0]).digest('hex');
    const p12 = forge.pkcs12.toPkcs12Asn1(key, handles, password, { algorithm: 'aes256', friendlyName, localKeyId, generateLocalKeyId: false });
    return Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary');
  } finally {
    pki.certificateToAsn1 = original;
  }
}
