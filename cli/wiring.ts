/**
 * The composition root: the one place that knows every component and connects them
 * (smallstep's `ca/ca.go`). Nothing else imports `cli/`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KeyRing, type KeyAlgorithm, type KeyStore, type Signer } from '../hsm-adapters/index.js';
import { newPkcs11KeyUri, Pkcs11KeyStore, tokenOfKeysUri, tokenOfKeyUri } from '../hsm-adapters/pkcs11/index.js';
import { SoftwareKeyStore } from '../hsm-adapters/software/index.js';
import { bootstrapHierarchy, hierarchyExists, loadHierarchy, obtainStationCa, type CaHierarchy, type HierarchyOptions } from '../ca/hierarchy.js';
import { deviceProfiles } from '../ca/profiles.js';
import { StationCertificateIssuer } from '../ca/station-certificates.js';
import { DeviceCertificateIssuer } from '../ca/issuance.js';
import { ensureOcspSigner, type OcspSigner } from '../ca/ocsp-signers.js';
import type { LoadedIssuer } from '../ca/issuer.js';
import { deviceCasInService } from '../ca/rollover.js';
import { createProofOfPossessionVerifier } from '../ca/pop-verifier.js';
import { publicUrls, type PublicUrls } from '../ca/urls.js';
import { registryAdapter } from '../registry/adapters.js';
import type { Registry } from '../registry/port.js';
import type { WorkerRegistrySpec } from '../ca/crl/crl-builder.js';
import { toPem } from '../pkix/index.js';
import { KakuinError } from '../errors/index.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';
import { OFFLINE_ROOT_KEY_URI, OfflineKeyStore, offlineRootResponder } from './offline-root.js';
import { recordPublicUrl, settlePublicUrl } from './public-url.js';
import { ensurePrivateDir, keyPassphrase, pepper } from './secrets.js';

export interface Kakuin {
  config: Readonly<KakuinConfig>;
  registry: Registry;
  keys: KeyRing;
  softwareKeys: SoftwareKeyStore;
  hierarchy: CaHierarchy;
  urls: PublicUrls;
  deviceIssuer: DeviceCertificateIssuer;
  /** Issues station certificates (the station CA); undefined when the root is offline and there is no station CA. */
  stationCertificates?: StationCertificateIssuer;
  /** Delegated OCSP responders, one per CA (root, device, infrastructure). */
  ocspSigners: OcspSigner[];
  /** True when a responder certificate was created or rolled over by this open: re-sign stored responses. */
  ocspSignersRolled: boolean;
  pepper: Buffer;
  /** True when this call created the CA hierarchy. */
  created: boolean;
  /** Device CAs replaced by a rollover whose certificates have not expired: trusted, answering OCSP, publishing CRLs. */
  previousDeviceCas: LoadedIssuer[];
  /** CAs whose key is offline (an offline root): kakuin signs neither their CRLs nor OCSP responses. */
  offlineIssuers: ReadonlySet<string>;
  /** The key URI of an issuer's next OCSP responder key: in the CA key's PKCS#11 token, or a file. */
  ocspKeyUriFor(issuerId: string, generation: number): string;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Create the development CA hierarchy when there is none (`serve` on an empty data dir, `init`). */
  bootstrap: boolean;
  actor: string;
  env?: Record<string, string | undefined>;
  /**
   * Where `init` puts the CA and responder keys: `file:` (the software store, the default) or a
   * token-only `pkcs11:token=...` URI. Later opens follow the URIs recorded with each CA.
   */
  keys?: string;
}

/** Where the CA certificates are published for operators (`openssl verify -CAfile ...`). */
export function caFiles(config: KakuinConfig) {
  const dir = path.join(config.dataDir, 'ca');
  return { dir, root: path.join(dir, 'root.pem'), device: path.join(dir, 'device.pem'), infrastructure: path.join(dir, 'infrastructure.pem'), chain: path.join(dir, 'device-chain.pem'), station: path.join(dir, 'station.pem') };
}

