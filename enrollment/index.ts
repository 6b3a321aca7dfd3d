/**
 * Production-line enrollment (DESIGN.md "Core flows" 2): enrollment → ca → registry. The
 * composition root builds an EnrollmentService and mounts the routes on the management API.
 */
export { EnrollmentService, type Enrollment, type EnrollmentOptions, type EnrollRequest } from './enrollment-service.js';
export { mountEnrollmentRoutes, type EnrollmentRouteDeps } from './routes.js';
export { MAX_BATCH_LINES } from './batch.js';
export { MAX_IMPORT_ROWS } from './device-import.js';
export { StationRateLimit } from './station-rate-limit.js';
export { runFactoryBatch, type FactoryBatchOptions, type FactoryBatchResult } from './factory-client.js';
export { StationQuota } from './station-quota.js';
export { StationCertificateAuthenticator, stationCertificateOr } from './station-certificate-auth.js';
