/**
 * Who sent a CMP message, from its protection (RFC 9483 §3.2), and how the answer is protected.
 *
 * - MAC (PasswordBasedMac, RFC 9810 §5.1.3.1): senderKID names a one-time secret a station obtained
 *   for one device; the answer is MAC-protected with the same secret (fresh salt).
 * - Signature (RFC 9810 §5.1.3.3): the first extraCerts certificate signed ProtectedPart. For
 *   `kur`/`rr` it must be the device's current certificate (kakuin's record of it, still good); for
 *   the other requests a good station certificate (station-certificate-auth.ts). The answer is signed
 *   with kakuin's CMP protection key, its certificate and chain in extraCerts.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  encodePbmAlgorithm, encodePkiMessage, encodeSignatureAlgorithm, keyIdentifier, macMatches, OID_PASSWORD_BASED_MAC, parseCertificate,
  passwordBasedMac, protectedPart, readPbmParameters, responsePbmParameters, verifySignature, type ParsedCertificate, type PbmParameters, type PkiMessage,
} from '../../pkix/index.js';
import type { Signer } from '../../hsm-adapters/port.js';
import type { CmpSecret, CmpStore } from '../../registry/cmp.js';
import type { CertificateRecord, Registry } from '../../registry/port.js';
import { hasCode, KakuinError } from '../../errors/index.js';
import type { StationCaller } from '../../management-api/admin-tokens.js';
import type { StationCertificateAuthenticator } from '../station-certificate-auth.js';
import { cmpSecretOf } from './cmp-secrets.js';

/** kakuin's key and certificate for signing CMP answers (RFC 9483 §3.1: the PKI management entity's protection certificate). */
export interface CmpProtectionKey {
  signer: Signer;
  /** Its certificate first, then the chain up to (and with) the root. */
  certificates: Buffer[];
}

export type CmpSender =
  | { kind: 'secret'; owner: string; secret: CmpSecret; key: Buffer; pbm: PbmParameters }
  | { kind: 'station'; owner: string; caller: StationCaller }
  | { kind: 'device'; owner: string; record: CertificateRecord; certificate: ParsedCertificate };

function invalid(message: string, cause?: unknown): KakuinError {
  return new KakuinError('KAKUIN_E_CMP_PROTECTION_INVALID', message, cause === undefined ? undefined : { cause });
}

