/**
 * The port every device front end (HTTP here; MQTT, TCP and the legacy token path) reports device
 * activity to. The gateway defines it (the consumer names the interface it needs); operations/
 * implements it by aggregating in memory and writing hourly rollups in batches (DESIGN.md "The event
 * loop": nothing on a per-message path writes to the registry).
 *
 * Every method is called on a hot path (a handshake, a message): implementations must return at
 * once, never throw, and never do I/O in the call.
 */

/** Which front end saw the device. */
export type FrontEnd = 'http' | 'mqtt' | 'tcp' | 'legacy';

export interface ActivityRecorder {
  /** A connection of the device was admitted (mTLS) from `remoteAddress`. */
  admitted(deviceId: string, remoteAddress: string | undefined, frontEnd: FrontEnd): void;
  /**
   * A connection or token request was refused. `deviceId` is undefined when no device could be
   * named (an unverifiable certificate, an unknown legacy ID); `reason` is the admission's reason
   * (`device revoked`, `certificate revoked`, ...).
   */
  refused(deviceId: string | undefined, reason: string, remoteAddress: string | undefined, frontEnd: FrontEnd): void;
  /** An admitted connection closed (the device's session ended). */
  closed(deviceId: string, remoteAddress: string | undefined, frontEnd: FrontEnd): void;
  /** Messages (HTTP requests, MQTT PUBLISHes, TCP reads) and their payload bytes. */
  traffic(deviceId: string, messages: number, bytes: number): void;
  /** A legacy token request for the device succeeded (`ok`) or failed. */
  tokenResult(deviceId: string | undefined, ok: boolean, remoteAddress: string | undefined): void;
  /** The device reported its firmware version (POST /v1/status, MQTT 5 user property, legacy field). */
  firmware(deviceId: string, firmwareVersion: string, frontEnd: FrontEnd): void;
}

/** Recording off: every call is a no-op, so the front ends need no `if`. */
export const NO_ACTIVITY: ActivityRecorder = Object.freeze({
  admitted() { /* off */ },
  refused() { /* off */ },
  closed() { /* off */ },
  traffic() { /* off */ },
  tokenResult() { /* off */ },
  firmware() { /* off */ },
});
