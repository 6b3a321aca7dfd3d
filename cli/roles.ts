/**
 * `kakuin serve --role ...`: which parts of kakuin one process runs, and the pieces a process
 * needs when it runs only some of them. Every process of an installation shares one registry.
 *
 *   ca          creates the CA hierarchy on an empty registry, keeps the OCSP responder and TLS
 *               certificates fresh, publishes CRLs, pre-signs and stores one OCSP response per
 *               certificate, and serves the management API (admin routes)
 *   enrollment  the management API with the enrollment routes (stations, pre-registration, EST)
 *   ocsp        the plain-HTTP listener: OCSP (loads the responses the ca role pre-signed and stored,
 *               signs what is missing or changed in memory, never stores),
 *               CRLs and CA certificates; opens the registry read-only
 *   gateway     the mTLS device gateway, following the revocation feed; opens the registry read-only
 *   legacy      the legacy three-factor token path (writes failure counts and locks)
 *
 * Keys each role loads: ca and enrollment the device CA key (issuance) and, for ca, every CA key;
 * ocsp only the delegated responder keys; gateway only its TLS server key; legacy the device CA key
 * (migration to a certificate) and its TLS key. The key store passphrase is needed by every role
 * whose keys are files; a gateway or OCSP process never loads a CA key.
 *
 * CRL publication: only processes with the ca role publish. Two ca processes are safe (CRL numbers
 * come from the registry's nextCrlNumber, so no two CRLs share a number) but build and sign every
 * CRL twice: run one, and a second only as a warm standby.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CrlPublisher } from '../ca/crl/crl-publisher.js';
import { ocspSignerId } from '../ca/ocsp-signers.js';
import { KakuinError, hasCode } from '../errors/index.js';
import { KeyRing, type KeyAlgorithm, type KeyStore, type Signer } from '../hsm-adapters/index.js';
import { Pkcs11KeyStore } from '../hsm-adapters/pkcs11/index.js';
import { SoftwareKeyStore } from '../hsm-adapters/software/index.js';
import type { DeviceGateway, SessionCounts, TelemetrySink } from '../gateway-auth/index.js';
import { startGateway } from './device-gateway.js';
import { createOcspHttpServer, OcspResponder, Publications, type OcspSigningIdentity, withWorkerWalks } from '../ocsp-responder/index.js';
import { fromPem, parseCertificate } from '../pkix/index.js';
import { registryAdapter } from '../registry/adapters.js';
import { FeedFollower } from '../registry/feed-follower.js';
import type { Issuer, Registry } from '../registry/port.js';
import type { KakuinConfig } from './config.js';
import { startActivity } from './activity.js';
import type { Logger } from './logger.js';
import { OFFLINE_ROOT_KEY_URI } from './offline-root.js';
import { keyPassphrase } from './secrets.js';
import type { TlsMaterial } from './tls-material.js';
import { crlPolicyOf, crlPublisherFor, ocspIdentities, scheduleResponderRollover, servedIssuers } from './revocation-plane.js';
import { openRegistry, workerRegistry, type Kakuin } from './wiring.js';

export const ROLES = ['ca', 'enrollment', 'ocsp', 'gateway', 'legacy'] as const;
export type Role = (typeof ROLES)[number];

const HOUR_MS = 3600_000;

/**
 * `--role` values: each may list several roles separated by commas; `all` (the default) is every
 * role. Unknown names are a usage error.
 */
export function parseRoles(values: readonly string[]): ReadonlySet<Role> {
  const names = values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) return new Set(ROLES);
  const roles = new Set<Role>();
  for (const name of names) {
    if (name === 'all') ROLES.forEach((r) => roles.add(r));
    else if ((ROLES as readonly string[]).includes(name)) roles.add(name as Role);
    else throw new KakuinError('KAKUIN_E_USAGE', `unknown role ${JSON.stringify(name)}; roles are ${ROLES.join(', ')} and all`);
  }
  return roles;
}

export function hasEveryRole(roles: ReadonlySet<Role>): boolean {
  return ROLES.every((r) => roles.has(r));
}

/** ca, enrollment and legacy write to the registry; a process with only ocsp and gateway opens it read-only. */
export function needsWritableRegistry(roles: ReadonlySet<Role>): boolean {
  return roles.has('ca') || roles.has('enrollment') || roles.has('legacy');
}

/** What a read-only process (ocsp, gateway) opens: the registry read-only and the key stores, no CA key. */
export interface ReadOnlyView {
  registry: Registry;
  keys: KeyRing;
  softwareKeys: SoftwareKeyStore;
  close(): Promise<void>;
}

