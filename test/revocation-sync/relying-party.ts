/** A client of the relying parties under test: one fresh mTLS connection per call (new handshake). */
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import tls from 'node:tls';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../support/index.js';

/** HTTPS GET with a client certificate; the status, or 'refused' when the TLS layer refuses it. */
export function httpsWithClientCert(url: string, certFile: string, keyFile: string): Promise<number | 'refused'> {
  return new Promise((resolve) => {
    const req = https.get(url, { cert: readFileSync(certFile), key: readFileSync(keyFile), rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve('refused'));
    req.on('timeout', () => req.destroy());
  });
}

/** A raw TLS connection with a client certificate: 'accepted' when the server sends data or keeps it open, else 'refused'. */
export function tlsWithClientCert(port: number, certFile: string, keyFile: string, probe = Buffer.alloc(0)): Promise<'accepted' | 'refused'> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, cert: readFileSync(certFile), key: readFileSync(keyFile), rejectUnauthorized: false });
    let done = false;
    const finish = (v: 'accepted' | 'refused') => { if (!done) { done = true; s.destroy(); resolve(v); } };
    s.on('secureConnect', () => {
      if (probe.length) s.write(probe);
      // TLS 1.3: the server's verdict on the client certificate comes after the handshake.
      setTimeout(() => finish('accepted'), 400);
    });
    s.on('data', () => finish('accepted'));
    s.on('error', () => finish('refused'));
    s.on('close', () => finish('refused'));
  });
}

export interface NginxPeer {
  url: string;
  /** nginx's command-line arguments for this instance (`-p`, `-c`, `-e`), for `-s reload` and the like. */
  args: string[];
  errorLog(): string;
  /** Starts it (`daemon off`, a child of this process). */
  start(): ChildProcess;
  stop(): Promise<void>;
}

/**
 * An nginx (Debian nginx-light) of its own in `dir`, listening with TLS on a free 127.0.0.1 port:
 * `server` is the body of its server block after `listen` (certificates, client verification,
 * locations). Call `start()` once the files it names exist.
 */
export async function nginxPeer(dir: string, server: string): Promise<NginxPeer> {
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const port = await freePort();
  writeFileSync(path.join(dir, 'nginx.conf'), `
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body; proxy_temp_path ${dir}/tmp/proxy; fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi; scgi_temp_path ${dir}/tmp/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
${server}
  }
}
`);
  const args = ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')];
  let child: ChildProcess | undefined;
  return {
    url: `https://127.0.0.1:${port}/`,
    args,
    errorLog: () => (existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : ''),
    start() {
      child = spawn('nginx', [...args, '-g', 'daemon off;'], { stdio: 'ignore' });
      return child;
    },
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGQUIT');
      await exited;
    },
  };
}
