/**
 * An offline root: `kakuin ca csr` makes the device, infrastructure and station CA keys (in the
 * software store or a PKCS#11 token) and writes their PKCS#10 requests; the root, kept offline
 * (another kakuin, `openssl ca`), signs them; `kakuin ca import` records the root certificate
 * (without a key) and the CA certificates after checking that each was signed by that root for the
 * pending key. The station CA is optional: without it stations authenticate by API key alone, and
 * it can be imported later (`kakuin ca import --root R --station S` on an existing hierarchy).
 *
 * The root's key is never here, so kakuin neither signs the root's CRL nor answers OCSP for it: the
 * offline root publishes those itself. Its issuer record names the key `offline:root`.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hierarchyExists } from '../ca/hierarchy.js';
import { KakuinError } from '../errors/index.js';
import type { KeyAlgorithm, KeyStore, Signer } from '../hsm-adapters/index.js';
import { KeyRing, signatureAlgorithmFor } from '../hsm-adapters/index.js';
import { newPkcs11KeyUri, tokenOfKeysUri } from '../hsm-adapters/pkcs11/index.js';
import {
  encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, fromPem, parseCertificate, toPem, verifyCertificateSignature,
} from '../pkix/index.js';
import type { Registry } from '../registry/port.js';
import type { KakuinConfig } from './config.js';

export const OFFLINE_ROOT_KEY_URI = 'offline:root';
const SUBORDINATES = [['device', 'Device Issuing CA'], ['infrastructure', 'Infrastructure CA'], ['station', 'Station CA']] as const;
type SubordinateId = (typeof SUBORDINATES)[number][0];

/** The registry storage.type names (SQLite or MongoDB); imported when used: wiring.ts imports this module. */
async function openConfiguredRegistry(config: Readonly<KakuinConfig>) {
  const { openRegistry } = await import('./wiring.js');
  return openRegistry(config);
}

function pendingFile(config: Readonly<KakuinConfig>): string {
  return path.join(config.dataDir, 'ca-pending.json');
}

/**
 * `kakuin ca csr`: keys and PKCS#10 requests for the CAs an offline root is to sign. On an existing
 * hierarchy without a station CA (an offline root imported without one, or before station CAs
 * existed), only the station CA's key and request.
 */
export async function caCsr(config: Readonly<KakuinConfig>, keys: KeyRing, keysOption: string | undefined, outDir: string): Promise<string[]> {
  // The name goes to an offline root to be signed for years: a development default is never what was meant.
  if (!config.setOptions.includes('ca.organization')) {
    throw new KakuinError('KAKUIN_E_CONFIG', 'ca csr needs the organization name set: KAKUIN_ORGANIZATION or ca.organization in the config file (it is not defaulted to "kakuin development" for CSRs an offline root signs)');
  }
  const registry = await openConfiguredRegistry(config);
  let wanted: readonly (typeof SUBORDINATES)[number][] = SUBORDINATES;
  try {
    if (await hierarchyExists(registry)) {
      if ((await registry.listIssuers()).some((i) => i.id === 'station')) {
        throw new KakuinError('KAKUIN_E_CA_EXISTS', `a CA hierarchy with a station CA exists already in ${config.dataDir}`);
      }
      wanted = SUBORDINATES.filter(([id]) => id === 'station');
    }
  } finally {
    await registry.close();
  }
  const token = keysOption && keysOption !== 'file:' ? tokenOfKeysUri(keysOption) : undefined;
  const pending: Record<string, string> = existsSync(pendingFile(config)) ? JSON.parse(readFileSync(pendingFile(config), 'utf8')) : {};
  const written: string[] = [];
  for (const [id, cn] of wanted) {
    // A key made by an earlier `ca csr` is reused, so a lost request can be written again.
    const uri = pending[id] ?? (token === undefined ? `file:${id}-ca` : newPkcs11KeyUri(token, `${id}-ca`));
    const algorithm: KeyAlgorithm = config.ca.issuingKeyAlgorithm;
    const signer = (await keys.exists(uri)) ? await keys.load(uri) : await keys.generate(uri, algorithm);
    pending[id] = uri;
    writeFileSync(pendingFile(config), `${JSON.stringify(pending, null, 2)}\n`, { mode: 0o600 });
    const subject = encodeName([{ type: 'O', value: config.ca.organization }, { type: 'CN', value: `${config.ca.organization} ${cn}` }]);
    const info = encodeCertificationRequestInfo(subject, signer.publicKeySpki);
    const csr = encodeCertificationRequest(info, signer.signatureAlgorithm, await signer.sign(info));
    const file = path.join(outDir, `${id}-ca.csr`);
    writeFileSync(file, toPem('CERTIFICATE REQUEST', csr));
    written.push(file);
  }
  return written;
}

/**
 * `kakuin ca import`: record the offline root and the CA certificates it signed. On a new data dir
 * the device and infrastructure CAs are required and the station CA optional; on an existing
 * hierarchy under the same root, only a station CA not yet recorded is taken.
 */
