/**
 * The adapter table: every registry adapter, by the `storage.type` that names it, with how to open
 * it, how a worker thread opens its own read-only connection, and which `storage.*` settings it
 * needs. The composition root (cli/) looks the configured type up here and never switches on it;
 * a new adapter is a folder under registry/ and one entry below (step-ca: one driver, one
 * registration). Drivers load only when their adapter is opened (`import()`), so a SQLite
 * deployment never loads the MongoDB driver.
 */
import { KakuinError } from '../errors/index.js';
import type { Registry } from './port.js';

/** The `storage` section of the configuration (cli/config.ts declares and checks each option). */
export interface StorageSettings {
  type: string;
  /** sqlite: the registry file. */
  path: string;
  /** sqlite: synchronous=NORMAL survives `kill -9`, FULL also a power loss (DESIGN.md "Storage"). */
  synchronous: 'NORMAL' | 'FULL';
  /** mongodb: the connection string (may carry credentials: log it only through redactUri). */
  uri?: string;
  /** mongodb: the database name. */
  database: string;
}

/** What a CRL worker thread imports (`openRegistry(options)`, ca/crl/crl-worker.ts) and passes it. */
export interface WorkerOpening {
  module: string;
  options: Record<string, unknown>;
}

export interface RegistryAdapter {
  /** Opens (creating and migrating, unless read-only) the registry. Read-only: the OCSP and gateway roles, worker threads. */
  open(storage: Readonly<StorageSettings>, options: { readonly: boolean }): Promise<Registry>;
  /** The module and options a worker thread opens its own read-only registry with. */
  worker(storage: Readonly<StorageSettings>): WorkerOpening;
  /** `storage.*` settings without a default that this adapter cannot open without, and how an operator sets each. */
  requires: readonly { setting: keyof StorageSettings; hint: string }[];
  /**
   * True when a read-only opening would find no registry at all (nothing has created it yet): a
   * process that may not create it says so plainly instead of failing deep in the driver.
   */
  absent?(storage: Readonly<StorageSettings>): Promise<boolean>;
}

function workerModule(adapter: string): string {
  return new URL(`./${adapter}/worker-open.js`, import.meta.url).href;
}

export const REGISTRY_ADAPTERS = {
  sqlite: {
    async open(storage, options) {
      const { openSqliteRegistry } = await import('./sqlite/index.js');
      return options.readonly
        ? openSqliteRegistry({ path: storage.path, readonly: true })
        : openSqliteRegistry({ path: storage.path, synchronous: storage.synchronous });
    },
    worker: (storage) => ({ module: workerModule('sqlite'), options: { path: storage.path } }),
    requires: [],
    async absent(storage) {
      const { existsSync } = await import('node:fs');
      return !existsSync(storage.path);
    },
  },
  mongodb: {
    async open(storage, options) {
      const { openMongoRegistry } = await import('./mongodb/index.js');
      return openMongoRegistry({ uri: storage.uri!, database: storage.database, readonly: options.readonly });
    },
    worker: (storage) => ({ module: workerModule('mongodb'), options: { uri: storage.uri, database: storage.database } }),
    requires: [{ setting: 'uri', hint: 'or set KAKUIN_MONGODB_URI' }],
  },
} as const satisfies Record<string, RegistryAdapter>;

export type StorageType = keyof typeof REGISTRY_ADAPTERS;

export const STORAGE_TYPES = Object.keys(REGISTRY_ADAPTERS) as StorageType[];

/** The adapter `storage.type` names. An unknown type never gets here: the configuration refuses it (STORAGE_TYPES). */
export function registryAdapter(type: string): RegistryAdapter {
  const adapter = Object.hasOwn(REGISTRY_ADAPTERS, type) ? (REGISTRY_ADAPTERS as Record<string, RegistryAdapter>)[type] : undefined;
  if (adapter === undefined) throw new KakuinError('KAKUIN_E_INTERNAL', `no registry adapter for storage type ${JSON.stringify(type)}`);
  return adapter;
}
