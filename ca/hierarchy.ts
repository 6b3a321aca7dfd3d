/**
 * Bootstrap of the CA hierarchy (DESIGN.md "Identities"): a root, the device issuing CA (the only
 * issuer the gateway accepts for device clients), the infrastructure CA (TLS server certificates
 * of kakuin's own listeners — never the device CA) and the station CA (factory stations' mTLS
 * client certificates — never accepted by the gateway). The OCSP signers come with their issue.
 *
 * Bootstrap is resumable: each CA that is already recorded is loaded, each missing one is created,
 * so a crash half-way through `init` is repaired by running it again.
 */
import type { KeyAlgorithm } from '../hsm-adapters/port.js';
import type { KeyRing } from '../hsm-adapters/index.js';
import {
  authorityInfoAccessExt, authorityKeyIdentifierExt, basicConstraintsExt, crlDistributionPointsExt,
  encodeCertificate, encodeName, encodeTbsCertificate, keyIdentifier, keyUsageExt, parseSpki, subjectKeyIdentifierExt, type NameAttribute,
} from '../pkix/index.js';
import type { Issuer, IssuerKind, Registry } from '../registry/port.js';
import { hasCode, KakuinError } from '../errors/index.js';
import { issuerFromParts, signCertificate, tbsFor, type LoadedIssuer } from './issuer.js';
import { issuanceCertificateFields } from './records.js';
import { newCertificateSerial, serialToHex } from './serial.js';
import type { PublicUrls } from './urls.js';

export interface HierarchyOptions {
  organization: string;
  rootKeyAlgorithm: KeyAlgorithm;
  issuingKeyAlgorithm: KeyAlgorithm;
  rootValidityYears: number;
  issuingValidityYears: number;
  /**
   * How far a CA certificate's notBefore is set back (default 3600 s): at least as far as the
   * certificates it signs are (ca.device.backdateSeconds, ca.profiles), so that no device certificate's
   * validity starts before its CA's — verifiers (NSS, pyca) flag a leaf that does.
   */
  backdateSeconds?: number;
  /** Key URI for a CA's key, e.g. `file:root-ca` or a PKCS#11 URI. */
  keyUriFor(issuerId: string): string;
  urls: PublicUrls;
  actor: string;
}

export interface CaHierarchy {
  root: LoadedIssuer;
  device: LoadedIssuer;
  infrastructure: LoadedIssuer;
  /**
   * Issues station certificates. Created by bootstrap, and on the first open of a data dir made
   * before it existed (obtainStationCa); undefined only when the root is offline and no station CA
   * was made: then stations authenticate by API key alone.
   */
  station?: LoadedIssuer;
}

export const HIERARCHY_ISSUERS = ['root', 'device', 'infrastructure'] as const;

const YEAR_MS = 365.25 * 86_400_000;

/** True when every CA of the hierarchy is recorded. */
export async function hierarchyExists(registry: Registry): Promise<boolean> {
  const ids = new Set((await registry.listIssuers()).map((i) => i.id));
  return HIERARCHY_ISSUERS.every((id) => ids.has(id));
}

export async function loadHierarchy(registry: Registry, keys: KeyRing): Promise<CaHierarchy> {
  const [root, device, infrastructure] = await Promise.all(HIERARCHY_ISSUERS.map(async (id) => {
    let record: Issuer;
    try {
      record = await registry.getIssuer(id);
    } catch (e) {
      if (hasCode(e, 'KAKUIN_E_ISSUER_NOT_FOUND')) {
        throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED', `the ${id} CA does not exist; run \`kakuin init\``);
      }
      throw e;
    }
    return issuerFromParts(record, await keys.load(record.keyUri));
  }));
  return { root, device, infrastructure };
}

/** Create whatever part of the hierarchy is missing; returns the whole hierarchy. */
export async function bootstrapHierarchy(registry: Registry, keys: KeyRing, options: HierarchyOptions, now = new Date()): Promise<CaHierarchy> {
  const existing = new Map((await registry.listIssuers()).map((i) => [i.id, i]));
  const obtain = async (id: string, make: () => Promise<LoadedIssuer>): Promise<LoadedIssuer> => {
    const record = existing.get(id);
    return record ? issuerFromParts(record, await keys.load(record.keyUri)) : make();
  };
  const root = await obtain('root', () => createRoot(registry, keys, options, now));
  const device = await obtain('device', () =>
    createSubordinate(registry, keys, options, root, 'device', 'device', 'Device Issuing CA', now));
  const infrastructure = await obtain('infrastructure', () =>
    createSubordinate(registry, keys, options, root, 'infrastructure', 'infrastructure', 'Infrastructure CA', now));
  const station = await obtain(STATION_CA_ID, () => createStationCa(registry, keys, options, root, now));
  return { root, device, infrastructure, station };
}

export const STATION_CA_ID = 'station';

/**
 * The station CA of a hierarchy: loaded when recorded, else created under the root (data dirs
 * initialised before station certificates existed get one on their next open). Undefined when the
 * root's key is offline: kakuin cannot sign a new CA then (an operator can import one later).
 */
export async function obtainStationCa(registry: Registry, keys: KeyRing, options: HierarchyOptions, root: LoadedIssuer, now = new Date()): Promise<LoadedIssuer | undefined> {
  const record = (await registry.listIssuers()).find((i) => i.id === STATION_CA_ID);
  if (record) return issuerFromParts(record, await keys.load(record.keyUri));
  try {
    return await createStationCa(registry, keys, options, root, now);
  } catch (e) {
    if (hasCode(e, 'KAKUIN_E_KEY_OFFLINE')) return undefined;
    throw e;
  }
}

