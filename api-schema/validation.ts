/**
 * A zod failure as one KakuinError. A typo must never be taken for "not given" (a revocation with
 * `reasn` would be permanent as `unspecified`), so an unknown name wins over every other problem:
 * it usually explains them (a misspelled required field is also a missing one).
 *
 *   unknown field or filter         → KAKUIN_E_UNKNOWN_FIELD {field, accepted}
 *   a value of the wrong JSON type  → KAKUIN_E_INVALID_FIELD {field} (or the route's own code)
 *   missing, out of range, bad form → KAKUIN_E_VALIDATION {field}
 */
import { z } from 'zod';
import { KakuinError, type ErrorCode } from '../errors/index.js';

export type InputPlace = 'body' | 'query';

/** Optional, default and pipe wrappers off: the schema that judges the value. */
function unwrap(t: z.ZodType): z.ZodType {
  let cur = t;
  for (let i = 0; i < 8; i++) {
    const def = (cur as unknown as { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } }).def;
    if ((def.type === 'optional' || def.type === 'nullable' || def.type === 'default' || def.type === 'prefault') && def.innerType) cur = def.innerType;
    else if (def.type === 'pipe' && def.in) cur = def.in;
    else break;
  }
  return cur;
}

/** The object schema that stands at `path` inside `schema` (through arrays and unions), if any. */
function objectAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodObject | undefined {
  const s = unwrap(schema);
  if (s instanceof z.ZodUnion) {
    for (const option of s.options as readonly z.ZodType[]) {
      const found = objectAt(option, path);
      if (found) return found;
    }
    return undefined;
  }
  if (path.length === 0) return s instanceof z.ZodObject ? s : undefined;
  const [key, ...rest] = path;
  if (s instanceof z.ZodObject) {
    const next = s.shape[String(key)] as z.ZodType | undefined;
    return next === undefined ? undefined : objectAt(next, rest);
  }
  if (s instanceof z.ZodArray && typeof key === 'number') return objectAt(s.element as z.ZodType, rest);
  return undefined;
}

/**
 * The issues that explain a failure: for a value none of a union's forms took, those of the form
 * whose type the value has (`{credentials: "no"}` is the object form with a bad member).
 */
function explaining(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((i) => {
    if (i.code !== 'invalid_union') return [i];
    const fits = i.errors.find((branch) => !branch.some((b) => b.code === 'invalid_type' && b.path.length === 0));
    if (!fits) return [i];
    return explaining(fits.map((b) => ({ ...b, path: [...i.path, ...b.path] }) as z.core.$ZodIssue));
  });
}

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

export interface ParseOptions {
  place: InputPlace;
  /** The code for a value of the wrong type (default KAKUIN_E_INVALID_FIELD). */
  wrongTypeCode?: ErrorCode;
  /** Where `input` sits in the request (field names are reported from the top). */
  at?: readonly string[];
}

/** Parse `input` with `schema`, or throw the KakuinError that says what is wrong. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, o: ParseOptions): z.output<S> {
  const r = schema.safeParse(input, { reportInput: true });
  if (r.success) return r.data;
  throw inputError(schema, r.error.issues, o);
}

export function inputError(schema: z.ZodType, reported: readonly z.core.$ZodIssue[], o: ParseOptions): KakuinError {
  const issues = explaining(reported);
  const what = o.place === 'query' ? 'query parameter' : 'field';
  const unknown = issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') {
    const name = unknown.keys[0];
    const field = dotted([...(o.at ?? []), ...unknown.path, name]);
    const accepted = Object.keys(objectAt(schema, unknown.path)?.shape ?? {});
    const known = accepted.length > 0 ? `; this route takes ${accepted.join(', ')}` : '; this route takes none';
    return new KakuinError('KAKUIN_E_UNKNOWN_FIELD', `unknown ${what} ${JSON.stringify(field)}${known}`, { field, accepted });
  }
  const issue = issues[0];
  const field = dotted([...(o.at ?? []), ...issue.path]);
  const named = field === '' ? (o.place === 'query' ? 'the query string' : 'the body') : `${what} ${JSON.stringify(field)}`;
  const input = (issue as { input?: unknown }).input;
  if (issue.code === 'invalid_type' && input !== undefined) {
    return new KakuinError(o.wrongTypeCode ?? 'KAKUIN_E_INVALID_FIELD', `${named} must be ${expected(issue.expected)}${o.place === 'query' ? ' (given once)' : ''}`, { field });
  }
  if (issue.code === 'invalid_type') {
    return new KakuinError('KAKUIN_E_VALIDATION', `${named} is required`, { field });
  }
  return new KakuinError('KAKUIN_E_VALIDATION', `${named}: ${issue.message}`, { field });
}

function expected(t: string): string {
  switch (t) {
    case 'object': return 'a JSON object';
    case 'array': return 'a list';
    case 'string': return 'a string';
    case 'number': return 'a number';
    case 'int': return 'an integer';
    case 'boolean': return 'true or false';
    default: return `of type ${t}`;
  }
}
