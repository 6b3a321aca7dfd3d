export { ScepService, SCEP_CAPABILITIES, scepFailInfo, type ScepDeps, type ScepAnswer } from './scep-service.js';
export { ensureScepRa, type ScepRa } from './ra.js';
export { mountScep, scepHttpHandler } from './scep-routes.js';
