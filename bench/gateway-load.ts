/**
 * Client load for bench/gateway.ts, run as a child process (`fork`) so it never takes CPU from the
 * server it measures within one event loop. Two jobs, driven over the IPC channel:
 *
 * - `handshakes`: `concurrency` loops of Node `tls.connect` (a device certificate, full or resumed
 *   handshakes), each closing right after the handshake and waiting for the server to close, so a
 *   connection counts only once the server has processed it (for the gateway: its revocation check
 *   too). The client skips verifying the server chain (no `ca`), which keeps the load generator's
 *   own cost per handshake below the server's. Sends `window-start`/`window-end` so the parent can
 *   sample the server's CPU over exactly the measured window.
 * - `idle`: opens one connection per device certificate, makes one request on it (so the gateway
 *   admitted it), keeps it idle, and reports every close with its wall-clock time.
 */
import tls, { type TLSSocket } from 'node:tls';

export interface HandshakeJob {
  kind: 'handshakes';
  port: number;
  certPem: string;
  keyPem: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  resume: boolean;
}

export interface IdleJob {
  kind: 'idle';
  port: number;
  devices: { certPem: string; keyPem: string }[];
  concurrency: number;
}

export type LoadMessage =
  | { type: 'window-start' }
  | { type: 'window-end'; completed: number; reused: number; failed: number; windowMs: number; clientCpuMs: number }
  | { type: 'connected'; count: number; failed: number }
  | { type: 'closed'; index: number; at: number }
  | { type: 'open'; count: number };

function send(m: LoadMessage): void {
  process.send!(m);
}

function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

async function handshakes(job: HandshakeJob): Promise<void> {
  let session: Buffer | undefined;
  let measuring = false;
  let stop = false;
  const counts = { completed: 0, reused: 0, failed: 0 };
  // One context for every connection, as a device keeps its credentials loaded.
  const secureContext = tls.createSecureContext({ cert: job.certPem, key: job.keyPem });
  const one = () => new Promise<void>((resolve) => {
    let ok = false;
    let reused = false;
    const s = tls.connect({
      host: '127.0.0.1', port: job.port, secureContext, rejectUnauthorized: false, noDelay: true,
      ...(job.resume && session !== undefined && { session }),
    } as tls.ConnectionOptions);
    s.once('secureConnect', () => {
      ok = true;
      reused = s.isSessionReused();
      s.end();
    });
    s.on('session', (sess: Buffer) => { session = sess; });
    s.on('error', () => { ok = false; });
    s.once('close', () => {
      if (measuring) {
        if (ok) counts.completed++;
        else counts.failed++;
        if (ok && reused) counts.reused++;
      }
      resolve();
    });
  });
  const loops = Array.from({ length: job.concurrency }, async () => {
    while (!stop) await one();
  });
  await new Promise((r) => setTimeout(r, job.warmupMs));
  measuring = true;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  send({ type: 'window-start' });
  await new Promise((r) => setTimeout(r, job.durationMs));
  measuring = false;
  const windowMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  send({ type: 'window-end', ...counts, windowMs, clientCpuMs: (cpu.user + cpu.system) / 1000 });
  stop = true;
  await Promise.all(loops);
}

async function idle(job: IdleJob): Promise<void> {
  const sockets: (TLSSocket | undefined)[] = [];
  let failed = 0;
  let next = 0;
  const open = (index: number) => new Promise<void>((resolve) => {
    const d = job.devices[index];
    const s = tls.connect({ host: '127.0.0.1', port: job.port, cert: d.certPem, key: d.keyPem, rejectUnauthorized: false, noDelay: true } as tls.ConnectionOptions);
    let admitted = false;
    s.on('error', () => { /* a close follows */ });
    s.once('secureConnect', () => s.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n'));
    s.on('data', (c: Buffer) => {
      if (!admitted && c.toString('latin1').startsWith('HTTP/1.1 200')) {
        admitted = true;
        sockets[index] = s;
        resolve();
      }
    });
    s.once('close', () => {
      if (admitted) {
        sockets[index] = undefined;
        send({ type: 'closed', index, at: wallClockMs() });
      } else {
        failed++;
        resolve();
      }
    });
  });
  await Promise.all(Array.from({ length: job.concurrency }, async () => {
    while (next < job.devices.length) await open(next++);
  }));
  send({ type: 'connected', count: sockets.filter(Boolean).length, failed });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'count') send({ type: 'open', count: sockets.filter(Boolean).length });
  });
}

process.on('message', (m: HandshakeJob | IdleJob | { type: string }) => {
  if ('type' in m) {
    if (m.type === 'exit') process.exit(0);
  } else if (m.kind === 'handshakes') {
    handshakes(m).then(() => process.exit(0), (e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(1);
    });
  } else if (m.kind === 'idle') {
    idle(m).catch((e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(1);
    });
  }
});
