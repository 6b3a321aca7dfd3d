/**
 * Recipe: Mosquitto `crlfile` kept by `kakuin revocation sync --exec "kill -HUP …"` (Debian
 * mosquitto 2.0, started by the test on a free port). After the sidecar's SIGHUP a revoked device's
 * new connection is refused; a session it opened before stays open — Mosquitto cannot cut it
 * (kakuin's own MQTT front end does that), and this test pins that limitation down.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { freePort, peers, requirePeers } from '../support/index.js';
import { startRelyingPartyKakuin, startSidecar, waitFor, type RelyingPartyKakuin, type Sidecar } from './fixture.js';

describe('recipe: Mosquitto crlfile + SIGHUP from the sync sidecar', function () {
  this.timeout(90_000);
  let k: RelyingPartyKakuin;
  let sidecar: Sidecar | undefined;
  let broker: ChildProcess | undefined;
  let subscriber: ChildProcess | undefined;
  let dir: string;
  let port: number;

  before(async function () {
    requirePeers(this, [peers.mosquitto, peers.mosquittoClients]);
    k = await startRelyingPartyKakuin();
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

  const publish = (d: { certFile: string; keyFile: string }, message: string) => spawnSync('mosquitto_pub', [
    '-h', '127.0.0.1', '-p', String(port), '--cafile', k.serverCert, '--insecure', '--cert', d.certFile, '--key', d.keyFile,
    '-t', 'fleet/telemetry', '-m', message, '-q', '1',
  ], { encoding: 'utf8', timeout: 10_000 });

  it('after the sidecar\'s SIGHUP a revoked device cannot connect; its session opened before stays open', async () => {
    const good = await k.device('mqtt-good');
    const stolen = await k.device('mqtt-stolen');
    const bundle = path.join(dir, 'kakuin-crls.pem');
    const pidFile = path.join(dir, 'mosquitto.pid');
    sidecar = startSidecar(['--url', k.httpUrl, '--trust', k.rootFile, '--issuer', 'device', '--with-chain', '--pem-out', bundle,
      '--exec', `kill -HUP "$(cat ${pidFile})"`, '--min-reload-interval', '1']);
    await waitFor('the first bundle', 15_000, () => (existsSync(bundle) && readFileSync(bundle, 'utf8').includes('X509 CRL')) || undefined);
    writeFileSync(path.join(dir, 'mosquitto.conf'), [
      // As root, Mosquitto drops to user mosquitto unless told otherwise; the files here are ours.
      `user ${userInfo().username}`, 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice',
      `listener ${port} 127.0.0.1`, `cafile ${k.caFile}`, `certfile ${k.serverCert}`, `keyfile ${k.serverKey}`,
      'require_certificate true', 'use_subject_as_username true', `crlfile ${bundle}`, '',
    ].join('\n'));
    broker = spawn('mosquitto', ['-c', path.join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let brokerLog = '';
    broker.stderr!.on('data', (d: Buffer) => { brokerLog += d.toString(); });
    writeFileSync(pidFile, String(broker.pid));
    await waitFor('the broker accepting the good device', 10_000, () => publish(good, 'hello').status === 0 || undefined)
      .catch((e) => { throw new Error(`${(e as Error).message}\n${publish(good, 'hello').stderr}\n${brokerLog}`); });
    expect(publish(stolen, 'before').status).to.equal(0);

    // The stolen device's session, opened before the revocation.
    let received = '';
    subscriber = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), '--cafile', k.serverCert, '--insecure',
      '--cert', stolen.certFile, '--key', stolen.keyFile, '-t', 'fleet/#', '-q', '1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    subscriber.stdout!.on('data', (d: Buffer) => { received += d.toString(); });
    await waitFor('the subscription', 10_000, () => { publish(good, 'ping'); return received.includes('ping') || undefined; });

    await k.revoke(stolen.serialHex);
    const refused = await waitFor('the broker refusing the revoked device', 15_000, () => publish(stolen, 'after').status !== 0 || undefined);
    expect(sidecar.output()).to.include('relying party reloaded');
    expect(publish(good, 'still-good').status).to.equal(0);
    expect(refused.ms).to.be.below(10_000);
    // Mosquitto does not re-check sessions it already has: the revoked device still receives.
    await waitFor('the old session still receiving', 5000, () => received.includes('still-good') || undefined);
    expect(subscriber.exitCode).to.equal(null);
  });
});