export async function caImport(
  config: Readonly<KakuinConfig>, keys: KeyRing, files: { root: string; device?: string; infrastructure?: string; station?: string },
): Promise<{ recorded: SubordinateId[] }> {
  const registry = await openConfiguredRegistry(config);
  try {
    if (await hierarchyExists(registry)) {
      if (files.device !== undefined || files.infrastructure !== undefined) {
        throw new KakuinError('KAKUIN_E_CA_EXISTS', `a CA hierarchy exists already in ${config.dataDir}; only a station CA can be added (--root and --station)`);
      }
      if ((await registry.listIssuers()).some((i) => i.id === 'station')) throw new KakuinError('KAKUIN_E_CA_EXISTS', 'a station CA is recorded already');
    }
  } finally {
    await registry.close();
  }
  if (!existsSync(pendingFile(config))) throw new KakuinError('KAKUIN_E_USAGE', 'no pending CA keys: run `kakuin ca csr` first');
  const pending = JSON.parse(readFileSync(pendingFile(config), 'utf8')) as Partial<Record<SubordinateId, string>>;
  const pem = (file: string) => {
    const [der] = fromPem(readFileSync(file, 'utf8'), 'CERTIFICATE');
    if (!der) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', `${file} holds no certificate`);
    return der;
  };
  const rootDer = pem(files.root);
  const root = parseCertificate(rootDer);
  if (!root.basicConstraints?.ca || !root.subject.rawDer.equals(root.issuer.rawDer) || !verifyCertificateSignature(root, root.spki)) {
    throw new KakuinError('KAKUIN_E_VALIDATION', `${files.root} is not a self-signed CA certificate`);
  }
  const subordinates: { id: SubordinateId; der: Buffer }[] = [];
  for (const [id] of SUBORDINATES) {
    const file = files[id];
    if (file === undefined) continue;
    const uri = pending[id];
    if (uri === undefined) throw new KakuinError('KAKUIN_E_USAGE', `no pending ${id} CA key: run \`kakuin ca csr\` first`);
    const der = pem(file);
    const cert = parseCertificate(der);
    const signer = await keys.load(uri);
    const why = !cert.basicConstraints?.ca ? 'it is not a CA certificate'
      : !cert.issuer.rawDer.equals(root.subject.rawDer) || !verifyCertificateSignature(cert, root.spki) ? 'the root did not sign it'
        : !cert.spki.rawDer.equals(signer.publicKeySpki) ? `it is not for the pending key ${uri}` : undefined;
    if (why) throw new KakuinError('KAKUIN_E_VALIDATION', `${file} is refused as the ${id} CA certificate: ${why}`);
    subordinates.push({ id, der });
  }
  const writer = await openConfiguredRegistry(config);
  try {
    if (await hierarchyExists(writer)) {
      // Later: only the station CA, under the root already recorded.
      const recordedRoot = await writer.getIssuer('root');
      if (!recordedRoot.certificateDer.equals(rootDer)) throw new KakuinError('KAKUIN_E_VALIDATION', `${files.root} is not the root recorded in ${config.dataDir}`);
      // Checked again here: another process may have recorded one since the first look.
      if ((await writer.listIssuers()).some((i) => i.id === 'station')) throw new KakuinError('KAKUIN_E_CA_EXISTS', 'a station CA is recorded already');
    } else if (!files.device || !files.infrastructure) {
      throw new KakuinError('KAKUIN_E_USAGE', 'kakuin ca import --root ROOT.pem --device DEVICE-CA.pem --infrastructure INFRA-CA.pem [--station STATION-CA.pem]');
    } else {
      await writer.putIssuer({ id: 'root', kind: 'root', certificateDer: rootDer, keyUri: OFFLINE_ROOT_KEY_URI });
    }
    for (const x of subordinates) {
      await writer.putIssuer({ id: x.id, kind: x.id, certificateDer: x.der, keyUri: pending[x.id]!, parentId: 'root' });
      delete pending[x.id];
    }
  } finally {
    await writer.close();
  }
  // A station CA key not imported yet stays pending for a later import.
  if (pending.station !== undefined) writeFileSync(pendingFile(config), `${JSON.stringify(pending, null, 2)}\n`, { mode: 0o600 });
  else rmSync(pendingFile(config));
  return { recorded: subordinates.map((x) => x.id) };
}

/**
 * The `offline:` key store: it knows the public key of a CA whose private key is elsewhere (from
 * the registry), and refuses to sign (KAKUIN_E_KEY_OFFLINE).
 */
export class OfflineKeyStore implements KeyStore {
  readonly scheme = 'offline';

  constructor(private readonly registry: Registry) {}

  async load(uri: string): Promise<Signer> {
    const issuer = (await this.registry.listIssuers()).find((i) => i.keyUri === uri);
    if (!issuer) throw new KakuinError('KAKUIN_E_KEY_NOT_FOUND', `no CA is recorded with the key ${uri}`);
    const cert = parseCertificate(issuer.certificateDer);
    const algorithm: KeyAlgorithm = cert.spki.keyType === 'rsa' ? 'rsa-2048'
      : cert.spki.keyType === 'ed25519' ? 'ed25519' : cert.spki.curve === 'P-384' ? 'ecdsa-p384' : 'ecdsa-p256';
    return {
      uri, algorithm, signatureAlgorithm: signatureAlgorithmFor(algorithm), publicKeySpki: cert.spki.rawDer,
      sign: () => Promise.reject(new KakuinError('KAKUIN_E_KEY_OFFLINE', `the key of CA ${issuer.id} is kept offline; kakuin cannot sign with it`)),
    };
  }

  async generate(uri: string): Promise<Signer> {
    throw new KakuinError('KAKUIN_E_KEY_OFFLINE', `${uri}: offline keys are not generated by kakuin`);
  }

  async exists(uri: string): Promise<boolean> {
    return (await this.registry.listIssuers()).some((i) => i.keyUri === uri);
  }

  async close(): Promise<void> {}
}
