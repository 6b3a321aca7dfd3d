/**
 * `gateway.workers: 2` as `kakuin serve` runs it: this process is the cluster primary (CA, OCSP,
 * management API) and two forked workers share the gateway port. Real TLS sockets on 127.0.0.1;
 * which worker answered shows in `GET /healthz` (`worker`). Correctness only, not speed.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { expect } from 'chai';
import type { GatewayCluster } from '../../gateway-auth/index.js';
import { certKeyOf } from '../../gateway-auth/device-identity.js';
import { cliMain, freePort, makeTempDir, opensslOk } from '../support/index.js';
import { request, startTestService, testEnv, type TestService } from '../support/service.js';

interface Device { id: string; serialHex: string; cert: string; key: string }

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One HTTP/1.1 request on an open connection; undefined when the gateway closed it instead of answering. */
function exchange(socket: TLSSocket, head: string, body = ''): Promise<{ status: number; json: any } | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      const cut = buf.indexOf('\r\n\r\n');
      if (cut < 0) return;
      const length = Number(/content-length: *(\d+)/i.exec(buf.slice(0, cut))?.[1] ?? -1);
      if (buf.length - cut - 4 < length) return;
      done({ status: Number(buf.slice(9, 12)), json: JSON.parse(buf.slice(cut + 4, cut + 4 + length)) });
    };
    const done = (v: { status: number; json: any } | undefined) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(v);
    };
    const onClose = () => done(undefined);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', () => { /* the close follows */ });
    if (socket.destroyed) done(undefined);
    else socket.write(`${head}\r\nHost: gateway\r\n${body === '' ? '' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`}\r\n${body}`);
  });
}

/** GET /healthz on an open connection: which worker answered; undefined when the gateway closed it instead. */
async function healthz(socket: TLSSocket): Promise<number | undefined> {
  return (await exchange(socket, 'GET /healthz HTTP/1.1'))?.json.worker as number | undefined;
}

/** Devices enrolled through the management API, and their connections to the gateway. */
class Fleet {
  readonly sockets: TLSSocket[] = [];

  constructor(private readonly o: { apiUrl: string; rootPem: string; token: string; dir: string; gatewayUrl: string }) {}

  api(m: string, p: string, options: Parameters<typeof request>[4] = {}) {
    return request(this.o.apiUrl, this.o.rootPem, m, p, { token: this.o.token, ...options });
  }

  async enroll(serial: string): Promise<Device> {
    const mfr = await this.api('POST', '/api/v1/manufacturers', { body: { name: `Workers ${serial}` } });
    const dev = await this.api('POST', '/api/v1/devices', { body: { manufacturerId: mfr.json.id, serialNumber: serial } });
    const key = path.join(this.o.dir, `${serial}.key`);
    const csr = path.join(this.o.dir, `${serial}.csr`);
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', `/serialNumber=${serial}`, '-out', csr]);
    const issued = await this.api('POST', `/api/v1/devices/${dev.json.id}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    const cert = path.join(this.o.dir, `${serial}.pem`);
    writeFileSync(cert, issued.json.certificate);
    return { id: dev.json.id, serialHex: issued.json.serialHex, cert, key };
  }

  /** A device TLS connection (kept open); `session` to resume. Resolves once the handshake is done. */
  connect(d: Device, session?: Buffer): Promise<{ socket: TLSSocket; session: Promise<Buffer> }> {
    const url = new URL(this.o.gatewayUrl);
    return new Promise((resolve, reject) => {
      let gotSession!: (s: Buffer) => void;
      const ticket = new Promise<Buffer>((r) => { gotSession = r; });
      const socket = tls.connect({
        host: url.hostname === 'localhost' ? '127.0.0.1' : url.hostname, port: Number(url.port), servername: 'localhost', ca: this.o.rootPem,
        cert: readFileSync(d.cert, 'utf8'), key: readFileSync(d.key, 'utf8'), ...(session !== undefined && { session }),
      }, () => resolve({ socket, session: ticket }));
      socket.on('session', (s: Buffer) => gotSession(s));
      socket.once('error', reject);
      this.sockets.push(socket);
    });
  }

  /** Connections of `d` until both workers have one; returns them by worker. */
  async onBothWorkers(d: Device): Promise<Map<number, TLSSocket>> {
    const byWorker = new Map<number, TLSSocket>();
    for (let i = 0; i < 12 && byWorker.size < 2; i++) {
      const { socket } = await this.connect(d);
      const w = await healthz(socket);
      expect(w, 'an admitted device gets an answer').to.be.oneOf([1, 2]);
      if (byWorker.has(w!)) socket.destroy();
      else byWorker.set(w!, socket);
    }
    expect([...byWorker.keys()].sort()).to.deep.equal([1, 2]);
    return byWorker;
  }

  destroyAll(): void {
    for (const s of this.sockets.splice(0)) s.destroy();
  }
}

