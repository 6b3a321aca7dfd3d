/**
 * The SCEP RA certificate (RFC 8894 §2.2: "the CA MAY designate an RA"): SCEP envelopes need key
 * transport (clients encrypt to the certificate GetCACert names, RSA in practice), while kakuin's
 * CAs stay ECDSA. So the device CA issues one RSA-2048 certificate with digitalSignature (it signs
 * CertReps) and keyEncipherment (requests are encrypted to it). Made on first SCEP use, its key in
 * the software key store (encrypted PKCS#8, never plaintext), recorded in the SCEP store so every
 * process serving SCEP uses the same one.
 */
import {
  authorityKeyIdentifierExt, basicConstraintsExt, encodeName, keyIdentifier, keyUsageExt, parseSpki, subjectKeyIdentifierExt,
} from '../../pkix/index.js';
import { canUnwrapKeyTransport, type KeyTransportDecrypter, type Signer } from '../../hsm-adapters/port.js';
import type { KeyRing } from '../../hsm-adapters/index.js';
import type { Registry } from '../../registry/port.js';
import type { ScepStore } from '../../registry/scep.js';
import { signCertificate, tbsFor, type LoadedIssuer } from '../../ca/issuer.js';
import { issuanceCertificateFields } from '../../ca/records.js';
import { newCertificateSerial, serialToHex } from '../../ca/serial.js';
import { KakuinError } from '../../errors/index.js';

export interface ScepRa {
  certificateDer: Buffer;
  signer: Signer & KeyTransportDecrypter;
}

const RA_KEY_URI = 'file:scep-ra-1';
const RA_VALIDITY_DAYS = 730;

/** The RA identity in the store, or a new one issued by `deviceCa` (a second process racing this one keeps the first). */
export async function ensureScepRa(store: ScepStore, registry: Registry, keys: KeyRing, deviceCa: LoadedIssuer, organization: string, actor: string): Promise<ScepRa> {
  const stored = await store.getScepRa();
  if (stored) return { certificateDer: stored.certificateDer, signer: decrypter(await keys.load(stored.keyUri)) };
  const key = (await keys.exists(RA_KEY_URI)) ? await keys.load(RA_KEY_URI) : await keys.generate(RA_KEY_URI, 'rsa-2048');
  const now = Date.now();
  const notBefore = new Date(Math.floor(now / 1000) * 1000 - 3600_000);
  let notAfter = new Date(notBefore.getTime() + RA_VALIDITY_DAYS * 86_400_000);
  if (notAfter > deviceCa.certificate.notAfter) notAfter = deviceCa.certificate.notAfter;
  const serial = newCertificateSerial();
  const tbs = tbsFor(deviceCa, {
    serial, notBefore, notAfter, spki: key.publicKeySpki,
    subject: encodeName([{ type: 'O', value: organization }, { type: 'CN', value: `${organization} SCEP RA` }]),
    extensions: [
      basicConstraintsExt({ ca: false }),
      keyUsageExt(['digitalSignature', 'keyEncipherment']),
      subjectKeyIdentifierExt(keyIdentifier(parseSpki(key.publicKeySpki))),
      authorityKeyIdentifierExt(deviceCa.keyId),
    ],
  });
  const der = await signCertificate(deviceCa, tbs);
  const serialHex = serialToHex(serial);
  await registry.recordIssuance({
    certificate: issuanceCertificateFields({ serialHex, issuerId: deviceCa.id, profile: 'scep-ra', der, spkiDer: key.publicKeySpki, notBefore, notAfter }),
    audit: { type: 'certificate.issued', actor, serialHex, details: { profile: 'scep-ra', issuerId: deviceCa.id } },
  });
  const kept = await store.putScepRaIfAbsent({ certificateDer: der, keyUri: RA_KEY_URI, createdAt: new Date(now) });
  return { certificateDer: kept.certificateDer, signer: decrypter(kept.keyUri === RA_KEY_URI ? key : await keys.load(kept.keyUri)) };
}

function decrypter(signer: Signer): Signer & KeyTransportDecrypter {
  if (!canUnwrapKeyTransport(signer)) throw new KakuinError('KAKUIN_E_KEY_ALGORITHM', `the SCEP RA key ${signer.uri} cannot decrypt key transport (a software RSA key is needed)`);
  return signer;
}
