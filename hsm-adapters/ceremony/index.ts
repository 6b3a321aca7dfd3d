export { combineShares, splitSecret } from './split-knowledge.js';
export type { ShareSet } from './split-knowledge.js';
