/** Field schemas the routes share. Domain rules (PrintableString serials, Luhn IMEIs, ...) stay with the domain code. */
import { z } from 'zod';

/** A query value: one string, bounded. */
export const queryText = z.string().min(1).max(256);

/** An ISO 8601 time (what `new Date()` reads, as the routes always took it). */
export const isoTime = z.string().max(64).refine((s) => !Number.isNaN(new Date(s).getTime()), 'must be an ISO 8601 time')
  .meta({ format: 'date-time' });

/** A body text field (its content is checked by the domain code, which names its own codes). */
export const text = z.string();

/** RFC 5280 §5.3.1 CRLReason names a revocation may give (the domain refuses the ones it does not allow). */
export const revocationReason = z.string().describe('unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn');