export class CmpProtection {
  private readonly protectionCertificate: ParsedCertificate | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly store: CmpStore,
    private readonly pepper: Buffer,
    private readonly stations: StationCertificateAuthenticator,
    private readonly key: CmpProtectionKey | undefined,
    /** The name kakuin answers as when it has no protection key: the device issuing CA's subject. */
    private readonly fallbackNameDer: Buffer,
    private readonly clock: () => Date,
  ) {
    this.protectionCertificate = key === undefined ? undefined : parseCertificate(key.certificates[0]);
  }

  /** Our sender name: the protection certificate's subject (RFC 9483 §3.1), else the issuing CA's. */
  get senderName(): Buffer {
    return this.protectionCertificate?.subject.rawDer ?? this.fallbackNameDer;
  }

  async authenticate(msg: PkiMessage, transactionId: string): Promise<CmpSender> {
    const alg = msg.header.protectionAlg;
    if (alg === undefined || msg.protection === undefined) throw invalid('the message is not protected (RFC 9483 §3.2: MAC or signature)');
    if (alg.oid === OID_PASSWORD_BASED_MAC) return this.bySecret(msg, transactionId);
    return this.bySignature(msg);
  }

  private async bySecret(msg: PkiMessage, transactionId: string): Promise<CmpSender> {
    const kid = msg.header.senderKID;
    const unknown = () => new KakuinError('KAKUIN_E_CMP_SECRET_UNKNOWN', 'no usable CMP secret has this reference (senderKID): unknown, expired, or used by another transaction');
    if (kid === undefined || kid.length === 0 || kid.length > 128) throw unknown();
    const secret = await this.store.findCmpSecret(kid.toString('utf8'));
    if (secret === undefined) throw unknown();
    const boundHere = secret.transactionId === transactionId;
    if (secret.transactionId !== undefined && !boundHere) throw unknown();
    if (!boundHere && secret.expiresAt.getTime() < this.clock().getTime()) throw unknown();
    const pbm = readPbmParameters(msg.header.protectionAlg!);
    const key = Buffer.from(cmpSecretOf(this.pepper, secret.nonce), 'utf8');
    if (!macMatches(passwordBasedMac(key, pbm, msg.protectedPartDer), msg.protection)) throw invalid('the PasswordBasedMac does not verify (wrong secret?)');
    return { kind: 'secret', owner: `secret:${secret.reference}`, secret, key, pbm };
  }

  private async bySignature(msg: PkiMessage): Promise<CmpSender> {
    const der = msg.extraCerts[0];
    if (der === undefined) throw invalid('a signature-protected message carries its protection certificate first in extraCerts (RFC 9483 §3.3)');
    let cert: ParsedCertificate;
    try {
      cert = parseCertificate(der);
    } catch (e) {
      throw invalid('the protection certificate cannot be read', e);
    }
    if (!verifySignature(msg.protectedPartDer, msg.header.protectionAlg!, msg.protection!, cert.spki)) throw invalid('the protection signature does not verify');
    const type = msg.body?.type;
    if (type === 'kur' || type === 'rr') return this.device(cert, false);
    try {
      const caller = await this.stations.authenticateCertificate(der);
      return { kind: 'station', owner: caller.actor, caller };
    } catch (e) {
      // genm may come from a device too (it asks for the CA certificates with its own certificate),
      // and so does the certConf of its kur, signed with the certificate the kur superseded.
      if ((type === 'genm' || type === 'certConf') && hasCode(e, 'KAKUIN_E_UNAUTHENTICATED')) return this.device(cert, type === 'certConf');
      throw e;
    }
  }

  /** The device's current certificate: kakuin's record of it, byte for byte, in its validity, good. */
  private async device(cert: ParsedCertificate, supersededToo: boolean): Promise<CmpSender> {
    let record: CertificateRecord;
    try {
      record = await this.registry.getCertificate(cert.serialHex);
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_CERTIFICATE_NOT_FOUND')) throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'the protection certificate is not one kakuin issued');
      throw e;
    }
    if (!record.der.equals(cert.rawDer) || record.deviceId === undefined) throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'the protection certificate is not a device certificate kakuin issued');
    // The certConf of a kur is signed with the old certificate, which the kur superseded (revoked,
    // reason superseded) when there is no overlap; the transaction's owner check ties it to that kur.
    const superseded = supersededToo && record.status === 'revoked' && record.reason === 'superseded';
    if (record.status !== 'good' && !superseded) throw new KakuinError('KAKUIN_E_CERTIFICATE_STATE', `the protection certificate is ${record.status}`);
    const now = this.clock().getTime();
    if (now < cert.notBefore.getTime() || now > cert.notAfter.getTime()) throw new KakuinError('KAKUIN_E_UNAUTHENTICATED', 'the protection certificate is outside its validity');
    return { kind: 'device', owner: `device:${record.deviceId}`, record, certificate: cert };
  }

  /**
   * The protection of an answer: the request's MAC secret for a MAC-protected request (fresh salt,
   * RFC 9810 §5.1.3.1), else kakuin's signature. Returns the protectionAlg, senderKID and a
   * function that finishes the message from its header and body.
   */
  answerProtection(sender: CmpSender | undefined, extraCerts: Buffer[]): { protectionAlgDer: Buffer; senderKID?: Buffer; finish: (header: Buffer, body: Buffer) => Promise<Buffer> } | undefined {
    if (sender?.kind === 'secret') {
      const pbm = responsePbmParameters(sender.pbm);
      return {
        protectionAlgDer: encodePbmAlgorithm(pbm),
        senderKID: Buffer.from(sender.secret.reference, 'utf8'),
        finish: async (header, body) => encodePkiMessage(header, body, passwordBasedMac(sender.key, pbm, protectedPart(header, body)), extraCerts),
      };
    }
    const key = this.key;
    if (key === undefined) return undefined;
    return {
      protectionAlgDer: encodeSignatureAlgorithm(key.signer.signatureAlgorithm),
      senderKID: this.protectionCertificate!.subjectKeyIdentifier ?? keyIdentifier(this.protectionCertificate!.spki),
      finish: async (header, body) => encodePkiMessage(header, body, await key.signer.sign(protectedPart(header, body)), [...key.certificates, ...extraCerts.filter((c) => !key.certificates.some((k) => k.equals(c)))]),
    };
  }
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function newNonce(): Buffer {
  return randomBytes(16);
}
