/**
 * The activity port (DESIGN.md "registry/": small consumer-named ports): hourly rollups of what each
 * device did, written in batches by operations/activity (never per message), read by the management
 * API. Kept apart from the Registry port on purpose: the gateway and legacy roles open the registry
 * read-only and get a write connection limited to this port (README "What kakuin records about a
 * device").
 */

/** One device's counts for one hour (UTC, `hour` = the hour's start), summed over a batch. */
export interface ActivityCounts {
  messages: number;
  bytes: number;
  admitted: number;
  refused: number;
  tokenOk: number;
  tokenFailed: number;
}

export interface LastSeen {
  at: Date;
  /** The source address (possibly truncated, activity.addressPrefix); undefined when unknown. */
  address?: string;
  frontEnd: string;
}

export interface Refusal {
  at: Date;
  reason: string;
  address?: string;
  frontEnd: string;
}

/** What one recorder (one process) flushes at once. */
export interface ActivityBatch {
  /** Names the writing process, so each process's open sessions are its own row. */
  recorderId: string;
  at: Date;
  devices: {
    deviceId: string;
    hour: Date;
    counts: ActivityCounts;
    lastSeen?: LastSeen;
    refusals: Refusal[];
    firmwareVersion?: string;
  }[];
  /** Sessions open now at this recorder, per device: replaces what this recorder said before. */
  sessions: { deviceId: string; addresses: string[] }[];
}

export interface HourlyActivity extends ActivityCounts {
  hour: Date;
}

export interface DeviceActivity {
  deviceId: string;
  lastSeen?: LastSeen;
  /** Sessions open now, over every recorder that flushed since `sessionsFreshSince`. */
  openSessions: { address: string; recorderId: string }[];
  hourly: HourlyActivity[];
  /** Newest first. */
  refusals: Refusal[];
  firmwareVersion?: string;
  firmwareHistory: { version: string; at: Date }[];
}

export interface ActivityFilter {
  lastSeenBefore?: Date;
  lastSeenAfter?: Date;
  firmwareVersion?: string;
}

export interface ActivityStore {
  /** One transaction: counts add up, last-seen moves forward only, sessions are replaced. */
  recordActivity(batch: ActivityBatch): Promise<void>;
  /** undefined when nothing was ever recorded for the device. */
  deviceActivity(deviceId: string, options?: { since?: Date; sessionsFreshSince?: Date; refusalLimit?: number }): Promise<DeviceActivity | undefined>;
  /** Ids of devices last seen in [after, before) (either bound optional), oldest last-seen first. */
  devicesLastSeen(filter: { before?: Date; after?: Date; limit?: number }): Promise<string[]>;
  /**
   * Of `deviceIds` (at most 1000), those whose activity matches every given bound, in the order
   * given: last seen in [lastSeenAfter, lastSeenBefore), current firmware (the one reported last)
   * exactly `firmwareVersion`. A device never seen matches no last-seen bound.
   */
  devicesMatchingActivity(deviceIds: readonly string[], filter: ActivityFilter): Promise<string[]>;
  /** Deletes rollups and refusals older than `before` (activity.retentionDays); returns rows removed. */
  pruneActivity(before: Date): Promise<number>;
  /** Deletes everything recorded about one device (a data subject's erasure request); returns rows removed. */
  deleteDeviceActivity(deviceId: string): Promise<number>;
}

/** Per device per flush, so a device hammering the gateway cannot grow one batch without bound. */
export const REFUSALS_PER_DEVICE_PER_BATCH = 20;
