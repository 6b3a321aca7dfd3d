/**
 * Cohorts: which devices a bulk action selects. A selection is a list of ids, or a filter: the
 * registry filters of `GET /api/v1/devices` (manufacturer, model, status, identifiers), its activity
 * filters (last seen, current firmware), and two cohort-only ones: `sharedKey` (the devices whose
 * certificates carry one public key, by SHA-256 of its SubjectPublicKeyInfo) and `station` with a
 * window (the devices a factory station enrolled between `from` and `to`: its `certificate.issued`
 * audit events, which commit with each certificate, so none is missed).
 *
 * The result is materialised once, when the job is made: the job acts on exactly that frozen set,
 * whatever enrols or changes afterwards (registry/jobs.ts).
 */
import type { ActivityFilter, ActivityStore } from '../../registry/activity.js';
import type { Device, DeviceQuery, Registry } from '../../registry/port.js';
import { KakuinError, hasCode } from '../../errors/index.js';

export type RegistryFilter = Omit<DeviceQuery, 'afterId' | 'limit'>;

export interface CohortFilter {
  registry: RegistryFilter;
  activity?: ActivityFilter;
  /** SHA-256 of the SubjectPublicKeyInfo DER, lowercase hex. */
  sharedKey?: string;
  station?: { id: string; from: Date; to: Date };
}

export type CohortSelection = { ids: readonly string[] } | { filter: CohortFilter };

export interface CohortDeps {
  registry: Registry;
  activity?: Pick<ActivityStore, 'devicesMatchingActivity'>;
}

const PAGE = 1000;

function matchesRegistryFilter(d: Device, f: RegistryFilter): boolean {
  return (f.manufacturerId === undefined || d.manufacturerId === f.manufacturerId)
    && (f.serialNumber === undefined || d.serialNumber === f.serialNumber)
    && (f.mac === undefined || d.identifiers.mac?.toLowerCase() === f.mac.toLowerCase())
    && (f.imei === undefined || d.identifiers.imei === f.imei)
    && (f.hardwareId === undefined || d.identifiers.hardwareId === f.hardwareId)
    && (f.status === undefined || d.status === f.status)
    && (f.model === undefined || d.model === f.model);
}

function hasActivityFilter(f: ActivityFilter | undefined): f is ActivityFilter {
  return f !== undefined && (f.lastSeenAfter !== undefined || f.lastSeenBefore !== undefined || f.firmwareVersion !== undefined);
}

/**
 * The ids a selection names, in a stable order (the registry's listing order for a filter, the
 * given order for ids), each once. `limit`: more than this many is KAKUIN_E_BULK_TOO_LARGE.
 */
export async function selectCohort(deps: CohortDeps, selection: CohortSelection, limit: number): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const push = (ids: Iterable<string>) => {
    for (const id of ids) {
      if (seen.has(id)) continue;
      seen.add(id);
      out.push(id);
      if (out.length > limit) throw new KakuinError('KAKUIN_E_BULK_TOO_LARGE', `the selection holds more than ${limit} devices (bulk.maxDevices); narrow it`);
    }
  };
  if ('ids' in selection) {
    for (const id of selection.ids) {
      try {
        await deps.registry.getDevice(id);
      } catch (e) {
        if (hasCode(e, 'KAKUIN_E_DEVICE_NOT_FOUND')) throw new KakuinError('KAKUIN_E_DEVICE_NOT_FOUND', `no device with id ${JSON.stringify(id)}; no job was made`);
        throw e;
      }
      push([id]);
    }
    return out;
  }
  const f = selection.filter;
  const activity = hasActivityFilter(f.activity) ? f.activity : undefined;
  if (activity !== undefined && deps.activity === undefined) {
    throw new KakuinError('KAKUIN_E_ACTIVITY_OFF', 'device activity is not recorded here, so the lastSeen and firmware filters cannot select');
  }
  const keepActive = async (devices: Device[]): Promise<string[]> => {
    const ids = devices.filter((d) => matchesRegistryFilter(d, f.registry)).map((d) => d.id);
    if (activity === undefined || ids.length === 0) return ids;
    const matching = new Set(await deps.activity!.devicesMatchingActivity(ids, activity));
    return ids.filter((id) => matching.has(id));
  };

  if (f.sharedKey !== undefined || f.station !== undefined) {
    // A narrow candidate set first (one key, one station's window), then the other filters on it.
    let candidates: string[] | undefined;
    if (f.sharedKey !== undefined) {
      const bound = await deps.registry.findDeviceIdByPublicKey(f.sharedKey);
      candidates = bound === undefined ? [] : [bound];
    }
    if (f.station !== undefined) {
      const enrolled = await stationCohort(deps.registry, f.station);
      const inWindow = new Set(enrolled);
      candidates = candidates === undefined ? enrolled : candidates.filter((id) => inWindow.has(id));
    }
    for (let i = 0; i < candidates!.length; i += PAGE) {
      const devices = await Promise.all(candidates!.slice(i, i + PAGE).map((id) => deps.registry.getDevice(id)));
      push(await keepActive(devices));
    }
    return out;
  }

  let afterId: string | undefined;
  for (;;) {
    const page = await deps.registry.findDevices({ ...f.registry, afterId, limit: PAGE });
    if (page.length === 0) break;
    push(await keepActive(page));
    if (page.length < PAGE) break;
    afterId = page[page.length - 1].id;
  }
  return out;
}

/** The devices a station enrolled in [from, to): its `certificate.issued` audit events name each. */
async function stationCohort(registry: Registry, station: { id: string; from: Date; to: Date }): Promise<string[]> {
  await registry.getStation(station.id);
  const ids = new Set<string>();
  let afterId = 0;
  for (;;) {
    const events = await registry.listAuditEvents({
      type: 'certificate.issued', actor: `station:${station.id}`, since: station.from, until: station.to, afterId, limit: PAGE,
    });
    for (const e of events) if (e.deviceId !== undefined) ids.add(e.deviceId);
    if (events.length < PAGE) return [...ids];
    afterId = events[events.length - 1].id;
  }
}
