/**
 * A SCEP requester for the tests, built from independent pieces where they exist: `openssl req`
 * makes the key, the CSR (with its challengePassword) and the self-signed signer certificate;
 * `openssl cms -encrypt` makes the pkcsPKIEnvelope to the RA certificate. Only the outer signed
 * attributes (messageType, transactionID, nonces), which no openssl command writes, come from
 * pkix (encodeScepMessage); test/pkix/cms.test.ts checks those with `openssl cms -verify`.
 */
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeScepMessage, fromPem, toPem, type ScepMessageType } from '../../pkix/index.js';
import { opensslBytes, opensslOk } from '../support/index.js';

export interface Requester {
  name: string;
  keyFile: string;
  key: KeyObject;
  /** Self-signed certificate of the requester's key (PKCSReq's signer), PEM file and DER. */
  selfSignedFile: string;
  selfSignedDer: Buffer;
  csrDer: Buffer;
}

/** An RSA-2048 key (or the given key file), a CSR for `serialNumber` with `challenge`, a self-signed certificate. */
export function newRequester(dir: string, name: string, serialNumber: string, challenge: string | undefined, keyFile?: string): Requester {
  const key = keyFile ?? path.join(dir, `${name}.key`);
  if (!keyFile) opensslOk(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key]);
  const cnf = path.join(dir, `${name}.cnf`);
  writeFileSync(cnf, [
    '[req]', 'distinguished_name = dn', 'prompt = no', ...(challenge !== undefined ? ['attributes = attrs'] : []),
    '[dn]', `serialNumber = ${serialNumber}`,
    ...(challenge !== undefined ? ['[attrs]', `challengePassword = ${challenge}`] : []), '',
  ].join('\n'));
  const csrDer = opensslBytes(['req', '-new', '-key', key, '-config', cnf, '-outform', 'DER']);
  const selfSignedFile = path.join(dir, `${name}-self.pem`);
  opensslOk(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}`, '-days', '1', '-out', selfSignedFile]);
  return {
    name, keyFile: key, key: createPrivateKey(readFileSync(key)), selfSignedFile,
    selfSignedDer: fromPem(readFileSync(selfSignedFile, 'utf8'), 'CERTIFICATE')[0], csrDer,
  };
}

/** `openssl cms -encrypt` of `content` to the RA certificate (AES-256-CBC, RSA key transport): DER EnvelopedData. */
export function envelopeTo(dir: string, raPemFile: string, content: Buffer, cipher = '-aes256'): Buffer {
  const input = path.join(dir, `content-${randomBytes(4).toString('hex')}.der`);
  writeFileSync(input, content);
  return opensslBytes(['cms', '-encrypt', '-binary', cipher, '-in', input, '-outform', 'DER', '-recip', raPemFile]);
}

export interface ScepMessageOptions {
  messageType: ScepMessageType;
  transactionId: string;
  envelope: Buffer;
  /** The signer certificate (DER) and its key: the self-signed one, or the device's current certificate. */
  signerDer: Buffer;
  key: KeyObject;
  senderNonce?: Buffer;
  signingTime?: Date;
}

/** The signed pkiMessage (DER) around an envelope. */
export function scepMessage(o: ScepMessageOptions): Promise<Buffer> {
  return encodeScepMessage({
    fields: { messageType: o.messageType, transactionId: o.transactionId, senderNonce: o.senderNonce ?? randomBytes(16) },
    envelope: o.envelope, signerCertificate: o.signerDer, keyType: o.key.asymmetricKeyType === 'rsa' ? 'rsa' : 'ec',
    sign: async (data) => sign('sha256', data, o.key), signingTime: o.signingTime ?? new Date(),
  });
}

export function pkcs7Pem(der: Buffer): string {
  return toPem('PKCS7', der);
}
