/**
 * The legacy three-factor token path (DESIGN.md flow 5): devices that cannot hold a key present
 * common auth ID + auth secret + unique ID, get a short-lived token, and send data with it. Same
 * device records and the same kill switch as the mTLS path. The composition root (`cli/legacy-path.ts`)
 * builds it; the CA is reached only through the injected `issueCertificate`.
 */
export { LegacyAbuseGuard, FAILURE_WINDOW_MS, type AbusePolicy } from './abuse.js';
export { mountLegacyAdminRoutes, type LegacyAdminRouteDeps } from './admin-routes.js';
export { LegacyAuthService, withinHours, type LegacyAuthOptions } from './auth-service.js';
export { importLegacySecrets, parseImport, secretProblem, MAX_IMPORT_ROWS, type ImportRow } from './import.js';
export { LegacyKillSwitch } from './kill-switch.js';
export { generateAuthSecret, hmacVerifier, scryptVerifier, verifySecret, SCRYPT_COST } from './secrets.js';
export { createLegacyApp, createLegacyServer, type LegacyServer, type LegacyServerOptions } from './server.js';
export { LegacyTokenSigner, type LegacyTokenClaims } from './tokens.js';
