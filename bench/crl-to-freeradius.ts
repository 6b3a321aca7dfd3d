/**
 * Issue 17: revoke (HTTPS API) → Access-Reject at FreeRADIUS (EAP-TLS, `check_crl` from a hashed
 * `ca_path` written by `revocation sync --hashed-dir`, restarted through `--exec`), p50/p99.
 * kakuin runs with crl.fullCoalesceMs 5000 (its default); the sidecar polls every 500 ms and
 * restarts FreeRADIUS with --min-reload-interval 0, so the figure is the CRL path plus the restart
 * (with the recipe's 60 s interval, add up to 60 s after the first change of a burst). `eapol_test`
 * authenticates the revoked device again and again (1 s timeout while the server restarts).
 * One revocation at a time, each a new device.
 *
 * `node dist/bench/crl-to-freeradius.js [revocations]` runs it alone.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort } from '../test/support/index.js';
import { startRelyingPartyKakuin, startSidecar, waitFor, type Sidecar } from '../test/revocation-sync/fixture.js';
import { prepareRadius, type RadiusDaemon } from '../test/revocation-sync/freeradius.js';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function benchCrlToFreeradius(revocations: number, log: (l: string) => void): Promise<Record<string, number>> {
  if (spawnSync('freeradius', ['-v']).error || spawnSync('eapol_test', ['-v']).error) {
    log('  freeradius or eapol_test not installed: skipped');
    return {};
  }
  const k = await startRelyingPartyKakuin({ env: { KAKUIN_CRL_COALESCE_MS: '1000', KAKUIN_CRL_FULL_COALESCE_MS: '5000', KAKUIN_LOG_LEVEL: 'error' } });
  let sidecar: Sidecar | undefined;
  let radius: RadiusDaemon | undefined;
  try {
    const r = radius = prepareRadius(path.join(k.tmp.dir, 'radius'), await freePort(), k.serverCert, k.serverKey);
    const devices = [];
    for (let i = 0; i <= revocations; i++) devices.push(await k.device(`radius-bench-${i}`));
    const good = devices[revocations];
    sidecar = startSidecar(['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--hashed-dir', r.certs,
      '--exec', r.restartScript, '--min-reload-interval', '0']);
    await waitFor('the hashed directory', 15_000, () => readdirSync(r.certs).some((f) => f.endsWith('.r0')) || undefined);
    await waitFor('FreeRADIUS accepting a good device', 20_000, () => r.authenticate(good, 'good') === 'accept' || undefined);
    const latencies: number[] = [];
    const restarts: number[] = [];
    const times = (m: string) => sidecar!.output().split('\n').filter((l) => l.includes(`"${m}"`)).map((l) => Date.parse(JSON.parse(l).time as string));
    for (let i = 0; i < revocations; i++) {
      const d = devices[i];
      const started = performance.now();
      await k.revoke(d.serialHex);
      await waitFor('Access-Reject', 60_000, () => r.authenticate(d, 'stolen', 1) === 'reject' || undefined);
      latencies.push(performance.now() - started);
      // The reload log line follows the restart script's exit.
      await waitFor('the reload logged', 10_000, () => times('relying party reloaded').length > i + 1 || undefined).catch(() => undefined);
      const written = times('CRL bundle written');
      const reloaded = times('relying party reloaded');
      if (reloaded.length > i + 1 && written.length > i + 1) restarts.push(reloaded[i + 1] - written[i + 1]);
    }
    if (r.authenticate(good, 'good') !== 'accept') throw new Error('the good device was refused');
    const s = latencies.sort((a, b) => a - b);
    const out = {
      crl_revoke_to_freeradius_reject_p50_ms: Math.round(percentile(s, 50)),
      crl_revoke_to_freeradius_reject_p99_ms: Math.round(percentile(s, 99)),
      freeradius_restart_p50_ms: restarts.length ? Math.round(percentile(restarts.sort((a, b) => a - b), 50)) : NaN,
    };
    log(`  revoke → Access-Reject at FreeRADIUS: p50 ${out.crl_revoke_to_freeradius_reject_p50_ms} ms, p99 ${out.crl_revoke_to_freeradius_reject_p99_ms} ms (${revocations} revocations; crl.fullCoalesceMs 5000, poll 500 ms, restart through --exec p50 ${out.freeradius_restart_p50_ms} ms; target p99 ≤ 7 s + the restart)`);
    return out;
  } finally {
    await sidecar?.stop();
    await radius?.stop();
    await k.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log('revoke → Access-Reject at FreeRADIUS (check_crl from a hashed ca_path via revocation sync)');
  console.log(JSON.stringify(await benchCrlToFreeradius(Number(process.argv[2] ?? 6), (l) => console.log(l))));
}
