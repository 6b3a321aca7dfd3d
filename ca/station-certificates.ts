/**
 * Station certificates: the mTLS client certificates of factory stations, issued by the station CA
 * (DESIGN.md "Identities"), never by the device CA, so the gateway (which trusts the device CA
 * only) can never take a station for a device.
 *
 * The subject names the station (O=<manufacturer>, CN=<station name>, serialNumber=<station id>)
 * and the SAN carries `urn:kakuin:station:<id>`; but what authenticates a station is the registry:
 * the certificate must be recorded as that station's (registry.recordStationCertificate), good, and
 * the station enabled (enrollment/station-certificate-auth.ts checks it on every request).
 *
 * Rotation: a new certificate supersedes the station's earlier good ones, revoked at once, or kept
 * for an overlap (a pending supersession in the registry, revoked by the enrollment sweeper).
 *
 * Like every CA kakuin runs, the station CA publishes CRLs (`/crl/station.crl`) and answers OCSP,
 * and its certificates point at both (CRL distribution point, authorityInfoAccess): a verifier other
 * than kakuin (a VPN concentrator at the factory, say) can check a station certificate too.
 */
import {
  authorityInfoAccessExt, authorityKeyIdentifierExt, basicConstraintsExt, crlDistributionPointsExt, encodeName, extKeyUsageExt,
  keyIdentifier, keyUsageExt, readCsr, subjectAltNameExt, subjectKeyIdentifierExt,
} from '../pkix/index.js';
import type { CertificateRecord, Registry } from '../registry/port.js';
import { hasCode, KakuinError } from '../errors/index.js';
import { signCertificate, tbsFor, type LoadedIssuer } from './issuer.js';
import { STATION_PROFILE_NAME, stationUri, validityWindow, type StationProfilePolicy } from './profiles.js';
import { issuanceCertificateFields } from './records.js';
import type { ProofOfPossessionVerifier } from './pop-verifier.js';
import { createProofOfPossessionVerifier } from './pop-verifier.js';
import type { RevocationService } from './revocation.js';
import { newCertificateSerial, serialToHex } from './serial.js';
import type { PublicUrls } from './urls.js';

export interface IssuedStationCertificate {
  record: CertificateRecord;
  der: Buffer;
  /** Station CA first, root last. */
  chain: Buffer[];
  /** Earlier good certificates of the station: revoked as `superseded` now, or at `supersedeAt`. */
  supersedes: string[];
  supersedeAt?: Date;
}

const MAX_OVERLAP_HOURS = 24 * 30;

export class StationCertificateIssuer {
  constructor(
    private readonly registry: Registry,
    private readonly issuer: LoadedIssuer,
    /** Station CA first, root last. */
    readonly chain: Buffer[],
    private readonly urls: PublicUrls,
    private readonly policy: StationProfilePolicy,
    private readonly verifier: ProofOfPossessionVerifier = createProofOfPossessionVerifier(0),
    private readonly clock: () => Date = () => new Date(),
  ) {}

  get issuerId(): string {
    return this.issuer.id;
  }

  /** The station CA's certificate (DER): what the management API's TLS server trusts for station clients. */
  get caCertificateDer(): Buffer {
    return this.issuer.record.certificateDer;
  }

  /**
   * Issue a certificate to the station from its CSR (proof of possession checked; only the key is
   * taken from it). `overlapHours` > 0 keeps the earlier certificates good that long.
   */
  async issue(stationId: string, csrInput: Buffer | string, options: { actor: string; overlapHours?: unknown; revocation: RevocationService }): Promise<IssuedStationCertificate> {
    const overlapHours = options.overlapHours ?? 0;
    if (typeof overlapHours !== 'number' || !Number.isFinite(overlapHours) || overlapHours < 0 || overlapHours > MAX_OVERLAP_HOURS) {
      throw new KakuinError('KAKUIN_E_VALIDATION', `overlapHours must be a number from 0 to ${MAX_OVERLAP_HOURS}`);
    }
    const csr = readCsr(csrInput);
    const [station] = await Promise.all([this.registry.getStation(stationId), this.verifier.verify(csr.rawDer)]);
    if (station.disabledAt) throw new KakuinError('KAKUIN_E_FORBIDDEN', 'the station is disabled; it gets no certificate');
    const manufacturer = await this.registry.getManufacturer(station.manufacturerId);
    const earlier = (await this.registry.listStationCertificates(station.id)).filter((c) => c.status === 'good');

    const subject = encodeName([
      { type: 'O', value: manufacturer.name },
      { type: 'CN', value: station.name },
      { type: 'serialNumber', value: station.id },
    ]);
    const extensions = [
      basicConstraintsExt({ ca: false }),
      keyUsageExt(['digitalSignature']),
      extKeyUsageExt(['clientAuth']),
      subjectAltNameExt([{ uri: stationUri(station.id) }]),
      subjectKeyIdentifierExt(keyIdentifier(csr.spki)),
      authorityKeyIdentifierExt(this.issuer.keyId),
      crlDistributionPointsExt([this.urls.crl(this.issuer.id)]),
      authorityInfoAccessExt({ ocsp: [this.urls.ocsp], caIssuers: [this.urls.caIssuers(this.issuer.id)] }),
    ];
    const now = this.clock();
    const { notBefore, notAfter } = validityWindow(this.policy, now);
    if (notAfter === 'no-well-defined-expiration') throw new KakuinError('KAKUIN_E_INTERNAL', 'station certificates always expire');
    // A certificate must not outlive its CA (RFC 5280 §6.1.3 checks every link's validity).
    const until = notAfter > this.issuer.certificate.notAfter ? this.issuer.certificate.notAfter : notAfter;

    let record: CertificateRecord | undefined;
    let der: Buffer | undefined;
    for (let attempt = 0; record === undefined; attempt++) {
      const serial = newCertificateSerial();
      const serialHex = serialToHex(serial);
      der = await signCertificate(this.issuer, tbsFor(this.issuer, { serial, subject, notBefore, notAfter: until, spki: csr.spki.rawDer, extensions }));
      try {
        record = await this.registry.recordStationCertificate(station.id, {
          certificate: issuanceCertificateFields({
            serialHex, issuerId: this.issuer.id, profile: STATION_PROFILE_NAME, der, spkiDer: csr.spki.rawDer, notBefore, notAfter: until,
          }),
          audit: {
            type: 'certificate.issued', actor: options.actor, serialHex,
            details: { profile: STATION_PROFILE_NAME, issuerId: this.issuer.id, stationId: station.id, manufacturerId: station.manufacturerId },
          },
        });
      } catch (e) {
        if (attempt === 0 && hasCode(e, 'KAKUIN_E_SERIAL_EXISTS')) continue;
        throw e;
      }
    }
    const supersedes = earlier.map((c) => c.serialHex);
    let supersedeAt: Date | undefined;
    if (overlapHours > 0 && supersedes.length > 0) {
      supersedeAt = new Date(now.getTime() + overlapHours * 3_600_000);
      await this.registry.scheduleSupersede(supersedes.map((serialHex) => ({ serialHex, at: supersedeAt!, actor: options.actor })));
    } else {
      for (const serialHex of supersedes) {
        try {
          await options.revocation.revokeCertificate(serialHex, { reason: 'superseded' }, options.actor);
        } catch (e) {
          // Revoked meanwhile (an operator, a concurrent rotation): nothing left to do.
          if (!hasCode(e, 'KAKUIN_E_CERTIFICATE_STATE')) throw e;
        }
      }
    }
    return { record, der: der!, chain: this.chain, supersedes, ...(supersedeAt && { supersedeAt }) };
  }
}
