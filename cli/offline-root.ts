/**
 * An offline root: `kakuin ca csr` makes the device, infrastructure and station CA keys (in the
 * software store or a PKCS#11 token) and writes their PKCS#10 requests; the root, kept offline
 * (another kakuin, `openssl ca`), signs them; `kakuin ca import` records the root certificate
 * (without a key) and the CA certificates after checking that each was signed by that root for the
 * pending key. The station CA is optional: without it stations authenticate by API key alone, and
 * it can be imported later (`kakuin ca import --root R --station S` on an existing hierarchy).
 *
 * The root's key is never here, so kakuin signs neither the root's CRL nor a responder for it. At the
 * ceremony the root also signs a delegated OCSP responder certificate for itself (RFC 6960
 * §4.2.2.2: id-kp-OCSPSigning, issued directly by the root; id-pkix-ocsp-nocheck, so it is kept
 * short: `ca.rootResponderValidityDays`) for a key `kakuin ca csr` made, and its CRL;
 * `kakuin ca import-root-publications` records both, and kakuin then answers OCSP for the
 * intermediates (nginx `ssl_ocsp on` checks the whole chain) and serves `/crl/root.crl`.
 * Its issuer record names the key `offline:root`.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hierarchyExists } from '../ca/hierarchy.js';
import { KakuinError } from '../errors/index.js';
import type { KeyAlgorithm, KeyStore, Signer } from '../hsm-adapters/index.js';
import { KeyRing, signatureAlgorithmFor } from '../hsm-adapters/index.js';
import { newPkcs11KeyUri, tokenOfKeysUri } from '../hsm-adapters/pkcs11/index.js';
import {
  encodeCertificationRequest, encodeCertificationRequestInfo, encodeName, fromPem, isOcspNoCheckValue, OID_KP_OCSP_SIGNING,
  OID_PKIX_OCSP_NOCHECK, forEachCrlEntry, parseCertificate, parseCrl, type CrlEntry, parseExtKeyUsage, toPem, verifyCertificateSignature, verifyCrlSignature,
} from '../pkix/index.js';
import { issuanceCertificateFields } from '../ca/records.js';
import { ocspSignerId, type OcspSigner } from '../ca/ocsp-signers.js';
import type { LoadedIssuer } from '../ca/issuer.js';
import { hasCode } from '../errors/index.js';
import type { CertificateTransition, NewAuditEvent, Registry } from '../registry/port.js';
import { serialToHex } from '../ca/serial.js';
import type { KakuinConfig } from './config.js';

export const OFFLINE_ROOT_KEY_URI = 'offline:root';
const SUBORDINATES = [['device', 'Device Issuing CA'], ['infrastructure', 'Infrastructure CA'], ['station', 'Station CA']] as const;
type SubordinateId = (typeof SUBORDINATES)[number][0];
/** The pending-key name of the root's delegated OCSP responder (ca-pending.json). */
const ROOT_RESPONDER = 'rootResponder';
const DAY_MS = 86_400_000;

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
export async function caCsr(
  config: Readonly<KakuinConfig>, keys: KeyRing, keysOption: string | undefined, outDir: string, options: { rootResponderOnly?: boolean } = {},
): Promise<string[]> {
  // The name goes to an offline root to be signed for years: a development default is never what was meant.
  if (!config.setOptions.includes('ca.organization')) {
    throw new KakuinError('KAKUIN_E_CONFIG', 'ca csr needs the organization name set: KAKUIN_ORGANIZATION or ca.organization in the config file (it is not defaulted to "kakuin development" for CSRs an offline root signs)');
  }
  const registry = await openConfiguredRegistry(config);
  let wanted: readonly (typeof SUBORDINATES)[number][] = SUBORDINATES;
  // A new hierarchy also gets the root responder's key and request; later ceremonies renew it with --root-responder.
  let rootResponder = true;
  try {
    if (options.rootResponderOnly) {
      wanted = [];
      if (!(await hierarchyExists(registry)) || (await registry.getIssuer('root')).keyUri !== OFFLINE_ROOT_KEY_URI) {
        throw new KakuinError('KAKUIN_E_USAGE', 'ca csr --root-responder is for a hierarchy whose root is offline (kakuin ca import first)');
      }
    } else if (await hierarchyExists(registry)) {
      rootResponder = false;
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
  if (rootResponder) {
    // A new key for every responder certificate (like ca/ocsp-signers.ts): cheap, and an old one ends with its certificate.
    const name = `ocsp-root-${Date.now()}`;
    const uri = pending[ROOT_RESPONDER] ?? (token === undefined ? `file:${name}` : newPkcs11KeyUri(token, name));
    const signer = (await keys.exists(uri)) ? await keys.load(uri) : await keys.generate(uri, 'ecdsa-p256');
    pending[ROOT_RESPONDER] = uri;
    writeFileSync(pendingFile(config), `${JSON.stringify(pending, null, 2)}\n`, { mode: 0o600 });
    const subject = encodeName([{ type: 'O', value: config.ca.organization }, { type: 'CN', value: `${config.ca.organization} OCSP Responder (root)` }]);
    const info = encodeCertificationRequestInfo(subject, signer.publicKeySpki);
    const file = path.join(outDir, 'root-ocsp-responder.csr');
    writeFileSync(file, toPem('CERTIFICATE REQUEST', encodeCertificationRequest(info, signer.signatureAlgorithm, await signer.sign(info))));
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
    // As bootstrap records them: certificates of the root, so its responder answers good (not unknown) for them.
    await recordRootCertificates(writer, 'cli');
  } finally {
    await writer.close();
  }
  // A station CA key and the root responder's key not imported yet stay pending for a later import.
  if (pending.station !== undefined || pending[ROOT_RESPONDER as SubordinateId] !== undefined) writeFileSync(pendingFile(config), `${JSON.stringify(pending, null, 2)}\n`, { mode: 0o600 });
  else rmSync(pendingFile(config));
  return { recorded: subordinates.map((x) => x.id) };
}

/** The root's subordinate CAs (not the responder) recorded as certificates the root issued, when not yet. */
async function recordRootCertificates(registry: Registry, actor: string): Promise<void> {
  for (const issuer of await registry.listIssuers()) {
    if (issuer.parentId !== 'root' || issuer.kind === 'ocsp-signer') continue;
    const cert = parseCertificate(issuer.certificateDer);
    try {
      await registry.getCertificate(cert.serialHex);
      continue;
    } catch (e) {
      if (!hasCode(e, 'KAKUIN_E_CERTIFICATE_NOT_FOUND')) throw e;
    }
    await registry.recordIssuance({
      certificate: issuanceCertificateFields({
        serialHex: cert.serialHex, issuerId: 'root', profile: 'sub-ca', der: issuer.certificateDer, spkiDer: cert.spki.rawDer,
        notBefore: cert.notBefore, notAfter: cert.notAfter,
      }),
      audit: { type: 'ca.imported', actor, serialHex: cert.serialHex, details: { issuerId: issuer.id, kind: issuer.kind } },
    });
  }
}

/**
 * `kakuin ca import-root-publications`: what the offline root signed at a ceremony. The responder
 * certificate must be the root's own (issued and signed by it), for the pending responder key, with
 * id-kp-OCSPSigning and id-pkix-ocsp-nocheck, valid now and for no longer than
 * `ca.rootResponderValidityDays` (RFC 6960 §4.2.2.2.1: nobody checks a nocheck responder, so its
 * lifetime is the exposure if its key leaks). The CRL must be a full CRL of the root, signed by it,
 * newer than the one stored. Everything is checked before anything is written.
 */
export async function caImportRootPublications(
  config: Readonly<KakuinConfig>, keys: KeyRing, files: { responder?: string; crl?: string }, now = new Date(),
): Promise<{ responder?: { serialHex: string; notAfter: Date }; crl?: { number: bigint; nextUpdate?: Date } }> {
  const registry = await openConfiguredRegistry(config);
  try {
    if (!(await hierarchyExists(registry))) throw new KakuinError('KAKUIN_E_CA_NOT_INITIALIZED', `no CA hierarchy in ${config.dataDir}: kakuin ca import first`);
    const rootRecord = await registry.getIssuer('root');
    if (rootRecord.keyUri !== OFFLINE_ROOT_KEY_URI) throw new KakuinError('KAKUIN_E_USAGE', 'the root of this hierarchy is online: kakuin makes its responder and CRL itself');
    const root = parseCertificate(rootRecord.certificateDer);
    let responder: { der: Buffer; uri: string; cert: ReturnType<typeof parseCertificate> } | undefined;
    const pending: Record<string, string> = existsSync(pendingFile(config)) ? JSON.parse(readFileSync(pendingFile(config), 'utf8')) : {};
    if (files.responder !== undefined) {
      const [der] = fromPem(readFileSync(files.responder, 'utf8'), 'CERTIFICATE');
      if (!der) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', `${files.responder} holds no certificate`);
      const uri = pending[ROOT_RESPONDER];
      if (uri === undefined) throw new KakuinError('KAKUIN_E_USAGE', 'no pending root responder key: run `kakuin ca csr --root-responder` first');
      const cert = parseCertificate(der);
      const signer = await keys.load(uri);
      const eku = cert.extensions.find((x) => x.oid === '2.5.29.37');
      const noCheck = cert.extensions.find((x) => x.oid === OID_PKIX_OCSP_NOCHECK);
      const lifetimeDays = (cert.notAfter.getTime() - cert.notBefore.getTime()) / DAY_MS;
      const why = !cert.issuer.rawDer.equals(root.subject.rawDer) || !verifyCertificateSignature(cert, root.spki) ? 'the root did not sign it'
        : cert.basicConstraints?.ca ? 'it is a CA certificate'
          : !cert.spki.rawDer.equals(signer.publicKeySpki) ? `it is not for the pending key ${uri}`
            : !eku || !parseExtKeyUsage(eku.value).includes(OID_KP_OCSP_SIGNING) ? 'it has no extendedKeyUsage id-kp-OCSPSigning (RFC 6960 §4.2.2.2)'
              : !noCheck || !isOcspNoCheckValue(noCheck.value) ? 'it has no id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1)'
                : cert.notAfter.getTime() <= now.getTime() || cert.notBefore.getTime() > now.getTime() ? 'it is not valid now'
                  : lifetimeDays > config.ca.rootResponderValidityDays + 1 ? `it is valid ${Math.round(lifetimeDays)} days, more than ca.rootResponderValidityDays (${config.ca.rootResponderValidityDays})`
                    : undefined;
      if (why) throw new KakuinError('KAKUIN_E_VALIDATION', `${files.responder} is refused as the root's OCSP responder certificate: ${why}`);
      responder = { der, uri, cert };
    }
    let crl: ReturnType<typeof parseCrl> | undefined;
    if (files.crl !== undefined) {
      const text = readFileSync(files.crl);
      const [pemDer] = text.includes('-----BEGIN') ? fromPem(text.toString('utf8'), 'X509 CRL') : [text];
      if (!pemDer) throw new KakuinError('KAKUIN_E_PEM_MALFORMED', `${files.crl} holds no CRL`);
      crl = parseCrl(pemDer);
      const stored = await registry.getLatestCrl('root', 'full');
      const why = !crl.issuer.rawDer.equals(root.subject.rawDer) || !verifyCrlSignature(crl, root.spki) ? 'the root did not sign it'
        : crl.deltaCrlIndicator !== undefined ? 'it is a delta CRL'
          : crl.crlNumber === undefined ? 'it has no cRLNumber (RFC 5280 §5.2.3)'
            : crl.nextUpdate === undefined ? 'it has no nextUpdate (RFC 5280 §5.1.2.5)'
              : crl.nextUpdate.getTime() <= now.getTime() ? 'its nextUpdate has passed'
                : stored !== undefined && stored.number >= crl.crlNumber ? `its number ${crl.crlNumber} is not above the stored CRL's ${stored.number}`
                  : undefined;
      if (why) throw new KakuinError('KAKUIN_E_VALIDATION', `${files.crl} is refused as the root's CRL: ${why}`);
    }
    if (!responder && !crl) throw new KakuinError('KAKUIN_E_USAGE', 'kakuin ca import-root-publications [--responder RESPONDER.pem] [--crl ROOT.crl]');
    await recordRootCertificates(registry, 'cli');
    if (responder) {
      const { cert, der, uri } = responder;
      await registry.recordIssuance({
        certificate: issuanceCertificateFields({
          serialHex: cert.serialHex, issuerId: 'root', profile: 'ocsp-signer', der, spkiDer: cert.spki.rawDer, notBefore: cert.notBefore, notAfter: cert.notAfter,
        }),
        audit: { type: 'certificate.issued', actor: 'cli', serialHex: cert.serialHex, details: { profile: 'ocsp-signer', issuerId: 'root', importedFrom: 'offline root' } },
      });
      await registry.putIssuer({ id: ocspSignerId('root'), kind: 'ocsp-signer', certificateDer: der, keyUri: uri, parentId: 'root' });
      delete pending[ROOT_RESPONDER];
      if (Object.keys(pending).length > 0) writeFileSync(pendingFile(config), `${JSON.stringify(pending, null, 2)}\n`, { mode: 0o600 });
      else rmSync(pendingFile(config), { force: true });
    }
    if (crl) {
      // What the root revoked at the ceremony is what its responder here answers (RFC 6960 §2.2 revoked):
      // an intermediate on the root's CRL must not stay "good" over OCSP.
      const transitions: CertificateTransition[] = [];
      const audit: NewAuditEvent[] = [];
      const entries: CrlEntry[] = [];
      forEachCrlEntry(crl, (e) => entries.push(e));
      for (const e of entries) {
        const serialHex = serialToHex(e.serial);
        let current;
        try {
          current = await registry.getCertificate(serialHex);
        } catch (err) {
          if (hasCode(err, 'KAKUIN_E_CERTIFICATE_NOT_FOUND')) continue;
          throw err;
        }
        if (current.issuerId !== 'root' || current.status === 'revoked') continue;
        const hold = e.reason === 'certificateHold';
        if (hold && current.status === 'held') continue;
        const reason = e.reason ?? 'unspecified';
        transitions.push({ serialHex, from: hold ? ['good'] : ['good', 'held'], to: hold ? 'held' : 'revoked', reason, revokedAt: e.revocationDate, invalidityDate: e.invalidityDate });
        audit.push({ type: 'certificate.revoked', actor: 'cli', serialHex, details: { reason, importedFrom: `root CRL ${crl.crlNumber}` } });
      }
      if (transitions.length > 0) await registry.applyStatusChange({ certificates: transitions, audit });
      await registry.putCrl({
        issuerId: 'root', kind: 'full', number: crl.crlNumber!, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate!,
        feedSeq: await registry.latestFeedSeq(), der: crl.rawDer,
      });
    }
    return {
      responder: responder && { serialHex: responder.cert.serialHex, notAfter: responder.cert.notAfter },
      crl: crl && { number: crl.crlNumber!, nextUpdate: crl.nextUpdate },
    };
  } finally {
    await registry.close();
  }
}

/**
 * The root's delegated responder imported by `ca import-root-publications`, when it is there, issued
 * by this root and not expired: kakuin answers for the intermediates with it. `daysLeft` lets the
 * caller warn that a ceremony is due.
 */
export async function offlineRootResponder(
  registry: Registry, keys: KeyRing, root: LoadedIssuer, now = new Date(),
): Promise<{ signer?: OcspSigner; problem?: string; daysLeft?: number }> {
  let record;
  try {
    record = await registry.getIssuer(ocspSignerId(root.id));
  } catch (e) {
    if (!hasCode(e, 'KAKUIN_E_ISSUER_NOT_FOUND')) throw e;
    return { problem: 'no OCSP responder certificate for the offline root: intermediates are not answered for (kakuin ca import-root-publications)' };
  }
  const cert = parseCertificate(record.certificateDer);
  if (!cert.issuer.rawDer.equals(root.subjectDer)) return { problem: 'the offline root\'s OCSP responder certificate is not issued by the root' };
  const daysLeft = (cert.notAfter.getTime() - now.getTime()) / DAY_MS;
  if (daysLeft <= 0) return { problem: 'the offline root\'s OCSP responder certificate has expired: hold a ceremony (kakuin ca csr --root-responder)', daysLeft };
  return { signer: { issuer: root, certificateDer: record.certificateDer, signer: await keys.load(record.keyUri), notAfter: cert.notAfter }, daysLeft };
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
