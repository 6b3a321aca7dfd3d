/**
 * A FreeRADIUS 3.2 daemon for EAP-TLS in a temp dir (free port, pid file and log there) whose
 * ca_path the sync sidecar keeps, its restart script (what `systemctl restart freeradius` does),
 * and `eapol_test` as the supplicant. Shared by freeradius.test.ts and bench/crl-to-freeradius.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from './fixture.js';

export const SECRET = 'kakuin-test-secret';

export function radiusdConf(dir: string, port: number, serverCert: string, serverKey: string): string {
  return `prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = ${dir}
sbindir = /usr/sbin
logdir = ${dir}/log
raddbdir = ${dir}
radacctdir = ${dir}/log
name = radiusd
confdir = ${dir}
modconfdir = ${dir}
run_dir = ${dir}/run
db_dir = ${dir}
libdir = /usr/lib/freeradius
dictdir = /usr/share/freeradius
pidfile = ${dir}/run/radiusd.pid
max_request_time = 10
cleanup_delay = 1
max_requests = 1024
hostname_lookups = no
log {
  destination = files
  file = ${dir}/log/radius.log
  auth = yes
}
security {
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}
thread pool {
  start_servers = 2
  max_servers = 4
  min_spare_servers = 1
  max_spare_servers = 3
  max_requests_per_server = 0
}
client localhost {
  ipaddr = 127.0.0.1
  secret = ${SECRET}
}
modules {
  eap {
    default_eap_type = tls
    timer_expire = 60
    max_sessions = 256
    tls-config tls-common {
      private_key_file = ${serverKey}
      certificate_file = ${serverCert}
      ca_path = ${dir}/certs
      check_crl = yes
      # FreeRADIUS verifies with X509_V_FLAG_PARTIAL_CHAIN: the device CA in ca_path is itself a trust
      # anchor, so its own CRL (the root's) cannot be checked and check_all_crl refuses every device.
      check_all_crl = no
      tls_min_version = "1.2"
      tls_max_version = "1.2"
      cipher_list = "DEFAULT"
      cache {
        enable = no
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
    eap
  }
  authenticate {
    eap
  }
}
`;
}


/** eapol_test's configuration for one EAP-TLS supplicant: the device's certificate and key. */
export function eapolNetworkConf(identity: string, d: { certFile: string; keyFile: string }): string {
  return `network={\n  key_mgmt=IEEE8021X\n  eap=TLS\n  identity="${identity}"\n  client_cert="${d.certFile}"\n  private_key="${d.keyFile}"\n  eapol_flags=0\n}\n`;
}

export interface RadiusDaemon {
  dir: string;
  port: number;
  /** The hashed directory (`ca_path`) the sidecar writes with --hashed-dir. */
  certs: string;
  /** Restarts (or starts) the daemon: the sidecar's --exec. */
  restartScript: string;
  log(): string;
  /** One EAP-TLS authentication by eapol_test; 'accept', 'reject' or 'no answer' (within timeoutS). */
  authenticate(d: { certFile: string; keyFile: string }, name: string, timeoutS?: number): 'accept' | 'reject' | 'no answer';
  /** Stops the daemon this directory's pid file names (started by the restart script). */
  stop(): Promise<void>;
}

export function prepareRadius(dir: string, port: number, serverCert: string, serverKey: string): RadiusDaemon {
  for (const d of ['log', 'run', 'certs']) mkdirSync(path.join(dir, d), { recursive: true });
  writeFileSync(path.join(dir, 'radiusd.conf'), radiusdConf(dir, port, serverCert, serverKey));
  const pidFile = path.join(dir, 'run', 'radiusd.pid');
  const restartScript = path.join(dir, 'restart.sh');
  // Stop the daemon if it runs, start it; the parent returns once the server is up.
  writeFileSync(restartScript, `#!/bin/sh
pid=$(cat ${pidFile} 2>/dev/null)
# Gone means no process or a zombie (state Z: in a container whose PID 1 does not reap, the daemon
# killed here may stay one, and kill -0 still succeeds on it); KILL after 10 s.
alive() { kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)" != Z ]; }
if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
  n=0
  while alive "$pid"; do
    n=$((n + 1)); [ "$n" -eq 200 ] && kill -KILL "$pid" 2>/dev/null
    sleep 0.05
  done
fi
exec freeradius -d ${dir} -n radiusd
`, { mode: 0o755 });
  const logFile = path.join(dir, 'log', 'radius.log');
  return {
    dir, port, certs: path.join(dir, 'certs'), restartScript,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    authenticate(d, name, timeoutS = 2) {
      const conf = path.join(dir, `eapol-${name}.conf`);
      writeFileSync(conf, eapolNetworkConf(name, d));
      const r = spawnSync('eapol_test', ['-c', conf, '-a', '127.0.0.1', '-p', String(port), '-s', SECRET, '-t', String(timeoutS), '-r', '0'],
        { encoding: 'utf8', timeout: 15_000 });
      if (r.status === 0 && /code=2 \(Access-Accept\)/.test(r.stdout)) return 'accept';
      if (/code=3 \(Access-Reject\)/.test(r.stdout)) return 'reject';
      return 'no answer';
    },
    async stop() {
      if (!existsSync(pidFile)) return;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      try {
        process.kill(pid, 'SIGTERM');
        // A zombie (state Z, not reaped by this container's PID 1) has stopped too.
        const gone = () => {
          try {
            process.kill(pid, 0);
          } catch {
            return true;
          }
          try {
            return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z' || undefined;
          } catch {
            return true;
          }
        };
        await waitFor('FreeRADIUS to stop', 10_000, gone);
      } catch { /* already gone */ }
    },
  };
}
