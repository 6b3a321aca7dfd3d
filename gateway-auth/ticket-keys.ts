/**
 * TLS session-ticket keys shared by every gateway worker, so a device that resumes (a TLS 1.2
 * ticket, RFC 5077, or a TLS 1.3 PSK ticket, RFC 8446 §4.6.1) is resumed by whichever worker the
 * cluster primary hands its connection to.
 *
 * A key is 48 bytes, as `tls.Server#setTicketKeys` takes it: 16 bytes key name, 16 bytes HMAC-SHA256
 * key, 16 bytes AES-128-CBC key. The primary makes a new one every rotation interval
 * (cluster/primary.ts, `TICKET_KEY_ROTATION_MS`) and sends `{current, previous}` to every worker;
 * new tickets are sealed under `current`, and a ticket under `previous` is still opened (and
 * renewed under `current`) for one more interval, so a rotation does not turn every resumption of
 * the fleet into a full handshake at once (RFC 5077 §5.5 recommends rotating these keys; how long
 * old ones stay is the server's choice).
 *
 * Node's public API holds ONE ticket key per server. Accepting the previous one uses the ticket-key
 * callback of Node's SecureContext (`enableTicketKeyCallback` / `onticketkeycallback`, undocumented;
 * Node's own test-https-resume-after-renew.js drives it). Where it is missing, the public
 * `setTicketKeys(current)` is used and a ticket under the previous key gets a full handshake.
 * Either way every resumed socket is admitted again (gateway.ts): a ticket never skips the status check.
 */
import { randomBytes } from 'node:crypto';
import type tls from 'node:tls';

export const TICKET_KEY_BYTES = 48;

export interface TicketKeys {
  current: Buffer;
  previous?: Buffer;
}

export function newTicketKey(): Buffer {
  return randomBytes(TICKET_KEY_BYTES);
}

/** The SecureContext binding's ticket hook, as Node 20 has it (internal; feature-checked). */
interface TicketHookContext {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => unknown[];
}

const ZERO = Buffer.alloc(16);
// The OpenSSL ticket-key callback's results (SSL_CTX_set_tlsext_ticket_key_cb): 0 = no such key
// (full handshake), 1 = opened / sealed, 2 = opened, and issue a fresh ticket under the current key.
const NOT_FOUND = 0;
const OK = 1;
const OK_RENEW = 2;

/**
 * Makes `server` seal tickets under `keys()`'s current key and open them under current or previous.
 * `keys` is read on every ticket, so a rotation takes effect at once. Returns whether the previous
 * key is honoured (false: Node without the hook; public single-key fallback, call again on rotation).
 */
export function shareTicketKeys(server: tls.Server, keys: () => TicketKeys): boolean {
  const context = (server as unknown as { _sharedCreds?: { context?: TicketHookContext } })._sharedCreds?.context;
  if (typeof context?.enableTicketKeyCallback !== 'function') {
    server.setTicketKeys(keys().current);
    return false;
  }
  context.enableTicketKeyCallback();
  context.onticketkeycallback = (name, _iv, encrypt) => {
    // This runs inside OpenSSL's handshake: it must always return a well-formed answer (a missing
    // key buffer aborts the process), so every path returns three buffers or five.
    try {
      const k = keys();
      if (encrypt) return [OK, k.current.subarray(16, 32), k.current.subarray(32, 48), k.current.subarray(0, 16), randomBytes(16)];
      if (name.equals(k.current.subarray(0, 16))) return [OK, k.current.subarray(16, 32), k.current.subarray(32, 48)];
      if (k.previous !== undefined && name.equals(k.previous.subarray(0, 16))) return [OK_RENEW, k.previous.subarray(16, 32), k.previous.subarray(32, 48)];
    } catch {
      // fall through: a full handshake
    }
    return [NOT_FOUND, ZERO, ZERO];
  };
  return true;
}

export function checkTicketKeys(keys: TicketKeys): TicketKeys {
  for (const k of [keys.current, keys.previous]) {
    if (k !== undefined && (!Buffer.isBuffer(k) || k.length !== TICKET_KEY_BYTES)) throw new TypeError(`a session-ticket key is ${TICKET_KEY_BYTES} bytes`);
  }
  return keys;
}
