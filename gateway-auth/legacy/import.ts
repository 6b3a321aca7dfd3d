/**
 * Importing auth secrets already burned into deployed devices (`POST /api/v1/legacy/import`), as
 * JSON (`[{deviceId, commonAuthId, uniqueId, authSecret}]` or `{credentials: [...]}`) or CSV with
 * that header line. All or nothing: factory-default, shared (the same secret on two devices, in the
 * batch or already stored) and weak secrets are refused, every offending row named (rows count
 * from 1, the CSV header excluded). Stored with async scrypt (secrets.ts).
 */
import { hasCode, KakuinError } from '../../errors/index.js';
import type { LegacyCredential, NewAuditEvent, Registry } from '../../registry/port.js';
import { scryptVerifier } from './secrets.js';
import { uniqueIdProblem } from './unique-id.js';

export interface ImportRow {
  deviceId: string;
  commonAuthId: string;
  uniqueId: string;
  authSecret: string;
}

export const MAX_IMPORT_ROWS = 1000;
const MIN_SECRET_LENGTH = 10;
const MIN_SECRET_BITS = 50;

/** Defaults printed in manuals and on labels; compared case-insensitively. */
const FACTORY_DEFAULTS = new Set([
  'admin', 'password', 'default', 'changeme', 'change-me', '1234', '12345', '123456', '12345678', '123456789', '1234567890',
  '0000', '00000000', '0000000000', '1111111111', 'root', 'guest', 'user', 'support', 'admin123', 'password1', 'password123',
  'default123', 'factory', 'secret', 'iot', 'device', 'qwerty', 'letmein', 'abc123', 'abcdefghij',
]);

/** Why a secret is refused, or undefined. */
export function secretProblem(secret: string, row: Pick<ImportRow, 'uniqueId' | 'commonAuthId'>): string | undefined {
  const lower = secret.toLowerCase();
  if (FACTORY_DEFAULTS.has(lower) || lower === row.uniqueId.toLowerCase() || lower === row.commonAuthId.toLowerCase()) return 'factory default';
  if (secret.length < MIN_SECRET_LENGTH) return `weak (shorter than ${MIN_SECRET_LENGTH} characters)`;
  if (/^(.)\1*$/.test(secret) || /^(.{1,4})\1+$/.test(secret)) return 'weak (repeated pattern)';
  if (lower.includes(row.uniqueId.toLowerCase()) && row.uniqueId.length >= 4) return 'weak (contains the unique ID)';
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].reduce((n, re) => n + (re.test(secret) ? 1 : 0), 0);
  const alphabet = (/[a-z]/.test(secret) ? 26 : 0) + (/[A-Z]/.test(secret) ? 26 : 0) + (/[0-9]/.test(secret) ? 10 : 0) + (/[^A-Za-z0-9]/.test(secret) ? 32 : 0);
  const distinct = new Set(secret).size;
  const bits = Math.min(secret.length, distinct * 2) * Math.log2(Math.max(alphabet, 2));
  if (bits < MIN_SECRET_BITS || classes === 0) return `weak (about ${Math.floor(bits)} bits; at least ${MIN_SECRET_BITS} needed)`;
  return undefined;
}

function field(v: unknown, name: string, row: number, problems: string[]): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 256) {
    problems.push(`row ${row}: ${name} must be a non-empty string of at most 256 characters`);
    return '';
  }
  return v;
}

/** Rows from a JSON body (already parsed) or CSV text. */
export function parseImport(body: unknown, contentType: 'json' | 'csv'): ImportRow[] {
  let raw: unknown[];
  if (contentType === 'csv') {
    const lines = String(body).split(/\r?\n/).filter((l) => l.trim().length > 0);
    const header = (lines.shift() ?? '').split(',').map((h) => h.trim());
    const want = ['deviceId', 'commonAuthId', 'uniqueId', 'authSecret'];
    if (want.some((w) => !header.includes(w))) throw new KakuinError('KAKUIN_E_VALIDATION', `the CSV header must name ${want.join(', ')}`);
    raw = lines.map((line) => {
      const cells = line.split(',');
      return Object.fromEntries(header.map((h, i) => [h, cells[i]?.trim()]));
    });
  } else {
    const b = body as { credentials?: unknown } | unknown[];
    raw = Array.isArray(b) ? b : (b !== null && typeof b === 'object' && Array.isArray(b.credentials) ? b.credentials : undefined) as unknown[];
    if (raw === undefined) throw new KakuinError('KAKUIN_E_VALIDATION', 'the body must be an array of rows or {credentials: [...]}');
  }
  if (raw.length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'the import has no rows');
  if (raw.length > MAX_IMPORT_ROWS) throw new KakuinError('KAKUIN_E_VALIDATION', `an import has at most ${MAX_IMPORT_ROWS} rows; split it`);
  const problems: string[] = [];
  const rows = raw.map((r, i) => {
    const o = (r !== null && typeof r === 'object' ? r : {}) as Record<string, unknown>;
    return {
      deviceId: field(o.deviceId, 'deviceId', i + 1, problems), commonAuthId: field(o.commonAuthId, 'commonAuthId', i + 1, problems),
      uniqueId: field(o.uniqueId, 'uniqueId', i + 1, problems), authSecret: field(o.authSecret, 'authSecret', i + 1, problems),
    };
  });
  if (problems.length > 0) throw new KakuinError('KAKUIN_E_VALIDATION', problems.slice(0, 20).join('; '));
  return rows;
}