/**
 * Opens the registry `storage.type` names (registry/adapters.ts: the adapter table; a driver is
 * loaded only when its adapter is). Read-only openings are for the OCSP and gateway roles and worker threads.
 */
export async function openRegistry(config: Readonly<KakuinConfig>, options: { readonly?: boolean } = {}): Promise<Registry> {
  return registryAdapter(config.storage.type).open(config.storage, { readonly: options.readonly === true });
}

/** The module (and its options) a CRL worker thread opens its own read-only registry with. */
export function workerRegistry(config: Readonly<KakuinConfig>): WorkerRegistrySpec {
  return registryAdapter(config.storage.type).worker(config.storage);
}

export async function openKakuin(configured: Readonly<KakuinConfig>, logger: Logger, options: OpenOptions): Promise<Kakuin> {
  let config = configured;
  const env = options.env ?? process.env;
  ensurePrivateDir(config.dataDir);
  ensurePrivateDir(config.secrets.directory);
  const registry = await openRegistry(config);
  let opened: KeyRing | undefined;
  try {
    const initialized = await hierarchyExists(registry);
    if (!initialized && !options.bootstrap) {
      throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED', `no CA in ${config.dataDir}; run \`kakuin init\` (or \`kakuin serve\`, which creates a development CA)`);
    }
    if (initialized) {
      // Before any key is opened: a start that would write another URL into certificates stops here.
      const publicHttpUrl = await settlePublicUrl(registry, config, logger, options.actor);
      if (publicHttpUrl !== config.publicHttpUrl) config = Object.freeze({ ...config, publicHttpUrl });
    }
    const { passphrase, source } = keyPassphrase(env, config.keys.passphraseFile, !initialized);
    if (source === 'generated') {
      logger.warn('development key passphrase generated beside the keys; set KAKUIN_KEY_PASSPHRASE (or keys.passphraseFile on another volume) in production',
        { file: config.keys.passphraseFile });
    }
    const softwareKeys = new SoftwareKeyStore({ directory: config.keys.directory, passphrase, kdfCost: config.keys.kdfCost });
    const keys = new KeyRing([softwareKeys, new DeferredKeyStore('pkcs11', () => openPkcs11(config, env)), new OfflineKeyStore(registry)]);
    opened = keys;
    const urls = publicUrls(config.publicHttpUrl);
    const hierarchyOptions: HierarchyOptions = {
      organization: config.ca.organization,
      rootKeyAlgorithm: config.ca.rootKeyAlgorithm,
      issuingKeyAlgorithm: config.ca.issuingKeyAlgorithm,
      rootValidityYears: config.ca.rootValidityYears,
      issuingValidityYears: config.ca.issuingValidityYears,
      backdateSeconds: caBackdateSeconds(config),
      keyUriFor: caKeyUriFor(options.keys),
      urls,
      actor: options.actor,
    };
    const loaded = initialized
      ? await loadHierarchy(registry, keys)
      : await bootstrapHierarchy(registry, keys, hierarchyOptions);
    if (!initialized) await recordPublicUrl(registry, config.publicHttpUrl, options.actor, { recordedAt: 'init' });
    // Data dirs made before the station CA existed get it on their next open (resumable like bootstrap).
    // Its key goes where the root's is: a root in a PKCS#11 token keeps the station CA key there too.
    const rootToken = tokenOfKeyUri(loaded.root.record.keyUri);
    loaded.station ??= await obtainStationCa(registry, keys, rootToken === undefined ? hierarchyOptions
      : { ...hierarchyOptions, keyUriFor: (id) => newPkcs11KeyUri(rootToken, `${id}-ca`) }, loaded.root);
    // After a rollover the newest device CA issues; the earlier ones stay in service (ca/rollover.ts).
    const deviceCas = await deviceCasInService(registry, keys, loaded.device);
    const hierarchy: CaHierarchy = { ...loaded, device: deviceCas.current };
    const previousDeviceCas = deviceCas.previous;
    const inService = [hierarchy.root, hierarchy.device, ...previousDeviceCas, hierarchy.infrastructure, ...(hierarchy.station ? [hierarchy.station] : [])];
    publishCaFiles(config, hierarchy);
    const ocspKeyUriFor = (issuerId: string, generation: number): string => {
      // A responder key lives where its CA's key lives: a CA kept in a token keeps its responder there too.
      const ca = inService.find((i) => i.id === issuerId);
      const token = ca ? tokenOfKeyUri(ca.record.keyUri) : undefined;
      return token === undefined ? `file:ocsp-${issuerId}-${generation}` : newPkcs11KeyUri(token, `ocsp-${issuerId}-${generation}`);
    };
    const signerPolicy = {
      organization: config.ca.organization, validityDays: config.ocsp.signerValidityDays,
      renewWithinDays: config.ocsp.signerRenewWithinDays, keyAlgorithm: 'ecdsa-p256' as const,
      keyUriFor: ocspKeyUriFor, actor: options.actor,
    };
    const ensured = [];
    const offlineIssuers = new Set(inService.filter((i) => i.record.keyUri === OFFLINE_ROOT_KEY_URI).map((i) => i.id));
    for (const issuer of inService) {
      if (offlineIssuers.has(issuer.id)) continue;
      ensured.push(await ensureOcspSigner(registry, keys, issuer, signerPolicy));
    }
    if (offlineIssuers.has(hierarchy.root.id)) {
      // The responder the offline root signed at its ceremony (never rolled here: the root key is not here).
      const { signer, problem, daysLeft } = await offlineRootResponder(registry, keys, hierarchy.root);
      if (signer) ensured.push({ signer, rolled: false });
      if (problem) logger.warn(problem);
      else if (daysLeft !== undefined && daysLeft < 30) {
        logger.warn('the offline root\'s OCSP responder certificate expires soon: hold a ceremony (kakuin ca csr --root-responder)', { notAfter: signer?.notAfter.toISOString() });
      }
    }
    const verifier = createProofOfPossessionVerifier(config.ca.verifyWorkers);
    const profiles = deviceProfiles(
      { validity: deviceIssuerValidity(config.ca.device.validityDays), backdateSeconds: config.ca.device.backdateSeconds, commonName: config.ca.device.commonName },
      Object.fromEntries(Object.entries(config.ca.profiles).map(([name, p]) => [name, {
        validity: deviceIssuerValidity(p.validityDays), backdateSeconds: p.backdateSeconds, commonName: p.commonName ?? config.ca.device.commonName,
      }])),
    );
    const deviceIssuer = new DeviceCertificateIssuer(
      registry, hierarchy.device, [hierarchy.device.record.certificateDer, hierarchy.root.record.certificateDer], urls,
      {
        validity: config.ca.device.validityDays === 'no-well-defined-expiration' ? 'no-well-defined-expiration' : { days: config.ca.device.validityDays },
        backdateSeconds: config.ca.device.backdateSeconds,
        commonName: config.ca.device.commonName,
      },
      verifier,
      () => new Date(),
      profiles,
    );
    const stationCertificates = hierarchy.station && new StationCertificateIssuer(
      registry, hierarchy.station, [hierarchy.station.record.certificateDer, hierarchy.root.record.certificateDer], urls,
      { validity: { days: config.ca.station.validityDays }, backdateSeconds: 300 }, verifier,
    );
    return {
      stationCertificates,
      config, registry, keys, softwareKeys, hierarchy, urls, deviceIssuer, pepper: pepper(config.secrets.directory),
      ocspSigners: ensured.map((e) => e.signer), ocspSignersRolled: ensured.some((e) => e.rolled),
      created: !initialized,
      ocspKeyUriFor,
      offlineIssuers,
      previousDeviceCas,
      close: async () => {
        await verifier.close();
        await keys.close();
        await registry.close();
      },
    };
  } catch (e) {
    // Releases a PKCS#11 module (and its sessions) opened before the failure.
    await opened?.close().catch(() => undefined);
    await registry.close();
    throw e;
  }
}

