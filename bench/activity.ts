/**
 * What recording device activity costs the gateway (issue 19): gateway CPU-seconds per 1,000 full
 * mTLS handshakes and per 100,000 MQTT messages (QoS 0, through the gateway to a real Mosquitto),
 * with activity recording on (operations/activity's aggregator, flushing into the SQLite registry
 * every second, ten times as often as the default, so that flushes fall inside the measured
 * windows) and off (NO_ACTIVITY). Two gateways run in this process, identical but for `activity`;
 * the runs alternate off, on, on, off, ... (RUNS of each), so that load from elsewhere on the
 * machine falls on both alike; the ratio is of the medians (the means are printed too). The load comes from child processes (bench/gateway-load.ts,
 * bench/mqtt-load.ts); CPU is this process's, over each measured window.
 *
 * `node dist/bench/activity.js [--json]` runs it alone (~40 s). KAKUIN_BENCH_SCALE scales the MQTT
 * message count and the handshake window.
 */
import { pathToFileURL } from 'node:url';
import { createDeviceGateway, type DeviceGateway } from '../gateway-auth/index.js';
import { ActivityAggregator } from '../operations/activity/aggregator.js';
import { startMosquitto, type Broker } from '../test/gateway-auth/mqtt/broker.js';
import { createGatewayPki, GATEWAY_HOST, makeKey, type GatewayPki } from '../test/gateway-auth/pki.js';
import { runHandshakes } from './gateway.js';
import { runThroughput } from './mqtt.js';

const RUNS = 5;

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** off, on, on, off, off, on, ...: each mode goes first equally often, so a drift in the machine's load favours neither. */
const order = (i: number) => (i % 2 === 0 ? ['off', 'on'] as const : ['on', 'off'] as const);

function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function gatewayFor(pki: GatewayPki, broker: Broker, activity: ActivityAggregator | undefined, log: (l: string) => void): DeviceGateway {
  return createDeviceGateway({
    serverCertificates: [pki.server.der, pki.infraCa.der],
    serverKeyPem: pki.server.key.keyPem,
    trustAnchors: [pki.root.der, pki.deviceCa.der],
    deviceIssuers: [{ id: 'device', certificate: pki.deviceCa.der }],
    registry: pki.registry,
    logger: { info() {}, warn() {}, error(m: string, f?: Record<string, unknown>) { log(`  gateway error: ${m} ${JSON.stringify(f)}`); } },
    telemetry: { sink: { record: async () => {} } },
    mqtt: { port: 0, upstreamUrl: `mqtt://127.0.0.1:${broker.openPort}` },
    ...(activity !== undefined && { activity }),
  });
}

