/**
 * One admitted device's MQTT session through the gateway: the device's TLS socket on one side, a
 * connection to the broker on the other.
 *
 * Both byte streams are framed and decoded by mqtt-packet (no parser of our own). Every packet is
 * looked at, but only CONNECT (and, in 5.0, CONNACK and partly refused SUBACKs) is re-encoded: an
 * allowed packet's bytes are forwarded as they came, a run of allowed packets as one slice of the
 * chunk read (the whole chunk when nothing was held back), so the common path allocates nothing of
 * its own. The frame length is 1 + the Remaining Length's Variable Byte Integer size + Remaining
 * Length (MQTT 5.0 §2.1.4, 3.1.1 §2.2.3), read from the decoded packet.
 *
 * What the device may do (MQTT 5.0 / 3.1.1 references):
 * - CONNECT: client identifier and user name become the device id, the password is removed or set
 *   from the configured file; a foreign client id is refused (CONNACK 0x02 / 0x85) or replaced; a
 *   Will topic outside the publish policy is refused (0x05 / 0x87); enhanced authentication (an
 *   Authentication Method, §4.12) is refused (0x8C); stale revocation status refuses it (0x03 / 0x88).
 * - CONNACK (5.0) goes to the device without a Topic Alias Maximum, i.e. 0 (§3.2.2.3.8): the device
 *   may not use topic aliases, so every PUBLISH names its topic and is checked; a PUBLISH with an
 *   alias anyway is a protocol error (DISCONNECT 0x94, §3.3.2.3.4).
 * - PUBLISH outside the policy is acknowledged and dropped (MQTT-3.3.5-2): PUBACK / PUBREC, with
 *   reason 0x87 in 5.0; the 3.1.1 QoS 2 flow is finished here (PUBREL → PUBCOMP), as the broker never
 *   saw it.
 * - SUBSCRIBE: each filter must fit under an allowed one; refused filters get 0x80 (3.1.1) / 0x87
 *   (5.0) in the SUBACK, the others go to the broker and the two answers are merged in order.
 * - AUTH is refused (DISCONNECT 0x8C in 5.0); a second CONNECT is a protocol error (§3.1.0-2).
 */
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import mqttPacket from 'mqtt-packet';
import type { DeviceIdentity } from '../device-identity.js';
import type { ResolvedMqttOptions } from './options.js';
import type { DeviceTopicPolicy } from './topic-policy.js';

type Packet = mqttPacket.Packet;
type AnyPacket = Record<string, any>; // mqtt-packet's typings are looser than its packets

/** What a session tells the front end (counts, logs). */
export interface SessionEvents {
  refused(kind: RefusalKind, identity: DeviceIdentity, fields: Record<string, unknown>): void;
  connected(identity: DeviceIdentity, version: number): void;
  closed(identity: DeviceIdentity, opened: boolean): void;
  upstreamError(identity: DeviceIdentity, error: unknown): void;
  /** PUBLISHes from the device and their payload bytes, summed over one chunk read (not one call per message). */
  traffic(identity: DeviceIdentity, messages: number, bytes: number): void;
  /** The 5.0 CONNECT user property `firmware` (its raw value; the front end checks its form), once the broker accepted the session. */
  firmware(identity: DeviceIdentity, version: unknown): void;
}

export type RefusalKind = 'connect' | 'publish' | 'subscribe' | 'auth' | 'protocol';

/** MQTT 5.0 reason codes used here (§2.4). */
const RC5 = {
  unspecified: 0x80, protocolError: 0x82, unsupportedVersion: 0x84, clientIdNotValid: 0x85, notAuthorized: 0x87,
  serverUnavailable: 0x88, badAuthMethod: 0x8c, administrativeAction: 0x98, topicAliasInvalid: 0x94,
} as const;
/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3) and the SUBACK failure code (§3.9.3). */
const RC4 = { unacceptableVersion: 0x01, identifierRejected: 0x02, serverUnavailable: 0x03, notAuthorized: 0x05, subackFailure: 0x80 } as const;

const KILL_FLUSH_MS = 200;

function frameSize(remainingLength: number): number {
  const varint = remainingLength < 128 ? 1 : remainingLength < 16_384 ? 2 : remainingLength < 2_097_152 ? 3 : 4;
  return 1 + varint + remainingLength;
}

interface PendingSubscribe {
  /** Positions in the device's SUBSCRIBE that were refused, in order. */
  refused: number[];
  total: number;
}

/** Where one direction's current chunk stands while its packets are emitted. */
interface Cursor {
  data: Buffer;
  offset: number;
  forwardFrom: number;
}

