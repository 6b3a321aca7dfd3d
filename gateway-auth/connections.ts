/**
 * The open device connections, indexed by certificate (`issuerId/serialHex`) and by device id, so a
 * revocation, a hold or a device leaving `active` closes every connection it concerns at once.
 * A connection is tracked from the moment its identity is known — before its status check ends —
 * so a revocation that lands while the check is in flight still closes it.
 *
 * A front end may register how one of its connections is closed (the MQTT front end sends a 5.0
 * DISCONNECT and closes its broker connection too); by default the socket is destroyed.
 */
import type { TLSSocket } from 'node:tls';
import type { DeviceIdentity } from './device-identity.js';

export class DeviceConnections {
  private readonly byCert = new Map<string, Set<TLSSocket>>();
  private readonly byDevice = new Map<string, Set<TLSSocket>>();
  private readonly identities = new WeakMap<TLSSocket, DeviceIdentity>();
  private readonly closers = new WeakMap<TLSSocket, () => void>();

  get certificateCount(): number {
    return this.byCert.size;
  }

  add(socket: TLSSocket, id: DeviceIdentity): void {
    this.identities.set(socket, id);
    addTo(this.byCert, id.certKey, socket);
    addTo(this.byDevice, id.deviceId, socket);
    socket.once('close', () => {
      removeFrom(this.byCert, id.certKey, socket);
      removeFrom(this.byDevice, id.deviceId, socket);
    });
  }

  /** How the kill switch closes this connection (instead of destroying the socket). */
  setCloser(socket: TLSSocket, closer: () => void): void {
    this.closers.set(socket, closer);
  }

  identityOf(socket: TLSSocket): DeviceIdentity | undefined {
    return this.identities.get(socket);
  }

  /** Destroys every connection of the certificate; returns how many. */
  closeCertificate(certKey: string): number {
    return this.closeAll(this.byCert.get(certKey));
  }

  /** Destroys every connection of the device; returns how many. */
  closeDevice(deviceId: string): number {
    return this.closeAll(this.byDevice.get(deviceId));
  }

  private closeAll(set: Set<TLSSocket> | undefined): number {
    if (set === undefined) return 0;
    const sockets = [...set];
    for (const s of sockets) {
      const closer = this.closers.get(s);
      if (closer === undefined) s.destroy();
      else closer();
    }
    return sockets.length;
  }

  /** One identity per connected certificate. */
  *connectedIdentities(): Iterable<DeviceIdentity> {
    for (const sockets of this.byCert.values()) {
      const first = sockets.values().next();
      if (!first.done) {
        const id = this.identities.get(first.value);
        if (id !== undefined) yield id;
      }
    }
  }
}

function addTo(map: Map<string, Set<TLSSocket>>, key: string, socket: TLSSocket): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, (set = new Set()));
  set.add(socket);
}

function removeFrom(map: Map<string, Set<TLSSocket>>, key: string, socket: TLSSocket): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(socket);
  if (set.size === 0) map.delete(key);
}