export async function benchActivity(o: { scale?: number; log?: (line: string) => void } = {}): Promise<Record<string, number>> {
  const log = o.log ?? (() => {});
  const scale = o.scale ?? 1;
  const messages = Math.max(2_000, Math.round(10_000 * scale));
  const rate = 5_000;
  const durationMs = Math.max(500, Math.round(1_500 * scale));
  const pki = await createGatewayPki();
  let broker: Broker | undefined;
  const gateways: DeviceGateway[] = [];
  const recorder = new ActivityAggregator({ store: pki.registry.activity, flushIntervalMs: 1_000 });
  const figures: Record<string, number> = {};
  try {
    broker = await startMosquitto();
    const off = gatewayFor(pki, broker, undefined, log);
    const on = gatewayFor(pki, broker, recorder, log);
    gateways.push(off, on);
    const ports = { off: (await off.listen(0, '127.0.0.1')).port, on: (await on.listen(0, '127.0.0.1')).port };
    const mqttPorts = { off: off.mqttAddress()!.port, on: on.mqttAddress()!.port };
    recorder.start();

    const device = await pki.newDevice();
    const devices = await Promise.all(Array.from({ length: 50 }, () => pki.newDevice({ key: makeKey(), writeFiles: false })));
    const deviceJobs = devices.map((d) => ({ deviceId: d.deviceId, certPem: d.cert.pem, keyPem: d.cert.key.keyPem }));

    log(`  ${RUNS} interleaved runs each; handshakes: 16 concurrent loops, one device, ${durationMs} ms windows; MQTT: QoS 0, 50 devices, ${messages.toLocaleString('en')} messages at ${rate.toLocaleString('en')}/s per run; activity flushed every 1 s`);
    const handshakeCpu: Record<'on' | 'off', number[]> = { on: [], off: [] };
    const mqttCpu: Record<'on' | 'off', number[]> = { on: [], off: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const mode of order(i)) {
        const r = await runHandshakes({
          kind: 'handshakes', port: ports[mode], certPem: device.cert.pem, keyPem: device.cert.key.keyPem, concurrency: 16, warmupMs: 300, durationMs, resume: false,
        }, ownCpuMs);
        if (r.failed > 0) throw new Error(`${r.failed} handshakes failed (activity ${mode})`);
        handshakeCpu[mode].push(1_000 / r.perServerCpuSecond);
      }
    }
    for (let i = 0; i < RUNS; i++) {
      for (const mode of order(i)) {
        const r = await runThroughput({
          kind: 'throughput', port: mqttPorts[mode], servername: GATEWAY_HOST, caPem: pki.root.pem, devices: deviceJobs, qos: 0, messages, ratePerSecond: rate,
        }, broker.pid, false);
        if (r.received < r.sent * 0.99) throw new Error(`only ${r.received} of ${r.sent} MQTT messages came back (activity ${mode})`);
        mqttCpu[mode].push((r.gatewayCpuMs / 1000) * (100_000 / r.received));
      }
    }
    await recorder.flush();
    const recorded = await pki.registry.activity.deviceActivity(devices[0].deviceId);
    const counted = recorded?.hourly.reduce((s, h) => s + h.messages, 0) ?? 0;
    if (counted === 0) throw new Error('activity on recorded no MQTT messages');

    for (const [name, cpu] of [['handshake_cpu_s_per_1k', handshakeCpu], ['mqtt_cpu_s_per_100k', mqttCpu]] as const) {
      figures[`activity_${name}_off`] = round(median(cpu.off));
      figures[`activity_${name}_on`] = round(median(cpu.on));
      figures[`activity_${name}_ratio_on_off`] = round(median(cpu.on) / median(cpu.off));
      figures[`activity_${name}_mean_ratio_on_off`] = round(mean(cpu.on) / mean(cpu.off));
    }
    const runs = (xs: number[]) => xs.map((x) => round(x)).join(' ');
    log(`  handshakes  CPU-s per 1,000, median: off ${figures.activity_handshake_cpu_s_per_1k_off} (${runs(handshakeCpu.off)}), on ${figures.activity_handshake_cpu_s_per_1k_on} (${runs(handshakeCpu.on)}); on/off ${figures.activity_handshake_cpu_s_per_1k_ratio_on_off} (means ${figures.activity_handshake_cpu_s_per_1k_mean_ratio_on_off}; target ≤ 1.05)`);
    log(`  MQTT QoS 0  CPU-s per 100,000, median: off ${figures.activity_mqtt_cpu_s_per_100k_off} (${runs(mqttCpu.off)}), on ${figures.activity_mqtt_cpu_s_per_100k_on} (${runs(mqttCpu.on)}); on/off ${figures.activity_mqtt_cpu_s_per_100k_ratio_on_off} (means ${figures.activity_mqtt_cpu_s_per_100k_mean_ratio_on_off}; target ≤ 1.05)`);
    log(`  (recorded ${counted.toLocaleString('en')} messages for one of the 50 MQTT devices; ${recorder.flushes} flushes)`);
  } finally {
    await recorder.stop();
    for (const g of gateways) await g.close();
    await broker?.stop();
    await pki.cleanup();
  }
  return figures;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const json = process.argv.includes('--json');
  benchActivity({ scale: Number(process.env.KAKUIN_BENCH_SCALE ?? '1'), log: json ? undefined : (l) => process.stdout.write(`${l}\n`) })
    .then((f) => { if (json) process.stdout.write(`${JSON.stringify(f)}\n`); })
    .catch((e: unknown) => {
      process.stderr.write(`bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    });
}