export class MqttSession {
  private state = 'await-connect' as 'await-connect' | 'connecting' | 'open' | 'closed';
  private version = 4;
  private upstream: net.Socket | undefined;
  private readonly fromDevice = mqttPacket.parser({ protocolVersion: 4 });
  private fromUpstream: ReturnType<typeof mqttPacket.parser> | undefined;
  private deviceRest: Buffer = Buffer.alloc(0);
  private upstreamRest: Buffer = Buffer.alloc(0);
  private deviceCursor: Cursor | undefined;
  private upstreamCursor: Cursor | undefined;
  private readonly pendingSubscribes = new Map<number, PendingSubscribe>();
  /** 3.1.1 QoS 2 PUBLISHes refused here: their PUBREL is answered here too. */
  private readonly refusedQos2 = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private opened = false;
  /** PUBLISHes of the chunk being read: two numbers, reported once per chunk (activity, issue 19). */
  private published = 0;
  private publishedBytes = 0;
  private firmwareVersion: unknown;

  constructor(
    private readonly device: TLSSocket,
    private readonly identity: DeviceIdentity,
    private readonly policy: DeviceTopicPolicy,
    private readonly o: ResolvedMqttOptions,
    private readonly isFresh: () => boolean,
    private readonly events: SessionEvents,
  ) {
    this.fromDevice.on('packet', (p: Packet) => this.onDevicePacket(p));
    this.fromDevice.on('error', (e: Error) => this.protocolViolation(`malformed packet from the device: ${e.message}`));
    device.on('data', (chunk: Buffer) => this.onDeviceData(chunk));
    device.once('close', () => this.onDeviceClosed());
    device.on('drain', () => this.upstream?.resume());
    this.timer = setTimeout(() => this.shut('no CONNECT in time'), o.connectTimeoutMs);
    this.timer.unref();
  }

