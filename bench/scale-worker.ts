/**
 * A worker of the scale fixture build (bench/scale.ts): for devices [start, end) it makes a P-256
 * key, a device certificate signed by the bench CA (pkix + node:crypto) and the certificate's
 * pre-signed OCSP response (the responder's own ResponseSigner, so the bytes are what a responder
 * would have stored), and posts them to the parent in batches of column arrays.
 */
import { createECDH, createHash, createPrivateKey, sign } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { SoftwareSigner } from '../hsm-adapters/software/index.js';
import { prepareIdentity } from '../ocsp-responder/signing-identity.js';
import { ResponseSigner } from '../ocsp-responder/response-signer.js';
import {
  authorityKeyIdentifierExt, basicConstraintsExt, encodeCertificate, encodeName, encodeTbsCertificate, extKeyUsageExt, keyIdentifier,
  keyUsageExt, parseCertificate, subjectKeyIdentifierExt,
} from '../pkix/index.js';
import { scaleDevice, type ScaleWorkerData, type ScaleBatch } from './scale-keys.js';

const DAY = 86_400_000;

async function main(): Promise<void> {
  const d = workerData as ScaleWorkerData;
  const caDer = Buffer.from(d.caCertDerB64, 'base64');
  const ca = parseCertificate(caDer);
  const caKey = createPrivateKey(d.caKeyPem);
  const caKeyId = keyIdentifier(ca.spki);
  const identity = prepareIdentity({
    issuerId: 'device', issuerCertificateDer: caDer, responderCertificateDer: Buffer.from(d.responderCertDerB64, 'base64'),
    signer: new SoftwareSigner('file:bench-responder', 'ecdsa-p256', createPrivateKey(d.responderKeyPem)),
  }, 0);
  const signer = new ResponseSigner({ validityMs: d.validityMs, now: () => d.nowMs });
  // Device keys: raw P-256 points (ECDH keygen is ~5x faster than generateKeyPair + SPKI export)
  // spliced into the SPKI of a template key, whose last 65 bytes are the uncompressed point.
  const ecdh = createECDH('prime256v1');
  const spkiPrefix = Buffer.from(d.spkiTemplateB64, 'base64').subarray(0, -65);
  const notBefore = new Date(d.nowMs - DAY);
  const notAfter = new Date(d.nowMs + 365 * DAY);
  const deviceExtensions = [basicConstraintsExt({ ca: false }), keyUsageExt(['digitalSignature']), extKeyUsageExt(['clientAuth'])];
  let batch = emptyBatch();
  for (let i = d.start; i < d.end; i++) {
    const dev = scaleDevice(i);
    ecdh.generateKeys();
    const spki = Buffer.concat([spkiPrefix, ecdh.getPublicKey()]);
    const tbs = encodeTbsCertificate({
      serial: dev.serial, signatureAlgorithm: 'ecdsa-with-SHA256', issuer: ca.subject.rawDer,
      subject: encodeName([{ type: 'O', value: 'kakuin scale' }, { type: 'CN', value: dev.serialNumber }]), spki, notBefore, notAfter,
      extensions: [...deviceExtensions, subjectKeyIdentifierExt(keyIdentifier(spki)), authorityKeyIdentifierExt(caKeyId)],
    });
    const der = encodeCertificate(tbs, 'ecdsa-with-SHA256', sign('sha256', tbs, { key: caKey, dsaEncoding: 'der' }));
    const [ocsp] = await signer.signEach(identity, [{ serialHex: dev.serialHex, status: { status: 'good' } }]);
    batch.index.push(i);
    batch.certDer.push(der);
    batch.fingerprint.push(createHash('sha256').update(der).digest('hex'));
    batch.publicKeySha256.push(createHash('sha256').update(spki).digest('hex'));
    batch.ocspDer.push(ocsp.der);
    batch.thisUpdate = ocsp.thisUpdateMs;
    batch.nextUpdate = ocsp.nextUpdateMs;
    if (batch.index.length >= 2000) {
      parentPort!.postMessage(batch);
      batch = emptyBatch();
    }
  }
  if (batch.index.length > 0) parentPort!.postMessage(batch);
  parentPort!.postMessage({ done: true });
}

function emptyBatch(): ScaleBatch {
  return { index: [], certDer: [], fingerprint: [], publicKeySha256: [], ocspDer: [], thisUpdate: 0, nextUpdate: 0 };
}

main().catch((e: unknown) => {
  parentPort!.postMessage({ error: (e as Error)?.stack ?? String(e) });
});
