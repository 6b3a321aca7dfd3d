/**
 * The MQTT front end as `kakuin serve` wires it (KAKUIN_GATEWAY_MQTT_UPSTREAM_URL), in front of a
 * real Mosquitto configured as README "Putting kakuin in front of your MQTT broker" says (internal
 * listener on 127.0.0.1, ACL by user name = device id): a device enrolled through the management
 * API publishes with `mosquitto_pub -i <deviceId>`, and its open `mosquitto_sub` goes when the API
 * revokes it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import mqtt, { type MqttClient } from 'mqtt';
import { startMosquitto, type Broker } from '../gateway-auth/mqtt/broker.js';
import { freePort, makeTempDir, opensslOk } from '../support/index.js';
import { request, startTestService, type TestService } from '../support/service.js';

function run(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

describe('MQTT front end wired into kakuin serve, in front of the README Mosquitto', function () {
  this.timeout(60_000);
  let broker: Broker;
  let svc: TestService;
  let tmp: { dir: string; cleanup: () => void };
  let observer: MqttClient;
  const seen: string[] = [];
  let mqttPort: number;

  before(async () => {
    tmp = makeTempDir();
    broker = await startMosquitto();
    mqttPort = await freePort();
    svc = await startTestService({
      env: {
        KAKUIN_OCSP_PORT: '0', KAKUIN_GATEWAY_PORT: '0', KAKUIN_GATEWAY_MQTT_PORT: String(mqttPort),
        KAKUIN_GATEWAY_MQTT_UPSTREAM_URL: `mqtt://127.0.0.1:${broker.recipePort}`,
      },
    });
    observer = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.openPort}`, { clientId: 'observer', reconnectPeriod: 0 });
    observer.on('message', (t, p) => seen.push(`${t} ${p.toString()}`));
    await observer.subscribeAsync('#');
  });
  after(async () => {
    await observer?.endAsync(true);
    await svc?.stop();
    await broker?.stop();
    tmp?.cleanup();
  });

  it('an enrolled device publishes through kakuin (the broker\'s ACL sees user name = device id) and is cut off on revocation', async () => {
    expect(svc.service.gateway.gateway.mqttAddress()?.port).to.equal(mqttPort);
    const api = (m: string, p: string, o: Parameters<typeof request>[4] = {}) => request(svc.url, svc.rootPem, m, p, { token: svc.adminToken, ...o });
    const mfr = await api('POST', '/api/v1/manufacturers', { body: { name: 'MQTT Works' } });
    const dev = await api('POST', '/api/v1/devices', { body: { manufacturerId: mfr.json.id, serialNumber: 'MQ-0001' } });
    const deviceId = dev.json.id as string;
    const key = path.join(tmp.dir, 'device.key');
    const csr = path.join(tmp.dir, 'device.csr');
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-subj', '/serialNumber=MQ-0001', '-out', csr]);
    const issued = await api('POST', `/api/v1/devices/${deviceId}/certificates`, { body: opensslOk(['req', '-in', csr]), contentType: 'application/pkcs10' });
    expect(issued.status, issued.text).to.equal(201);
    const cert = path.join(tmp.dir, 'device.pem');
    const root = path.join(tmp.dir, 'root.pem');
    writeFileSync(cert, issued.json.certificate);
    writeFileSync(root, svc.rootPem);
    const tlsArgs = ['-h', 'localhost', '-p', String(mqttPort), '--cafile', root, '--cert', cert, '--key', key];

    // The README's commands.
    const pub = await run('mosquitto_pub', [...tlsArgs, '-i', deviceId, '-t', `devices/${deviceId}/telemetry`, '-m', '{"temperature":21.5}', '-q', '1']);
    expect(pub.code, pub.stderr).to.equal(0);
    const until = Date.now() + 3_000;
    while (!seen.includes(`devices/${deviceId}/telemetry {"temperature":21.5}`) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(seen).to.include(`devices/${deviceId}/telemetry {"temperature":21.5}`);

    const sub = spawn('mosquitto_sub', [...tlsArgs, '-i', deviceId, '-t', `devices/${deviceId}/commands/#`, '-V', 'mqttv5'], { stdio: 'ignore' });
    const exited = once(sub, 'exit');
    const stats = () => svc.service.gateway.gateway.stats().mqtt!;
    const opened = stats().sessionsOpened;
    while (stats().sessionsOpened === opened && Date.now() < until + 5_000) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    const revoked = await api('POST', `/api/v1/devices/${deviceId}/revoke`, { body: { reason: 'keyCompromise' } });
    expect(revoked.status).to.equal(200);
    const result = await Promise.race([exited.then(() => 'exited'), new Promise((r) => setTimeout(() => r('timeout'), 5_000))]);
    if (result !== 'exited') sub.kill('SIGKILL');
    expect(result).to.equal('exited');
    console.log(`      revoke (API) → mosquitto_sub disconnected in ${Date.now() - t0} ms`);
    const again = await run('mosquitto_pub', [...tlsArgs, '-i', deviceId, '-t', `devices/${deviceId}/telemetry`, '-m', 'x']);
    expect(again.code).to.not.equal(0);
  });
});
