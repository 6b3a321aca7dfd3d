/**
 * The only way a route gets onto kakuin's express apps: `routes.add(spec)` with the route's declared
 * inputs. What a route does not declare it does not take: an unknown query parameter or body field
 * is KAKUIN_E_UNKNOWN_FIELD, a value of the wrong type KAKUIN_E_INVALID_FIELD (validation.ts), and a
 * POST that declares no body takes at most an empty JSON object. The same declarations render the
 * OpenAPI document (openapi.ts), and `undeclaredRoutes` lets a test find a route that was put on
 * the app some other way.
 */
import type { ErrorRequestHandler, Express, NextFunction, Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { KakuinError, type ErrorCode } from '../errors/index.js';
import { parseInput } from './validation.js';
import { accessRule, admits, principalOf } from './access.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'delete';

/** A query string that takes no parameters. */
export const NO_QUERY = z.strictObject({});
/** The body of a POST that takes none: absent, or an empty JSON object. */
export const NO_BODY = z.strictObject({});

export interface MediaBody {
  /** Reads the body (express.raw/text with its limit); runs after the route's `use`. */
  parser?: RequestHandler;
  /** What the body is, for the OpenAPI document. */
  description: string;
  /** Other media types read the same way (`text/plain` for PEM, ...). */
  alsoAs?: string[];
}

export interface BodySpec<B extends z.ZodType> {
  /** The JSON body (application/json), validated before the handler runs. */
  json?: B;
  /** Parses JSON bodies (default: the routes' own, with the API's size limit). */
  jsonParser?: RequestHandler;
  /** An absent body (no Content-Type, or Content-Length 0) is read as `{}`. */
  optional?: boolean;
  /** Other media types the route reads itself (CSV, PKCS#10, NDJSON, ...). */
  media?: Record<string, MediaBody>;
}

export interface RouteContext<Q, B> {
  req: Request;
  res: Response;
  query: Q;
  /** The validated JSON body; undefined when the request carried another declared media type. */
  body: B;
  params: Record<string, string>;
}

export interface RouteSpec<Q extends z.ZodType, B extends z.ZodType> {
  method: HttpMethod;
  /** As OpenAPI writes it: `/api/v1/devices/{id}`. */
  path: string;
  summary: string;
  /** Who may call it (`anyone`, `admin`, `station`, `device`): for the document and the README. */
  callers: readonly string[];
  /** Run first, in order: authentication and role checks, so no body is read for an unknown caller. */
  use?: RequestHandler[];
  /** A strict object schema of string values; absent: no query parameters at all. */
  query?: Q;
  body?: BodySpec<B>;
  /** The status and what the success answer is, for the document. */
  response?: { status: number; description: string };
  /** The code for a value of the wrong type where a route's clients already rely on another one. */
  wrongTypeCode?: ErrorCode;
  handler(ctx: RouteContext<z.output<Q>, z.output<B>>): unknown;
}

export interface DeclaredRoute {
  method: HttpMethod;
  path: string;
  summary: string;
  callers: readonly string[];
  query: z.ZodType;
  body?: { json?: z.ZodType; optional: boolean; media: Record<string, string> };
  response: { status: number; description: string };
}

/** `/a/{id}/b` → `/a/:id/b` (express 5 path syntax). */
export function expressPath(path: string): string {
  return path.replace(/\{([A-Za-z][A-Za-z0-9]*)\}/g, ':$1');
}

/** As type-is and body-parser decide it (RFC 9112 §6.3): a body is there when its length is said and not 0, or it is chunked. */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The ApiRoutes of each app, so a test can hold an app's routes against its declarations. */
const TABLES = new WeakMap<Express, ApiRoutes>();

/** The declared routes of an app built with ApiRoutes. */
export function routesOf(app: Express): ApiRoutes | undefined {
  return TABLES.get(app);
}

export class ApiRoutes {
  private readonly list: DeclaredRoute[] = [];

  /**
   * @param app the express app (or router) the routes go on
   * @param json the JSON body parser for routes that declare a JSON body (with the API's size limit)
   */
  constructor(private readonly app: Express, private readonly json: RequestHandler) {
    TABLES.set(app, this);
  }

  /** Middleware that is not a route (a 404 or error handler for a path prefix). */
  use(path: string, ...handlers: (RequestHandler | ErrorRequestHandler)[]): void {
    this.app.use(path, ...handlers);
  }

  /** Every route added, in order. */
  declared(): readonly DeclaredRoute[] {
    return this.list;
  }

  add<Q extends z.ZodType = typeof NO_QUERY, B extends z.ZodType = typeof NO_BODY>(spec: RouteSpec<Q, B>): void {
    const query = (spec.query ?? NO_QUERY) as z.ZodType;
    // A POST without a declared body takes none; GET and DELETE never read one.
    const bodySpec: BodySpec<z.ZodType> | undefined = spec.body ?? (spec.method === 'post' ? { json: NO_BODY, optional: true } : undefined);
    const media = Object.fromEntries(Object.entries(bodySpec?.media ?? {}).flatMap(([t, m]) => [t, ...(m.alsoAs ?? [])].map((x) => [x, m.description])));
    this.list.push({
      method: spec.method, path: spec.path, summary: spec.summary, callers: spec.callers, query,
      body: bodySpec && { json: bodySpec.json, optional: bodySpec.optional === true, media },
      response: spec.response ?? { status: 200, description: 'OK' },
    });
    const parsers: RequestHandler[] = [];
    if (bodySpec?.json) parsers.push(bodySpec.jsonParser ?? this.json);
    for (const m of Object.values(bodySpec?.media ?? {})) if (m.parser) parsers.push(m.parser);
    const wrongTypeCode = spec.wrongTypeCode;
    const validate = async (req: Request, res: Response, next: NextFunction) => {
      const q = parseInput(query, { ...(req.query as Record<string, unknown>) }, { place: 'query', wrongTypeCode });
      let body: unknown;
      if (bodySpec?.json) {
        if (req.is('application/json')) {
          const b: unknown = req.body;
          if (bodySpec.json instanceof z.ZodObject && (typeof b !== 'object' || b === null || Array.isArray(b))) {
            throw new KakuinError('KAKUIN_E_VALIDATION', 'the body must be a JSON object');
          }
          body = parseInput(bodySpec.json, b, { place: 'body', wrongTypeCode });
        } else if (bodySpec.optional && !hasBody(req)) {
          body = parseInput(bodySpec.json, {}, { place: 'body', wrongTypeCode });
        } else if (!Object.keys(media).some((t) => req.is(t))) {
          const types = ['application/json', ...Object.keys(media)];
          throw new KakuinError('KAKUIN_E_UNSUPPORTED_MEDIA_TYPE', `this route takes ${types.join(' or ')}`);
        }
      }
      await spec.handler({ req, res, query: q as z.output<Q>, body: body as z.output<B>, params: req.params as Record<string, string> });
      void next;
    };
    // The role table (access.ts), after the route's own authentication and before any body is read.
    const rule = accessRule(spec.method, spec.path);
    const gate: RequestHandler = (req, _res, next) => {
      const caller = (req as Request & { caller?: { kind: string; role?: string } }).caller;
      if (caller !== undefined && !admits(rule, principalOf(caller))) {
        throw new KakuinError('KAKUIN_E_FORBIDDEN', `the ${principalOf(caller)} role may not call ${spec.method.toUpperCase()} ${spec.path}`);
      }
      next();
    };
    const chain: RequestHandler[] = [...(spec.use ?? []), gate, ...parsers, validate];
    this.app[spec.method](expressPath(spec.path), ...chain);
  }
}

/** Routes on the app that its ApiRoutes did not declare: `METHOD path` (express syntax). */
export function undeclaredRoutes(app: Express): string[] {
  const declared = new Set((routesOf(app)?.declared() ?? []).map((r) => `${r.method.toUpperCase()} ${expressPath(r.path)}`));
  const found: string[] = [];
  const stack = (app as unknown as { router: { stack: { route?: { path: string | string[]; methods: Record<string, boolean> } }[] } }).router.stack;
  for (const layer of stack) {
    if (!layer.route) continue;
    const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
    for (const method of Object.keys(layer.route.methods)) {
      for (const p of paths) {
        const key = `${method.toUpperCase()} ${p}`;
        if (!declared.has(key)) found.push(key);
      }
    }
  }
  return found;
}
