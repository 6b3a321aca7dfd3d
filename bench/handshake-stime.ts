/**
 * Sequential full handshakes (issue 18 item 5): `openssl s_time -new` for 5 s against the gateway
 * and against `openssl s_server -Verify 1` with the same server chain, trust anchors and device
 * certificate; the server side on CPU 0 and s_time on CPU 1 when `taskset` exists. Also the
 * gateway's own CPU per handshake in that run (process.cpuUsage). Two rounds, alternating.
 *
 * `node dist/bench/handshake-stime.js` runs it alone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createDeviceGateway } from '../gateway-auth/index.js';
import { createGatewayPki, type GatewayPki, type TestDevice } from '../test/gateway-auth/pki.js';

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const pinned = (cpu: number, cmd: string, args: string[]): [string, string[]] => (hasTaskset ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);

function sTime(pki: GatewayPki, d: TestDevice, port: number): Promise<number> {
  return new Promise((resolve) => {
    const [cmd, args] = pinned(1, 'openssl', ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', '5', '-cert', d.certPath, '-key', d.keyPath, '-CAfile', pki.file('root.pem')]);
    const c = spawn(cmd, args);
    let out = '';
    c.stdout.on('data', (x: Buffer) => { out += x.toString(); });
    c.on('close', () => {
      const m = /(\d+) connections in (\d+) real seconds/.exec(out);
      resolve(m ? Number(m[1]) / Number(m[2]) : Number.NaN);
    });
  });
}

export async function benchHandshakeSTime(o: { log: (line: string) => void }): Promise<Record<string, number>> {
  const pki = await createGatewayPki();
  const d = await pki.newDevice();
  const gateway = createDeviceGateway({
    serverCertificates: [pki.server.der, pki.infraCa.der], serverKeyPem: pki.server.key.keyPem,
    trustAnchors: [pki.root.pem, pki.deviceCa.der], deviceIssuers: [{ id: 'device', certificate: pki.deviceCa.der }],
    registry: pki.registry, logger: { info() {}, warn() {}, error() {} }, telemetry: { sink: { record: async () => {} } },
  });
  let ss: ChildProcess | undefined;
  try {
    const { port } = await gateway.listen(0, '127.0.0.1');
    writeFileSync(pki.file('chain.pem'), pki.server.pem + pki.infraCa.pem);
    writeFileSync(pki.file('trust.pem'), pki.root.pem + pki.deviceCa.pem);
    const sPort = port === 65535 ? port - 1 : port + 1;
    const [cmd, args] = pinned(0, 'openssl', ['s_server', '-accept', String(sPort), '-cert', pki.file('chain.pem'), '-key', pki.file('server.key'), '-CAfile', pki.file('trust.pem'), '-Verify', '1', '-quiet']);
    ss = spawn(cmd, args, { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    const gw: number[] = [];
    const sv: number[] = [];
    const cpuMs: number[] = [];
    for (let i = 0; i < 2; i++) {
      const admitted = gateway.stats().admitted;
      const c0 = process.cpuUsage();
      gw.push(await sTime(pki, d, port));
      const c = process.cpuUsage(c0);
      cpuMs.push((c.user + c.system) / 1000 / Math.max(1, gateway.stats().admitted - admitted));
      sv.push(await sTime(pki, d, sPort));
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const f = {
      gateway_s_time_new_per_s: Math.round(mean(gw)), openssl_s_server_s_time_new_per_s: Math.round(mean(sv)),
      gateway_vs_s_server_s_time_ratio: Math.round((mean(gw) / mean(sv)) * 100) / 100,
      gateway_cpu_ms_per_sequential_handshake: Math.round(mean(cpuMs) * 100) / 100,
    };
    o.log(`  s_time -new: gateway ${f.gateway_s_time_new_per_s}/s, s_server ${f.openssl_s_server_s_time_new_per_s}/s (${f.gateway_vs_s_server_s_time_ratio}x); gateway CPU ${f.gateway_cpu_ms_per_sequential_handshake} ms per handshake`);
    return f;
  } finally {
    ss?.kill();
    await gateway.close();
    await pki.cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  await benchHandshakeSTime({ log: console.log });
}
