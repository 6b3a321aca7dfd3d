/**
 * Recipe: Mosquitto (Debian mosquitto 2.0) naming each device by its certificate:
 * `use_identity_as_username true` takes the CN as the MQTT username, and kakuin puts the device id
 * there (`ca.device.commonName: deviceId`), so an ACL `pattern` with `%u` gives every device its own
 * topics. Revocation reaches the broker as a CRL file (`crlfile`) kept by `kakuin revocation sync`
 * (Mosquitto has no OCSP for clients); the revoke → refused time is measured here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, peers, requirePeers } from '../support/index.js';
import { startRelyingPartyKakuin, startSidecar, waitFor, type RelyingPartyKakuin, type Sidecar } from '../revocation-sync/fixture.js';

describe('recipe: Mosquitto use_identity_as_username with the device id as CN', function () {
  this.timeout(60_000);
  let k: RelyingPartyKakuin;
  let sidecar: Sidecar | undefined;
  let broker: ChildProcess | undefined;
  let subscriber: ChildProcess | undefined;
  let brokerLog = '';
  let dir: string;
  let port: number;

  before(async function () {
    requirePeers(this, [peers.mosquitto, peers.mosquittoClients]);
    k = await startRelyingPartyKakuin({ env: { KAKUIN_DEVICE_COMMON_NAME: 'deviceId' } });
    dir = path.join(k.tmp.dir, 'mosquitto');
    mkdirSync(dir, { recursive: true });
    port = await freePort();
  });

  after(async () => {
    subscriber?.kill('SIGTERM');
    await sidecar?.stop();
    if (broker && broker.exitCode === null) {
      const exited = new Promise((r) => broker!.once('exit', r));
      broker.kill('SIGTERM');
      await exited;
    }
    await k?.stop();
  });

  /** One `mosquitto_pub` run (a new TLS connection); its exit status. */
  const publish = (d: { certFile: string; keyFile: string }, topic: string, message: string) => new Promise<number>((resolve) => {
    const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '--cafile', k.serverCert, '--insecure',
      '--cert', d.certFile, '--key', d.keyFile, '-t', topic, '-m', message, '-q', '1'], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (code) => { clearTimeout(timer); resolve(code ?? -1); });
  });

  it('each device is named by its device id and may write only its own topics; revoked, it is refused once the sidecar has reloaded the CRL', async () => {
    const camera = await k.device('mqtt-id-camera');
    const monitor = await k.device('mqtt-id-monitor');
    const bundle = path.join(dir, 'kakuin-crls.pem');
    const pidFile = path.join(dir, 'mosquitto.pid');
    sidecar = startSidecar(['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--with-chain', '--pem-out', bundle,
      '--exec', `kill -HUP "$(cat ${pidFile})"`, '--min-reload-interval', '1']);
    await waitFor('the first bundle', 15_000, () => (existsSync(bundle) && readFileSync(bundle, 'utf8').includes('X509 CRL')) || undefined);
    writeFileSync(path.join(dir, 'acl'), [
      '# every device reads the fleet\'s telemetry and writes only under its own id (the CN, as username)',
      'pattern read devices/#', 'pattern write devices/%u/telemetry', '',
    ].join('\n'));
    writeFileSync(path.join(dir, 'mosquitto.conf'), [
      `user ${userInfo().username}`, 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice',
      `listener ${port} 127.0.0.1`, `cafile ${k.caFile}`, `certfile ${k.serverCert}`, `keyfile ${k.serverKey}`,
      'require_certificate true', 'use_identity_as_username true', `crlfile ${bundle}`, `acl_file ${path.join(dir, 'acl')}`, '',
    ].join('\n'));
    broker = spawn('mosquitto', ['-c', path.join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    broker.stderr!.on('data', (d: Buffer) => { brokerLog += d.toString(); });
    writeFileSync(pidFile, String(broker.pid));
    const own = `devices/${camera.deviceId}/telemetry`;
    await waitFor('the broker accepting the camera', 10_000, async () => (await publish(camera, own, 'hello')) === 0 || undefined)
      .catch((e) => { throw new Error(`${(e as Error).message}\n${brokerLog}`); });
    // Mosquitto logs the username it took from the certificate: the device id.
    expect(brokerLog).to.include(`u'${camera.deviceId}'`);

    let received = '';
    subscriber = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '--cafile', k.serverCert, '--insecure',
      '--cert', monitor.certFile, '--key', monitor.keyFile, '-t', 'devices/#', '-q', '1', '-v'], { stdio: ['ignore', 'pipe', 'ignore'] });
    subscriber.stdout!.on('data', (d: Buffer) => { received += d.toString(); });
    await waitFor('the monitor\'s subscription', 10_000, async () => { await publish(camera, own, 'ping'); return received.includes(`${own} ping`) || undefined; });
    // Writing under another device's id is dropped by the ACL; its own topic still works.
    expect(await publish(camera, `devices/${monitor.deviceId}/telemetry`, 'forged')).to.equal(0);
    expect(await publish(camera, own, 'marker')).to.equal(0);
    await waitFor('the marker', 5000, () => received.includes(`${own} marker`) || undefined);
    expect(received).to.not.include('forged');

    const revokedAt = Date.now();
    await k.revoke(camera.serialHex);
    const refused = await waitFor('the broker refusing the revoked camera', 15_000, async () => (await publish(camera, own, 'after')) !== 0 || undefined);
    console.log(`      Mosquitto crlfile via kakuin revocation sync (--min-reload-interval 1): refused ${Date.now() - revokedAt} ms after the revoke call started`);
    expect(sidecar.output()).to.include('relying party reloaded');
    expect(refused.ms).to.be.below(10_000);
    expect(await publish(monitor, `devices/${monitor.deviceId}/telemetry`, 'still-good')).to.equal(0);
  });
});
