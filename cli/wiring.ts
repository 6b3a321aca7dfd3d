/**
 * The composition root: the one place that knows every component and connects them
 * (smallstep's `ca/ca.go`). Nothing else imports `cli/`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KeyRing } from '../hsm-adapters/index.js';
import { SoftwareKeyStore } from '../hsm-adapters/software/index.js';
import { bootstrapHierarchy, hierarchyExists, loadHierarchy, type CaHierarchy } from '../ca/hierarchy.js';
import { DeviceCertificateIssuer } from '../ca/issuance.js';
import { ensureOcspSigner, type OcspSigner } from '../ca/ocsp-signers.js';
import { createProofOfPossessionVerifier } from '../ca/pop-verifier.js';
import { publicUrls, type PublicUrls } from '../ca/urls.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';
import type { Registry } from '../registry/port.js';
import { toPem } from '../pkix/index.js';
import { KakuinError } from '../errors/index.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';
import { ensurePrivateDir, keyPassphrase, pepper } from './secrets.js';

export interface Kakuin {
  config: Readonly<KakuinConfig>;
  registry: Registry;
  keys: KeyRing;
  softwareKeys: SoftwareKeyStore;
  hierarchy: CaHierarchy;
  urls: PublicUrls;
  deviceIssuer: DeviceCertificateIssuer;
  /** Delegated OCSP responders, one per CA (root, device, infrastructure). */
  ocspSigners: OcspSigner[];
  /** True when a responder certificate was created or rolled over by this open: re-sign stored responses. */
  ocspSignersRolled: boolean;
  pepper: Buffer;
  /** True when this call created the CA hierarchy. */
  created: boolean;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Create the development CA hierarchy when there is none (`serve` on an empty data dir, `init`). */
  bootstrap: boolean;
  actor: string;
  env?: Record<string, string | undefined>;
}

/** Where the CA certificates are published for operators (`openssl verify -CAfile ...`). */
export function caFiles(config: KakuinConfig) {
  const dir = path.join(config.dataDir, 'ca');
  return { dir, root: path.join(dir, 'root.pem'), device: path.join(dir, 'device.pem'), infrastructure: path.join(dir, 'infrastructure.pem'), chain: path.join(dir, 'device-chain.pem') };
}

export async function openKakuin(config: Readonly<KakuinConfig>, logger: Logger, options: OpenOptions): Promise<Kakuin> {
  const env = options.env ?? process.env;
  ensurePrivateDir(config.dataDir);
  ensurePrivateDir(config.secrets.directory);
  const registry = await openSqliteRegistry({ path: config.storage.path, synchronous: config.storage.synchronous });
  try {
    const initialized = await hierarchyExists(registry);
    if (!initialized && !options.bootstrap) {
      throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED', `no CA in ${config.dataDir}; run \`kakuin init\` (or \`kakuin serve\`, which creates a development CA)`);
    }
    const { passphrase, source } = keyPassphrase(env, config.keys.passphraseFile, !initialized);
    if (source === 'generated') {
      logger.warn('development key passphrase generated beside the keys; set KAKUIN_KEY_PASSPHRASE (or keys.passphraseFile on another volume) in production',
        { file: config.keys.passphraseFile });
    }
    const softwareKeys = new SoftwareKeyStore({ directory: config.keys.directory, passphrase });
    const keys = new KeyRing([softwareKeys]);
    const urls = publicUrls(config.publicHttpUrl);
    const hierarchy = initialized
      ? await loadHierarchy(registry, keys)
      : await bootstrapHierarchy(registry, keys, {
        organization: config.ca.organization,
        rootKeyAlgorithm: config.ca.rootKeyAlgorithm,
        issuingKeyAlgorithm: config.ca.issuingKeyAlgorithm,
        rootValidityYears: config.ca.rootValidityYears,
        issuingValidityYears: config.ca.issuingValidityYears,
        keyUriFor: (id) => `file:${id}-ca`,
        urls,
        actor: options.actor,
      });
    publishCaFiles(config, hierarchy);
    const signerPolicy = {
      organization: config.ca.organization, validityDays: config.ocsp.signerValidityDays,
      renewWithinDays: config.ocsp.signerRenewWithinDays, keyAlgorithm: 'ecdsa-p256' as const,
      keyUriFor: (issuerId: string, generation: number) => `file:ocsp-${issuerId}-${generation}`, actor: options.actor,
    };
    const ensured = [];
    for (const issuer of [hierarchy.root, hierarchy.device, hierarchy.infrastructure]) {
      ensured.push(await ensureOcspSigner(registry, keys, issuer, signerPolicy));
    }
    const verifier = createProofOfPossessionVerifier(config.ca.verifyWorkers);
    const deviceIssuer = new DeviceCertificateIssuer(
      registry, hierarchy.device, [hierarchy.device.record.certificateDer, hierarchy.root.record.certificateDer], urls,
      {
        validity: config.ca.device.validityDays === 'no-well-defined-expiration' ? 'no-well-defined-expiration' : { days: config.ca.device.validityDays },
        backdateSeconds: config.ca.device.backdateSeconds,
      },
      verifier,
    );
    return {
      config, registry, keys, softwareKeys, hierarchy, urls, deviceIssuer, pepper: pepper(config.secrets.directory),
      ocspSigners: ensured.map((e) => e.signer), ocspSignersRolled: ensured.some((e) => e.rolled),
      created: !initialized,
      close: async () => {
        await verifier.close();
        await keys.close();
        await registry.close();
      },
    };
  } catch (e) {
    await registry.close();
    throw e;
  }
}

function publishCaFiles(config: KakuinConfig, h: CaHierarchy): void {
  const files = caFiles(config);
  mkdirSync(files.dir, { recursive: true });
  const pem = (der: Buffer) => toPem('CERTIFICATE', der);
  writeFileSync(files.root, pem(h.root.record.certificateDer));
  writeFileSync(files.device, pem(h.device.record.certificateDer));
  writeFileSync(files.infrastructure, pem(h.infrastructure.record.certificateDer));
  writeFileSync(files.chain, pem(h.device.record.certificateDer) + pem(h.root.record.certificateDer));
}