/** A CA is backdated at least as far as any device certificate it signs (the device profile and ca.profiles). */
export function caBackdateSeconds(config: Readonly<KakuinConfig>): number {
  return Math.max(3600, config.ca.device.backdateSeconds, ...Object.values(config.ca.profiles).map((p) => p.backdateSeconds));
}

function deviceIssuerValidity(days: number | 'no-well-defined-expiration') {
  return days === 'no-well-defined-expiration' ? days : { days };
}

function publishCaFiles(config: KakuinConfig, h: CaHierarchy): void {
  const files = caFiles(config);
  mkdirSync(files.dir, { recursive: true });
  const pem = (der: Buffer) => toPem('CERTIFICATE', der);
  writeFileSync(files.root, pem(h.root.record.certificateDer));
  writeFileSync(files.device, pem(h.device.record.certificateDer));
  writeFileSync(files.infrastructure, pem(h.infrastructure.record.certificateDer));
  writeFileSync(files.chain, pem(h.device.record.certificateDer) + pem(h.root.record.certificateDer));
  // The station CA (issues the factory stations' mTLS certificates): for operators checking one.
  if (h.station) writeFileSync(files.station, pem(h.station.record.certificateDer));
}

/** `keyUriFor` of the CA hierarchy for `init --keys`. */
function caKeyUriFor(keys: string | undefined): (id: string) => string {
  if (keys === undefined || keys === 'file:') return (id) => `file:${id}-ca`;
  const token = tokenOfKeysUri(keys);
  return (id) => newPkcs11KeyUri(token, `${id}-ca`);
}

