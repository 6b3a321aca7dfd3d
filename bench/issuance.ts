/**
 * Issuance benchmark: persisted P-256 device certificates per second through the CA core —
 * CSR parse + proof of possession + build + sign + committed SQLite record (group commits of at
 * most 100) — with WAL + synchronous=NORMAL, with synchronous=FULL, and the same pipeline built
 * with pkijs (parse, verify, build, sign through WebCrypto) for comparison.
 */
import { webcrypto } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { DeviceCertificateIssuer } from '../ca/issuance.js';
import { createProofOfPossessionVerifier, defaultVerifierWorkers } from '../ca/pop-verifier.js';
import { issuanceCertificateFields } from '../ca/records.js';
import { deviceUri } from '../ca/profiles.js';
import { newCertificateSerial, serialToHex } from '../ca/serial.js';
import { DEFAULT_DEVICE_PROFILE } from '../ca/profiles.js';
import { parseCertificate } from '../pkix/index.js';
import { BENCH_URLS, freshRegistry, makeP256Csrs, registerDevices, runConcurrent, type BenchCa } from './fixtures.js';

const CONCURRENCY = 100;

export interface IssuanceFigures {
  issuance_certs_per_s: number;
  issuance_full_sync_certs_per_s: number;
  issuance_pkijs_certs_per_s: number;
  issuance_speedup_vs_pkijs_ratio: number;
}

export async function kakuinRun(ca: BenchCa, csrs: Buffer[], serials: string[], synchronous: 'NORMAL' | 'FULL'): Promise<number> {
  const { registry } = await freshRegistry(ca, `issue-${synchronous}`, synchronous);
  try {
    const { deviceIds } = await registerDevices(registry, serials.length, 'SN');
    // The same wiring as `kakuin serve`: CSR signatures checked in the verifier pool (cores − 1).
    const verifier = createProofOfPossessionVerifier(defaultVerifierWorkers());
    const issuer = new DeviceCertificateIssuer(registry, ca.hierarchy.device, [ca.hierarchy.device.record.certificateDer], BENCH_URLS, DEFAULT_DEVICE_PROFILE, verifier);
    try {
      const seconds = await runConcurrent(csrs.length, CONCURRENCY, (i) => issuer.issue({ deviceId: deviceIds[i], csr: csrs[i], actor: 'bench' }));
      return csrs.length / seconds;
    } finally {
      await verifier.close();
    }
  } finally {
    await registry.close();
  }
}

