/**
 * Reissuing the intermediates (issue 16): CAs created before every intermediate carried an OCSP URL
 * get new certificates that do — same key, same subject Name, same validity, a new serial — signed
 * by the root, which must be online. Nothing a CA signed changes: a device certificate names its
 * issuer by that Name and its key identifier (RFC 5280 §4.2.1.1), both kept, so it verifies under the
 * old certificate and the new one alike; relying parties that check the whole chain by OCSP (nginx
 * `ssl_ocsp on`) need the new one in their CA file.
 */
import type { KeyRing } from '../hsm-adapters/index.js';
import {
  authorityInfoAccessExt, authorityKeyIdentifierExt, basicConstraintsExt, crlDistributionPointsExt, keyIdentifier, keyUsageExt,
  OID_PE_AUTHORITY_INFO_ACCESS, parseAuthorityInfoAccess, subjectKeyIdentifierExt,
} from '../pkix/index.js';
import type { Registry } from '../registry/port.js';
import { issuerFromParts, signCertificate, tbsFor, type LoadedIssuer } from './issuer.js';
import { issuanceCertificateFields } from './records.js';
import { newCertificateSerial, serialToHex } from './serial.js';
import type { PublicUrls } from './urls.js';

export interface ReissueResult {
  /** Issuers given a new certificate: id, old and new serial. */
  reissued: { id: string; oldSerialHex: string; serialHex: string }[];
  /** Issuers whose certificate already names `urls.ocsp`. */
  unchanged: string[];
}

/** The OCSP URLs a certificate's authorityInfoAccess names (none without the extension). */
function ocspUrlsOf(issuer: LoadedIssuer): string[] {
  const aia = issuer.certificate.extensions.find((e) => e.oid === OID_PE_AUTHORITY_INFO_ACCESS);
  return aia ? parseAuthorityInfoAccess(aia.value).ocsp : [];
}

/**
 * New certificates for the root's subordinates (device CAs and their rollovers, infrastructure,
 * station) whose certificate does not name `urls.ocsp`. Idempotent: a second run changes nothing.
 */
export async function reissueIntermediates(
  registry: Registry, keys: KeyRing, root: LoadedIssuer, urls: PublicUrls, actor: string,
): Promise<ReissueResult> {
  const result: ReissueResult = { reissued: [], unchanged: [] };
  // The root's delegated OCSP signer is an issuer record under it too (ca/ocsp-signers.ts): CAs only.
  const subordinates = (await registry.listIssuers()).filter((i) => i.parentId === root.id && i.kind !== 'ocsp-signer' && i.kind !== 'root');
  const pending: LoadedIssuer[] = [];
  for (const record of subordinates) {
    const ca = issuerFromParts(record, await keys.load(record.keyUri));
    if (ocspUrlsOf(ca).includes(urls.ocsp)) result.unchanged.push(ca.id);
    else pending.push(ca);
  }
  // An offline root's signer refuses (KAKUIN_E_KEY_OFFLINE) at the first signature, before anything is written.
  for (const ca of pending) {
    const serial = newCertificateSerial();
    const { notBefore, notAfter } = ca.certificate;
    // The same extensions a CA made today gets (hierarchy.ts createSubordinate), with today's URLs.
    const tbs = tbsFor(root, {
      serial, subject: ca.subjectDer, notBefore, notAfter, spki: ca.signer.publicKeySpki,
      extensions: [
        basicConstraintsExt({ ca: true, pathLen: 0 }),
        keyUsageExt(['digitalSignature', 'keyCertSign', 'cRLSign']),
        subjectKeyIdentifierExt(ca.certificate.subjectKeyIdentifier ?? keyIdentifier(ca.certificate.spki)),
        authorityKeyIdentifierExt(root.keyId),
        crlDistributionPointsExt([urls.crl(root.id)]),
        authorityInfoAccessExt({ ocsp: [urls.ocsp], caIssuers: [urls.caIssuers(root.id)] }),
      ],
    });
    const der = await signCertificate(root, tbs);
    const serialHex = serialToHex(serial);
    await registry.recordIssuance({
      certificate: issuanceCertificateFields({
        serialHex, issuerId: root.id, profile: 'sub-ca', der, spkiDer: ca.signer.publicKeySpki, notBefore, notAfter,
      }),
      audit: { type: 'ca.reissued', actor, serialHex, details: { issuerId: ca.id, kind: ca.record.kind, previousSerialHex: ca.certificate.serialHex } },
    });
    await registry.putIssuer({ ...ca.record, certificateDer: der });
    result.reissued.push({ id: ca.id, oldSerialHex: ca.certificate.serialHex, serialHex });
  }
  return result;
}