/** The PKCS#11 store, with the PIN from KAKUIN_PKCS11_PIN or `keys.pkcs11.pinFile` (never argv, never a URI). */
function openPkcs11(config: Readonly<KakuinConfig>, env: Record<string, string | undefined>): Pkcs11KeyStore {
  let pin = env.KAKUIN_PKCS11_PIN;
  if (!pin && config.keys.pkcs11.pinFile) {
    try {
      pin = readFileSync(config.keys.pkcs11.pinFile, 'utf8').replace(/\r?\n$/, '');
    } catch (cause) {
      throw new KakuinError('KAKUIN_E_PKCS11_PIN', `cannot read the PKCS#11 PIN file ${config.keys.pkcs11.pinFile}`, { cause });
    }
  }
  if (!pin) throw new KakuinError('KAKUIN_E_PKCS11_PIN', 'pkcs11: keys need the token PIN: set KAKUIN_PKCS11_PIN or keys.pkcs11.pinFile');
  return new Pkcs11KeyStore({ modulePath: config.keys.pkcs11.module, pin });
}

/**
 * A key store opened on first use, so that a process whose keys are all files never loads a
 * PKCS#11 module (nor needs its PIN).
 */
class DeferredKeyStore implements KeyStore {
  #store: KeyStore | undefined;

  constructor(readonly scheme: string, private readonly open: () => KeyStore) {}

  #get(): KeyStore {
    this.#store ??= this.open();
    return this.#store;
  }

  generate(uri: string, algorithm: KeyAlgorithm): Promise<Signer> { return this.#get().generate(uri, algorithm); }
  load(uri: string): Promise<Signer> { return this.#get().load(uri); }
  exists(uri: string): Promise<boolean> { return this.#get().exists(uri); }
  async close(): Promise<void> { await this.#store?.close(); }
}

/**
 * The key stores for `kakuin ca csr` / `ca import`, before any CA exists: the software store (its
 * passphrase made as `init` makes it) and the PKCS#11 store, opened on first use.
 */
export function preInitKeyRing(config: Readonly<KakuinConfig>, env: Record<string, string | undefined>): KeyRing {
  ensurePrivateDir(config.dataDir);
  ensurePrivateDir(config.secrets.directory);
  const { passphrase } = keyPassphrase(env, config.keys.passphraseFile, true);
  return new KeyRing([
    new SoftwareKeyStore({ directory: config.keys.directory, passphrase, kdfCost: config.keys.kdfCost }),
    new DeferredKeyStore('pkcs11', () => openPkcs11(config, env)),
  ]);
}
