/**
 * A small CMP client for tests: builds PKIMessages by hand (pkix's DER writer), protected by
 * PasswordBasedMac or by a signature, so tests can send what `openssl cmp` never would (a wrong
 * MAC, a reused transactionID, pvno 1 or 3, genm info types OpenSSL 3.0 cannot name).
 */
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  derExplicit, derGeneralizedTime, derInteger, derOctetString, derOid, derSequence, encodePbmAlgorithm, encodePkiMessage,
  encodeSignatureAlgorithm, fromPem, passwordBasedMac, protectedPart, OID_IT_IMPLICIT_CONFIRM, derNull,
} from '../../pkix/index.js';

export type CmpProtect =
  | { mac: { reference: string; secret: string } }
  | { signature: { certFile: string; keyFile: string } }
  | { signatureWith: { certificates: Buffer[]; key: KeyObject } }
  | { none: true };

export interface CmpRequest {
  body: Buffer;
  protect: CmpProtect;
  pvno?: number;
  transactionId?: Buffer;
  senderNonce?: Buffer;
  /** Flip a bit of the protection value. */
  tamper?: boolean;
  /** generalInfo implicitConfirm (RFC 9483 §4.1.1): no certConf round trip. */
  implicitConfirm?: boolean;
}

const NULL_DN = derExplicit(4, derSequence());

export function buildCmpRequest(r: CmpRequest): Buffer {
  const p = r.protect;
  const pbm = { salt: randomBytes(16), owf: 'sha256' as const, iterationCount: 500, mac: 'sha256' as const };
  const alg = 'mac' in p ? encodePbmAlgorithm(pbm) : 'signature' in p || 'signatureWith' in p ? encodeSignatureAlgorithm('ecdsa-with-SHA256') : undefined;
  const header = derSequence(
    derInteger(r.pvno ?? 2), NULL_DN, NULL_DN, derExplicit(0, derGeneralizedTime(new Date())),
    ...(alg ? [derExplicit(1, alg)] : []),
    ...('mac' in p ? [derExplicit(2, derOctetString(Buffer.from(p.mac.reference, 'utf8')))] : []),
    derExplicit(4, derOctetString(r.transactionId ?? randomBytes(16))),
    derExplicit(5, derOctetString(r.senderNonce ?? randomBytes(16))),
    ...(r.implicitConfirm ? [derExplicit(8, derSequence(derSequence(derOid(OID_IT_IMPLICIT_CONFIRM), derNull())))] : []),
  );
  const data = protectedPart(header, r.body);
  let protection: Buffer | undefined;
  let extraCerts: Buffer[] = [];
  if ('mac' in p) {
    protection = passwordBasedMac(Buffer.from(p.mac.secret, 'utf8'), pbm, data);
  } else if ('signature' in p) {
    protection = sign('sha256', data, createPrivateKey(readFileSync(p.signature.keyFile)));
    extraCerts = fromPem(readFileSync(p.signature.certFile, 'utf8'), 'CERTIFICATE');
  } else if ('signatureWith' in p) {
    protection = sign('sha256', data, p.signatureWith.key);
    extraCerts = p.signatureWith.certificates;
  }
  if (protection && r.tamper) protection[protection.length - 1] ^= 0x01;
  return encodePkiMessage(header, r.body, protection, extraCerts);
}

/** PKIBody p10cr [4] with a DER PKCS#10 request. */
export function p10crBody(csrDer: Buffer): Buffer {
  return derExplicit(4, csrDer);
}

/** PKIBody genm [21]: one InfoTypeAndValue per OID, without values. */
export function genmBody(...infoTypes: string[]): Buffer {
  return derExplicit(21, derSequence(...infoTypes.map((t) => derSequence(derOid(t)))));
}
