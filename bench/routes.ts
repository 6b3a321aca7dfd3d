/**
 * HTTP route benchmark (issue 18): proxied requests/s and added p99 through a gateway route vs the
 * same upstream handler called directly over mTLS. Loopback only, bounded (~10 s at scale 1).
 *
 * The load (bench/routes-load.ts, a child process) is 20 devices, each sending small GETs one after
 * another on one kept-alive connection. "Direct" is an https server (mTLS, same server certificate)
 * running the upstream's handler; "via gateway" is the gateway's TLS listener with a `/` route to a
 * plain-HTTP server running that handler (kept-alive upstream pool). With `taskset` the load
 * generator is pinned to CPU 1 and this process (gateway + upstream) to CPU 0.
 *
 * `node dist/bench/routes.js [--json]` runs it alone. KAKUIN_BENCH_SCALE scales the request count.
 */
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createDeviceGateway } from '../gateway-auth/index.js';
import { createGatewayPki, GATEWAY_HOST } from '../test/gateway-auth/pki.js';
import type { RoutesJob, RoutesResult } from './routes-load.js';

const LOAD_SCRIPT = fileURLToPath(new URL('./routes-load.js', import.meta.url));
const BODY = Buffer.from(JSON.stringify({ settings: { interval: 60, mode: 'normal' } }));

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function pin(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-pc', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function handler(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
  res.end(BODY);
}

async function load(job: RoutesJob, pinned: boolean): Promise<RoutesResult> {
  const child = fork(LOAD_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  if (pinned) pin(child.pid!, '1');
  child.send(job);
  const [r] = await once(child, 'message') as [RoutesResult & { error?: string }];
  child.kill();
  if (r.error !== undefined) throw new Error(r.error);
  return r;
}

export async function benchRoutes(o: { scale: number; log: (line: string) => void }): Promise<Record<string, number>> {
  const requests = Math.max(2_000, Math.round(20_000 * o.scale));
  const pki = await createGatewayPki();
  const upstream = http.createServer({ keepAlive: true }, handler);
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const direct = https.createServer({
    key: pki.server.key.keyPem, cert: [pki.server.pem, pki.infraCa.pem].join('\n'), ca: [pki.root.pem, pki.deviceCa.pem],
    requestCert: true, rejectUnauthorized: true, keepAlive: true,
  }, handler);
  direct.listen(0, '127.0.0.1');
  await once(direct, 'listening');
  const gateway = createDeviceGateway({
    serverCertificates: [pki.server.der, pki.infraCa.der], serverKeyPem: pki.server.key.keyPem,
    trustAnchors: [pki.root.pem, pki.deviceCa.der], deviceIssuers: [{ id: 'device', certificate: pki.deviceCa.der }],
    registry: pki.registry, logger: { info() {}, warn() {}, error() {} },
    telemetry: { sink: { record: async () => {} } },
    routes: [{ prefix: '/', upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` }],
  });
  const { port: gatewayPort } = await gateway.listen(0, '127.0.0.1');
  try {
    const devices = [];
    for (let i = 0; i < 20; i++) {
      const d = await pki.newDevice();
      devices.push({ cert: d.cert.pem, key: d.cert.key.keyPem });
    }
    const pinned = pin(process.pid, '0');
    o.log(`  ${pinned ? 'load generator pinned to CPU 1, gateway + upstream to CPU 0' : 'taskset not available: nothing pinned'}; 20 devices, closed loop, ${requests.toLocaleString('en')} GETs per run, ${BODY.length}-byte answers`);
    const base = { servername: GATEWAY_HOST, ca: pki.root.pem, devices, requests, warmup: 50, path: '/api/settings' };
    const figures: Record<string, number> = {};
    for (const [name, port] of [['direct', direct.address() as AddressInfo], ['gateway', { port: gatewayPort }]] as const) {
      const r = await load({ ...base, port: port.port }, pinned);
      const sorted = [...r.latenciesMs].sort((a, b) => a - b);
      figures[`routes_${name}_requests_per_s`] = Math.round((r.latenciesMs.length / r.ms) * 1000);
      figures[`routes_${name}_p50_ms`] = round(percentile(sorted, 50));
      figures[`routes_${name}_p99_ms`] = round(percentile(sorted, 99));
      figures[`routes_${name}_errors`] = r.errors;
    }
    figures.routes_added_p99_ms = round(figures.routes_gateway_p99_ms - figures.routes_direct_p99_ms);
    figures.routes_throughput_ratio = round(figures.routes_gateway_requests_per_s / figures.routes_direct_requests_per_s);
    o.log(`  direct to the upstream over mTLS   ${figures.routes_direct_requests_per_s.toLocaleString('en')} req/s, p50 ${figures.routes_direct_p50_ms} ms, p99 ${figures.routes_direct_p99_ms} ms`);
    o.log(`  through a gateway route            ${figures.routes_gateway_requests_per_s.toLocaleString('en')} req/s, p50 ${figures.routes_gateway_p50_ms} ms, p99 ${figures.routes_gateway_p99_ms} ms`);
    o.log(`  added p99 ${figures.routes_added_p99_ms} ms; gateway / direct throughput ${figures.routes_throughput_ratio}x; errors ${figures.routes_direct_errors} / ${figures.routes_gateway_errors}`);
    if (pinned) pin(process.pid, '0-1');
    return figures;
  } finally {
    await gateway.close();
    direct.closeAllConnections();
    direct.close();
    upstream.closeAllConnections();
    upstream.close();
    await pki.cleanup();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const json = process.argv.includes('--json');
  benchRoutes({ scale: Number(process.env.KAKUIN_BENCH_SCALE ?? '1'), log: json ? () => {} : (l) => process.stdout.write(`${l}\n`) })
    .then((f) => { if (json) process.stdout.write(`${JSON.stringify(f)}\n`); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
}
