/**
 * Client load for bench/mqtt.ts, run as a child process (`fork`, pinned to its own core by the
 * parent) so it never takes CPU from the gateway it measures. Two jobs, over the IPC channel:
 *
 * - `throughput`: `devices` MQTT.js clients, each subscribed to its own topic, publishing 100-byte
 *   messages at a fixed total rate (QoS 0 or 1) to that topic; each message carries its send time,
 *   so the round trip (device → broker → device) is measured where it is received. Sends
 *   `window-start`/`window-end` so the parent samples CPU over exactly the measured window.
 * - `idle`: one raw TLS connection + MQTT 3.1.1 CONNECT per device certificate (no MQTT.js: the load
 *   generator's own memory stays small), kept idle; every close is reported with its wall-clock time.
 */
import tls, { type TLSSocket } from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';

export interface ThroughputJob {
  kind: 'throughput';
  port: number;
  servername: string;
  caPem: string;
  devices: { deviceId: string; certPem: string; keyPem: string }[];
  qos: 0 | 1;
  messages: number;
  ratePerSecond: number;
}

export interface IdleJob {
  kind: 'idle';
  port: number;
  servername: string;
  devices: { deviceId: string; certPem: string; keyPem: string }[];
  concurrency: number;
}

export type MqttLoadMessage =
  | { type: 'window-start' }
  | { type: 'window-end'; sent: number; received: number; windowMs: number; p50Ms: number; p99Ms: number; clientCpuMs: number }
  | { type: 'connected'; count: number; failed: number }
  | { type: 'closed'; index: number; at: number }
  | { type: 'open'; count: number };

const send = (m: MqttLoadMessage) => process.send!(m);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function throughput(job: ThroughputJob): Promise<void> {
  const clients: MqttClient[] = [];
  for (const d of job.devices) {
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${job.port}`, {
      protocolVersion: 4, clientId: d.deviceId, reconnectPeriod: 0, clean: true, ca: job.caPem, cert: d.certPem, key: d.keyPem,
      servername: job.servername, keepalive: 60,
    });
    await c.subscribeAsync(`devices/${d.deviceId}/bench`, { qos: job.qos });
    clients.push(c);
  }
  const latencies: number[] = [];
  let received = 0;
  let finish: () => void = () => {};
  const allIn = new Promise<void>((r) => { finish = r; });
  for (const c of clients) {
    c.on('message', (_t, payload) => {
      latencies.push(performance.now() - payload.readDoubleLE(0));
      if (++received >= job.messages) finish();
    });
  }
  const payload = Buffer.alloc(100, 0x61);
  const topics = job.devices.map((d) => `devices/${d.deviceId}/bench`);
  send({ type: 'window-start' });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  const tickMs = 10;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      // Catch up to the schedule (a fixed offered rate, not "as fast as possible").
      const due = Math.min(job.messages, Math.floor(((performance.now() - t0) * job.ratePerSecond) / 1000));
      while (sent < due) {
        const p = Buffer.from(payload);
        p.writeDoubleLE(performance.now(), 0);
        clients[sent % clients.length].publish(topics[sent % clients.length], p, { qos: job.qos });
        sent++;
      }
      if (sent >= job.messages) {
        clearInterval(timer);
        resolve();
      }
    }, tickMs);
  });
  await Promise.race([allIn, new Promise((r) => setTimeout(r, 10_000))]);
  const windowMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  send({
    type: 'window-end', sent, received, windowMs, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99),
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  });
  await Promise.all(clients.map((c) => c.endAsync(true)));
}

async function idle(job: IdleJob): Promise<void> {
  const sockets: TLSSocket[] = [];
  let failed = 0;
  let next = 0;
  const connectOne = (index: number) => new Promise<void>((resolve) => {
    const d = job.devices[index];
    const s = tls.connect({ host: '127.0.0.1', port: job.port, cert: d.certPem, key: d.keyPem, servername: job.servername, rejectUnauthorized: false });
    let done = false;
    const settle = (ok: boolean) => {
      if (done) return;
      done = true;
      if (!ok) failed++;
      resolve();
    };
    s.on('error', () => settle(false));
    s.once('secureConnect', () => {
      s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: d.deviceId, clean: true, keepalive: 0 }));
    });
    s.once('data', () => {
      // CONNACK: the gateway admitted it and the broker opened the session.
      sockets[index] = s;
      settle(true);
    });
    s.once('close', () => {
      if (done && sockets[index] === s) send({ type: 'closed', index, at: performance.timeOrigin + performance.now() });
      settle(false);
    });
  });
  await Promise.all(Array.from({ length: job.concurrency }, async () => {
    while (next < job.devices.length) await connectOne(next++);
  }));
  send({ type: 'connected', count: sockets.filter(Boolean).length, failed });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'count') send({ type: 'open', count: sockets.filter((s) => s !== undefined && !s.destroyed).length });
    if (m.type === 'exit') {
      for (const s of sockets) s?.destroy();
      process.exit(0);
    }
  });
}

process.once('message', (job: ThroughputJob | IdleJob) => {
  const run = job.kind === 'throughput' ? throughput(job) : idle(job);
  run.then(() => { if (job.kind === 'throughput') process.exit(0); }, (e: unknown) => {
    process.stderr.write(`mqtt load generator failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  });
});
