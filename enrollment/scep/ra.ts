/**
 * The SCEP RA certificate (RFC 8894 §2.2: "the CA MAY designate an RA"): SCEP envelopes need key
 * transport (clients encrypt to the certificate GetCACert names, RSA in practice), while kakuin's
 * CAs stay ECDSA. So the device CA issues one RSA-2048 certificate with digitalSignature (it signs
 * CertReps) and keyEncipherment (requests are encrypted to it). Made on first SCEP use, its key in
 * the software key store (encrypted PKCS#8, never plaintext), recorded in the SCEP store so every
 * process serving SCEP uses the same one.
 */
import { canUnwrapKeyTransport, type KeyTransportDecrypter, type Signer } from '../../hsm-adapters/port.js';
import type { KeyRing } from '../../hsm-adapters/index.js';
import type { Registry } from '../../registry/port.js';
import type { ScepStore } from '../../registry/scep.js';
import type { LoadedIssuer } from '../../ca/issuer.js';
import { issueOwnKeyCertificate } from '../../ca/own-key-certificate.js';
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
  const { der } = await issueOwnKeyCertificate(registry, deviceCa, {
    key, organization, commonName: `${organization} SCEP RA`, validityDays: RA_VALIDITY_DAYS,
    keyUsage: ['digitalSignature', 'keyEncipherment'], profile: 'scep-ra', actor, now: new Date(now),
  });
  const kept = await store.putScepRaIfAbsent({ certificateDer: der, keyUri: RA_KEY_URI, createdAt: new Date(now) });
  return { certificateDer: kept.certificateDer, signer: decrypter(kept.keyUri === RA_KEY_URI ? key : await keys.load(kept.keyUri)) };
}

function decrypter(signer: Signer): Signer & KeyTransportDecrypter {
  if (!canUnwrapKeyTransport(signer)) throw new KakuinError('KAKUIN_E_KEY_ALGORITHM', `the SCEP RA key ${signer.uri} cannot decrypt key transport (a software RSA key is needed)`);
  return signer;
}
