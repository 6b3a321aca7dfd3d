/**
 * Wiring of per-device activity (operations/activity): one aggregator per process, flushing to the
 * registry's ActivityStore. A process whose registry connection is writable (`kakuin serve`, the
 * ca/enrollment roles) uses that connection; a gateway or legacy role, whose registry is read-only,
 * opens a second SQLite connection limited to activity (README "What kakuin records about a device").
 */
import { ActivityAggregator } from '../operations/activity/aggregator.js';
import type { ActivityStore } from '../registry/activity.js';
import type { Registry } from '../registry/port.js';
import { openSqliteActivityStore, SqliteRegistry } from '../registry/sqlite/index.js';
import type { KakuinConfig } from './config.js';
import { notableRefusalSink } from './events.js';
import type { Logger } from './logger.js';

const PREFIXES = { '24/48': { v4: 24, v6: 48 }, '16/32': { v4: 16, v6: 32 } } as const;
const DAY_MS = 86_400_000;

export interface RunningActivity {
  recorder: ActivityAggregator;
  store: ActivityStore;
  close(): Promise<void>;
}

/** A MongoRegistry opened for writing (not imported: cli/wiring.ts loads the driver only when it is configured). */
function isWritableMongo(registry: Registry): registry is Registry & { activity: ActivityStore } {
  const r = registry as Registry & { activity?: ActivityStore; isReadonly?: boolean };
  return r.activity !== undefined && r.isReadonly === false;
}

export function startActivity(config: Readonly<KakuinConfig>, registry: Registry, logger: Logger): RunningActivity | undefined {
  const a = config.activity;
  if (!a.enabled) return undefined;
  let store: ActivityStore;
  let closeStore = () => { /* the registry's own connection */ };
  if (registry instanceof SqliteRegistry && !registry.connectionSettings().readonly) store = registry.activity;
  else if (registry instanceof SqliteRegistry && config.storage.type === 'sqlite') {
    const opened = openSqliteActivityStore({ path: config.storage.path });
    store = opened.store;
    closeStore = opened.close;
  } else if (config.storage.type === 'mongodb' && isWritableMongo(registry)) store = registry.activity;
  else {
    // A read-only MongoDB role (gateway, legacy) has no write connection limited to activity yet.
    logger.warn('activity recording is not available on this registry connection yet; recording nothing', { storage: config.storage.type });
    return undefined;
  }
  const onNotable = notableRefusalSink(registry, logger);
  const recorder = new ActivityAggregator({
    store,
    // A revoked or suspended device trying again goes into the audit trail, hence out as an event.
    ...(onNotable !== undefined && { onNotable }),
    flushIntervalMs: a.flushSeconds * 1000,
    ...(a.addressPrefix !== 'none' && { addressPrefix: PREFIXES[a.addressPrefix] }),
    onFlushError: (e) => logger.warn('activity flush failed; the batch is kept for the next one', { error: String((e as Error)?.message ?? e) }),
  });
  recorder.start();
  const prune = setInterval(() => {
    store.pruneActivity(new Date(Date.now() - a.retentionDays * DAY_MS)).catch((e: unknown) => logger.warn('activity pruning failed', { error: String(e) }));
  }, 3_600_000);
  prune.unref();
  return {
    recorder, store,
    close: async () => {
      clearInterval(prune);
      await recorder.stop();
      closeStore();
    },
  };
}
