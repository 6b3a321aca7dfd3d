/** The embedded SQLite adapter of the registry port (see sqlite-registry.ts). */
export { openSqliteRegistry, SqliteRegistry, type SqliteConnectionSettings } from './sqlite-registry.js';
export { openSqliteActivityStore, SqliteActivityStore } from './activity-store.js';
export { DEFAULT_BUSY_TIMEOUT_MS, type SqliteRegistryOptions } from './connection.js';
export { LATEST_SCHEMA_VERSION } from './schema.js';
export { backupSqliteRegistry, checkRegistryCopy, type SqliteBackupResult } from './backup.js';
