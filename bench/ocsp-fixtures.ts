/**
 * Set-up of the OCSP benchmark, built with pkix alone: a P-256 CA, its delegated responder
 * (id-kp-OCSPSigning + ocsp-nocheck), `count` device certificates recorded in a fresh SQLite
 * registry, the files `openssl ocsp -index ... -port ...` needs for the same certificates, and
 * the requests the load generator sends.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  authorityKeyIdentifierExt, basicConstraintsExt, encodeCertId, encodeCertificate, encodeName, encodeOcspRequest, encodeTbsCertificate,
  extKeyUsageExt, keyIdentifier, keyUsageExt, ocspNoCheckExt, parseSpki, subjectKeyIdentifierExt, toPem,
} from '../pkix/index.js';
import { openSqliteRegistry } from '../registry/sqlite/index.js';
import type { OcspServerConfig } from './ocsp-server.js';

const DAY = 86_400_000;

export interface OcspBenchFixture {
  dir: string;
  configPath: string;
  caPem: string;
  responderPem: string;
  responderKey: string;
  indexTxt: string;
  /** DER OCSPRequests (SHA-1 CertID, no nonce), one per certificate. */
  requests: Buffer[];
  cleanup(): void;
}

function serial(): Buffer {
  const s = randomBytes(16);
  s[0] = 1 + (s[0] % 127);
  return s;
}

/** A certificate signed directly with node:crypto (fixture building, not the CA's code path). */
export function fixtureCertificate(o: { issuerName: Buffer; issuerKey: KeyObject; issuerKeyId: Buffer; subject: Buffer; spki: Buffer; serial: Buffer; extensions: Buffer[]; days: number }): Buffer {
  const now = Date.now();
  const tbs = encodeTbsCertificate({
    serial: o.serial, signatureAlgorithm: 'ecdsa-with-SHA256', issuer: o.issuerName, subject: o.subject, spki: o.spki,
    notBefore: new Date(now - DAY), notAfter: new Date(now + o.days * DAY),
    extensions: [...o.extensions, subjectKeyIdentifierExt(keyIdentifier(o.spki)), authorityKeyIdentifierExt(o.issuerKeyId)],
  });
  return encodeCertificate(tbs, 'ecdsa-with-SHA256', sign('sha256', tbs, { key: o.issuerKey, dsaEncoding: 'der' }));
}

/** OpenSSL's index.txt date: YYMMDDHHMMSSZ. */
function indexDate(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

export async function createOcspBenchFixture(count: number): Promise<OcspBenchFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-ocsp-'));
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caSpki = caKeys.publicKey.export({ type: 'spki', format: 'der' });
  const caName = encodeName([{ type: 'O', value: 'kakuin bench' }, { type: 'CN', value: 'Device CA' }]);
  const caKeyId = keyIdentifier(caSpki);
  const caDer = fixtureCertificate({
    issuerName: caName, issuerKey: caKeys.privateKey, issuerKeyId: caKeyId, subject: caName, spki: caSpki, serial: serial(), days: 3650,
    extensions: [basicConstraintsExt({ ca: true }), keyUsageExt(['digitalSignature', 'keyCertSign', 'cRLSign'])],
  });
  const rKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rDer = fixtureCertificate({
    issuerName: caName, issuerKey: caKeys.privateKey, issuerKeyId: caKeyId, subject: encodeName([{ type: 'CN', value: 'OCSP responder' }]),
    spki: rKeys.publicKey.export({ type: 'spki', format: 'der' }), serial: serial(), days: 90,
    extensions: [basicConstraintsExt({ ca: false }), keyUsageExt(['digitalSignature']), extKeyUsageExt(['OCSPSigning']), ocspNoCheckExt()],
  });
  const dbPath = path.join(dir, 'registry.db');
  const registry = await openSqliteRegistry({ path: dbPath });
  await registry.putIssuer({ id: 'device', kind: 'device', certificateDer: caDer, keyUri: 'file:bench-ca' });
  const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const caSubjectPublicKey = parseSpki(caSpki).subjectPublicKey;
  const requests: Buffer[] = [];
  const index: string[] = [];
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const s = serial();
    const subject = encodeName([{ type: 'CN', value: `device-${i}` }]);
    const der = fixtureCertificate({
      issuerName: caName, issuerKey: caKeys.privateKey, issuerKeyId: caKeyId, subject, spki: leafKey, serial: s, days: 365,
      extensions: [basicConstraintsExt({ ca: false }), keyUsageExt(['digitalSignature']), extKeyUsageExt(['clientAuth'])],
    });
    const serialHex = s.toString('hex').toUpperCase();
    const notAfter = new Date(Date.now() + 365 * DAY);
    pending.push(registry.recordIssuance({
      certificate: {
        serialHex, issuerId: 'device', profile: 'device', der, fingerprintSha256: createHash('sha256').update(der).digest('hex'),
        publicKeySha256: createHash('sha256').update(leafKey).digest('hex'), notBefore: new Date(Date.now() - DAY), notAfter,
      },
      audit: { type: 'certificate.issued', actor: 'bench', serialHex },
    }));
    if (pending.length >= 100) await Promise.all(pending.splice(0));
    requests.push(encodeOcspRequest([encodeCertId('sha1', caName, caSubjectPublicKey, s)]));
    index.push(`V\t${indexDate(notAfter)}\t\t${serialHex}\tunknown\t/CN=device-${i}`);
  }
  await Promise.all(pending);
  await registry.close();
  const write = (name: string, data: string): string => {
    const p = path.join(dir, name);
    writeFileSync(p, data);
    return p;
  };
  const responderKeyPem = rKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const config: OcspServerConfig = {
    dbPath, issuerId: 'device', caCertDerB64: caDer.toString('base64'), responderCertDerB64: rDer.toString('base64'), responderKeyPem,
  };
  return {
    dir,
    configPath: write('server.json', JSON.stringify(config)),
    caPem: write('ca.pem', toPem('CERTIFICATE', caDer)),
    responderPem: write('responder.pem', toPem('CERTIFICATE', rDer)),
    responderKey: write('responder.key', responderKeyPem),
    indexTxt: write('index.txt', `${index.join('\n')}\n`),
    requests,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
