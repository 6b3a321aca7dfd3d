/**
 * Recipe: 802.1X with FreeRADIUS (Debian freeradius 3.2) doing EAP-TLS and checking each device
 * certificate by OCSP at the URL it carries, driven by `eapol_test` (Debian eapoltest) as the switch
 * port's supplicant + authenticator — the stolen camera on an 802.1X port: Access-Accept, revoke,
 * Access-Reject on its next authentication. `check_cert_cn = %{User-Name}` works because kakuin puts
 * the device id in the CN (`ca.device.commonName: deviceId`); the reply names the device by
 * `TLS-Client-Cert-Serial`, which is what a policy should bind on. One kakuin, one FreeRADIUS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { freeUdpPort, peers, requirePeers } from '../support/index.js';
import { eapolNetworkConf } from '../revocation-sync/freeradius.js';
import { startRelyingPartyKakuin, waitFor, type RelyingPartyKakuin } from '../revocation-sync/fixture.js';

const SECRET = 'kakuin-test-radius-secret';


/** The FreeRADIUS configuration of the recipe: one virtual server, the eap module with EAP-TLS + OCSP. */
function freeradiusConfig(dir: string, port: number, k: RelyingPartyKakuin): string {
  return `
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = ${dir}
sbindir = /usr/sbin
logdir = ${dir}/log
raddbdir = ${dir}
radacctdir = ${dir}/acct
name = freeradius
confdir = ${dir}
modconfdir = ${dir}
certdir = ${dir}
cadir = ${dir}
run_dir = ${dir}/run
db_dir = ${dir}
libdir = /usr/lib/freeradius
pidfile = ${dir}/run/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {
  destination = stdout
  auth = yes
}
security {
  allow_core_dumps = no
  max_attributes = 200
  # answer a refused device at once (the default holds Access-Reject back 1 s)
  reject_delay = 0
  status_server = no
}
thread pool {
  start_servers = 2
  max_servers = 4
  min_spare_servers = 1
  max_spare_servers = 4
}
client localhost {
  ipaddr = 127.0.0.1
  secret = ${SECRET}
}
modules {
  eap {
    default_eap_type = tls
    timer_expire = 60
    max_sessions = 64
    tls-config tls-common {
      private_key_file = ${k.serverKey}
      certificate_file = ${k.serverCert}
      # the device CA and the root
      ca_file = ${k.caFile}
      ca_path_reload_interval = 0
      check_crl = no
      # the device id is the certificate's CN (ca.device.commonName: deviceId)
      check_cert_cn = %{User-Name}
      cipher_list = "DEFAULT"
      ecdh_curve = "prime256v1"
      tls_min_version = "1.2"
      tls_max_version = "1.2"
      cache {
        enable = no
      }
      ocsp {
        enable = yes
        # the URL in each certificate (its authorityInfoAccess)
        override_cert_url = no
        use_nonce = yes
        timeout = 5
        softfail = no
      }
    }
    tls {
      tls = tls-common
    }
  }
}
server default {
  listen {
    type = auth
    ipaddr = 127.0.0.1
    port = ${port}
  }
  authorize {
    eap {
      ok = return
    }
  }
  authenticate {
    eap
  }
  post-auth {
    update reply {
      Reply-Message := "device certificate %{TLS-Client-Cert-Serial}"
    }
    Post-Auth-Type REJECT {
      eap
    }
  }
}
`;
}

describe('recipe: FreeRADIUS EAP-TLS with OCSP, driven by eapol_test', function () {
  this.timeout(60_000);
  let k: RelyingPartyKakuin;
  let radius: ChildProcess | undefined;
  let log = '';
  let dir: string;
  let port: number;

  before(async function () {
    requirePeers(this, [peers.freeradius, peers.eapolTest]);
    k = await startRelyingPartyKakuin({ env: { KAKUIN_DEVICE_COMMON_NAME: 'deviceId' } });
    dir = path.join(k.tmp.dir, 'freeradius');
    for (const sub of ['log', 'run', 'acct']) mkdirSync(path.join(dir, sub), { recursive: true });
    port = await freeUdpPort();
    writeFileSync(path.join(dir, 'radiusd.conf'), freeradiusConfig(dir, port, k));
    radius = spawn('freeradius', ['-f', '-x', '-l', 'stdout', '-d', dir, '-n', 'radiusd'], { stdio: ['ignore', 'pipe', 'pipe'] });
    radius.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
    radius.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor('FreeRADIUS ready', 20_000, () => {
      if (radius!.exitCode !== null) throw new Error(`freeradius exited ${radius!.exitCode}:\n${log}`);
      return /Ready to process requests/.test(log) || undefined;
    });
  });

  after(async () => {
    if (radius && radius.exitCode === null) {
      const exited = new Promise((r) => radius!.once('exit', r));
      radius.kill('SIGTERM');
      await exited;
    }
    await k?.stop();
  });

  /** One 802.1X authentication by `eapol_test` (async: kakuin answers FreeRADIUS's OCSP query from this process). */
  function authenticate(d: { certFile: string; keyFile: string }, identity: string): Promise<{ verdict: 'Access-Accept' | 'Access-Reject' | 'none'; output: string }> {
    const conf = path.join(dir, `eapol-${identity}-${Date.now()}.conf`);
    writeFileSync(conf, eapolNetworkConf(identity, d));
    return new Promise((resolve) => {
      const child = spawn('eapol_test', ['-c', conf, '-a', '127.0.0.1', '-p', String(port), '-s', SECRET, '-t', '10', '-n'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
      child.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
      child.on('close', () => {
        const verdict = /code=2 \(Access-Accept\)/.test(output) ? 'Access-Accept' : /code=3 \(Access-Reject\)/.test(output) ? 'Access-Reject' : 'none';
        resolve({ verdict, output });
      });
    });
  }

  it('a good device gets Access-Accept (named by its certificate serial); revoked, its next authentication gets Access-Reject', async () => {
    const camera = await k.device('radius-camera');
    const other = await k.device('radius-other');
    const first = await authenticate(camera, camera.deviceId);
    expect(first.verdict, first.output + log).to.equal('Access-Accept');
    expect(first.output).to.match(new RegExp(`device certificate ${camera.serialHex.toLowerCase()}`, 'i'));

    const revokedAt = Date.now();
    await k.revoke(camera.serialHex);
    const second = await authenticate(camera, camera.deviceId);
    const delay = Date.now() - revokedAt;
    expect(second.verdict, second.output).to.equal('Access-Reject');
    console.log(`      FreeRADIUS EAP-TLS + OCSP: Access-Reject ${delay} ms after the revoke call started (one eapol_test run included)`);
    expect(log).to.match(/ocsp: Cert status: revoked/);
    expect((await authenticate(other, other.deviceId)).verdict).to.equal('Access-Accept');
  });

  it('check_cert_cn = %{User-Name}: a device that claims another device\'s id as its identity gets Access-Reject', async () => {
    const a = await k.device('radius-cn-a');
    const b = await k.device('radius-cn-b');
    expect((await authenticate(a, a.deviceId)).verdict).to.equal('Access-Accept');
    const claimed = await authenticate(a, b.deviceId);
    expect(claimed.verdict, claimed.output).to.equal('Access-Reject');
    expect(log).to.match(new RegExp(`Certificate CN \\(${a.deviceId}\\) does not match specified value \\(${b.deviceId}\\)`));
  });
});
