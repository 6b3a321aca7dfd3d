/**
 * CA and OCSP signing with keys in a SoftHSM2 token against keys in the software store, side by
 * side in one run: device certificates issued per second (the issuance pipeline of `kakuin serve`,
 * committed SQLite records) and OCSP responses signed per second by the delegated responder
 * (build + sign, 100 in flight). The token lives in a temporary directory for the run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureOcspSigner } from '../ca/ocsp-signers.js';
import { KeyRing } from '../hsm-adapters/index.js';
import { newPkcs11KeyUri, Pkcs11KeyStore, SOFTHSM2_DEFAULT_MODULE } from '../hsm-adapters/pkcs11/index.js';
import { SoftwareKeyStore } from '../hsm-adapters/software/index.js';
import { prepareIdentity, ResponseSigner } from '../ocsp-responder/index.js';
import { newCertificateSerial, serialToHex } from '../ca/serial.js';
import { createBenchCa, freshRegistry, makeP256Csrs, runConcurrent, type BenchCa } from './fixtures.js';
import { kakuinRun } from './issuance.js';

export interface HsmFigures {
  hsm_issuance_software_certs_per_s: number;
  hsm_issuance_softhsm_certs_per_s: number;
  hsm_issuance_softhsm_to_software_ratio: number;
  hsm_ocsp_software_responses_per_s: number;
  hsm_ocsp_softhsm_responses_per_s: number;
  hsm_ocsp_softhsm_to_software_ratio: number;
  /** Event-loop time per SoftHSM2 signature (C_SignInit + hash; the sign itself is on the thread pool). */
  hsm_sign_event_loop_us: number;
}

const PIN = 'bench-pin-0000';

export async function benchHsm(counts: { issuance: number; ocsp: number }, log: (line: string) => void): Promise<HsmFigures | undefined> {
  const modulePath = process.env.KAKUIN_PKCS11_MODULE || SOFTHSM2_DEFAULT_MODULE;
  if (!existsSync(modulePath)) {
    log(`  skipped: no PKCS#11 module at ${modulePath} (apt-get install softhsm2, or set KAKUIN_PKCS11_MODULE)`);
    return undefined;
  }
  const root = mkdtempSync(path.join(tmpdir(), 'kakuin-bench-softhsm-'));
  const token = 'kakuin-bench';
  mkdirSync(path.join(root, 'tokens'));
  writeFileSync(path.join(root, 'softhsm2.conf'), `directories.tokendir = ${path.join(root, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = path.join(root, 'softhsm2.conf');
  const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', token, '--pin', PIN, '--so-pin', `${PIN}-so`]);
  if (init.status !== 0) throw new Error(`softhsm2-util failed: ${init.stderr.toString()}`);

  const software = await createBenchCa();
  const hsm = await createBenchCa({
    keys: (dir) => new KeyRing([
      new SoftwareKeyStore({ directory: path.join(dir, 'keys'), passphrase: 'bench-passphrase' }),
      new Pkcs11KeyStore({ modulePath, pin: PIN, sessionsPerToken: 8 }),
    ]),
    keyUriFor: (id) => newPkcs11KeyUri(token, `${id}-ca`),
  });
  try {
    const serials = Array.from({ length: counts.issuance }, (_, i) => `SN-${String(i).padStart(7, '0')}`);
    const csrs = makeP256Csrs(serials);
    const issuanceSoftware = await kakuinRun(software, csrs, serials, 'NORMAL');
    const issuanceHsm = await kakuinRun(hsm, csrs, serials, 'NORMAL');
    log(`  issuance, software keys   ${Math.round(issuanceSoftware).toLocaleString('en')} certs/s  (${counts.issuance} certs)`);
    log(`  issuance, SoftHSM2 keys   ${Math.round(issuanceHsm).toLocaleString('en')} certs/s  (ratio ${(issuanceHsm / issuanceSoftware).toFixed(2)})`);

    const ocspSoftware = await ocspRun(software, (issuerId, generation) => `file:ocsp-${issuerId}-${generation}`, counts.ocsp);
    const ocspHsm = await ocspRun(hsm, (issuerId, generation) => newPkcs11KeyUri(token, `ocsp-${issuerId}-${generation}`), counts.ocsp);
    log(`  OCSP signing, software    ${Math.round(ocspSoftware.perSecond).toLocaleString('en')} responses/s  (${counts.ocsp} responses)`);
    log(`  OCSP signing, SoftHSM2    ${Math.round(ocspHsm.perSecond).toLocaleString('en')} responses/s  (ratio ${(ocspHsm.perSecond / ocspSoftware.perSecond).toFixed(2)})`);
    log(`  event-loop time per SoftHSM2 signature ${ocspHsm.loopMicros.toFixed(0)} µs (the module call itself runs on libuv's thread pool)`);
    return {
      hsm_issuance_software_certs_per_s: Math.round(issuanceSoftware),
      hsm_issuance_softhsm_certs_per_s: Math.round(issuanceHsm),
      hsm_issuance_softhsm_to_software_ratio: Number((issuanceHsm / issuanceSoftware).toFixed(3)),
      hsm_ocsp_software_responses_per_s: Math.round(ocspSoftware.perSecond),
      hsm_ocsp_softhsm_responses_per_s: Math.round(ocspHsm.perSecond),
      hsm_ocsp_softhsm_to_software_ratio: Number((ocspHsm.perSecond / ocspSoftware.perSecond).toFixed(3)),
      hsm_sign_event_loop_us: Math.round(ocspHsm.loopMicros),
    };
  } finally {
    await software.keys.close();
    await hsm.keys.close();
    software.cleanup();
    hsm.cleanup();
    rmSync(root, { recursive: true, force: true });
  }
}

async function ocspRun(ca: BenchCa, keyUriFor: (issuerId: string, generation: number) => string, count: number): Promise<{ perSecond: number; loopMicros: number }> {
  const { registry } = await freshRegistry(ca, `ocsp-${Date.now()}`, 'NORMAL');
  try {
    const { signer: responder } = await ensureOcspSigner(registry, ca.keys, ca.hierarchy.device, {
      organization: 'kakuin bench', validityDays: 30, renewWithinDays: 7, keyAlgorithm: 'ecdsa-p256', keyUriFor, actor: 'bench',
    });
    const identity = prepareIdentity({
      issuerId: 'device', issuerCertificateDer: ca.hierarchy.device.record.certificateDer,
      responderCertificateDer: responder.certificateDer, signer: responder.signer,
    }, 1);
    const signer = new ResponseSigner();
    const certIds = Array.from({ length: count }, () => signer.presignedCertId(identity, serialToHex(newCertificateSerial())));
    // Event-loop cost of one signature: the synchronous part of sign(), measured alone.
    const probe = 8; // the session pool size: each of these reaches C_SignAsync at once
    const t0 = process.hrtime.bigint();
    const pending = Array.from({ length: probe }, (_, i) => signer.sign(identity, [{ certIdDer: certIds[i % count], status: { status: 'good' } }]));
    const loopMicros = Number(process.hrtime.bigint() - t0) / 1000 / probe;
    await Promise.all(pending);
    const seconds = await runConcurrent(count, 100, (i) => signer.sign(identity, [{ certIdDer: certIds[i], status: { status: 'good' } }]));
    return { perSecond: count / seconds, loopMicros };
  } finally {
    await registry.close();
  }
}
