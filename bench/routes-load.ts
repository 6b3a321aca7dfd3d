/**
 * Load generator for bench/routes.ts (a child process, so its CPU is not the gateway's): each device
 * sends GET requests one after another over one kept-alive mTLS connection (closed loop) until the
 * total is reached; returns the elapsed time and per-request latencies.
 */
import https from 'node:https';

export interface RoutesJob {
  port: number;
  path: string;
  servername: string;
  ca: string;
  devices: { cert: string; key: string }[];
  requests: number;
  warmup: number;
}

export interface RoutesResult { ms: number; latenciesMs: number[]; errors: number }

function get(agent: https.Agent, job: RoutesJob): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: job.port, path: job.path, servername: job.servername, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function run(job: RoutesJob): Promise<RoutesResult> {
  const agents = job.devices.map((d) => new https.Agent({ keepAlive: true, maxSockets: 1, ca: job.ca, cert: d.cert, key: d.key }));
  // Handshakes and JIT warm-up are not what is measured.
  await Promise.all(agents.map(async (a) => { for (let i = 0; i < job.warmup; i++) await get(a, job); }));
  const latencies: number[] = [];
  let left = job.requests;
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(agents.map(async (a) => {
    while (left > 0) {
      left--;
      const s = performance.now();
      const status = await get(a, job).catch(() => 0);
      if (status !== 200) errors++;
      latencies.push(performance.now() - s);
    }
  }));
  const ms = performance.now() - t0;
  for (const a of agents) a.destroy();
  return { ms, latenciesMs: latencies, errors };
}

process.on('message', (job: RoutesJob) => {
  run(job).then((r) => process.send!(r), (e: unknown) => process.send!({ error: String(e) }));
});
