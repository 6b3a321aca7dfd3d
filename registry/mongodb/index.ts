/** The MongoDB adapter of the registry port (see mongodb-registry.ts and docs/mongodb.md). */
export { openMongoRegistry, MongoRegistry } from './mongodb-registry.js';
export { MONGODB_SCHEMA_VERSION, type MongoRegistryOptions } from './connection.js';
export { MongoChangeFeed, startFeedWakeUp, type ChangeFeedOptions } from './change-feed.js';
export { redactUri } from './driver-errors.js';
