/**
 * Client side of bench/storm.ts, a child process (pinned to its own core when `taskset` exists):
 * every device opens its TLS connection at the same moment, as after an outage. A connection the
 * gateway closes before the handshake finishes (shed) is retried after a jittered backoff, as a
 * device would; any other failure is counted as wrongly refused. Connections stay open until all
 * are connected, then the child reports and closes them.
 */
import tls, { type TLSSocket } from 'node:tls';

export interface StormJob { port: number; devices: { certPem: string; keyPem: string }[]; backoffMs: [number, number] }
export interface StormResult {
  allConnectedMs: number; handshakeMs: number[]; shedAttempts: number; wronglyRefused: number; connected: number;
}

process.once('message', (job: StormJob) => {
  // Each device has its credentials loaded before the storm (a device keeps them in memory).
  const contexts = job.devices.map((d) => tls.createSecureContext({ cert: d.certPem, key: d.keyPem }));
  const open: TLSSocket[] = [];
  const handshakeMs: number[] = [];
  let shedAttempts = 0;
  let wronglyRefused = 0;
  let done = 0;
  let reported = false;
  const tries = contexts.map(() => 0);
  const start = performance.now();

  const finish = () => {
    reported = true;
    const r: StormResult = { allConnectedMs: performance.now() - start, handshakeMs, shedAttempts, wronglyRefused, connected: open.length };
    process.send!(r, () => {
      for (const s of open) s.destroy();
      process.exit(0);
    });
  };

  const attempt = (i: number) => {
    const t0 = performance.now();
    let secured = false;
    const s = tls.connect({ host: '127.0.0.1', port: job.port, secureContext: contexts[i], rejectUnauthorized: false }, () => {
      secured = true;
      handshakeMs.push(performance.now() - t0);
      open.push(s);
      if (++done === contexts.length) finish();
    });
    s.on('error', () => { /* close follows */ });
    s.on('close', () => {
      if (secured) {
        // Admitted connections stay open until the report; one closed before is a refusal.
        if (!reported) wronglyRefused++;
        return;
      }
      // Closed before the handshake finished: shed. Retried with backoff, at most 100 times.
      shedAttempts++;
      if (++tries[i]! > 100) {
        wronglyRefused++;
        if (++done === contexts.length) finish();
        return;
      }
      const [lo, hi] = job.backoffMs;
      setTimeout(() => attempt(i), lo + Math.random() * (hi - lo));
    });
  };
  for (let i = 0; i < contexts.length; i++) attempt(i);
});
