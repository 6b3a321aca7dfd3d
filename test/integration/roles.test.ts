/**
 * `kakuin serve --role ...`: the CA and management API in one process, an OCSP responder and a
 * device gateway each in a process of its own, all on one SQLite registry. A revocation made
 * through the API reaches the other two within 1 s, and the gateway process's MQTT front end (in
 * front of a real Mosquitto) cuts the device's open session.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import mqtt from 'mqtt';
import { encodeCertId, encodeOcspRequest, fromPem, parseCertificate, parseOcspResponse } from '../../pkix/index.js';
import { openSqliteRegistry } from '../../registry/sqlite/index.js';
import { startMosquitto, type Broker } from '../gateway-auth/mqtt/broker.js';
import { cliMain, freePort, makeTempDir, opensslOk } from '../support/index.js';
import { ocspStatus, request, testEnv } from '../support/service.js';

interface RoleProcess {
  proc: ChildProcess;
  /** The URL the banner line matched. */
  url: string;
  output: () => string;
}

/** `kakuin serve --role ROLES` as a child; resolves with the URL of the banner line `banner` matches. */
function spawnRole(roles: string, env: Record<string, string>, banner: RegExp): Promise<RoleProcess> {
  const proc = spawn(process.execPath, [cliMain, 'serve', '--role', roles], {
    env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  proc.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kakuin serve --role ${roles} did not start in time:\n${out}`)), 30_000);
    const check = () => {
      const m = banner.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        resolve({ proc, url: m[1], output: () => out });
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kakuin serve --role ${roles} exited with ${code}:\n${out}`));
    });
  });
}

