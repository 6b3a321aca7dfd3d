/**
 * Which topics a device may publish to and which filters it may subscribe to, from templates such
 * as `devices/{deviceId}/#` (placeholders `{deviceId}`, `{manufacturerId}`, `{serialNumber}`; the
 * MQTT wildcards `+` and `#`).
 *
 * Matching follows MQTT 5.0 §4.7 (3.1.1 §4.7 is the same): `/` separates levels, `+` matches one
 * level, `#` (last level only) matches the parent and any number of levels below, and a filter
 * starting with a wildcard does not match a topic starting with `$` (§4.7.2). A SUBSCRIBE filter is
 * allowed only when it is a SUBSET of an allowed filter — every topic it can match, the allowed
 * filter matches too — so `devices/d1/+` fits under `devices/d1/#` but `devices/+/x` does not.
 * `$SYS/...` and `$CONTROL/...` are refused whatever the templates say (broker internals and
 * Mosquitto's control topics); a `$share/<group>/` prefix (§4.8.2) is stripped before checking.
 */
import { KakuinError } from '../../errors/index.js';

export const DEFAULT_TOPIC_TEMPLATE = 'devices/{deviceId}/#';

const PLACEHOLDERS = ['deviceId', 'manufacturerId', 'serialNumber'] as const;
export type TopicPlaceholder = (typeof PLACEHOLDERS)[number];
export type TopicValues = Record<TopicPlaceholder, string | undefined>;

/** A checked template: its levels, and which placeholders it needs. */
export interface TopicTemplate {
  text: string;
  placeholders: ReadonlySet<TopicPlaceholder>;
}

const DENIED_ROOTS = new Set(['$SYS', '$CONTROL']);

/** Checks a template once (at start): a valid MQTT filter once its placeholders are filled in. */
export function parseTopicTemplate(text: unknown, field: string): TopicTemplate {
  if (typeof text !== 'string' || text.length === 0 || text.length > 65_535) {
    throw new KakuinError('KAKUIN_E_CONFIG', `${field} must be a non-empty topic filter template`);
  }
  const placeholders = new Set<TopicPlaceholder>();
  const rest = text.replace(/\{([A-Za-z]+)\}/g, (_, name: string) => {
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      throw new KakuinError('KAKUIN_E_CONFIG', `${field}: unknown placeholder {${name}} (use ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`);
    }
    placeholders.add(name as TopicPlaceholder);
    return 'x';
  });
  if (/[{}\u0000]/.test(rest)) throw new KakuinError('KAKUIN_E_CONFIG', `${field}: stray brace or NUL in ${JSON.stringify(text)}`);
  if (!isValidFilter(rest)) throw new KakuinError('KAKUIN_E_CONFIG', `${field}: ${JSON.stringify(text)} is not a valid MQTT topic filter`);
  const root = rest.split('/')[0];
  if (DENIED_ROOTS.has(root) || root === '$share') throw new KakuinError('KAKUIN_E_CONFIG', `${field}: ${root}/ topics cannot be granted to devices`);
  return { text, placeholders };
}

/** MQTT 5.0 §4.7.1: `#` alone in the last level, `+` alone in its level. */
export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return false;
    if (l.includes('+') && l !== '+') return false;
  }
  return true;
}

/** A topic name (PUBLISH, Will): non-empty, no wildcards (§4.7.3). */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !/[+#\u0000]/.test(topic);
}

/** Whether `filter` matches `topic` (§4.7). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (t[0].startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Whether every topic `filter` can match is also matched by `allowed`. */
export function filterIsSubset(filter: string, allowed: string): boolean {
  const f = filter.split('/');
  const a = allowed.split('/');
  // §4.7.2: a wildcard first level never matches `$` topics, so it cannot cover a `$` filter.
  if (f[0].startsWith('$') && (a[0] === '+' || a[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (i >= a.length) return false;
    if (a[i] === '#') return true;
    if (f[i] === '#') return false;
    if (a[i] === '+') continue;
    if (f[i] !== a[i]) return false;
  }
  // `x/#` also matches `x` itself (§4.7.1.2).
  return a.length === f.length || (a.length === f.length + 1 && a[a.length - 1] === '#');
}

/** `$share/<group>/<filter>` → `<filter>`; undefined when the shared form is malformed. */
export function stripShare(filter: string): string | undefined {
  if (!filter.startsWith('$share/')) return filter;
  const rest = filter.slice('$share/'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const group = rest.slice(0, slash);
  if (/[+#]/.test(group)) return undefined;
  const inner = rest.slice(slash + 1);
  return inner.length === 0 ? undefined : inner;
}

function isDenied(topicOrFilter: string): boolean {
  const root = topicOrFilter.split('/', 1)[0];
  return DENIED_ROOTS.has(root);
}

/** A value may fill a placeholder only if it stays inside one level and adds no wildcard. */
function usableValue(v: string | undefined): v is string {
  return v !== undefined && v.length > 0 && !/[/+#\u0000{}]/.test(v);
}

/** The filters of one device: templates filled in with its identity. */
export class DeviceTopicPolicy {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];

  constructor(publish: readonly TopicTemplate[], subscribe: readonly TopicTemplate[], values: TopicValues) {
    this.publish = expand(publish, values);
    this.subscribe = expand(subscribe, values);
  }

  /** PUBLISH and Will topics. */
  mayPublish(topic: string): boolean {
    if (!isValidTopicName(topic) || isDenied(topic)) return false;
    for (const f of this.publish) if (topicMatches(f, topic)) return true;
    return false;
  }

  /** SUBSCRIBE filters, `$share/<group>/` stripped first. */
  maySubscribe(filter: string): boolean {
    const inner = stripShare(filter);
    if (inner === undefined || !isValidFilter(inner) || isDenied(inner)) return false;
    for (const f of this.subscribe) if (filterIsSubset(inner, f)) return true;
    return false;
  }
}

/** Fills in the templates; one whose placeholder has no usable value grants nothing. */
function expand(templates: readonly TopicTemplate[], values: TopicValues): string[] {
  const out: string[] = [];
  for (const t of templates) {
    let ok = true;
    const text = t.text.replace(/\{([A-Za-z]+)\}/g, (_, name: TopicPlaceholder) => {
      const v = values[name];
      if (!usableValue(v)) ok = false;
      return v ?? '';
    });
    if (ok) out.push(text);
  }
  return out;
}

/** Whether any template needs more than the device id (then the registry's device record is read). */
export function needsDeviceRecord(templates: readonly TopicTemplate[]): boolean {
  return templates.some((t) => t.placeholders.has('manufacturerId') || t.placeholders.has('serialNumber'));
}
