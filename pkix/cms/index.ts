/** CMS (RFC 5652) for SCEP (RFC 8894) and EST serverkeygen (RFC 7030 §4.4.2). */
export * from './oids.js';
export * from './signed-data.js';
export * from './enveloped-data.js';
export * from './scep.js';
export * from './server-generated-key.js';
