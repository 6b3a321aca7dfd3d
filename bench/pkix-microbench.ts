/**
 * Micro-benchmark of the issuance hot path: build the TBS of a P-256 device certificate with
 * `pkix/`, sign it with `node:crypto` and a KeyObject, assemble the certificate.
 *
 *   npx tsc -p tsconfig.json --outDir dist-pkix && node dist-pkix/bench/pkix-microbench.js [count]
 *
 * Prints certificates per second for encoding alone, signing alone and the whole path, on one core.
 * Device keys come from a small pool: key generation happens on the device, not in the CA.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import {
  authorityInfoAccessExt, authorityKeyIdentifierExt, basicConstraintsExt, crlDistributionPointsExt, encodeCertificate,
  encodeName, encodeTbsCertificate, extKeyUsageExt, keyIdentifier, keyUsageExt, parseCertificate, subjectAltNameExt,
  subjectKeyIdentifierExt,
} from '../pkix/index.js';

const count = Number(process.argv[2] ?? 20_000);

const issuer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const issuerSpki = issuer.publicKey.export({ type: 'spki', format: 'der' });
const issuerName = encodeName([{ type: 'C', value: 'JP' }, { type: 'O', value: 'Kakuin Bench' }, { type: 'CN', value: 'Kakuin Device CA' }]);
const issuerKeyId = keyIdentifier(issuerSpki);
const deviceSpkis = Array.from({ length: 64 }, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }));

function deviceTbs(i: number): Buffer {
  const spki = deviceSpkis[i & 63];
  const serialNumber = `SN${String(i).padStart(10, '0')}`;
  const serial = randomBytes(16);
  serial[0] = 1 + (serial[0] % 127);
  const notBefore = new Date();
  return encodeTbsCertificate({
    serial,
    signatureAlgorithm: 'ecdsa-with-SHA256',
    issuer: issuerName,
    notBefore,
    notAfter: 'no-well-defined-expiration',
    subject: encodeName([{ type: 'O', value: 'Kakuin Bench Devices' }, { type: 'serialNumber', value: serialNumber }, { type: 'CN', value: serialNumber }]),
    spki,
    extensions: [
      basicConstraintsExt({ ca: false }),
      keyUsageExt(['digitalSignature']),
      extKeyUsageExt(['clientAuth']),
      subjectAltNameExt([
        { uri: `urn:kakuin:device:${serialNumber}` },
        { hardwareModuleName: { hwType: '1.3.6.1.4.1.59999.1.1', hwSerial: Buffer.from(serialNumber) } },
      ]),
      subjectKeyIdentifierExt(keyIdentifier(spki)),
      authorityKeyIdentifierExt(issuerKeyId),
      crlDistributionPointsExt(['http://pki.kakuin.test/crl/device.crl']),
      authorityInfoAccessExt({ ocsp: ['http://pki.kakuin.test/ocsp'], caIssuers: ['http://pki.kakuin.test/ca/device.cer'] }),
    ],
  });
}

function rate(label: string, n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(2000, n); i++) fn(i); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const perSecond = n / seconds;
  console.log(`${label.padEnd(42)} ${Math.round(perSecond).toLocaleString('en-US').padStart(10)} /s  (${n} in ${seconds.toFixed(2)} s)`);
  return perSecond;
}

const sample = deviceTbs(0);
const key = issuer.privateKey;
console.log(`pkix micro-benchmark: P-256 device certificates, node ${process.version}, TBS ${sample.length} octets`);
rate('encode TBS only (pkix)', count, (i) => deviceTbs(i));
rate('sign only (node:crypto, ECDSA P-256)', count, () => sign('sha256', sample, key));
const full = rate('encode + sign + assemble (issuance path)', count, (i) => {
  const tbs = deviceTbs(i);
  encodeCertificate(tbs, 'ecdsa-with-SHA256', sign('sha256', tbs, key));
});
const cert = encodeCertificate(sample, 'ecdsa-with-SHA256', sign('sha256', sample, key));
rate('parse certificate (pkix)', count, () => parseCertificate(cert));
console.log(`signed certificates per second on one core: ${Math.round(full).toLocaleString('en-US')}`);
