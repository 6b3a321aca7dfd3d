/**
 * The proxied HTTP routes' options (DeviceGatewayOptions.routes), checked once at start like the
 * rest of the gateway's: KAKUIN_E_CONFIG names the bad route and field.
 */
import { KakuinError } from '../../errors/index.js';

export interface DeviceRouteOptions {
  /** A path prefix: `/` or `/a/b` (no trailing slash, no `?`, `#` or dot segments). Longest match wins. */
  prefix: string;
  /** The upstream base URL (http: or https:); the request path is appended to its path unchanged. */
  upstreamUrl: string;
  /** CA certificates (PEM texts) for an https: upstream (default: Node's bundled roots). */
  upstreamCaPem?: string[];
  /** Largest request body on this route (default 1 048 576 bytes); beyond it 413 KAKUIN_E_ROUTE_BODY_TOO_LARGE. */
  bodyLimitBytes?: number;
}

export interface ResolvedRoute {
  prefix: string;
  upstream: URL;
  /** The upstream URL's path without its trailing slash ('' for `/`), put in front of the request path. */
  basePath: string;
  caPem?: string[];
  bodyLimitBytes: number;
}

export const DEFAULT_ROUTE_BODY_LIMIT = 1024 * 1024;

function configError(message: string): KakuinError {
  return new KakuinError('KAKUIN_E_CONFIG', `gateway: ${message}`);
}

export function hasDotSegment(path: string): boolean {
  // RFC 3986 §3.3 / §5.2.4: `.` and `..` segments, also percent-encoded (%2e), would let an
  // upstream that normalises paths serve something outside the route's prefix.
  return path.split('/').some((seg) => /^(?:\.|%2e){1,2}$/i.test(seg));
}

export function resolveRoutes(value: unknown): ResolvedRoute[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw configError('routes must be a list of {prefix, upstreamUrl}');
  const seen = new Set<string>();
  const routes = value.map((r: DeviceRouteOptions, i): ResolvedRoute => {
    const f = `routes[${i}]`;
    if (r === null || typeof r !== 'object') throw configError(`${f} must be an object`);
    const { prefix } = r;
    if (typeof prefix !== 'string' || !prefix.startsWith('/') || /[?#\s]/.test(prefix) || (prefix.length > 1 && prefix.endsWith('/')) || hasDotSegment(prefix)) {
      throw configError(`${f}.prefix must be "/" or a path like "/api/v2" (no trailing slash, query or dot segment)`);
    }
    if (seen.has(prefix)) throw configError(`${f}.prefix ${prefix} is listed twice`);
    seen.add(prefix);
    let upstream: URL;
    try {
      upstream = new URL(String(r.upstreamUrl));
    } catch {
      throw configError(`${f}.upstreamUrl is not a URL`);
    }
    if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') throw configError(`${f}.upstreamUrl must be an http: or https: URL`);
    if (upstream.username !== '' || upstream.password !== '' || upstream.search !== '' || upstream.hash !== '') {
      throw configError(`${f}.upstreamUrl must be scheme://host[:port][/path] (no credentials, query or fragment)`);
    }
    const limit = r.bodyLimitBytes ?? DEFAULT_ROUTE_BODY_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 0) throw configError(`${f}.bodyLimitBytes must be a non-negative integer`);
    if (r.upstreamCaPem !== undefined && upstream.protocol !== 'https:') throw configError(`${f}.upstreamCa is only for an https: upstream`);
    return Object.freeze({
      prefix, upstream, basePath: upstream.pathname.replace(/\/+$/, ''), bodyLimitBytes: limit,
      ...(r.upstreamCaPem !== undefined && { caPem: r.upstreamCaPem }),
    });
  });
  // Longest prefix first, so the first match is the most specific one.
  return Object.freeze(routes.sort((a, b) => b.prefix.length - a.prefix.length)) as ResolvedRoute[];
}

/** The route whose prefix covers `path` (segment-wise: `/api` covers `/api` and `/api/x`, not `/apix`). */
export function matchRoute(routes: readonly ResolvedRoute[], path: string): ResolvedRoute | undefined {
  for (const r of routes) {
    if (r.prefix === '/' || path === r.prefix || path.startsWith(`${r.prefix}/`)) return r;
  }
  return undefined;
}
