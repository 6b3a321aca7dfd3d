/**
 * Wiring of detections (operations/detections): the service on the registry's detections store
 * (the management API's routes, resume resolving), and, in a process that also carries the
 * gateway, the feed (the front ends' activity, teed into the engine; the gateway's session gate)
 * and the responder suspending through the revocation plane. Needs a writable registry: a
 * gateway-only role process (read-only registry) evaluates nothing (README "Detections").
 */
import type { ActivityRecorder } from '../gateway-auth/activity-recorder.js';
import type { RevocationService } from '../ca/revocation.js';
import { DetectionFeed, DetectionResponder, DetectionService, registrySubjects, type RuleName } from '../operations/detections/index.js';
import type { DetectionStore } from '../registry/detections.js';
import type { Registry } from '../registry/port.js';
import { SqliteRegistry } from '../registry/sqlite/index.js';
import type { KakuinConfig } from './config.js';
import { truncateAddress } from '../operations/activity/address.js';

const ADDRESS_PREFIXES = { '24/48': { v4: 24, v6: 48 }, '16/32': { v4: 16, v6: 32 } } as const;
import type { Logger } from './logger.js';

export interface RunningDetections {
  service: DetectionService;
  responder: DetectionResponder;
  /** The feed in front of `inner` (the activity aggregator); one per process, made at the first call. */
  attach(inner: ActivityRecorder): DetectionFeed;
  feed(): DetectionFeed | undefined;
  close(): Promise<void>;
}

/** The registry's detections store when this connection may write (not imported: the MongoDB adapter loads only when configured). */
function writableStore(registry: Registry): DetectionStore | undefined {
  if (registry instanceof SqliteRegistry) return registry.connectionSettings().readonly ? undefined : registry.detections;
  const r = registry as Registry & { detections?: DetectionStore; isReadonly?: boolean };
  return r.detections !== undefined && r.isReadonly === false ? r.detections : undefined;
}

export async function startDetections(config: Readonly<KakuinConfig>, registry: Registry, revocation: RevocationService, logger: Logger): Promise<RunningDetections | undefined> {
  if (!config.detections.enabled) return undefined;
  const store = writableStore(registry);
  if (store === undefined) {
    logger.warn('detections need a writable registry connection (kakuin serve, or the ca role); not evaluated here', { storage: config.storage.type });
    return undefined;
  }
  let feed: DetectionFeed | undefined;
  const service = new DetectionService({
    store,
    onTemplatesChanged: (templates) => feed?.setTemplates(templates),
    onResolved: (d) => feed?.engine.rearm(d.deviceId, d.rule as RuleName),
  });
  await service.ensureShippedTemplates();
  const templates = await service.templates();
  const prefix = config.activity.addressPrefix;
  const responder = new DetectionResponder({
    store, suspender: revocation, audit: registry,
    // Evidence keeps what activity keeps of an address (activity.addressPrefix).
    ...(prefix !== 'none' && { redactAddress: (a: string) => truncateAddress(a, ADDRESS_PREFIXES[prefix]) }),
    onError: (error, finding) => logger.warn('a detection could not be recorded or acted on', {
      deviceId: finding.deviceId, rule: finding.rule, templateId: finding.templateId, error: String((error as Error)?.message ?? error),
    }),
    onHandled: (d) => logger.info('detection', { detectionId: d.id, deviceId: d.deviceId, rule: d.rule, action: d.action, outcome: d.outcome }),
  });
  return {
    service, responder,
    attach(inner) {
      if (feed !== undefined) return feed;
      const made = new DetectionFeed({
        inner, subjectOf: registrySubjects(registry), onFinding: responder.accept,
        onLookupError: (error, deviceId) => logger.warn('detections: could not read the device to pick its template', { deviceId, error: String(error) }),
      });
      feed = made;
      made.setTemplates(templates);
      made.start(config.detections.silenceCheckSeconds * 1000);
      return made;
    },
    feed: () => feed,
    close: async () => {
      feed?.stop();
      await responder.idle();
    },
  };
}
