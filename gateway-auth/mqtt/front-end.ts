/**
 * The MQTT front end of the device gateway (DESIGN.md "gateway-auth/": one admission and one kill
 * switch shared by its front ends). gateway.ts runs its TLS listener with the same handshake
 * admission as the HTTP listener and hands each admitted socket here; this file gives it a topic
 * policy, starts its MqttSession, and tells the shared DeviceConnections how the kill switch
 * closes it (5.0 DISCONNECT 0x98, and the broker connection with it).
 */
import type { TLSSocket } from 'node:tls';
import { hasCode } from '../../errors/index.js';
import type { ActivityRecorder } from '../activity-recorder.js';
import type { DeviceConnections } from '../connections.js';
import { isFirmwareVersion } from '../firmware.js';
import type { DeviceIdentity } from '../device-identity.js';
import type { GatewayLogger, GatewayRegistry } from '../options.js';
import { BoundedMap } from '../record-cache.js';
import { describeError, throttledWarn } from '../status-source.js';
import type { ResolvedMqttOptions } from './options.js';
import { MqttSession, type RefusalKind } from './session.js';
import { DeviceTopicPolicy, needsDeviceRecord, type TopicValues } from './topic-policy.js';

export interface MqttStats {
  /** MQTT connections admitted and not yet closed (CONNECT pending or session open). */
  connections: number;
  /** Sessions the broker accepted (CONNACK 0), since start. */
  sessionsOpened: number;
  /** Refusals since start, by kind (each also logged with the device id). */
  refused: Record<RefusalKind, number>;
}

export class MqttFrontEnd {
  private readonly details = new BoundedMap<string, TopicValues>(100_000);
  private readonly needsRecord: boolean;
  private readonly counters: MqttStats = {
    connections: 0, sessionsOpened: 0, refused: { connect: 0, publish: 0, subscribe: 0, auth: 0, protocol: 0 },
  };
  private readonly warnUpstream: (fields: Record<string, unknown>) => void;
  private readonly warnRegistry: (fields: Record<string, unknown>) => void;

  constructor(
    readonly options: ResolvedMqttOptions,
    private readonly deps: {
      registry: Pick<GatewayRegistry, 'getDevice'>;
      logger: GatewayLogger;
      connections: DeviceConnections;
      activity: ActivityRecorder;
      isFresh(id: DeviceIdentity): boolean;
    },
  ) {
    this.needsRecord = needsDeviceRecord(options.publishTopics) || needsDeviceRecord(options.subscribeTopics);
    this.warnUpstream = throttledWarn(deps.logger, 'mqtt gateway cannot reach the broker', 1_000);
    this.warnRegistry = throttledWarn(deps.logger, 'mqtt gateway cannot read the registry; closing devices');
  }

  /** An admitted, paused device socket: read nothing of it before its policy is known. */
  accept(socket: TLSSocket, identity: DeviceIdentity): void {
    const values = this.valuesOf(identity.deviceId);
    if (!(values instanceof Promise)) {
      this.start(socket, identity, values);
      return;
    }
    values.then((v) => {
      if (!socket.destroyed) this.start(socket, identity, v);
    }, (e: unknown) => {
      this.warnRegistry({ deviceId: identity.deviceId, error: describeError(e) });
      socket.destroy();
    });
  }

  stats(): MqttStats {
    return { ...this.counters, refused: { ...this.counters.refused } };
  }

  private start(socket: TLSSocket, identity: DeviceIdentity, values: TopicValues): void {
    const o = this.options;
    const policy = new DeviceTopicPolicy(o.publishTopics, o.subscribeTopics, values);
    const { logger } = this.deps;
    this.counters.connections++;
    const session = new MqttSession(socket, identity, policy, o, () => this.deps.isFresh(identity), {
      refused: (kind, id, fields) => {
        this.counters.refused[kind]++;
        logger.info(`mqtt gateway refused a ${kind === 'protocol' ? 'protocol violation' : kind}`, { deviceId: id.deviceId, ...fields });
      },
      connected: (id, version) => {
        this.counters.sessionsOpened++;
        logger.info('mqtt gateway session open', { deviceId: id.deviceId, protocolVersion: version === 5 ? '5.0' : '3.1.1' });
      },
      closed: () => {
        this.counters.connections--;
      },
      upstreamError: (id, e) => this.warnUpstream({ deviceId: id.deviceId, error: describeError(e) }),
      traffic: (id, messages, bytes) => this.deps.activity.traffic(id.deviceId, messages, bytes),
      firmware: (id, version) => {
        if (isFirmwareVersion(version)) this.deps.activity.firmware(id.deviceId, version, 'mqtt');
        else logger.info('mqtt gateway ignored a malformed firmware user property', { deviceId: id.deviceId, firmware: String(version).slice(0, 80) });
      },
    });
    this.deps.connections.setCloser(socket, () => session.kill());
    socket.resume();
  }

  /** The placeholder values of a device; its registry record is read only if a template needs it. */
  private valuesOf(deviceId: string): TopicValues | Promise<TopicValues> {
    if (!this.needsRecord) return { deviceId, manufacturerId: undefined, serialNumber: undefined };
    const hit = this.details.get(deviceId);
    if (hit !== undefined) return hit;
    return this.deps.registry.getDevice(deviceId).then((d) => {
      // manufacturerId and serialNumber never change for a device id: cached without expiry.
      const v: TopicValues = { deviceId, manufacturerId: d.manufacturerId, serialNumber: d.serialNumber };
      this.details.set(deviceId, v);
      return v;
    }, (e: unknown) => {
      if (hasCode(e, 'KAKUIN_E_DEVICE_NOT_FOUND')) return { deviceId, manufacturerId: undefined, serialNumber: undefined };
      throw e;
    });
  }
}
