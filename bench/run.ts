/**
 * `npm run bench`: prints the figures; `npm run bench -- --json` prints one flat JSON object of
 * named figures with their unit in the name. Benchmarks measure; tests never assert speed.
 *
 * Sizes can be scaled with KAKUIN_BENCH_SCALE (default 1; 0.1 for a quick look).
 */
import { benchIssuance } from './issuance.js';
import { createBenchCa } from './fixtures.js';
import { benchOcsp } from './ocsp.js';
import { benchRevocationToOcsp } from './revocation.js';
import { benchCrl } from './crl.js';
import { benchCrlFreshness } from './crl-fresh.js';
import { benchRevocationSync } from './revocation-sync.js';
import { benchCrlToNginx } from './crl-to-nginx.js';
import { benchCrlToFreeradius } from './crl-to-freeradius.js';
import { benchRelyingPartiesOcsp } from './relying-parties-ocsp.js';
import { benchOcspRefreshCost } from './ocsp-refresh-cost.js';
import { benchOcspRefreshCycle } from './ocsp-refresh-cycle.js';
import { benchGateway } from './gateway.js';
import { benchMqtt } from './mqtt.js';
import { benchRoutes } from './routes.js';
import { benchStorm } from './storm.js';
import { benchHandshakeSTime } from './handshake-stime.js';
import { benchActivity } from './activity.js';
import { benchBulkRevoke } from './bulk-revoke.js';
import { benchLegacy } from './legacy.js';
import { benchEvents } from './events.js';
import { benchDetections } from './detections.js';
import { benchHsm } from './hsm.js';
import { benchEnrollment } from './enrollment.js';
import { benchCmp } from './cmp.js';
import { benchScep } from './scep.js';
import { benchScale } from './scale.js';

const json = process.argv.includes('--json');
const scale = Number(process.env.KAKUIN_BENCH_SCALE ?? '1');

function log(line: string): void {
  if (!json) process.stdout.write(`${line}\n`);
}