export async function openReadOnlyView(config: Readonly<KakuinConfig>, env: Record<string, string | undefined>): Promise<ReadOnlyView> {
  if (await registryAdapter(config.storage.type).absent?.(config.storage) === true) {
    throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED',
      `no registry at ${config.storage.path}: start a process with the ca role (or run \`kakuin init\`) first`);
  }
  const registry = await openRegistry(config, { readonly: true });
  try {
    const { passphrase } = keyPassphrase(env, config.keys.passphraseFile, false);
    const softwareKeys = new SoftwareKeyStore({ directory: config.keys.directory, passphrase, kdfCost: config.keys.kdfCost });
    const keys = new KeyRing([softwareKeys, new LazyPkcs11Store(config, env)]);
    return {
      registry, keys, softwareKeys,
      close: async () => {
        await keys.close();
        await registry.close();
      },
    };
  } catch (e) {
    await registry.close();
    throw e;
  }
}

/** The PKCS#11 store opened on first use (responder keys kept in a token), PIN as wiring.ts reads it. */
class LazyPkcs11Store implements KeyStore {
  readonly scheme = 'pkcs11';
  #store: Pkcs11KeyStore | undefined;

  constructor(private readonly config: Readonly<KakuinConfig>, private readonly env: Record<string, string | undefined>) {}

  #get(): Pkcs11KeyStore {
    if (this.#store) return this.#store;
    let pin = this.env.KAKUIN_PKCS11_PIN;
    const pinFile = this.config.keys.pkcs11.pinFile;
    if (!pin && pinFile) {
      try {
        pin = readFileSync(pinFile, 'utf8').replace(/\r?\n$/, '');
      } catch (cause) {
        throw new KakuinError('KAKUIN_E_PKCS11_PIN', `cannot read the PKCS#11 PIN file ${pinFile}`, { cause });
      }
    }
    if (!pin) throw new KakuinError('KAKUIN_E_PKCS11_PIN', 'pkcs11: keys need the token PIN: set KAKUIN_PKCS11_PIN or keys.pkcs11.pinFile');
    this.#store = new Pkcs11KeyStore({ modulePath: this.config.keys.pkcs11.module, pin });
    return this.#store;
  }

