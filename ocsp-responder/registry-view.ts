/**
 * What the OCSP responder needs of the registry, and nothing more (the consumer defines the
 * interface, as STYLE.md asks): it reads certificate status and the revocation feed, reads the
 * published CRLs and issuer certificates, and stores the responses it pre-signs. It cannot issue,
 * revoke or touch devices.
 */
import type { Registry } from '../registry/port.js';

export type OcspRegistryView = Pick<Registry,
  | 'readFeed'
  | 'watchFeed'
  | 'latestFeedSeq'
  | 'forEachCertificateStatus'
  | 'putOcspResponses'
  | 'forEachOcspResponse'
  | 'getLatestCrl'
  | 'getCertificate'
  | 'getIssuer'
>;