describe('gateway workers (gateway.workers: 2, node:cluster)', function () {
  this.timeout(120_000);
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let cluster: GatewayCluster;
  let fleet: Fleet;

  before(async () => {
    tmp = makeTempDir();
    svc = await startTestService({ env: { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_GATEWAY_WORKERS: '2' } });
    cluster = svc.service.gateway.gateway as GatewayCluster;
    fleet = new Fleet({ apiUrl: svc.url, rootPem: svc.rootPem, token: svc.adminToken, dir: tmp.dir, gatewayUrl: svc.service.gatewayUrl });
  });
  afterEach(() => fleet?.destroyAll());
  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  it('runs two worker processes on one port, and /readyz counts both', async () => {
    const workers = cluster.workers();
    expect(workers.map((w) => w.slot)).to.deep.equal([1, 2]);
    expect(new Set(workers.map((w) => w.pid)).size).to.equal(2);
    expect(workers.map((w) => w.pid)).to.not.include(process.pid);
    const ready = await until('both workers ready', async () => {
      const r = await request(svc.url, svc.rootPem, 'GET', '/readyz');
      return r.status === 200 && r.json.workers?.ready === 2 ? r.json : undefined;
    });
    expect(ready).to.deep.include({ ready: true, statusSource: 'feed', workers: { configured: 2, live: 2, ready: 2 } });
    const metrics = await fleet.api('GET', '/metrics');
    expect(metrics.status).to.equal(200);
    expect(metrics.text).to.include('kakuin_gateway_workers{state="live"} 2').and.include('kakuin_gateway_workers{state="ready"} 2')
      .and.include('kakuin_gateway_ready 1').and.match(/^kakuin_gateway_worker_restarts_total 0$/m);
  });

  it('revoking closes the device\'s open connections on every worker and refuses new ones there, leaving other devices connected', async () => {
    const victim = await fleet.enroll('WK-KILL-1');
    const bystander = await fleet.enroll('WK-KILL-2');
    const victimSockets = await fleet.onBothWorkers(victim);
    const bystanderSockets = await fleet.onBothWorkers(bystander);
    const closed = [...victimSockets.values()].map((s) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r()))));
    const refusedBefore = cluster.workers().map((w) => w.stats?.refused ?? 0);

    const revoked = await fleet.api('POST', `/api/v1/devices/${victim.id}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(revoked.status, revoked.text).to.equal(200);
    // The revocation returns once every worker applied it (the primary's poke waits for both).
    await Promise.race([Promise.all(closed), new Promise((_, reject) => setTimeout(() => reject(new Error('connections still open 2 s after the revocation')), 2_000))]);
    for (const s of victimSockets.values()) expect(s.destroyed).to.equal(true);
    for (const [w, s] of bystanderSockets) expect(await healthz(s), `the other device stays connected on worker ${w}`).to.equal(w);

    // New connections of the revoked device: each is refused after its handshake, on both workers.
    await until('a refusal on each worker', async () => {
      const { socket } = await fleet.connect(victim).catch(() => ({ socket: undefined }));
      if (socket !== undefined) expect(await healthz(socket), 'no HTTP answer for a revoked device').to.equal(undefined);
      const refused = cluster.workers().map((w) => w.stats?.refused ?? 0);
      return refused.every((n, i) => n > refusedBefore[i]);
    }, 15_000);
    const closedByStatus = await until('the closes counted', () => (cluster.stats().closedByStatusChange >= 2 ? cluster.stats().closedByStatusChange : undefined));
    expect(closedByStatus).to.be.at.least(2);
  });

  it('resumes on one worker a TLS session made on the other (shared session-ticket keys), and after one key rotation', async () => {
    const d = await fleet.enroll('WK-RESUME-1');
    const first = await fleet.connect(d);
    const firstWorker = await healthz(first.socket);
    expect(first.socket.isSessionReused()).to.equal(false);
    const ticket = await first.session;
    first.socket.destroy();

    const seen = new Map<number, boolean>();
    for (let i = 0; i < 8 && !seen.has(firstWorker === 1 ? 2 : 1); i++) {
      const again = await fleet.connect(d, ticket);
      const w = await healthz(again.socket);
      expect(w, 'a resumed session is admitted too').to.be.oneOf([1, 2]);
      seen.set(w!, again.socket.isSessionReused());
      again.socket.destroy();
    }
    const other = firstWorker === 1 ? 2 : 1;
    expect(seen.get(other), `session from worker ${firstWorker} resumed on worker ${other}`).to.equal(true);

    // After one rotation the previous key still opens the ticket (on both workers); after a second it does not.
    cluster.rotateTicketKeys();
    const afterOne: boolean[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await fleet.connect(d, ticket);
      expect(await healthz(c.socket)).to.be.oneOf([1, 2]);
      afterOne.push(c.socket.isSessionReused());
      c.socket.destroy();
    }
    expect(afterOne).to.deep.equal([true, true]);
    cluster.rotateTicketKeys();
    const c = await fleet.connect(d, ticket);
    expect(await healthz(c.socket), 'a full handshake, still admitted').to.be.oneOf([1, 2]);
    expect(c.socket.isSessionReused()).to.equal(false);
  });

  it('counts one certificate\'s open sessions in the primary across both workers, with their source address', async () => {
    const d = await fleet.enroll('WK-COUNT-1');
    const certKey = certKeyOf('device', d.serialHex);
    const both = await fleet.onBothWorkers(d);
    const counted = await until('two sessions counted', () => {
      const s = svc.service.gateway.sessions.sessionsOf(certKey);
      return s.open === 2 ? s : undefined;
    });
    expect(counted.sources).to.deep.equal([{ address: '127.0.0.1', sessions: 2, workers: [1, 2] }]);
    expect(svc.service.gateway.sessions.certificatesWithAtLeast(2)).to.include(certKey);
    both.get(1)!.destroy();
    const left = await until('one session left', () => {
      const s = svc.service.gateway.sessions.sessionsOf(certKey);
      return s.open === 1 ? s : undefined;
    });
    expect(left.sources).to.deep.equal([{ address: '127.0.0.1', sessions: 1, workers: [2] }]);
  });

  it('records telemetry from both workers in the one telemetry file, written by the primary before the device gets its 202', async () => {
    const d = await fleet.enroll('WK-TELEMETRY-1');
    const both = await fleet.onBothWorkers(d);
    for (const [w, socket] of both) {
      const r = await exchange(socket, 'POST /v1/telemetry HTTP/1.1', JSON.stringify({ worker: w }));
      expect(r?.status, `worker ${w}`).to.equal(202);
    }
    const recorded = readFileSync(path.join(svc.dataDir, 'telemetry', 'telemetry.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      .filter((r) => r.deviceId === d.id);
    expect(recorded.map((r) => r.data.worker).sort()).to.deep.equal([1, 2]);
    expect(recorded[0]).to.include({ serialHex: d.serialHex, issuerId: 'device' });
    expect(Date.parse(recorded[0].receivedAt)).to.be.closeTo(Date.now(), 60_000);
  });

  it('sends both workers\' device activity to the primary, where detections count it together: a rate spread over the workers suspends the device', async () => {
    const d = await fleet.enroll('WK-DETECT-1');
    const mfr = (await fleet.api('GET', `/api/v1/devices/${d.id}`)).json.manufacturerId as string;
    const put = await fleet.api('PUT', '/api/v1/detection-templates/home', {
      body: { assignedTo: { manufacturerIds: [mfr] }, rules: { rate: { maxMessages: 3, perSeconds: 60, action: 'suspend' } } },
    });
    expect(put.status, put.text).to.equal(200);
    const both = await fleet.onBothWorkers(d);
    // Two messages on each worker: neither worker alone is over 3 in 60 s; together they are.
    for (let round = 0; round < 2; round++) {
      for (const [w, socket] of both) {
        const r = await exchange(socket, 'POST /v1/telemetry HTTP/1.1', JSON.stringify({ worker: w, round }));
        expect(r?.status, `worker ${w}, round ${round}`).to.equal(202);
      }
    }
    const suspended = await until('the device suspended by the rate rule', async () => {
      const dev = (await fleet.api('GET', `/api/v1/devices/${d.id}`)).json;
      // (the detection's outcome is stored just after the suspension it made)
      return dev.status === 'suspended' && dev.statusReason !== undefined ? dev : undefined;
    });
    expect(suspended.statusReason, JSON.stringify(suspended)).to.include({ rule: 'rate', templateId: 'home' });
    // The suspension reaches both workers: their open connections are closed.
    for (const [w, socket] of both) await until(`worker ${w}'s connection closed`, () => socket.destroyed || socket.readyState === 'closed');
  });

  it('replaces a worker that was killed, forgets its sessions, and serves from the new one', async () => {
    const d = await fleet.enroll('WK-RESTART-1');
    const certKey = certKeyOf('device', d.serialHex);
    const both = await fleet.onBothWorkers(d);
    await until('two sessions counted', () => svc.service.gateway.sessions.sessionsOf(certKey).open === 2);
    const old = cluster.workers()[0];
    const restartsBefore = cluster.stats().workers!.restarts;
    const gone = new Promise<void>((r) => both.get(1)!.once('close', () => r()));
    process.kill(old.pid!, 'SIGKILL');
    await gone;
    await until('the killed worker\'s session dropped', () => svc.service.gateway.sessions.sessionsOf(certKey).open === 1);
    const replaced = await until('a new worker in slot 1', () => {
      const w = cluster.workers()[0];
      return w.pid !== old.pid && w.pid !== undefined && w.ready ? w : undefined;
    }, 20_000);
    expect(replaced.slot).to.equal(1);
    expect(cluster.stats().workers!.restarts).to.equal(restartsBefore + 1);
    expect(await healthz(both.get(2)!), 'the other worker\'s connection was untouched').to.equal(2);
    const again = await fleet.onBothWorkers(d);
    expect(again.has(1)).to.equal(true);
  });

  it('stopping the service stops both workers', async () => {
    const pids = cluster.workers().map((w) => w.pid!);
    expect(pids.every(running)).to.equal(true);
    const stopping = svc;
    svc = undefined as unknown as TestService;
    await stopping.stop();
    expect(pids.filter(running), 'workers still running after close()').to.deep.equal([]);
    expect(cluster.workers().every((w) => w.pid === undefined && !w.listening)).to.equal(true);
  });
});


