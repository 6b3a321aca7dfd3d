/**
 * Pre-registration (anti-counterfeit): a manufacturer uploads the identifiers of the devices it will
 * build, as a JSON array or CSV (header `serialNumber,mac,imei,model,hardwareId`, any order).
 *
 * Per row, not all or nothing: each valid row is registered (and audited) on its own, each bad row is
 * reported with its row number and KAKUIN_E_* code and changes nothing. A factory re-uploading a file
 * after fixing three rows then gets KAKUIN_E_DEVICE_EXISTS for the rows already in, which is
 * harmless, instead of having to split the file.
 */
import type { Registry } from '../registry/port.js';
import { KakuinError } from '../errors/index.js';
import { registerDevice } from '../ca/devices.js';
import { itemError } from './enrollment-service.js';

export const MAX_IMPORT_ROWS = 10_000;
const COLUMNS = ['serialNumber', 'mac', 'imei', 'model', 'hardwareId'] as const;

export interface ImportRow {
  serialNumber?: unknown;
  mac?: unknown;
  imei?: unknown;
  model?: unknown;
  hardwareId?: unknown;
}

export interface ImportResult {
  registered: { row: number; serialNumber: string; id: string }[];
  errors: { row: number; serialNumber?: unknown; code: string; message: string }[];
}

/** Rows of a CSV upload. Fields are plain (no quoting): identifiers never contain commas. */
export function parseImportCsv(text: string): ImportRow[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (lines.length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'the CSV has no header line');
  const header = lines[0].split(',').map((h) => h.trim());
  for (const h of header) {
    if (!(COLUMNS as readonly string[]).includes(h)) throw new KakuinError('KAKUIN_E_VALIDATION', `unknown CSV column ${JSON.stringify(h)}; columns are ${COLUMNS.join(', ')}`);
  }
  if (!header.includes('serialNumber')) throw new KakuinError('KAKUIN_E_VALIDATION', 'the CSV header must name a serialNumber column');
  return lines.slice(1).map((line) => {
    const cells = line.split(',');
    const row: Record<string, unknown> = {};
    header.forEach((h, i) => {
      const v = cells[i]?.trim();
      if (v !== undefined && v !== '') row[h] = v;
    });
    if (cells.length !== header.length) row.__cells = cells.length;
    return row as ImportRow;
  });
}

export async function importDevices(registry: Registry, manufacturerId: string, rows: unknown[], actor: string): Promise<ImportResult> {
  if (rows.length > MAX_IMPORT_ROWS) {
    throw new KakuinError('KAKUIN_E_BATCH_TOO_LARGE', `an import holds at most ${MAX_IMPORT_ROWS} rows; split the file`);
  }
  await registry.getManufacturer(manufacturerId);
  const result: ImportResult = { registered: [], errors: [] };
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as Record<string, unknown>;
    const rowNumber = i + 1;
    try {
      if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', 'a row must be an object');
      if (row.__cells !== undefined) throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', 'the row has a different number of fields than the header');
      for (const k of Object.keys(row)) {
        if (!(COLUMNS as readonly string[]).includes(k)) throw new KakuinError('KAKUIN_E_BATCH_ITEM_MALFORMED', `unknown field ${JSON.stringify(k)}`);
      }
      const identifiers: Record<string, unknown> = {};
      for (const k of ['mac', 'imei', 'hardwareId'] as const) if (row[k] !== undefined) identifiers[k] = row[k];
      const device = await registerDevice(registry, { manufacturerId, serialNumber: row.serialNumber, identifiers, model: row.model }, actor);
      result.registered.push({ row: rowNumber, serialNumber: device.serialNumber, id: device.id });
    } catch (e) {
      result.errors.push({ row: rowNumber, serialNumber: (row as { serialNumber?: unknown } | null)?.serialNumber, ...itemError(e) });
    }
  }
  return result;
}