function createStationCa(registry: Registry, keys: KeyRing, options: HierarchyOptions, root: LoadedIssuer, now: Date): Promise<LoadedIssuer> {
  return createSubordinate(registry, keys, options, root, STATION_CA_ID, 'station', 'Station CA', now);
}

async function keyFor(keys: KeyRing, uri: string, algorithm: KeyAlgorithm) {
  // A key without an issuer record is left over from an interrupted bootstrap: it never signed
  // anything that was recorded, so it is reused rather than refused.
  return (await keys.exists(uri)) ? keys.load(uri) : keys.generate(uri, algorithm);
}

/** Whole seconds (DER time has no fractions here), set back by `backdateSeconds`. */
function caNotBefore(options: HierarchyOptions, now: Date): Date {
  return new Date(Math.floor(now.getTime() / 1000) * 1000 - (options.backdateSeconds ?? DEFAULT_CA_BACKDATE_SECONDS) * 1000);
}

const DEFAULT_CA_BACKDATE_SECONDS = 3600;

function caName(options: HierarchyOptions, cn: string): Buffer {
  const attrs: NameAttribute[] = [{ type: 'O', value: options.organization }, { type: 'CN', value: `${options.organization} ${cn}` }];
  return encodeName(attrs);
}

async function createRoot(registry: Registry, keys: KeyRing, options: HierarchyOptions, now: Date): Promise<LoadedIssuer> {
  const uri = options.keyUriFor('root');
  const signer = await keyFor(keys, uri, options.rootKeyAlgorithm);
  const subject = caName(options, 'Root CA');
  const keyId = keyIdentifier(parseSpki(signer.publicKeySpki));
  const serial = newCertificateSerial();
  const notBefore = caNotBefore(options, now);
  const notAfter = new Date(notBefore.getTime() + options.rootValidityYears * YEAR_MS);
  // RFC 5280 §4.2.1.9/§4.2.1.3: CA certificates carry critical basicConstraints and keyUsage.
  const tbs = encodeTbsCertificate({
    serial, signatureAlgorithm: signer.signatureAlgorithm, issuer: subject, subject, notBefore, notAfter,
    spki: signer.publicKeySpki,
    extensions: [
      basicConstraintsExt({ ca: true }),
      keyUsageExt(['keyCertSign', 'cRLSign']),
      subjectKeyIdentifierExt(keyId),
    ],
  });
  const der = encodeCertificate(tbs, signer.signatureAlgorithm, await signer.sign(tbs));
  return recordCa(registry, { id: 'root', kind: 'root', der, keyUri: uri, signer, serial, notBefore, notAfter, actor: options.actor });
}

export async function createSubordinate(
  registry: Registry, keys: KeyRing, options: HierarchyOptions, parent: LoadedIssuer,
  id: string, kind: IssuerKind, cn: string, now: Date,
): Promise<LoadedIssuer> {
  const uri = options.keyUriFor(id);
  const signer = await keyFor(keys, uri, options.issuingKeyAlgorithm);
  const serial = newCertificateSerial();
  // Never before the parent's own notBefore (a subordinate made the moment after its root).
  const backdated = caNotBefore(options, now);
  const notBefore = backdated < parent.certificate.notBefore ? new Date(parent.certificate.notBefore.getTime()) : backdated;
  let notAfter = new Date(notBefore.getTime() + options.issuingValidityYears * YEAR_MS);
  // A CA certificate must not outlive its issuer (RFC 5280 §6.1.3 checks every link's validity).
  if (notAfter > parent.certificate.notAfter) notAfter = parent.certificate.notAfter;
  const tbs = tbsFor(parent, {
    serial, subject: caName(options, cn), notBefore, notAfter, spki: signer.publicKeySpki,
    extensions: [
      // pathLen 0: an issuing CA issues end-entity certificates only.
      basicConstraintsExt({ ca: true, pathLen: 0 }),
      keyUsageExt(['digitalSignature', 'keyCertSign', 'cRLSign']),
      subjectKeyIdentifierExt(keyIdentifier(parseSpki(signer.publicKeySpki))),
      authorityKeyIdentifierExt(parent.keyId),
      crlDistributionPointsExt([options.urls.crl(parent.id)]),
      // RFC 5280 §4.2.2.1 / RFC 6960: relying parties that check the whole chain (nginx
      // `ssl_ocsp on`) ask the root's delegated responder about this CA; without the URL they refuse.
      authorityInfoAccessExt({ ocsp: [options.urls.ocsp], caIssuers: [options.urls.caIssuers(parent.id)] }),
    ],
  });
  const der = await signCertificate(parent, tbs);
  return recordCa(registry, { id, kind, der, keyUri: uri, signer, serial, notBefore, notAfter, parentId: parent.id, actor: options.actor });
}

async function recordCa(registry: Registry, ca: {
  id: string; kind: IssuerKind; der: Buffer; keyUri: string; signer: LoadedIssuer['signer'];
  serial: Buffer; notBefore: Date; notAfter: Date; parentId?: string; actor: string;
}): Promise<LoadedIssuer> {
  const record = await registry.putIssuer({ id: ca.id, kind: ca.kind, certificateDer: ca.der, keyUri: ca.keyUri, parentId: ca.parentId });
  const serialHex = serialToHex(ca.serial);
  await registry.recordIssuance({
    certificate: issuanceCertificateFields({
      serialHex, issuerId: ca.parentId ?? ca.id, profile: ca.kind === 'root' ? 'root-ca' : 'sub-ca',
      der: ca.der, spkiDer: ca.signer.publicKeySpki, notBefore: ca.notBefore, notAfter: ca.notAfter,
    }),
    audit: { type: 'ca.created', actor: ca.actor, serialHex, details: { issuerId: ca.id, kind: ca.kind } },
  });
  return issuerFromParts(record, ca.signer);
}
