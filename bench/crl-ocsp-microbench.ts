/**
 * Hand-run micro-benchmark of pkix's CRL and OCSP hot paths (DESIGN.md "Hot paths"), one core:
 *
 *   npx tsc -p tsconfig.json && node --expose-gc dist/bench/crl-ocsp-microbench.js
 *
 * Prints: a 1,000,000-entry CRL built and signed (seconds, extra memory), OCSP responses built and
 * signed per second with a P-256 key, OCSP requests parsed per second (and pkijs for comparison).
 * Benchmarks measure; tests never assert speed.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as pkijs from 'pkijs';
import { encodeCertificateList, encodeTbsCertList, RevokedEntriesWriter } from '../pkix/crl.js';
import { encodeName, parseSpki } from '../pkix/index.js';
import { parseOcspRequest } from '../pkix/ocsp-request.js';
import { encodeBasicOcspResponse, encodeOcspResponse, encodeResponseData, encodeSingleResponse } from '../pkix/ocsp-response.js';

const gc = (globalThis as { gc?: () => void }).gc;
const MB = 1024 * 1024;

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function memory(): { rss: number; heap: number; external: number } {
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, external: m.external + m.arrayBuffers };
}

function mb(n: number): string {
  return `${(n / MB).toFixed(0)} MB`;
}

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const subjectPublicKey = parseSpki(publicKey.export({ type: 'spki', format: 'der' })).subjectPublicKey;
const keyId = createHash('sha1').update(subjectPublicKey).digest();
const issuer = encodeName([{ type: 'O', value: 'kakuin bench' }, { type: 'CN', value: 'Device Issuing CA' }]);

function crlRun(n: number, serialsHex?: string[]): { build: number; sign: number; total: number; bytes: number; mem: ReturnType<typeof memory> } {
  const pool = randomBytes(16 * 4096); // random serial octets, cycled; copied into one reused Buffer per entry
  const serial = Buffer.alloc(16);
  const t0 = Date.UTC(2025, 0, 1);
  const before = memory();
  const start = process.hrtime.bigint();
  const w = new RevokedEntriesWriter(n * 40);
  for (let i = 0; i < n; i++) {
    const reason = i % 5 === 0 ? 'keyCompromise' : i % 7 === 0 ? 'superseded' : undefined;
    const invalidity = i % 100 === 0 ? t0 - i * 1000 : undefined;
    if (serialsHex !== undefined) {
      w.add(serialsHex[i], t0 + i * 977, reason, invalidity);
    } else {
      pool.copy(serial, 0, (i & 4095) * 16, (i & 4095) * 16 + 16);
      serial[0] = (serial[0] & 0x7f) | 0x01;
      serial.writeUInt32BE(i, 12);
      w.add(serial, t0 + i * 977, reason, invalidity);
    }
  }
  const now = new Date();
  const tbs = encodeTbsCertList({
    signatureAlgorithm: 'ecdsa-with-SHA256', issuer, thisUpdate: now, nextUpdate: new Date(now.getTime() + 86_400_000),
    revokedEntries: w.finish(), crlNumber: 1234n, authorityKeyId: keyId, freshestCrlUrls: ['http://localhost:8080/crl/device-delta.crl'],
  });
  const build = seconds(start);
  const signStart = process.hrtime.bigint();
  const crl = encodeCertificateList(tbs, 'ecdsa-with-SHA256', sign('sha256', tbs, privateKey));
  const signSeconds = seconds(signStart);
  const total = seconds(start);
  const after = process.memoryUsage();
  const mem = { rss: after.rss - before.rss, heap: after.heapUsed - before.heap, external: after.external + after.arrayBuffers - before.external };
  return { build, sign: signSeconds, total, bytes: crl.length, mem };
}

function perSecond(minSeconds: number, work: () => void): number {
  for (let i = 0; i < 200; i++) work(); // warm-up
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minSeconds) {
    for (let i = 0; i < 100; i++) work();
    n += 100;
    elapsed = seconds(start);
  }
  return Math.round(n / elapsed);
}

function main(): void {
  process.stdout.write(`kakuin pkix CRL/OCSP micro-benchmark — node ${process.version}, ${process.arch}${gc ? '' : ' (run with --expose-gc for steadier memory figures)'}\n\n`);

  const N = 1_000_000;
  crlRun(10_000); // warm-up
  const r = crlRun(N);
  process.stdout.write(`CRL, ${N.toLocaleString('en')} entries (16-octet serials from one reused Buffer, 20% with reasonCode, 1% with invalidityDate), P-256:\n`);
  process.stdout.write(`  build ${r.build.toFixed(3)} s + sign ${r.sign.toFixed(3)} s = ${r.total.toFixed(3)} s; ${mb(r.bytes)} of DER\n`);
  process.stdout.write(`  extra memory while held: rss +${mb(r.mem.rss)}, heap +${mb(r.mem.heap)}, buffers +${mb(r.mem.external)}\n`);
  const hex: string[] = new Array(N);
  for (let i = 0; i < N; i++) hex[i] = `${(0x10 + (i % 0x60)).toString(16)}${randomBytes(15).toString('hex')}`.toUpperCase();
  const rh = crlRun(N, hex);
  process.stdout.write(`  same, serials as registry hex strings (made beforehand): ${rh.total.toFixed(3)} s (build ${rh.build.toFixed(3)} s)\n\n`);

  // OCSP response: one SingleResponse for a request's CertID, nonce echoed, signed with P-256, wrapped.
  const reqDer = readFileSync(path.join(process.cwd(), 'test', 'vectors', 'ocsp-request-openssl-nonce.der'));
  const req = parseOcspRequest(reqDer);
  const responderCert = randomBytes(450); // stands in for the delegated responder's certificate in `certs`
  const revokedAt = new Date(Date.UTC(2025, 5, 1));
  const build = (nonce: boolean, status: 'good' | 'revoked') => {
    const now = new Date();
    const single = encodeSingleResponse({
      certId: req.certIds[0].rawDer, certStatus: status === 'good' ? { status: 'good' } : { status: 'revoked', revokedAt, reason: 'keyCompromise' },
      thisUpdate: now, nextUpdate: new Date(now.getTime() + 3_600_000),
    });
    const tbs = encodeResponseData({ responderKeyHash: keyId, producedAt: now, responses: [single], ...(nonce ? { nonce: req.nonce, nonceEncoding: req.nonceEncoding } : {}) });
    return encodeOcspResponse(encodeBasicOcspResponse(tbs, 'ecdsa-with-SHA256', sign('sha256', tbs, privateKey), [responderCert]));
  };
  const withNonce = perSecond(2, () => build(true, 'good'));
  const revoked = perSecond(2, () => build(false, 'revoked'));
  const signOnly = perSecond(2, () => sign('sha256', reqDer, privateKey));
  const encodeOnly = perSecond(1, () => {
    const now = new Date();
    const single = encodeSingleResponse({ certId: req.certIds[0].rawDer, certStatus: { status: 'good' }, thisUpdate: now, nextUpdate: new Date(now.getTime() + 3_600_000) });
    encodeOcspResponse(encodeBasicOcspResponse(encodeResponseData({ responderKeyHash: keyId, producedAt: now, responses: [single], nonce: req.nonce }), 'ecdsa-with-SHA256', reqDer, [responderCert]));
  });
  process.stdout.write('OCSP responses built + signed (P-256, node:crypto sign, one SingleResponse, responder certificate in certs):\n');
  process.stdout.write(`  good, nonce echoed       ${withNonce.toLocaleString('en')} /s\n`);
  process.stdout.write(`  revoked, no nonce        ${revoked.toLocaleString('en')} /s\n`);
  process.stdout.write(`  (P-256 sign alone        ${signOnly.toLocaleString('en')} /s; DER assembly alone ${encodeOnly.toLocaleString('en')} /s)\n\n`);

  const parses = perSecond(1, () => parseOcspRequest(reqDer));
  const two = readFileSync(path.join(process.cwd(), 'test', 'vectors', 'ocsp-request-openssl-sha256-two-certs.der'));
  const parsesTwo = perSecond(1, () => parseOcspRequest(two));
  const pkijsParses = perSecond(1, () => pkijs.OCSPRequest.fromBER(new Uint8Array(reqDer)));
  process.stdout.write('OCSP requests parsed:\n');
  process.stdout.write(`  openssl request, 1 CertID + nonce      ${parses.toLocaleString('en')} /s\n`);
  process.stdout.write(`  openssl request, 2 SHA-256 CertIDs     ${parsesTwo.toLocaleString('en')} /s\n`);
  process.stdout.write(`  pkijs OCSPRequest.fromBER (same bytes) ${pkijsParses.toLocaleString('en')} /s\n`);
}

main();
