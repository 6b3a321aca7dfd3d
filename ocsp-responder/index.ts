/**
 * ocsp-responder: RFC 6960 / RFC 5019 responder with pre-signed responses, and the plain-HTTP
 * listener that also serves CRLs and issuer certificates. Imports pkix/, errors/, the registry and
 * Signer ports (types) and the registry's FeedFollower; everything else is injected.
 */
export { type OcspRegistryView } from './registry-view.js';
export { type OcspSigningIdentity, type PreparedIdentity, prepareIdentity } from './signing-identity.js';
export { IssuerIndex, hasPresignedShape } from './issuer-index.js';
export { ResponseSigner, DEFAULT_VALIDITY_MS, type ResponseSignerOptions, type SingleResponseInput } from './response-signer.js';
export { PresignedResponses, type PresignedResponsesOptions } from './presigned-responses.js';
export { ResponseArena, arenaKeyHash, type ResponseArenaOptions, type ResponseArenaStats } from './response-arena.js';
export { withWorkerWalks, type WalkRegistrySpec } from './worker-walks.js';
export { OcspResponder, type OcspResponderOptions } from './ocsp-responder.js';
export { LiveLimiter, type LiveLimits } from './live-limiter.js';
export { type FeedFactory, type FeedHandlers, type FeedSubscription, feedFollowerFactory } from './feed.js';
export { Publications, type Publication, type PublicationsOptions } from './publications.js';
export { OcspHttpServer, createOcspHttpServer, type OcspHttpServerOptions, type OcspAnswerer } from './http-server.js';
export { decodeGetRequest } from './get-request.js';
export { OcspMetrics } from './metrics.js';
export { type Logger } from './logger.js';
export * as cachedResponse from './cached-response.js';
