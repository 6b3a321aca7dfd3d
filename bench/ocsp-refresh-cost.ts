/**
 * Issue 16: what re-signing pre-signed OCSP responses costs, per CPU-second of this process, and the
 * largest fleet each `ocsp.validityMinutes` allows at ≤ 25 % of one core. Each response is re-signed
 * once per refresh, at a point between 1/4 and 1/2 of its validity (mean 3/8, ocsp-responder/
 * cached-response.ts), so a fleet of N costs N / (0.375 × validity) signatures per second. Measured
 * through the responder's own ResponseSigner (DER encoding + ECDSA P-256 with a software key),
 * 100 in flight; storing the new responses (arena swap, registry write) is not included.
 * `node dist/bench/ocsp-refresh-cost.js [responses]` runs it alone.
 */
import { pathToFileURL } from 'node:url';
import { ensureOcspSigner } from '../ca/ocsp-signers.js';
import { newCertificateSerial, serialToHex } from '../ca/serial.js';
import { prepareIdentity, ResponseSigner } from '../ocsp-responder/index.js';
import { createBenchCa, freshRegistry, runConcurrent } from './fixtures.js';

export const VALIDITIES_MINUTES = [2, 15, 60, 1440] as const;

export async function benchOcspRefreshCost(count: number, log: (l: string) => void): Promise<Record<string, number>> {
  const ca = await createBenchCa();
  const { registry } = await freshRegistry(ca, `refresh-${Date.now()}`, 'NORMAL');
  try {
    const { signer: responder } = await ensureOcspSigner(registry, ca.keys, ca.hierarchy.device, {
      organization: 'kakuin bench', validityDays: 30, renewWithinDays: 7, keyAlgorithm: 'ecdsa-p256',
      keyUriFor: (issuerId, generation) => `file:ocsp-${issuerId}-${generation}`, actor: 'bench',
    });
    const identity = prepareIdentity({
      issuerId: 'device', issuerCertificateDer: ca.hierarchy.device.record.certificateDer,
      responderCertificateDer: responder.certificateDer, signer: responder.signer,
    }, 1);
    const signer = new ResponseSigner();
    const certIds = Array.from({ length: count }, () => signer.presignedCertId(identity, serialToHex(newCertificateSerial())));
    await runConcurrent(Math.min(1000, count), 100, (i) => signer.sign(identity, [{ certIdDer: certIds[i], status: { status: 'good' } }]));
    const cpu0 = process.cpuUsage();
    const seconds = await runConcurrent(count, 100, (i) => signer.sign(identity, [{ certIdDer: certIds[i], status: { status: 'good' } }]));
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const perCpuSecond = Math.round(count / cpuSeconds);
    const out: Record<string, number> = {
      ocsp_refresh_signatures_per_cpu_s: perCpuSecond,
      ocsp_refresh_signatures_per_wall_s: Math.round(count / seconds),
    };
    log(`  re-signing ${count.toLocaleString('en')} responses: ${perCpuSecond.toLocaleString('en')} per CPU-second (${out.ocsp_refresh_signatures_per_wall_s.toLocaleString('en')}/s wall)`);
    for (const minutes of VALIDITIES_MINUTES) {
      const fleet = Math.floor(perCpuSecond * 0.25 * 0.375 * minutes * 60);
      out[`ocsp_refresh_max_fleet_${minutes}min_quarter_core`] = fleet;
      log(`  ocsp.validityMinutes ${String(minutes).padStart(4)}: ≤ 25 % of a core re-signs a fleet of ${fleet.toLocaleString('en')} certificates`);
    }
    return out;
  } finally {
    await registry.close();
    ca.cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  benchOcspRefreshCost(Number(process.argv[2] ?? '20000'), (l) => process.stdout.write(`${l}\n`)).catch((e: unknown) => {
    process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  });
}
