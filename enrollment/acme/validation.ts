/**
 * Challenge validation: kakuin connects to the server that asked for a name and checks it holds
 * the account key's authorization (RFC 8555 §8.1: keyAuthorization = token || "." || thumbprint).
 *
 * - http-01 (§8.3): GET http://<name>:<http port>/.well-known/acme-challenge/<token>, Host: <name>;
 *   the body (trailing whitespace trimmed) must be the key authorization. Redirects are not followed.
 * - tls-alpn-01 (RFC 8737): TLS to <name>:<tls-alpn port> with SNI <name> and ALPN acme-tls/1 only;
 *   the server must negotiate acme-tls/1 and present a certificate whose SAN is exactly <name> and
 *   whose critical acmeIdentifier extension holds SHA-256(keyAuthorization) (read by pkix/).
 * - dns-01 (§8.4): the configured hook (acme.dnsHook) is run with `_acme-challenge.<name>` and
 *   prints the TXT values it finds there, one a line; one must be base64url(SHA-256(keyAuthorization)).
 *   kakuin runs no resolver of its own: the hook asks whatever DNS the operator trusts.
 *
 * `acme.resolve` maps a name to the address to connect to (tests and split-horizon set-ups);
 * other names are looked up by the system resolver. The ports are acme.validationPorts.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { KakuinError } from '../../errors/index.js';
import { certificateAcmeIdentifier, certificateSanNames, parseCertificate } from '../../pkix/index.js';
import type { AcmeChallengeType, AcmeIdentifier } from '../../registry/acme.js';

export interface ValidationOptions {
  httpPort: number;
  tlsAlpnPort: number;
  /** name → address to connect to instead of resolving the name. */
  resolve: Readonly<Record<string, string>>;
  /** The dns-01 hook command; undefined: dns-01 is not offered. */
  dnsHook?: string;
  timeoutMs: number;
}

const MAX_HTTP_BODY = 8192;

export function keyAuthorization(token: string, thumbprint: string): string {
  return `${token}.${thumbprint}`;
}

function addressOf(identifier: AcmeIdentifier, options: ValidationOptions): string {
  return options.resolve[identifier.value] ?? identifier.value;
}

function connection(message: string, cause?: unknown): KakuinError {
  return new KakuinError('KAKUIN_E_ACME_CONNECTION', message, cause === undefined ? undefined : { cause });
}

function incorrect(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_ACME_INCORRECT_RESPONSE', message);
}

