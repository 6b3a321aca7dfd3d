/**
 * The base URL written into certificates (OCSP, CRL, caIssuers) is chosen once per installation and
 * never guessed again. A relying party fetches these URLs for the lifetime of every certificate
 * (RFC 5280 §4.2.1.13, §4.2.2.1), so a value that silently followed `ocsp.port` would break the
 * status checks of every certificate issued after a port move.
 *
 * The value is kept in the registry as audit events (`ca.public-url`): the newest one is the
 * installation's URL. Recorded at init (or at the first start of a data directory made before this
 * rule), changed only by `kakuin ca set-public-url URL --confirm`. An audit event rather than a row
 * of its own: it is rare, must be traceable, and both registry adapters keep events already.
 */
import { KakuinError } from '../errors/index.js';
import type { Registry } from '../registry/port.js';
import type { KakuinConfig } from './config.js';
import type { Logger } from './logger.js';

export const PUBLIC_URL_EVENT = 'ca.public-url';

type UrlRegistry = Pick<Registry, 'listAuditEvents' | 'appendAuditEvent'>;

/** The installation's recorded public URL, undefined when none was recorded yet. */
export async function recordedPublicUrl(registry: UrlRegistry): Promise<string | undefined> {
  let url: string | undefined;
  let afterId: number | undefined;
  for (;;) {
    const page = await registry.listAuditEvents({ type: PUBLIC_URL_EVENT, limit: 1000, ...(afterId !== undefined && { afterId }) });
    for (const e of page) {
      const u = (e.details as { url?: unknown } | undefined)?.url;
      if (typeof u === 'string') url = u;
    }
    if (page.length < 1000) return url;
    afterId = page[page.length - 1].id;
  }
}

export async function recordPublicUrl(registry: UrlRegistry, url: string, actor: string, details: Record<string, unknown>): Promise<void> {
  await registry.appendAuditEvent({ type: PUBLIC_URL_EVENT, actor, details: { url, ...details } });
}

/**
 * The public URL an opened installation writes into certificates:
 * - none recorded yet (a data directory from before this rule): the configured one, recorded now;
 * - publicHttpUrl not set (file or KAKUIN_PUBLIC_HTTP_URL): the recorded one, whatever ocsp.port is;
 * - set to another value than the recorded one: refused, KAKUIN_E_CONFIG.
 */
export async function settlePublicUrl(registry: UrlRegistry, config: Readonly<KakuinConfig>, logger: Logger, actor: string): Promise<string> {
  const recorded = await recordedPublicUrl(registry);
  if (recorded === undefined) {
    await recordPublicUrl(registry, config.publicHttpUrl, actor, { recordedAt: 'first start' });
    logger.info('public HTTP URL recorded for this installation', { url: config.publicHttpUrl });
    return config.publicHttpUrl;
  }
  if (recorded === config.publicHttpUrl) return recorded;
  if (!config.setOptions.includes('publicHttpUrl')) {
    logger.info('public HTTP URL as recorded (publicHttpUrl is not set)', { url: recorded });
    return recorded;
  }
  throw new KakuinError('KAKUIN_E_CONFIG',
    `publicHttpUrl is ${config.publicHttpUrl}, but this installation writes ${recorded} into its certificates (recorded in the registry); `
    + `set publicHttpUrl back to ${recorded}, or run \`kakuin ca set-public-url ${config.publicHttpUrl} --confirm\` to change the URL of every certificate issued from now on`);
}