/** The same pipeline with pkijs/asn1js doing the ASN.1 and WebCrypto doing the signing. */
async function pkijsRun(ca: BenchCa, csrs: Buffer[]): Promise<number> {
  pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'] }));
  const { registry } = await freshRegistry(ca, 'issue-pkijs', 'NORMAL');
  try {
    const { deviceIds, manufacturerId } = await registerDevices(registry, csrs.length, 'SN');
    const manufacturerName = (await registry.getManufacturer(manufacturerId)).name;
    // pkijs signs with a CryptoKey: a P-256 issuing key of its own, under the device CA's name.
    const issuerKeys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
    const issuerName = pkijs.RelativeDistinguishedNames.fromBER(new Uint8Array(ca.hierarchy.device.subjectDer));
    const issuerKeyId = ca.hierarchy.device.keyId;

    const issueOne = async (i: number) => {
      const csr = pkijs.CertificationRequest.fromBER(new Uint8Array(csrs[i]));
      if (!(await csr.verify())) throw new Error('CSR signature does not verify');
      const device = await registry.getDevice(deviceIds[i]);
      const spkiDer = Buffer.from(csr.subjectPublicKeyInfo.toSchema().toBER(false));
      const cert = new pkijs.Certificate();
      cert.version = 2;
      const serial = newCertificateSerial();
      cert.serialNumber = new asn1js.Integer({ valueHex: new Uint8Array(serial) });
      cert.issuer = issuerName;
      // One RDN per attribute: built as a DER Name, since filling typesAndValues would make one multi-valued RDN.
      const subject = new asn1js.Sequence({
        value: [
          new asn1js.Set({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: '2.5.4.10' }), new asn1js.Utf8String({ value: manufacturerName })] })] }),
          new asn1js.Set({ value: [new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: '2.5.4.5' }), new asn1js.PrintableString({ value: device.serialNumber })] })] }),
        ],
      });
      cert.subject = pkijs.RelativeDistinguishedNames.fromBER(subject.toBER(false));
      const now = Date.now();
      cert.notBefore.value = new Date(now - 3600_000);
      cert.notAfter.value = new Date(now + 3650 * 86_400_000);
      cert.subjectPublicKeyInfo = csr.subjectPublicKeyInfo;
      const ski = new Uint8Array(await webcrypto.subtle.digest('SHA-1', csr.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView));
      const ext = (extnID: string, critical: boolean, value: asn1js.BaseBlock) =>
        new pkijs.Extension({ extnID, critical, extnValue: value.toBER(false) });
      cert.extensions = [
        ext('2.5.29.19', true, new pkijs.BasicConstraints({ cA: false }).toSchema()),
        ext('2.5.29.15', true, new asn1js.BitString({ valueHex: new Uint8Array([0x80]), unusedBits: 7 })),
        ext('2.5.29.37', false, new pkijs.ExtKeyUsage({ keyPurposes: ['1.3.6.1.5.5.7.3.2'] }).toSchema()),
        ext('2.5.29.17', false, new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 6, value: deviceUri(device.id) })] }).toSchema()),
        ext('2.5.29.14', false, new asn1js.OctetString({ valueHex: ski })),
        ext('2.5.29.35', false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: new Uint8Array(issuerKeyId) }) }).toSchema()),
        ext('2.5.29.31', false, new pkijs.CRLDistributionPoints({
          distributionPoints: [new pkijs.DistributionPoint({ distributionPoint: [new pkijs.GeneralName({ type: 6, value: BENCH_URLS.crl('device') })] })],
        }).toSchema()),
        ext('1.3.6.1.5.5.7.1.1', false, new pkijs.InfoAccess({
          accessDescriptions: [
            new pkijs.AccessDescription({ accessMethod: '1.3.6.1.5.5.7.48.1', accessLocation: new pkijs.GeneralName({ type: 6, value: BENCH_URLS.ocsp }) }),
            new pkijs.AccessDescription({ accessMethod: '1.3.6.1.5.5.7.48.2', accessLocation: new pkijs.GeneralName({ type: 6, value: BENCH_URLS.caIssuers('device') }) }),
          ],
        }).toSchema()),
      ];
      await cert.sign(issuerKeys.privateKey as unknown as Parameters<pkijs.Certificate['sign']>[0], 'SHA-256');
      const der = Buffer.from(cert.toSchema(true).toBER(false));
      await registry.recordIssuance({
        certificate: issuanceCertificateFields({
          serialHex: serialToHex(serial), issuerId: 'device', deviceId: device.id, profile: 'device', der, spkiDer,
          notBefore: cert.notBefore.value, notAfter: cert.notAfter.value,
        }),
        audit: { type: 'certificate.issued', actor: 'bench', deviceId: device.id, serialHex: serialToHex(serial) },
      });
      return der;
    };
    // The pkijs output must be a real certificate, or the comparison means nothing.
    const sample = parseCertificate(await issueOne(0));
    if (sample.subject.attributes.length !== 2) throw new Error('pkijs path built a wrong subject');
    const rest = csrs.length - 1;
    const seconds = await runConcurrent(rest, CONCURRENCY, (i) => issueOne(i + 1));
    return rest / seconds;
  } finally {
    await registry.close();
  }
}

export async function benchIssuance(ca: BenchCa, counts: { kakuin: number; full: number; pkijs: number }): Promise<IssuanceFigures> {
  const serials = Array.from({ length: Math.max(counts.kakuin, counts.full, counts.pkijs) }, (_, i) => `SN-${String(i).padStart(7, '0')}`);
  const csrs = makeP256Csrs(serials);
  const normal = await kakuinRun(ca, csrs.slice(0, counts.kakuin), serials.slice(0, counts.kakuin), 'NORMAL');
  const full = await kakuinRun(ca, csrs.slice(0, counts.full), serials.slice(0, counts.full), 'FULL');
  const viaPkijs = await pkijsRun(ca, csrs.slice(0, counts.pkijs));
  return {
    issuance_certs_per_s: Math.round(normal),
    issuance_full_sync_certs_per_s: Math.round(full),
    issuance_pkijs_certs_per_s: Math.round(viaPkijs),
    issuance_speedup_vs_pkijs_ratio: Math.round((normal / viaPkijs) * 10) / 10,
  };
}
