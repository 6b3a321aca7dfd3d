/**
 * Asked by the gateway before it admits a device connection whose certificate and device are good
 * (gateway.ts): a reason refuses the connection like any admission failure. operations/detections
 * implements it with the `sessions` rule (a clone's second session from another address is refused
 * when its template says so). The consumer names the port; it is on the handshake path, so an
 * implementation answers at once, never throws and does no I/O in the call.
 */
import type { FrontEnd } from './activity-recorder.js';

export interface SessionGate {
  refuse(deviceId: string, remoteAddress: string | undefined, frontEnd: FrontEnd): string | undefined;
}