async function main(): Promise<void> {
  const figures: Record<string, number> = {};
  const n = (x: number) => Math.max(100, Math.round(x * scale));

  log(`kakuin benchmarks — node ${process.version}, ${process.arch}, scale ${scale}`);
  const ca = await createBenchCa();
  try {
    log('\nissuance: CSR parse + proof of possession + build + sign + committed SQLite record (group commits ≤ 100, 100 in flight)');
    const counts = { kakuin: n(20_000), full: n(10_000), pkijs: n(2_000) };
    const issuance = await benchIssuance(ca, counts);
    Object.assign(figures, issuance);
    log(`  kakuin pkix + node:crypto, WAL + synchronous=NORMAL  ${issuance.issuance_certs_per_s.toLocaleString('en')} certs/s  (${counts.kakuin} certs)`);
    log(`  kakuin pkix + node:crypto, WAL + synchronous=FULL    ${issuance.issuance_full_sync_certs_per_s.toLocaleString('en')} certs/s  (${counts.full} certs)`);
    log(`  pkijs + WebCrypto, WAL + synchronous=NORMAL          ${issuance.issuance_pkijs_certs_per_s.toLocaleString('en')} certs/s  (${counts.pkijs} certs)`);
    log(`  kakuin / pkijs                                       ${issuance.issuance_speedup_vs_pkijs_ratio}x`);

    const crlEntries = Math.max(10_000, Math.round(1_000_000 * scale));
    log(`\nfull CRL with ${crlEntries.toLocaleString('en')} revoked entries: worker-thread build streaming from SQLite + sign + store`);
    const crl = await benchCrl(ca, crlEntries);
    Object.assign(figures, crl);
    log(`  build + sign ${(crl.crl_full_build_sign_ms / 1000).toFixed(2)} s (+ ${(crl.crl_full_store_ms / 1000).toFixed(2)} s storing it in SQLite; with the following delta ${crl.crl_full_build_sign_store_s} s in all), ${(crl.crl_full_bytes / 1048576).toFixed(1)} MiB DER, extra peak RSS ${crl.crl_full_extra_peak_rss_mb} MB`);

    log(`\nfull CRL freshness (issue 17) at ${crlEntries.toLocaleString('en')} revoked: one more revocation → listed in the full CRL (incremental build in the CRL worker)`);
    Object.assign(figures, await benchCrlFreshness(ca, crlEntries, 6, log));

    log('\nrevocation sync sidecar (issue 17): change → verified and written; a changed CRL\'s check; nginx ssl_crl with the bundle');
    Object.assign(figures, await benchRevocationSync(Math.max(0.1, scale), log));
    Object.assign(figures, await benchCrlToNginx(8, log));
    log('\nFreeRADIUS check_crl (issue 17): revoke → Access-Reject through the sidecar\'s hashed ca_path and a restart');
    Object.assign(figures, await benchCrlToFreeradius(6, log));
  } finally {
    ca.cleanup();
  }

  log('\nrevocation call (HTTPS API) → OCSP answers revoked (pre-signed path), one device at a time');
  const rev = await benchRevocationToOcsp(n(300));
  Object.assign(figures, rev);
  log(`  p50 ${rev.revocation_to_ocsp_revoked_p50_ms} ms, p99 ${rev.revocation_to_ocsp_revoked_p99_ms} ms  (${n(300)} revocations)`);

  log('\nrevoke → refused by relying parties checking OCSP at the certificates\' URLs (issue 16): nginx ssl_ocsp on, FreeRADIUS EAP-TLS via eapol_test');
  Object.assign(figures, await benchRelyingPartiesOcsp(20, log));

  log('\npre-signed OCSP refresh (issue 16): re-signing cost per CPU-second, largest fleet per ocsp.validityMinutes at ≤ 25 % of a core');
  Object.assign(figures, await benchOcspRefreshCost(n(20_000), log));
  // 1,000,000 × scale would be the issue's size, but its start (the fill) must finish within 1/4 of
  // the 2-minute validity to tell one cycle apart; 100,000 × scale fits a loaded 2-core machine.
  const cycleN = Math.max(5_000, Math.round(100_000 * scale));
  log(`\npre-signed OCSP refresh cycle (issue 16): ${cycleN.toLocaleString('en')} certificates, ocsp.validityMinutes 2, one whole cycle in real time (~1.5-2 min); keep-alive GETs meanwhile`);
  Object.assign(figures, await benchOcspRefreshCycle(cycleN, log));

  log('\nOCSP responder (wrk on 127.0.0.1, responder in its own process)');
  const ocsp = await benchOcsp({ log: (line) => log(line) });
  Object.assign(figures, ocsp);

  log('\ndevice gateway (mTLS, 127.0.0.1; client load from a child process)');
  const gw = await benchGateway({ log: (line: string) => log(line) });
  Object.assign(figures, gw);

  log('\ngateway MQTT front end (issue 15): through the gateway to Mosquitto vs direct to Mosquitto\'s TLS listener; idle sessions and revocation');
  Object.assign(figures, await benchMqtt({ scale, log }));

  log('\ngateway reconnect storm (issue 18): every device connects at once; shed connections retry after 50–250 ms');
  Object.assign(figures, await benchStorm({ scale, log }));
  log('\ngateway sequential full handshakes (issue 18): openssl s_time -new against the gateway and against openssl s_server');
  Object.assign(figures, await benchHandshakeSTime({ log }));

  log('\ngateway HTTP route (issue 18): proxied GETs through a route to a plain-HTTP upstream vs the same handler direct over mTLS');
  Object.assign(figures, await benchRoutes({ scale, log }));

  log('\ndevice activity recording (issue 19): gateway CPU with activity on vs off, interleaved runs');
  Object.assign(figures, await benchActivity({ scale, log }));

  log('\nbulk revoke of a cohort (issue 20): one job through the revocation service; the kill switch for the last device of the set');
  Object.assign(figures, await benchBulkRevoke({ scale, log }));

  log('\nlegacy token path (in process): validations on the data path; issuances for generated (HMAC) and imported (scrypt) secrets');
  const legacy = await benchLegacy(scale);
  Object.assign(figures, legacy);
  log(`  token validations   ${legacy.legacy_token_validations_per_s.toLocaleString('en')} /s  (target ≥ 20,000/s)`);
  log(`  issuances, HMAC     ${legacy.legacy_token_issuances_hmac_per_s.toLocaleString('en')} /s`);
  log(`  issuances, scrypt   ${legacy.legacy_token_issuances_scrypt_per_s.toLocaleString('en')} /s  (N=2^${legacy.legacy_scrypt_log2_n}, r=8, p=1)`);

  log('\nevents out (issue 19): a backlog of audit events drained to a receiver process on 127.0.0.1, in order, cursor saved once a second');
  Object.assign(figures, await benchEvents(scale, log));

  log('\ndetections (issue 20): rule evaluation cost on the simulated trial fleet; detection latency per rule');
  Object.assign(figures, await benchDetections({ scale, log }));

  log('\nHSM: CA and OCSP responder keys in a SoftHSM2 token against software keys (same run, 100 in flight)');
  const hsm = await benchHsm({ issuance: n(5_000), ocsp: n(10_000) }, log);
  if (hsm) Object.assign(figures, hsm);

  log('\nproduction-line enrollment over HTTPS: import; one NDJSON batch (parse + PoP + issue + committed record + OCSP); EST simpleenroll, keep-alive, Basic key, 16 in flight');
  const enr = await benchEnrollment(Math.min(10_000, n(10_000)), n(3_000));
  Object.assign(figures, enr);
  log(`  pre-registration import  ${enr.enrollment_import_devices_per_s.toLocaleString('en')} devices/s`);
  log(`  batch enrollment         ${enr.enrollment_batch_devices_per_s.toLocaleString('en')} devices/s  (target ≥ 3,000/s)`);
  log(`  EST simpleenroll         ${enr.enrollment_est_simpleenroll_per_s.toLocaleString('en')} /s  (target ≥ 1,000/s)`);

  log('\nCMP (issue 23): p10cr signed with a station certificate (implicitConfirm) against EST simpleenroll and REST enroll, one request per device, 16 in flight');
  const cmpFigures = await benchCmp(n(2_000));
  Object.assign(figures, cmpFigures);
  for (const p of ['rest', 'est', 'cmp'] as const) {
    log(`  ${p.toUpperCase().padEnd(4)} ${cmpFigures[`cmp_bench_${p}_enrollments_per_s`].toLocaleString('en')} enrollments/s, server CPU ${cmpFigures[`cmp_bench_${p}_server_cpu_us_per_enrollment`]} µs each`);
  }
  log(`  EST / CMP ${cmpFigures.cmp_bench_cmp_vs_est_ratio}x (target ≤ 2x); CMP steps per message: parse ${cmpFigures.cmp_bench_parse_us} µs, check (protection signature + CSR proof of possession) ${cmpFigures.cmp_bench_check_us} µs, sign the answer ${cmpFigures.cmp_bench_sign_answer_us} µs`);
  log('\nSCEP PKCSReq against EST simpleenroll, same run: HTTPS keep-alive, 8 in flight, P-256 devices, requests built beforehand (client in this process)');
  const scepFigures = await benchScep(n(500));
  Object.assign(figures, scepFigures);
  log(`  EST simpleenroll         ${scepFigures.est_simpleenroll_per_s.toLocaleString('en')} /s`);
  log(`  SCEP PKCSReq             ${scepFigures.scep_pkcsreq_per_s.toLocaleString('en')} /s  (EST / SCEP ${scepFigures.scep_est_ratio}x; target within 2x)`);
  log(`  SCEP per request, one at a time: parse ${scepFigures.scep_parse_ms} ms, check (signature, RSA decryption, challenge) ${scepFigures.scep_check_ms} ms, issue ${scepFigures.scep_issue_ms} ms, reply (ECDH envelope, RSA signature) ${scepFigures.scep_reply_ms} ms`);

  log('\n1M scale (issue 8): registry lookups over a million devices; an OCSP responder process over a million pre-signed responses');
  const big = await benchScale(scale, log);
  Object.assign(figures, big);

  if (json) process.stdout.write(`${JSON.stringify(figures)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exitCode = 1;
});