  generate(uri: string, algorithm: KeyAlgorithm): Promise<Signer> { return this.#get().generate(uri, algorithm); }
  load(uri: string): Promise<Signer> { return this.#get().load(uri); }
  exists(uri: string): Promise<boolean> { return this.#get().exists(uri); }
  async close(): Promise<void> { await this.#store?.close(); }
}

/** The CAs in service, from the registry records alone (no key loaded). */
export interface CaRecords {
  root: Issuer;
  /** The device issuing CAs in service, the one that issues now first. */
  deviceCas: Issuer[];
  /** Every CA kakuin answers OCSP for (its key is not offline, its certificate not expired). */
  served: Issuer[];
}

function generation(id: string): number {
  const m = /-(\d+)$/.exec(id);
  return m ? Number(m[1]) : 1;
}

export async function caRecords(registry: Registry, now = Date.now()): Promise<CaRecords> {
  const all = await registry.listIssuers();
  const byId = new Map(all.map((i) => [i.id, i]));
  const root = byId.get('root');
  const infrastructure = byId.get('infrastructure');
  if (!root || !infrastructure || !byId.has('device')) {
    throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED', 'the CA hierarchy does not exist yet: start a process with the ca role (or run `kakuin init`) first');
  }
  const unexpired = (i: Issuer) => parseCertificate(i.certificateDer).notAfter.getTime() > now;
  // As ca/rollover.ts orders them: the highest generation issues, the earlier ones stay until they expire.
  const devices = all.filter((i) => i.kind === 'device').sort((a, b) => generation(a.id) - generation(b.id));
  const current = devices[devices.length - 1];
  const deviceCas = [current, ...devices.slice(0, -1).reverse().filter(unexpired)];
  // The station CA exists unless the root was offline when the data dir was made (or first opened since).
  const station = byId.get('station');
  const served = [root, ...deviceCas, infrastructure, ...(station ? [station] : [])].filter((i) => i.keyUri !== OFFLINE_ROOT_KEY_URI);
  return { root, deviceCas, served };
}

/**
 * The delegated responder of every served CA, as the ca role keeps them (ca/ocsp-signers.ts). A
 * read-only process never makes one: a CA whose responder is missing or not issued by it is left
 * out (answered `unauthorized`) and logged until the ca role has made it.
 */
export async function loadOcspIdentities(registry: Registry, keys: KeyRing, logger: Logger): Promise<OcspSigningIdentity[]> {
  const { served, root } = await caRecords(registry);
  const identities: OcspSigningIdentity[] = [];
  // An offline root's responder came from its ceremony (ca import-root-publications): checked the same way.
  for (const issuer of root.keyUri === OFFLINE_ROOT_KEY_URI ? [...served, root] : served) {
    let record: Issuer;
    try {
      record = await registry.getIssuer(ocspSignerId(issuer.id));
    } catch (e) {
      if (!hasCode(e, 'KAKUIN_E_ISSUER_NOT_FOUND')) throw e;
      logger.warn('no OCSP responder certificate for a CA yet; a ca role process makes it', { issuerId: issuer.id });
      continue;
    }
    const responder = parseCertificate(record.certificateDer);
    if (!responder.issuer.rawDer.equals(parseCertificate(issuer.certificateDer).subject.rawDer)) {
      logger.warn('the OCSP responder certificate is not issued by its CA; waiting for the ca role to roll it', { issuerId: issuer.id });
      continue;
    }
    identities.push({
      issuerId: issuer.id, issuerCertificateDer: issuer.certificateDer, responderCertificateDer: record.certificateDer,
      signer: await keys.load(record.keyUri),
    });
  }
  return identities;
}

export interface OcspRole {
  responder: OcspResponder;
  /** Base URL of the plain-HTTP listener as bound. */
  httpUrl: string;
  close(): Promise<void>;
}

/** How often an OCSP process looks for responder certificates the ca role has rolled over. */
export const OCSP_IDENTITY_REFRESH_MS = 60_000;

/**
 * The ocsp role without the ca role: the responder signs in memory from the registry state and
 * follows the feed (≤ 100 ms), never storing what it signs (the registry may be read-only, and
 * several such processes side by side would otherwise write the same rows).
 */
export async function startOcspRole(config: Readonly<KakuinConfig>, registry: Registry, keys: KeyRing, logger: Logger): Promise<OcspRole> {
  const identities = await loadOcspIdentities(registry, keys, logger);
  const fingerprint = (ids: OcspSigningIdentity[]) => ids.map((i) => `${i.issuerId}:${i.responderCertificateDer.toString('base64')}`).join('|');
  let current = fingerprint(identities);
  const responder = new OcspResponder({
    // The start's two whole-registry walks run in worker threads on connections of their own
    // (ocsp-responder/worker-walks.ts): a million responses load in seconds, off the event loop.
    registry: withWorkerWalks(registry, workerRegistry(config)), identities, logger, persistResponses: false,
    validityMs: config.ocsp.validityMinutes * 60_000,
    live: { ratePerSecond: config.ocsp.liveRatePerSecond },
  });
  const listener = createOcspHttpServer({
    responder, publications: new Publications({ registry, logger }), logger, crlReplacement: CrlPublisher.replacementSeconds(crlPolicyOf(config)),
  });
  await responder.start();
  let refresh: NodeJS.Timeout | undefined;
  try {
    const address = await listener.listen(config.ocsp.port, config.bindHost);
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const httpUrl = `http://${host === '0.0.0.0' ? 'localhost' : host}:${address.port}`;
    logger.info('OCSP, CRL and CA certificate listener (ocsp role, responses signed in memory)', { url: httpUrl });
    let refreshing = false;
    refresh = setInterval(() => {
      if (refreshing) return;
      refreshing = true;
      (async () => {
        const next = await loadOcspIdentities(registry, keys, logger);
        if (fingerprint(next) === current) return;
        logger.info('OCSP responder certificates changed in the registry; re-signing in memory');
        await responder.setIdentities(next);
        current = fingerprint(next);
      })().catch((e) => logger.error('reloading OCSP responder certificates failed', { error: String(e) }))
        .finally(() => { refreshing = false; });
    }, OCSP_IDENTITY_REFRESH_MS);
    refresh.unref();
    return {
      responder, httpUrl,
      close: async () => {
        clearInterval(refresh);
        await listener.close();
        await responder.stop();
      },
    };
  } catch (e) {
    clearInterval(refresh);
    await responder.stop().catch(() => undefined);
    throw e;
  }
}

export interface CrlPublication {
  crls: CrlPublisher;
  close(): Promise<void>;
}

/**
 * The ca role without the ocsp role: CRL publication following the feed, and the twice-daily
 * responder certificate rollover (OCSP processes pick the new certificates up from the registry).
 */
export async function startCrlPublication(kakuin: Kakuin, logger: Logger): Promise<CrlPublication> {
  const { config, registry } = kakuin;
  const issuers = servedIssuers(kakuin);
  const crls = crlPublisherFor(kakuin, issuers, logger);
  const follower = new FeedFollower(registry, {
    afterSeq: await registry.latestFeedSeq(),
    onEntries: (entries) => crls.onFeedEntries(entries),
    onError: (e) => logger.warn('revocation feed read failed; retrying', { error: String(e) }),
  });
  // The pre-signer: an OCSP responder without a listener that keeps one stored, signed response per
  // certificate (new certificates, status changes, refresh past half-life, responder rollover), so
  // an ocsp process starts by loading them instead of signing every response itself.
  const presigner = new OcspResponder({
    registry: withWorkerWalks(registry, workerRegistry(config)), identities: ocspIdentities(kakuin.ocspSigners), logger,
    validityMs: config.ocsp.validityMinutes * 60_000,
    live: { ratePerSecond: config.ocsp.liveRatePerSecond },
  });
  await crls.start();
  try {
    await presigner.start();
  } catch (e) {
    await crls.stop().catch(() => undefined);
    throw e;
  }
  follower.start();
  const rollover = scheduleResponderRollover(kakuin, issuers, presigner, logger);
  logger.info('CRL publication and OCSP response pre-signing (ca role)', { issuers: issuers.map((i) => i.id) });
  return {
    crls,
    close: async () => {
      clearInterval(rollover);
      follower.stop();
      await presigner.stop();
      await crls.stop();
    },
  };
}

/**
 * The gateway's TLS key and certificate as the ca role left them in the data directory
 * (cli/tls-material.ts): a read-only process cannot issue, so it uses what is there.
 */
export async function readTlsMaterial(config: Readonly<KakuinConfig>, softwareKeys: SoftwareKeyStore, listener: string, logger: Logger): Promise<TlsMaterial> {
  const certFile = path.join(config.dataDir, 'tls', `${listener}.pem`);
  const uri = `file:tls-${listener}`;
  if (!existsSync(certFile) || !(await softwareKeys.exists(uri))) {
    throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED',
      `no TLS certificate for the ${listener} in ${path.dirname(certFile)}: start a process with the ca role first (it issues it)`);
  }
  const cert = readFileSync(certFile, 'utf8');
  const leaf = parseCertificate(fromPem(cert, 'CERTIFICATE')[0]);
  const daysLeft = (leaf.notAfter.getTime() - Date.now()) / (24 * HOUR_MS);
  if (daysLeft <= 0) {
    throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED', `the ${listener} TLS certificate ${certFile} has expired: restart the ca role process to renew it`);
  }
  if (daysLeft < config.tls.renewWithinDays) {
    logger.warn('TLS certificate close to expiry; the ca role renews it when it starts', { listener, file: certFile, daysLeft: Math.floor(daysLeft) });
  }
  const material = await softwareKeys.tlsKeyMaterial(uri);
  return { key: material.key, passphrase: material.passphrase, cert };
}

export interface GatewayRole {
  gateway: DeviceGateway;
  url: string;
  /** Open sessions per certificate across every gateway worker. */
  sessions: SessionCounts;
  close(): Promise<void>;
}

/**
 * The device gateway of a process that runs a subset of the roles (cli/device-gateway.ts wires it for `all`).
 * With gateway.workers > 1 this process is the cluster primary: it reads the CA records and the TLS
 * material once, and its workers open the registry read-only and follow the feed themselves.
 */
export async function startGatewayRole(options: {
  config: Readonly<KakuinConfig>; registry: Registry; tls: TlsMaterial; logger: Logger; sink: TelemetrySink | undefined;
  /** The OCSP responder for statusSource `ocsp` when gateway.ocspUrl is not set. */
  ocspUrl: string;
}): Promise<GatewayRole> {
  const { config, registry, tls, logger } = options;
  const { root, deviceCas } = await caRecords(registry);
  // The registry is read-only here: activity goes through a connection limited to it (cli/activity.ts).
  // With workers, each worker records its own devices' activity; this process has none to record.
  const activity = config.gateway.workers > 1 ? undefined : startActivity(config, registry, logger);
  const { gateway, sessions, url } = await startGateway(config, {
    tls, registry, logger, ocspUrl: options.ocspUrl, ...(options.sink !== undefined && { sink: options.sink }),
    ...(activity !== undefined && { activity: activity.recorder }),
    trust: { deviceCas: deviceCas.map((ca) => ({ id: ca.id, certificateDer: ca.certificateDer })), rootDer: root.certificateDer },
  });
  return {
    gateway, url, sessions,
    close: async () => {
      await gateway.close();
      await activity?.close();
    },
  };
}
