/** A client of the relying parties under test: one fresh mTLS connection per call (new handshake). */
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';

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
