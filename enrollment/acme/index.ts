/**
 * ACME (RFC 8555) for infrastructure certificates: brokers, proxies and gateways get TLS server
 * certificates from the infrastructure CA with certbot or lego (README "ACME for brokers and proxies").
 */
export { AcmeService, AcmeUrls, ariCertId, type AcmeServiceDeps } from './service.js';
export { mountAcme, type AcmeRouteDeps } from './routes.js';
export { mountAcmeAdminRoutes, type AcmeAdminDeps } from './admin-routes.js';
export { checkNamePattern, createEabKey, eabHmacKey, eabKeyJson, nameAllowed, revokeEabKey } from './eab.js';
export type { ValidationOptions } from './validation.js';