/** `kakuin serve --role ROLES` as a child; resolves with the URL the banner line matched. */
function spawnRole(roles: string, env: Record<string, string>, banner: RegExp): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [cliMain, 'serve', '--role', roles], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kakuin serve --role ${roles} did not start in time:\n${out}`)), 30_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = banner.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1] });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kakuin serve --role ${roles} exited with ${code}:\n${out}`));
    });
  });
}

/** The child processes of `pid` (the gateway workers of a primary). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

/** Running, i.e. neither gone nor a zombie (this container's PID 1 does not always reap orphans). */
function running(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(stat, 'utf8'));
  } catch {
    return false;
  }
}

describe('gateway workers in `kakuin serve --role gateway` (a process of its own on the shared registry)', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let ca: { proc: ChildProcess; url: string } | undefined;
  let gw: { proc: ChildProcess; url: string } | undefined;
  let fleet: Fleet | undefined;

  const stop = async (p: { proc: ChildProcess } | undefined, signal: NodeJS.Signals = 'SIGTERM') => {
    if (p === undefined || p.proc.exitCode !== null || p.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.proc.once('exit', () => r()));
    p.proc.kill(signal);
    await exited;
  };
  after(async () => {
    fleet?.destroyAll();
    await stop(gw);
    await stop(ca);
    tmp?.cleanup();
  });

  it('both workers follow the feed (a revocation in the ca process closes the device on each), and stopping or killing the primary ends them', async () => {
    tmp = makeTempDir();
    const dataDir = path.join(tmp.dir, 'data');
    const env = testEnv(dataDir, { KAKUIN_OCSP_PORT: String(await freePort()), KAKUIN_GATEWAY_PORT: String(await freePort()) });
    ca = await spawnRole('ca,enrollment', env, /management API\s+(https:\/\/\S+?)\/api\/v1/);
    const gatewayEnv = { ...env, KAKUIN_GATEWAY_WORKERS: '2' };
    gw = await spawnRole('gateway', gatewayEnv, /device gateway\s+(https:\/\/\S+)/);
    const rootPem = readFileSync(path.join(dataDir, 'ca', 'root.pem'), 'utf8');
    fleet = new Fleet({ apiUrl: ca.url, rootPem, token: env.KAKUIN_ADMIN_TOKEN, dir: tmp.dir, gatewayUrl: gw.url });
    const workers = childrenOf(gw.proc.pid!);
    expect(workers, 'two worker processes under the gateway process').to.have.length(2);

    const d = await fleet.enroll('WK-ROLE-1');
    await until('the gateway workers see the new certificate', async () => {
      const { socket } = await fleet!.connect(d);
      const w = await healthz(socket);
      socket.destroy();
      return w !== undefined;
    });
    const both = await fleet.onBothWorkers(d);
    const closed = [...both.values()].map((s) => new Promise<number>((r) => s.once('close', () => r(Date.now()))));
    const revoked = await fleet.api('POST', `/api/v1/devices/${d.id}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(revoked.status, revoked.text).to.equal(200);
    const returnedAt = Date.now();
    const at = await Promise.race([Promise.all(closed), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still open 1 s after the revocation')), 1_000))]);
    expect(Math.max(...at) - returnedAt).to.be.below(1_000);
    const { socket } = await fleet.connect(d);
    expect(await healthz(socket), 'refused after the revocation').to.equal(undefined);

    await stop(gw);
    await until('both workers stopped with the primary', () => workers.every((pid) => !running(pid)), 10_000);

    gw = await spawnRole('gateway', gatewayEnv, /device gateway\s+(https:\/\/\S+)/);
    const second = childrenOf(gw.proc.pid!);
    expect(second).to.have.length(2);
    await stop(gw, 'SIGKILL');
    await until('the orphaned workers exited on their own', () => second.every((pid) => !running(pid)), 10_000);
  });
});
