/**
 * What every registry adapter shares: the checks and normalisations of the port's inputs
 * (values.ts, prepared.ts) and CheckedRegistry, which applies them once, before any adapter code.
 * Adapters (registry/<adapter>/) import this folder, the port and the adapter-neutral rules beside
 * it (status-change.ts, ids.ts, activity.ts), never each other.
 */
export * from './values.js';
export * from './prepared.js';
export * from './audit-chain.js';
export { CheckedRegistry, type CheckedCommonAuthId, type CheckedStationChange } from './checked-registry.js';
export * from './jobs.js';
export * from './cmp.js';