function stop(p: RoleProcess | undefined): Promise<void> {
  if (!p || p.proc.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.proc.once('exit', () => resolve());
    p.proc.kill('SIGTERM');
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('roles: separate processes sharing one registry', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup: () => void };
  let ca: RoleProcess | undefined;
  let ocsp: RoleProcess | undefined;
  let gateway: RoleProcess | undefined;
  let ocsp2: RoleProcess | undefined;
  let broker: Broker | undefined;

  after(async () => {
    await Promise.all([stop(gateway), stop(ocsp), stop(ocsp2)]);
    await stop(ca);
    await broker?.stop();
    tmp?.cleanup();
  });

  it('a revocation through the API process reaches an OCSP process and a gateway process within 1 s', async () => {
    tmp = makeTempDir();
    const dataDir = path.join(tmp.dir, 'data');
    broker = await startMosquitto();
    const mqttPort = await freePort();
    const env = testEnv(dataDir, {
      KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0',
      KAKUIN_GATEWAY_MQTT_PORT: String(mqttPort), KAKUIN_GATEWAY_MQTT_UPSTREAM_URL: `mqtt://127.0.0.1:${broker.recipePort}`,
    });
    ca = await spawnRole('ca,enrollment', env, /management API\s+(https:\/\/\S+?)\/api\/v1/);
    expect(ca.output(), 'the ca,enrollment process runs no OCSP listener nor gateway').to.not.match(/OCSP, CRLs|device gateway/);
    [ocsp, gateway, ocsp2] = await Promise.all([
      spawnRole('ocsp', env, /OCSP, CRLs\s+(http:\/\/\S+?)\/ocsp,/),
      spawnRole('gateway', env, /device gateway\s+(https:\/\/\S+)/),
      spawnRole('ocsp', env, /OCSP, CRLs\s+(http:\/\/\S+?)\/ocsp,/),
    ]);
    expect(gateway.output()).to.not.match(/management API|OCSP, CRLs/);

    const rootPem = readFileSync(path.join(dataDir, 'ca', 'root.pem'), 'utf8');
    const api = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(ca!.url, rootPem, m, p, { token: env.KAKUIN_ADMIN_TOKEN, ...o });
    const mfr = await api('POST', '/api/v1/manufacturers', { body: { name: 'Roles Works' } });
    const dev = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr.json.id, serialNumber: 'RL-0001' } });
    const keyFile = path.join(tmp.dir, 'device.key');
    const csrFile = path.join(tmp.dir, 'device.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-subj', '/serialNumber=RL-0001', '-out', csrFile]);
    const issued = await api('POST', `/api/v1/devices/${dev.json.id}/certificates`, { body: opensslOk(['req', '-in', csrFile]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    // Its /metrics reports what it runs: no OCSP listener or gateway figures, the CAs' expiry.
    const metrics = await api('GET', '/metrics');
    expect(metrics.status, metrics.text).to.equal(200);
    expect(metrics.text).to.match(/^kakuin_ca_certificate_not_after_seconds\{issuer="device"\} \d+/m);
    expect(metrics.text).to.match(/^kakuin_device_certificates_issued_total 1$/m);
    expect(metrics.text).to.match(/^kakuin_enrollments_total\{outcome="issued"\} 0$/m);
    expect(metrics.text).to.not.match(/kakuin_gateway_|kakuin_ocsp_responses_total/);

    // The OCSP request for the device certificate (SHA-1 CertID, no nonce: the pre-signed path).
    const deviceCa = parseCertificate(fromPem(readFileSync(path.join(dataDir, 'ca', 'device.pem'), 'utf8'), 'CERTIFICATE')[0]);
    const leaf = parseCertificate(fromPem(issued.json.certificate, 'CERTIFICATE')[0]);
    const ocspRequest = encodeOcspRequest([encodeCertId('sha1', deviceCa.subject.rawDer, deviceCa.spki.subjectPublicKey, leaf.serial)]);
    // Issued after the OCSP processes started: they learn of it from the feed.
    let good = '';
    for (let i = 0; i < 50 && good !== 'good'; i++) {
      good = await ocspStatus(ocsp.url, ocspRequest);
      if (good !== 'good') await sleep(20);
    }
    expect(good).to.equal('good');
    expect(await ocspStatus(ocsp2.url, ocspRequest), 'a second OCSP process side by side').to.equal('good');

    // The device connects to the gateway process over mTLS and keeps the connection open.
    const agent = new https.Agent({
      keepAlive: true, maxSockets: 1, ca: rootPem, cert: issued.json.certificate, key: readFileSync(keyFile, 'utf8'),
    });
    let socket: Socket | undefined;
    const telemetry = () => new Promise<number>((resolve, reject) => {
      const req = https.request(`${gateway!.url}/v1/telemetry`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('socket', (s: Socket) => { socket = s; });
      req.on('error', reject);
      req.end('{"temperature":20}');
    });
    expect(await telemetry()).to.be.oneOf([200, 202]);
    expect(socket, 'the keep-alive connection').to.not.equal(undefined);
    let closedAt: number | undefined;
    socket!.once('close', () => { closedAt = Date.now(); });

    // The same device holds an MQTT session through the gateway process's MQTT front end.
    expect(gateway.output()).to.contain(`:${mqttPort}`);
    const deviceId = dev.json.id as string;
    const client = await mqtt.connectAsync(`mqtts://localhost:${mqttPort}`, {
      clientId: deviceId, protocolVersion: 5, reconnectPeriod: 0, ca: rootPem, cert: issued.json.certificate, key: readFileSync(keyFile, 'utf8'),
    });
    let mqttClosedAt: number | undefined;
    client.once('close', () => { mqttClosedAt = Date.now(); });
    const granted = await client.subscribeAsync(`devices/${deviceId}/commands/#`);
    expect(granted.map((g) => g.qos), 'subscribed through the gateway process').to.deep.equal([0]);

    const revoked = await api('POST', `/api/v1/devices/${dev.json.id}/revoke`, { body: { reason: 'keyCompromise' } });
    const returnedAt = Date.now();
    expect(revoked.status, revoked.text).to.equal(200);

    let ocspRevokedAt: number | undefined;
    let ocsp2RevokedAt: number | undefined;
    while (Date.now() - returnedAt < 1500 && (ocspRevokedAt === undefined || ocsp2RevokedAt === undefined || closedAt === undefined)) {
      const [a, b] = await Promise.all([ocspStatus(ocsp.url, ocspRequest), ocspStatus(ocsp2.url, ocspRequest)]);
      if (a === 'revoked') ocspRevokedAt ??= Date.now();
      if (b === 'revoked') ocsp2RevokedAt ??= Date.now();
      await sleep(20);
    }
    expect(ocspRevokedAt, 'the OCSP process answers revoked').to.not.equal(undefined);
    expect(ocspRevokedAt! - returnedAt).to.be.below(1000);
    expect(ocsp2RevokedAt, 'the second OCSP process answers revoked').to.not.equal(undefined);
    expect(ocsp2RevokedAt! - returnedAt).to.be.below(1000);
    expect(closedAt, 'the gateway process closed the open connection').to.not.equal(undefined);
    expect(closedAt! - returnedAt).to.be.below(1000);
    agent.destroy();
    for (let i = 0; i < 100 && mqttClosedAt === undefined; i++) await sleep(20);
    client.end(true);
    expect(mqttClosedAt, 'the gateway process cut the MQTT session').to.not.equal(undefined);
    expect(mqttClosedAt! - returnedAt).to.be.below(1000);

    // And it refuses a new connection.
    const fresh = new https.Agent({ ca: rootPem, cert: issued.json.certificate, key: readFileSync(keyFile, 'utf8') });
    const refused = await new Promise<string>((resolve) => {
      const req = https.request(`${gateway!.url}/v1/telemetry`, { method: 'POST', agent: fresh, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(`HTTP ${res.statusCode}`);
      });
      req.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      req.end('{}');
    });
    expect(refused).to.match(/^error /);
    fresh.destroy();
    // The ocsp processes open the registry read-only and sign changes in memory; the ca process's
    // pre-signer stored the device certificate's response (what an ocsp process loads at start),
    // and re-signed it as revoked.
    const registry = await openSqliteRegistry({ path: path.join(dataDir, 'kakuin.db'), readonly: true });
    let storedStatus = '';
    for (let i = 0; i < 100 && storedStatus !== 'revoked'; i++) {
      const stored = await registry.getOcspResponse('device', leaf.serialHex);
      storedStatus = stored === undefined ? 'missing' : parseOcspResponse(stored.der).responses[0].certStatus.status;
      if (storedStatus !== 'revoked') await sleep(20);
    }
    await registry.close();
    expect(storedStatus, 'stored (pre-signed by the ca role) response').to.equal('revoked');
    console.log(`      revoke → OCSP revoked ${ocspRevokedAt! - returnedAt} ms / ${ocsp2RevokedAt! - returnedAt} ms, gateway closed ${closedAt! - returnedAt} ms, MQTT session cut ${mqttClosedAt! - returnedAt} ms`);
  });

  it('refuses an unknown role (KAKUIN_E_USAGE), and an ocsp or gateway process before a ca process made the CA', async () => {
    const dir = makeTempDir();
    const run = (roles: string) => new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(process.execPath, [cliMain, 'serve', '--role', roles], {
        env: { PATH: process.env.PATH ?? '', ...testEnv(path.join(dir.dir, 'data'), { KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0' }) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stdout.resume();
      child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
      child.once('exit', (code) => resolve({ code, err }));
    });
    try {
      const unknown = await run('ca,hsm');
      expect(unknown.code).to.equal(2);
      expect(unknown.err).to.contain('KAKUIN_E_USAGE');
      expect(unknown.err).to.contain('"hsm"');
      for (const roles of ['ocsp', 'gateway']) {
        const early = await run(roles);
        expect(early.code, early.err).to.equal(1);
        expect(early.err).to.contain('KAKUIN_E_CA_NOT_INITIALIZED');
      }
    } finally {
      dir.cleanup();
    }
  });
});
