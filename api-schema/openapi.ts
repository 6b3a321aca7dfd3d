/**
 * The OpenAPI 3.1 document of a set of declared routes (routes.ts), rendered from the same zod
 * schemas that validate the requests, so the document cannot drift from what the API accepts.
 * OpenAPI 3.1 schemas are JSON Schema 2020-12, which is what z.toJSONSchema writes.
 */
import { z } from 'zod';
import type { DeclaredRoute } from './routes.js';
import { accessRule } from './access.js';

type Json = Record<string, unknown>;

function schemaOf(t: z.ZodType): Json {
  // `io: 'input'`: a query parameter is a string before it is coerced to a number.
  const s = z.toJSONSchema(t, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Json;
  delete s.$schema;
  return s;
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', pattern: '^KAKUIN_E_[A-Z0-9_]+$', description: 'stable; see docs/errors.md' },
    message: { type: 'string' },
    field: { type: 'string', description: 'the field or query parameter at fault' },
    accepted: { type: 'array', items: { type: 'string' }, description: 'KAKUIN_E_UNKNOWN_FIELD: the names this route knows' },
  },
};

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

export function openApiDocument(info: OpenApiInfo, routes: readonly DeclaredRoute[]): Json {
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const parameters: Json[] = [];
    for (const m of r.path.matchAll(/\{([A-Za-z][A-Za-z0-9]*)\}/g)) {
      parameters.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
    }
    const query = schemaOf(r.query);
    const props = (query.properties ?? {}) as Record<string, Json>;
    const required = new Set((query.required ?? []) as string[]);
    for (const [name, schema] of Object.entries(props)) {
      const { description, ...rest } = schema;
      parameters.push({ name, in: 'query', required: required.has(name), schema: rest, ...(description !== undefined && { description }) });
    }
    const op: Json = {
      summary: r.summary,
      'x-kakuin-callers': r.callers,
      // Who may call it, from the one role table (access.ts).
      'x-kakuin-roles': accessRule(r.method, r.path),
      ...(r.callers.some((c) => c === 'admin' || c === 'station') && { security: [{ bearer: [] }] }),
      ...(parameters.length > 0 && { parameters }),
      responses: {
        [String(r.response.status)]: { description: r.response.description },
        '4XX': { description: 'refused', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    if (r.body && (r.body.json || Object.keys(r.body.media).length > 0)) {
      const content: Json = {};
      if (r.body.json) content['application/json'] = { schema: schemaOf(r.body.json) };
      for (const [type, description] of Object.entries(r.body.media)) content[type] = { schema: { type: 'string', description } };
      op.requestBody = { required: !r.body.optional, content };
    }
    (paths[r.path] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      schemas: { Error: ERROR_SCHEMA },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an admin token or a station API key' } },
    },
  };
}