async function validateHttp01(identifier: AcmeIdentifier, token: string, expected: string, options: ValidationOptions): Promise<void> {
  const host = addressOf(identifier, options);
  const hostHeader = isIP(identifier.value) === 6 ? `[${identifier.value}]` : identifier.value;
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.get({
      host, port: options.httpPort, path: `/.well-known/acme-challenge/${token}`, timeout: options.timeoutMs,
      headers: { Host: options.httpPort === 80 ? hostHeader : `${hostHeader}:${options.httpPort}`, 'User-Agent': 'kakuin-acme-validation' },
    }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(incorrect(`http-01: GET /.well-known/acme-challenge/${token} on ${identifier.value} answered ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_HTTP_BODY) {
          req.destroy();
          reject(incorrect('http-01: the answer is larger than a key authorization'));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', (e) => reject(connection(`http-01: reading the answer from ${identifier.value} failed`, e)));
    });
    req.on('timeout', () => req.destroy(connection(`http-01: ${identifier.value} did not answer within ${options.timeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof KakuinError ? e : connection(`http-01: cannot connect to ${identifier.value} port ${options.httpPort}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, e)));
  });
  // §8.3: "The client's response ... may contain trailing whitespace", which is ignored.
  if (body.replace(/\s+$/, '') !== expected) throw incorrect(`http-01: the answer from ${identifier.value} is not the key authorization`);
}

async function validateTlsAlpn01(identifier: AcmeIdentifier, expected: string, options: ValidationOptions): Promise<void> {
  if (identifier.type !== 'dns') throw new KakuinError('KAKUIN_E_ACME_TLS', 'tls-alpn-01 is offered for DNS names only');
  const digest = createHash('sha256').update(expected).digest();
  const der = await new Promise<Buffer>((resolve, reject) => {
    const socket = tls.connect({
      host: addressOf(identifier, options), port: options.tlsAlpnPort, servername: identifier.value, ALPNProtocols: ['acme-tls/1'],
      // RFC 8737 §3: the validation certificate is self-signed; what is checked is its acmeIdentifier.
      rejectUnauthorized: false, timeout: options.timeoutMs,
    });
    socket.once('secureConnect', () => {
      const alpn = socket.alpnProtocol;
      const peer = socket.getPeerCertificate();
      socket.destroy();
      if (alpn !== 'acme-tls/1') reject(new KakuinError('KAKUIN_E_ACME_TLS', `tls-alpn-01: ${identifier.value} did not negotiate acme-tls/1 (RFC 8737 §3)`));
      else if (!peer?.raw) reject(new KakuinError('KAKUIN_E_ACME_TLS', 'tls-alpn-01: no certificate was presented'));
      else resolve(peer.raw);
    });
    socket.once('timeout', () => socket.destroy(connection(`tls-alpn-01: ${identifier.value} did not complete a handshake within ${options.timeoutMs} ms`)));
    socket.once('error', (e) => reject(e instanceof KakuinError ? e : connection(`tls-alpn-01: cannot complete a TLS handshake with ${identifier.value} port ${options.tlsAlpnPort}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, e)));
  });
  let cert;
  let presented: Buffer | undefined;
  let names;
  try {
    cert = parseCertificate(der);
    presented = certificateAcmeIdentifier(cert);
    names = certificateSanNames(cert);
  } catch (cause) {
    throw new KakuinError('KAKUIN_E_ACME_TLS', `tls-alpn-01: the certificate is not a valid validation certificate: ${(cause as Error).message}`, { cause });
  }
  // RFC 8737 §3: "The subjectAltName extension ... MUST contain a single dNSName entry" equal to the name.
  if (names.dns.length !== 1 || names.ip.length !== 0 || names.other !== 0 || names.dns[0].toLowerCase() !== identifier.value) {
    throw new KakuinError('KAKUIN_E_ACME_TLS', `tls-alpn-01: the certificate's subjectAltName must be exactly ${identifier.value}`);
  }
  if (presented === undefined) throw new KakuinError('KAKUIN_E_ACME_TLS', 'tls-alpn-01: the certificate has no acmeIdentifier extension');
  if (!presented.equals(digest)) throw incorrect('tls-alpn-01: the acmeIdentifier is not the digest of the key authorization');
}

async function validateDns01(identifier: AcmeIdentifier, expected: string, options: ValidationOptions): Promise<void> {
  if (options.dnsHook === undefined) throw new KakuinError('KAKUIN_E_ACME_DNS', 'dns-01 needs acme.dnsHook');
  const base = identifier.value.replace(/^\*\./, '');
  const record = `_acme-challenge.${base}`;
  const want = createHash('sha256').update(expected).digest('base64url');
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(options.dnsHook!, [record], { timeout: options.timeoutMs, maxBuffer: 64 * 1024, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (error, out) => {
      if (error) reject(new KakuinError('KAKUIN_E_ACME_DNS', `dns-01: the hook failed for ${record}: ${error.code ?? error.message}`, { cause: error }));
      else resolve(out);
    });
  });
  const values = stdout.split(/\r?\n/).map((l) => l.trim().replace(/^"(.*)"$/, '$1')).filter(Boolean);
  if (values.length === 0) throw new KakuinError('KAKUIN_E_ACME_DNS', `dns-01: no TXT record at ${record}`);
  if (!values.includes(want)) throw incorrect(`dns-01: no TXT value at ${record} is the digest of the key authorization`);
}

/** Validates one challenge; resolves when it is met, rejects with the KakuinError that says why not. */
export async function validateChallenge(
  type: AcmeChallengeType, identifier: AcmeIdentifier, token: string, thumbprint: string, options: ValidationOptions,
): Promise<void> {
  const expected = keyAuthorization(token, thumbprint);
  switch (type) {
    case 'http-01': return validateHttp01(identifier, token, expected, options);
    case 'tls-alpn-01': return validateTlsAlpn01(identifier, expected, options);
    case 'dns-01': return validateDns01(identifier, expected, options);
  }
}
