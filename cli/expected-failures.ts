/**
 * Failures an operator can cause and fix (a busy port, an output file that exists, a missing
 * input file) arrive from Node as system errors. The `kakuin` command answers each with one line —
 * a stable KAKUIN_E_* code and what to do — instead of a stack trace; only the unexpected keeps one.
 */
import { KakuinError } from '../errors/index.js';
import type { KakuinConfig } from './config.js';

interface SystemError extends Error {
  code?: string;
  syscall?: string;
  path?: string;
  address?: string;
  port?: number;
}

/** Each listener kakuin binds, with the variable that sets its port. */
function listenerOfPort(config: Readonly<KakuinConfig> | undefined, port: number | undefined): { name: string; variable: string } | undefined {
  if (config === undefined || port === undefined) return undefined;
  const listeners = [
    { port: config.api.port, name: 'management API (HTTPS, also EST/CMP/SCEP/ACME)', variable: 'KAKUIN_API_PORT' },
    { port: config.ocsp.port, name: 'plain-HTTP OCSP/CRL listener', variable: 'KAKUIN_OCSP_PORT' },
    { port: config.gateway.port, name: 'device gateway (mTLS)', variable: 'KAKUIN_GATEWAY_PORT' },
    { port: config.legacy.port, name: 'legacy token path', variable: 'KAKUIN_LEGACY_PORT' },
  ];
  return listeners.find((l) => l.port === port);
}

/** The KakuinError an expected system error stands for, or undefined for an unexpected one. */
export function expectedFailure(e: unknown, config: Readonly<KakuinConfig> | undefined): KakuinError | undefined {
  const s = e as SystemError | undefined;
  if (typeof s?.code !== 'string') return undefined;
  const where = s.path !== undefined ? JSON.stringify(s.path) : 'the file';
  switch (s.code) {
    case 'EADDRINUSE':
    case 'EACCES':
      if (s.syscall === 'listen' || s.code === 'EADDRINUSE') {
        const l = listenerOfPort(config, s.port);
        const at = `${s.address ?? ''}:${s.port ?? '?'}`;
        const what = s.code === 'EADDRINUSE' ? 'is already in use' : 'may not be bound by this user';
        return new KakuinError('KAKUIN_E_PORT_IN_USE', l
          ? `${at} ${what}: the ${l.name} cannot listen; stop the other process or set ${l.variable} to a free port`
          : `${at} ${what}; stop the other process or choose a free port`);
      }
      return new KakuinError('KAKUIN_E_FILE_ACCESS', `permission denied on ${where}; check its owner and mode`);
    case 'EPERM':
      return new KakuinError('KAKUIN_E_FILE_ACCESS', `permission denied on ${where}; check its owner and mode`);
    case 'EEXIST':
      return new KakuinError('KAKUIN_E_FILE_EXISTS', `${where} exists already and is never overwritten; remove it or name another file`);
    case 'ENOENT':
      return new KakuinError('KAKUIN_E_FILE_NOT_FOUND', `${where} does not exist; check the path`);
    case 'EISDIR':
      return new KakuinError('KAKUIN_E_FILE_NOT_FOUND', `${where} is a directory; name a file`);
    default:
      return undefined;
  }
}
