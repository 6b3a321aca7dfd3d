/**
 * A real Mosquitto for the MQTT front end's tests and benchmark, started on free ports of
 * 127.0.0.1 with its configuration in a temp dir (the Debian service is never used).
 *
 * It has two plain listeners, as README "Putting kakuin in front of your MQTT broker" shows the
 * first: `recipe` is the README's internal listener (ACLs by user name = device id); `open` has no
 * ACL, so that a device's refused publish or subscription shows that kakuin, not the broker,
 * refused it. A TLS listener (`tlsPort`, client certificates required) is there for the benchmark's
 * "direct to the broker" figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../support/index.js';

/** The README's ACL file, word for word. */
export const README_ACL = `# kakuin sets user name = client id = the device id on every CONNECT
pattern readwrite devices/%u/#
`;

export interface Broker {
  /** The README recipe listener (ACL by user name). */
  recipePort: number;
  /** No ACL: the tests' observer and the policy tests. */
  openPort: number;
  tlsPort?: number;
  dir: string;
  /** The mosquitto process (the benchmark reads its CPU time). */
  pid: number;
  stop(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string, ceilingMs = 5_000): Promise<void> {
  const until = Date.now() + ceilingMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}): ${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => { c.destroy(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`mosquitto did not listen on ${port}: ${output()}`);
}

export async function startMosquitto(o: { tls?: { caFile: string; certFile: string; keyFile: string } } = {}): Promise<Broker> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kakuin-mosquitto-'));
  // Mosquitto started as root drops to the `mosquitto` user: it must be able to read its files.
  chmodSync(dir, 0o755);
  const recipePort = await freePort();
  const openPort = await freePort();
  const tlsPort = o.tls ? await freePort() : undefined;
  writeFileSync(path.join(dir, 'kakuin.acl'), README_ACL, { mode: 0o644 });
  const lines = [
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    // The README recipe: the internal listener, on localhost only.
    'per_listener_settings true',
    'set_tcp_nodelay true',
    `listener ${recipePort} 127.0.0.1`,
    'allow_anonymous true',
    `acl_file ${path.join(dir, 'kakuin.acl')}`,
    `listener ${openPort} 127.0.0.1`,
    'allow_anonymous true',
  ];
  if (o.tls && tlsPort !== undefined) {
    // Copied in: the dropped-privilege broker may not read the caller's (0700) directory.
    const [ca, cert, key] = (['caFile', 'certFile', 'keyFile'] as const).map((k) => {
      const to = path.join(dir, `tls-${k}.pem`);
      copyFileSync(o.tls![k], to);
      chmodSync(to, 0o644);
      return to;
    });
    lines.push(`listener ${tlsPort} 127.0.0.1`, 'allow_anonymous true', `cafile ${ca}`, `certfile ${cert}`, `keyfile ${key}`, 'require_certificate true');
  }
  writeFileSync(path.join(dir, 'mosquitto.conf'), `${lines.join('\n')}\n`, { mode: 0o644 });
  const child = spawn('mosquitto', ['-c', path.join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  try {
    await waitForPort(openPort, child, () => stderr);
    await waitForPort(recipePort, child, () => stderr);
    if (tlsPort !== undefined) await waitForPort(tlsPort, child, () => stderr);
  } catch (e) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    recipePort, openPort, ...(tlsPort !== undefined && { tlsPort }), dir, pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
