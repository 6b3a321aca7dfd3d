/**
 * The scale fixture's device number i → its identifiers, the same in the builder's workers and in
 * the measuring process (which draws random i and looks them up, without reading the keys back).
 */
import { createHash } from 'node:crypto';

export interface ScaleDevice {
  id: string;
  serialNumber: string;
  mac: string;
  /** Certificate serial: 16 bytes, positive, first octet non-zero. */
  serial: Buffer;
  serialHex: string;
}

export function scaleDevice(i: number): ScaleDevice {
  const h = createHash('sha256').update(`kakuin-scale-${i}`).digest();
  const serial = h.subarray(0, 16);
  serial[0] = 1 + (serial[0] % 127);
  const u = h.subarray(16, 32).toString('hex');
  const id = `${u.slice(0, 8)}-${u.slice(8, 12)}-4${u.slice(13, 16)}-a${u.slice(17, 20)}-${u.slice(20, 32)}`;
  const macHex = (0x020000000000 + i).toString(16).padStart(12, '0');
  return {
    id,
    serialNumber: `SCALE-${String(i).padStart(8, '0')}`,
    mac: macHex.match(/../g)!.join(':'),
    serial,
    serialHex: serial.toString('hex').toUpperCase(),
  };
}

export interface ScaleWorkerData {
  start: number;
  end: number;
  caCertDerB64: string;
  caKeyPem: string;
  responderCertDerB64: string;
  responderKeyPem: string;
  spkiTemplateB64: string;
  validityMs: number;
  nowMs: number;
}

/** One batch from a worker: columns, one element per device. */
export interface ScaleBatch {
  index: number[];
  certDer: Buffer[];
  fingerprint: string[];
  publicKeySha256: string[];
  ocspDer: Buffer[];
  thisUpdate: number;
  nextUpdate: number;
}

/** What the measuring side needs to start a responder on the fixture (written next to it). */
export interface ScaleFixtureMeta {
  devices: number;
  builtAtMs: number;
  validityMs: number;
  caCertDerB64: string;
  responderCertDerB64: string;
  responderKeyPem: string;
  buildSeconds: number;
}