/** Runs `fn` over items with at most `limit` in flight (scrypt runs in the libuv pool of 4 by default). */
async function mapLimited<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

export async function importLegacySecrets(
  registry: Pick<Registry, 'findLegacyVerifiers' | 'putLegacyCredentials' | 'getDevice'>, pepper: Buffer, rows: ImportRow[], actor: string,
): Promise<LegacyCredential[]> {
  const problems: string[] = [];
  // The unique ID is one of the device's own identifiers (unique-id.ts); an unknown device is the
  // registry's KAKUIN_E_DEVICE_NOT_FOUND below, as before.
  const devices = await mapLimited(rows, 8, (r) => registry.getDevice(r.deviceId).catch((e) => {
    if (hasCode(e, 'KAKUIN_E_DEVICE_NOT_FOUND')) return undefined;
    throw e;
  }));
  devices.forEach((d, i) => {
    const p = d && uniqueIdProblem(d, rows[i].uniqueId);
    if (p) problems.push(`row ${i + 1}: ${p}`);
  });
  const seenDevice = new Map<string, number>();
  const seenFactors = new Map<string, number>();
  rows.forEach((r, i) => {
    const p = secretProblem(r.authSecret, r);
    if (p !== undefined) problems.push(`row ${i + 1}: ${p} secret`);
    const d = seenDevice.get(r.deviceId);
    if (d !== undefined) problems.push(`row ${i + 1}: device ${r.deviceId} also in row ${d}`);
    else seenDevice.set(r.deviceId, i + 1);
    const key = `${r.commonAuthId}\u0000${r.uniqueId}`;
    const f = seenFactors.get(key);
    if (f !== undefined) problems.push(`row ${i + 1}: unique ID ${JSON.stringify(r.uniqueId)} also in row ${f}`);
    else seenFactors.set(key, i + 1);
  });
  if (problems.length > 0) throw refused(problems);

  const verifiers = await mapLimited(rows, 4, (r) => scryptVerifier(pepper, r.authSecret));
  const firstRow = new Map<string, number>();
  verifiers.forEach((v, i) => {
    const first = firstRow.get(v);
    if (first !== undefined) problems.push(`row ${i + 1}: shared secret (same as row ${first})`);
    else firstRow.set(v, i + 1);
  });
  for (const hit of await registry.findLegacyVerifiers('scrypt', verifiers)) {
    const row = firstRow.get(hit.verifier)!;
    if (rows[row - 1].deviceId !== hit.deviceId) problems.push(`row ${row}: shared secret (already used by device ${hit.deviceId})`);
  }
  if (problems.length > 0) throw refused(problems);

  const audit: NewAuditEvent[] = rows.map((r) => ({
    type: 'legacy.credentials-imported', actor, deviceId: r.deviceId, details: { commonAuthId: r.commonAuthId, uniqueId: r.uniqueId },
  }));
  return registry.putLegacyCredentials(rows.map((r, i) => ({
    deviceId: r.deviceId, commonAuthId: r.commonAuthId, uniqueId: r.uniqueId, verifierKind: 'scrypt' as const, verifier: verifiers[i],
  })), audit);
}

function refused(problems: string[]): KakuinError {
  const shown = problems.slice(0, 50);
  const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
  return new KakuinError('KAKUIN_E_LEGACY_IMPORT_REFUSED', `import refused, nothing stored: ${shown.join('; ')}${more}`);
}