  /**
   * The kill switch (revoked, held, suspended, retired): 5.0 devices get DISCONNECT 0x98
   * "Administrative action" (§3.14.2.1) first; the broker connection goes at once.
   */
  kill(): void {
    if (this.isClosed()) return;
    const v5 = this.version === 5 && this.state !== 'await-connect';
    this.close();
    this.upstream?.destroy();
    if (v5 && !this.device.destroyed) {
      this.device.end(mqttPacket.generate({ cmd: 'disconnect', reasonCode: RC5.administrativeAction } as mqttPacket.Packet, { protocolVersion: 5 }));
      setTimeout(() => this.device.destroy(), KILL_FLUSH_MS).unref();
    } else {
      this.device.destroy();
    }
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  // ---- device → broker

  private onDeviceData(chunk: Buffer): void {
    if (this.isClosed()) return;
    const data = this.deviceRest.length === 0 ? chunk : Buffer.concat([this.deviceRest, chunk]);
    const cursor: Cursor = { data, offset: 0, forwardFrom: 0 };
    this.deviceCursor = cursor;
    this.fromDevice.parse(chunk);
    this.deviceCursor = undefined;
    if (this.published !== 0) {
      this.events.traffic(this.identity, this.published, this.publishedBytes);
      this.published = 0;
      this.publishedBytes = 0;
    }
    if (this.isClosed()) return;
    this.forward(cursor, cursor.offset, this.upstream);
    this.deviceRest = cursor.offset === data.length ? Buffer.alloc(0) : data.subarray(cursor.offset);
  }

  private onDevicePacket(p: Packet): void {
    const cursor = this.deviceCursor;
    if (cursor === undefined || this.isClosed()) return;
    const start = cursor.offset;
    cursor.offset += frameSize(p.length ?? 0);
    const verdict = this.checkDevicePacket(p as AnyPacket);
    if (verdict === FORWARD || this.isClosed()) return;
    this.forward(cursor, start, this.upstream);
    cursor.forwardFrom = cursor.offset;
    if (verdict !== DROP) this.toUpstream(verdict);
  }

  private checkDevicePacket(p: AnyPacket): Buffer | typeof FORWARD | typeof DROP {
    if (this.state === 'await-connect') {
      if (p.cmd !== 'connect') {
        this.protocolViolation(`first packet is ${String(p.cmd)}, not CONNECT`);
        return DROP;
      }
      return this.onConnect(p);
    }
    switch (p.cmd) {
      case 'publish': return this.onPublish(p);
      case 'pubrel':
        if (this.refusedQos2.delete(p.messageId)) {
          this.toDevice(this.encode({ cmd: 'pubcomp', messageId: p.messageId }));
          return DROP;
        }
        return FORWARD;
      case 'subscribe': return this.onSubscribe(p);
      case 'puback': case 'pubrec': case 'pubcomp': case 'unsubscribe': case 'pingreq': case 'disconnect':
        return FORWARD;
      case 'auth':
        this.refuse('auth', { reason: 'enhanced authentication (AUTH) is not accepted' });
        this.disconnectDevice(RC5.badAuthMethod);
        return DROP;
      default:
        this.protocolViolation(`${String(p.cmd)} from a device`);
        return DROP;
    }
  }

  private onConnect(p: AnyPacket): Buffer | typeof DROP {
    const deviceId = this.identity.deviceId;
    const version = p.protocolVersion as number;
    if (version !== 4 && version !== 5) {
      // 3.1 (MQIsdp) and anything else: "unacceptable protocol version", in the 3.1.1 form.
      return this.refuseConnect(RC4.unacceptableVersion, RC5.unsupportedVersion, `MQTT protocol version ${version} is not accepted (3.1.1 and 5.0 are)`);
    }
    this.version = version;
    // The parser must read the packets after CONNECT in the version CONNECT named.
    (this.fromDevice as unknown as { settings: { protocolVersion: number } }).settings.protocolVersion = version;
    if (version === 5 && p.properties?.authenticationMethod !== undefined) {
      return this.refuseConnect(RC4.notAuthorized, RC5.badAuthMethod, 'enhanced authentication is not accepted');
    }
    const clientId = String(p.clientId ?? '');
    if (clientId !== '' && clientId !== deviceId && this.o.clientId === 'require-device-id') {
      return this.refuseConnect(RC4.identifierRejected, RC5.clientIdNotValid, 'client identifier is not the device id', { clientId });
    }
    if (p.will !== undefined && p.will !== null && !this.policy.mayPublish(String(p.will.topic))) {
      return this.refuseConnect(RC4.notAuthorized, RC5.notAuthorized, 'Will topic outside the publish policy', { topic: String(p.will.topic) });
    }
    if (!this.isFresh()) {
      return this.refuseConnect(RC4.serverUnavailable, RC5.serverUnavailable, 'revocation status is stale');
    }
    if (version === 5) this.firmwareVersion = userProperty(p.properties?.userProperties, 'firmware');
    // The verified identity wins: client id = user name = device id (DESIGN.md flow 3).
    const upstreamConnect: AnyPacket = { ...p, clientId: deviceId, username: deviceId };
    delete upstreamConnect.password;
    if (this.o.upstreamPassword !== undefined) upstreamConnect.password = this.o.upstreamPassword;
    this.state = 'connecting';
    this.fromUpstream = mqttPacket.parser({ protocolVersion: version });
    this.fromUpstream.on('packet', (q: Packet) => this.onUpstreamPacket(q));
    this.fromUpstream.on('error', (e: Error) => {
      this.events.upstreamError(this.identity, e);
      this.shut(`malformed packet from the broker: ${e.message}`);
    });
    this.connectUpstream();
    this.restartTimer('the broker did not answer CONNECT in time');
    return this.encode(upstreamConnect);
  }

  private onPublish(p: AnyPacket): Buffer | typeof FORWARD | typeof DROP {
    // Every PUBLISH the device sent counts, allowed or not: it is what the device did.
    this.published++;
    this.publishedBytes += (p.payload as Buffer | string | undefined)?.length ?? 0;
    if (this.version === 5 && p.properties?.topicAlias !== undefined) {
      this.refuse('protocol', { reason: 'topic alias used although Topic Alias Maximum is 0' });
      this.disconnectDevice(RC5.topicAliasInvalid);
      return DROP;
    }
    const topic = String(p.topic);
    if (this.policy.mayPublish(topic)) return FORWARD;
    this.refuse('publish', { topic, qos: p.qos });
    const reasonCode = this.version === 5 ? { reasonCode: RC5.notAuthorized } : {};
    if (p.qos === 1) this.toDevice(this.encode({ cmd: 'puback', messageId: p.messageId, ...reasonCode }));
    if (p.qos === 2) {
      this.toDevice(this.encode({ cmd: 'pubrec', messageId: p.messageId, ...reasonCode }));
      // 5.0: a PUBREC reason code ≥ 0x80 ends the flow (§4.3.3); 3.1.1 goes on with PUBREL.
      if (this.version === 4) this.refusedQos2.add(p.messageId);
    }
    return DROP;
  }

  private onSubscribe(p: AnyPacket): Buffer | typeof FORWARD | typeof DROP {
    const subs = p.subscriptions as { topic: string }[];
    const refused: number[] = [];
    subs.forEach((s, i) => {
      if (!this.policy.maySubscribe(s.topic)) refused.push(i);
    });
    if (refused.length === 0) return FORWARD;
    for (const i of refused) this.refuse('subscribe', { filter: subs[i].topic });
    const code = this.version === 5 ? RC5.notAuthorized : RC4.subackFailure;
    if (refused.length === subs.length) {
      this.toDevice(this.encode({ cmd: 'suback', messageId: p.messageId, granted: subs.map(() => code) }));
      return DROP;
    }
    this.pendingSubscribes.set(p.messageId, { refused, total: subs.length });
    return this.encode({ ...p, subscriptions: subs.filter((_, i) => !refused.includes(i)) });
  }

  // ---- broker → device

  private onUpstreamData(chunk: Buffer): void {
    if (this.isClosed() || this.fromUpstream === undefined) return;
    const data = this.upstreamRest.length === 0 ? chunk : Buffer.concat([this.upstreamRest, chunk]);
    const cursor: Cursor = { data, offset: 0, forwardFrom: 0 };
    this.upstreamCursor = cursor;
    this.fromUpstream.parse(chunk);
    this.upstreamCursor = undefined;
    if (this.isClosed()) return;
    this.forward(cursor, cursor.offset, this.device);
    this.upstreamRest = cursor.offset === data.length ? Buffer.alloc(0) : data.subarray(cursor.offset);
  }

  private onUpstreamPacket(q: Packet): void {
    const cursor = this.upstreamCursor;
    if (cursor === undefined || this.isClosed()) return;
    const start = cursor.offset;
    cursor.offset += frameSize(q.length ?? 0);
    // These may answer the device and close: what came before them goes out first.
    if (q.cmd === 'connack' || q.cmd === 'suback' || q.cmd === 'disconnect') this.forward(cursor, start, this.device);
    const verdict = this.checkUpstreamPacket(q as AnyPacket);
    if (verdict === FORWARD || this.isClosed()) return;
    this.forward(cursor, start, this.device);
    cursor.forwardFrom = cursor.offset;
    if (verdict !== DROP) this.toDevice(verdict);
  }

  private checkUpstreamPacket(q: AnyPacket): Buffer | typeof FORWARD | typeof DROP {
    if (q.cmd === 'connack') {
      if (this.state !== 'connecting') {
        this.shut('a second CONNACK from the broker');
        return DROP;
      }
      this.clearTimer();
      const code = (this.version === 5 ? q.reasonCode : q.returnCode) ?? 0;
      if (code !== 0) {
        // The broker refused: the device hears it, then both sides close.
        this.finishThenClose(this.encode(withoutTopicAliases(q)));
        return DROP;
      }
      this.state = 'open';
      this.opened = true;
      this.events.connected(this.identity, this.version);
      if (this.firmwareVersion !== undefined) this.events.firmware(this.identity, this.firmwareVersion);
      if (this.version === 5 && q.properties?.topicAliasMaximum !== undefined) return this.encode(withoutTopicAliases(q));
      return FORWARD;
    }
    if (q.cmd === 'suback') {
      const pending = this.pendingSubscribes.get(q.messageId);
      if (pending === undefined) return FORWARD;
      this.pendingSubscribes.delete(q.messageId);
      const code = this.version === 5 ? RC5.notAuthorized : RC4.subackFailure;
      const fromBroker = [...(q.granted as number[])];
      const granted: number[] = [];
      for (let i = 0; i < pending.total; i++) granted.push(pending.refused.includes(i) ? code : (fromBroker.shift() ?? RC5.unspecified));
      return this.encode({ ...q, granted });
    }
    if (q.cmd === 'disconnect') {
      this.finishThenClose(this.encode(q));
      return DROP;
    }
    return FORWARD;
  }

  // ---- plumbing

  private connectUpstream(): void {
    const u = this.o.upstream;
    const socket = u.tls
      ? tls.connect({ host: u.host, port: u.port, servername: net.isIP(u.host) ? undefined : u.host, ...(u.caPem !== undefined && { ca: u.caPem }) })
      : net.connect({ host: u.host, port: u.port });
    socket.setNoDelay(true);
    this.upstream = socket;
    socket.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    socket.on('drain', () => this.device.resume());
    socket.on('error', (e: Error) => {
      if (this.isClosed()) return;
      this.events.upstreamError(this.identity, e);
    });
    socket.once('close', () => this.onUpstreamClosed());
  }

  private onUpstreamClosed(): void {
    if (this.isClosed()) return;
    if (this.state === 'connecting') {
      // The device is owed an answer to its CONNECT.
      this.finishThenClose(this.connackBytes(RC4.serverUnavailable, RC5.serverUnavailable));
      return;
    }
    // No half-open sessions: the broker is gone, so is the device's side.
    this.shut('the broker closed the connection');
  }

  private onDeviceClosed(): void {
    if (this.isClosed()) {
      this.upstream?.destroy();
      return;
    }
    this.close();
    // end(): a DISCONNECT the device sent last still reaches the broker (and its Will is discarded).
    const up = this.upstream;
    if (up !== undefined) {
      up.end();
      setTimeout(() => up.destroy(), KILL_FLUSH_MS).unref();
    }
  }

  private forward(cursor: Cursor, end: number, to: net.Socket | undefined): void {
    if (end <= cursor.forwardFrom || to === undefined) return;
    const bytes = cursor.forwardFrom === 0 && end === cursor.data.length ? cursor.data : cursor.data.subarray(cursor.forwardFrom, end);
    cursor.forwardFrom = end;
    if (to === this.device) this.toDevice(bytes);
    else this.toUpstream(bytes);
  }

  private toUpstream(bytes: Buffer): void {
    const up = this.upstream;
    if (up === undefined || up.destroyed) return;
    // Back-pressure: a slow broker pauses the device (and the other way round).
    if (!up.write(bytes)) this.device.pause();
  }

  private toDevice(bytes: Buffer): void {
    if (this.device.destroyed || this.device.writableEnded) return;
    if (!this.device.write(bytes) && this.upstream !== undefined) this.upstream.pause();
  }

  private encode(p: AnyPacket): Buffer {
    return mqttPacket.generate(p as mqttPacket.Packet, { protocolVersion: this.version });
  }

  private connackBytes(rc4: number, rc5: number): Buffer {
    return this.version === 5
      ? this.encode({ cmd: 'connack', sessionPresent: false, reasonCode: rc5 })
      : this.encode({ cmd: 'connack', sessionPresent: false, returnCode: rc4 });
  }

  private refuseConnect(rc4: number, rc5: number, reason: string, fields: Record<string, unknown> = {}): typeof DROP {
    this.refuse('connect', { reason, returnCode: this.version === 5 ? rc5 : rc4, ...fields });
    this.finishThenClose(this.connackBytes(rc4, rc5));
    return DROP;
  }

  private refuse(kind: RefusalKind, fields: Record<string, unknown>): void {
    this.events.refused(kind, this.identity, { protocolVersion: this.version, ...fields });
  }

  /** 5.0 DISCONNECT with `reasonCode` (3.1.1 has no server DISCONNECT: the connection just closes). */
  private disconnectDevice(reasonCode: number): void {
    this.finishThenClose(this.version === 5 ? this.encode({ cmd: 'disconnect', reasonCode }) : undefined);
  }

  private protocolViolation(reason: string): void {
    if (this.isClosed()) return;
    this.refuse('protocol', { reason });
    if (this.version === 5 && this.state !== 'await-connect') this.disconnectDevice(RC5.protocolError);
    else this.shut(reason);
  }

  /** Sends the last bytes to the device (if any), then closes both sides. */
  private finishThenClose(last: Buffer | undefined): void {
    if (this.isClosed()) return;
    this.close();
    this.upstream?.destroy();
    if (this.device.destroyed) return;
    if (last === undefined) this.device.end();
    else this.device.end(last);
    setTimeout(() => this.device.destroy(), KILL_FLUSH_MS).unref();
  }

  private shut(_reason: string): void {
    if (this.isClosed()) return;
    this.close();
    this.upstream?.destroy();
    this.device.destroy();
  }

  /** Marks the session closed: nothing more is read or forwarded. The callers end the sockets. */
  private close(): void {
    if (this.isClosed()) return;
    this.state = 'closed';
    this.clearTimer();
    this.events.closed(this.identity, this.opened);
  }

  private restartTimer(reason: string): void {
    this.clearTimer();
    this.timer = setTimeout(() => this.shut(reason), this.o.connectTimeoutMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A 5.0 user property's value (§3.1.2.11.8): mqtt-packet gives a repeated name as an array; the first one counts. */
function userProperty(props: unknown, name: string): unknown {
  if (props === null || typeof props !== 'object') return undefined;
  const v = (props as Record<string, unknown>)[name];
  return Array.isArray(v) ? v[0] : v;
}

const FORWARD = Symbol('forward');
const DROP = Symbol('drop');

/** The 5.0 CONNACK as the device gets it: no Topic Alias Maximum, which means 0 (§3.2.2.3.8). */
function withoutTopicAliases(q: AnyPacket): AnyPacket {
  if (q.properties === undefined) return q;
  const { topicAliasMaximum: _dropped, ...properties } = q.properties as Record<string, unknown>;
  return { ...q, properties };
}
