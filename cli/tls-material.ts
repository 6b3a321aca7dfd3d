/**
 * TLS key and certificate of one of kakuin's HTTPS listeners. The key is in the software store
 * (encrypted PKCS#8; Node's TLS decrypts it in memory with the passphrase); the certificate, with
 * the infrastructure CA after it, is kept under `<dataDir>/tls/` and renewed on start when it is
 * missing, close to expiry, or issued for other names.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { issueTlsServerCertificate, tlsCertificateNeedsRenewal } from '../ca/tls-server.js';
import { fromPem, toPem } from '../pkix/index.js';
import type { Kakuin } from './wiring.js';
import type { Logger } from './logger.js';
import { writePrivateFile } from './secrets.js';
import type { CmpProtectionKey } from '../enrollment/cmp/cmp-protection.js';

export interface TlsMaterial {
  key: string;
  passphrase: string;
  /** Leaf then infrastructure CA, PEM. */
  cert: string;
}

export async function tlsMaterialFor(kakuin: Kakuin, listener: string, logger: Logger): Promise<TlsMaterial> {
  const { config, softwareKeys, hierarchy } = kakuin;
  const uri = `file:tls-${listener}`;
  const key = (await softwareKeys.exists(uri)) ? await softwareKeys.load(uri) : await softwareKeys.generate(uri, 'ecdsa-p256');
  const certFile = path.join(config.dataDir, 'tls', `${listener}.pem`);
  let leaf: Buffer | undefined;
  if (existsSync(certFile)) {
    try {
      leaf = fromPem(readFileSync(certFile, 'utf8'), 'CERTIFICATE')[0];
    } catch {
      leaf = undefined;
    }
  }
  const issuer = hierarchy.infrastructure;
  if (tlsCertificateNeedsRenewal(leaf, key, issuer, [...config.tls.hostnames], config.tls.renewWithinDays)) {
    leaf = await issueTlsServerCertificate(kakuin.registry, issuer, key, kakuin.urls, {
      listener, hostnames: [...config.tls.hostnames], validityDays: config.tls.validityDays,
      organization: config.ca.organization, actor: 'system',
    });
    writePrivateFile(certFile, toPem('CERTIFICATE', leaf) + toPem('CERTIFICATE', issuer.record.certificateDer));
    logger.info('TLS server certificate issued', { listener, hostnames: config.tls.hostnames, file: certFile });
  }
  const material = await softwareKeys.tlsKeyMaterial(uri);
  return { key: material.key, passphrase: material.passphrase, cert: readFileSync(certFile, 'utf8') };
}

/**
 * kakuin's CMP protection key (enrollment/cmp): a key of its own (`file:tls-cmp`) with a certificate
 * of the infrastructure CA, kept and renewed as the listeners' are. RFC 9483 §3.1 asks the PKI
 * management entity to sign its answers; the CAs' own keys are not used for that (their certificates
 * allow keyCertSign and cRLSign only; `openssl cmp` wants digitalSignature). Chain: the certificate,
 * the infrastructure CA, the root.
 */
export async function cmpProtectionKeyFor(kakuin: Kakuin, logger: Logger): Promise<CmpProtectionKey> {
  const material = await tlsMaterialFor(kakuin, 'cmp', logger);
  const signer = await kakuin.softwareKeys.load('file:tls-cmp');
  const certificates = fromPem(material.cert, 'CERTIFICATE');
  const root = kakuin.hierarchy.root.record.certificateDer;
  if (!certificates.some((c) => c.equals(root))) certificates.push(root);
  return { signer, certificates };
}
