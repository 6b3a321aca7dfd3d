/**
 * The MQTT front end's options (DeviceGatewayOptions.mqtt), checked once at start like the rest of
 * the gateway's (KAKUIN_E_CONFIG names the bad field).
 */
import { KakuinError } from '../../errors/index.js';
import { DEFAULT_TOPIC_TEMPLATE, parseTopicTemplate, type TopicTemplate } from './topic-policy.js';

export type MqttClientIdMode = 'require-device-id' | 'replace';

export interface MqttFrontEndOptions {
  /** TLS port of the MQTT listener (default 8883; 0 picks a free one). */
  port?: number;
  /** The broker: `mqtt://host:port` (plain TCP, default port 1883) or `mqtts://host:port` (TLS, 8883). */
  upstreamUrl: string;
  /** CA certificates for an mqtts: upstream (PEM texts; default Node's bundled roots). */
  upstreamCaPem?: string[];
  /** The password put in every upstream CONNECT (never logged); without it the password is removed. */
  upstreamPassword?: string | Buffer;
  /**
   * A client id other than empty or the device id: refused (`require-device-id`, default; CONNACK
   * 0x02 in 3.1.1, 0x85 in 5.0) or replaced by the device id (`replace`).
   */
  clientId?: MqttClientIdMode;
  /** Topic filter templates a device may PUBLISH to (and set a Will on); default `devices/{deviceId}/#`. */
  publishTopics?: string[];
  /** Topic filter templates a device's SUBSCRIBE filters must fit under; default `devices/{deviceId}/#`. */
  subscribeTopics?: string[];
  /** A device must send CONNECT, and the broker answer it, within this (default: the gateway's handshakeTimeoutMs). */
  connectTimeoutMs?: number;
}

export interface ResolvedMqttOptions {
  port: number;
  upstream: { tls: boolean; host: string; port: number; caPem?: string[] };
  upstreamPassword?: Buffer;
  clientId: MqttClientIdMode;
  publishTopics: readonly TopicTemplate[];
  subscribeTopics: readonly TopicTemplate[];
  connectTimeoutMs: number;
}

function configError(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_CONFIG', `gateway: mqtt.${message}`);
}

function templates(value: unknown, field: string): TopicTemplate[] {
  if (value === undefined) return [parseTopicTemplate(DEFAULT_TOPIC_TEMPLATE, field)];
  if (!Array.isArray(value) || value.length === 0) throw configError(`${field} must be a non-empty array of topic filter templates`);
  return value.map((t, i) => parseTopicTemplate(t, `gateway: mqtt.${field}[${i}]`));
}

export function resolveMqttOptions(o: MqttFrontEndOptions, defaultTimeoutMs: number): ResolvedMqttOptions {
  if (o === null || typeof o !== 'object') throw configError('must be an object');
  let url: URL;
  try {
    url = new URL(String(o.upstreamUrl));
  } catch {
    throw configError('upstreamUrl is not a URL');
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') throw configError('upstreamUrl must be an mqtt:// or mqtts:// URL');
  if (url.hostname === '') throw configError('upstreamUrl has no host');
  if (url.username !== '' || url.password !== '') throw configError('upstreamUrl must not carry credentials (use the upstream password file)');
  const tls = url.protocol === 'mqtts:';
  const port = o.port ?? 8883;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw configError('port must be a port number');
  const clientId = o.clientId ?? 'require-device-id';
  if (clientId !== 'require-device-id' && clientId !== 'replace') throw configError('clientId must be "require-device-id" or "replace"');
  const timeout = o.connectTimeoutMs ?? defaultTimeoutMs;
  if (!Number.isSafeInteger(timeout) || timeout <= 0) throw configError('connectTimeoutMs must be a positive integer');
  let upstreamPassword: Buffer | undefined;
  if (o.upstreamPassword !== undefined) {
    upstreamPassword = Buffer.isBuffer(o.upstreamPassword) ? o.upstreamPassword : Buffer.from(o.upstreamPassword, 'utf8');
    // MQTT 3.1.1 §3.1.3.5 / 5.0 §3.1.3.6: Binary Data, at most 65 535 bytes.
    if (upstreamPassword.length > 65_535) throw configError('upstreamPassword is longer than 65535 bytes');
  }
  return Object.freeze({
    port,
    upstream: Object.freeze({
      tls,
      // URL keeps IPv6 literals in brackets; net.connect wants them bare.
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? (tls ? 8883 : 1883) : Number(url.port),
      ...(o.upstreamCaPem !== undefined && { caPem: o.upstreamCaPem }),
    }),
    ...(upstreamPassword !== undefined && { upstreamPassword }),
    clientId,
    publishTopics: Object.freeze(templates(o.publishTopics, 'publishTopics')),
    subscribeTopics: Object.freeze(templates(o.subscribeTopics, 'subscribeTopics')),
    connectTimeoutMs: timeout,
  });
}
