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
/** Identifiers are short; a record far longer is not a device (and an unclosed quote stops here, not at the end of memory). */
const MAX_CSV_RECORD_CHARS = 4096;
/** The line a CSV row starts on, kept beside the row (not in it, so a JSON upload cannot set it). */
const CSV_LINES = new WeakMap<object, number>();

export interface ImportRow {
  serialNumber?: unknown;
  mac?: unknown;
  imei?: unknown;
  model?: unknown;
  hardwareId?: unknown;
}

export interface ImportResult {
  registered: { row: number; serialNumber: string; id: string }[];
  /** `line`: where the row starts in a CSV upload. */
  errors: { row: number; line?: number; serialNumber?: unknown; code: string; message: string }[];
}

/**
 * Rows of a CSV upload (RFC 4180): a header row naming the columns in any order, fields optionally
 * quoted (a quoted field may hold commas, line breaks and doubled quotes `""`), CRLF or LF line ends,
 * a UTF-8 byte order mark ignored, blank lines skipped, whitespace around fields trimmed.
 *
 * A row whose field count differs from the header's is reported by importDevices, per row, like any
 * other bad row. A file that is not CSV (an unclosed quote, text after a closing quote, a quote inside
 * an unquoted field, an overlong row) cannot be split into rows safely, so it is refused as a whole
 * with KAKUIN_E_CSV_MALFORMED naming the line, and nothing is imported. The line each row starts on
 * is kept (CSV_LINES) for error reports.
 */
export function parseImportCsv(text: string): ImportRow[] {
  const records = csvRecords(text);
  if (records.length === 0) throw new KakuinError('KAKUIN_E_VALIDATION', 'the CSV has no header line');
  const header = records[0].cells;
  for (const h of header) {
    if (!(COLUMNS as readonly string[]).includes(h)) throw new KakuinError('KAKUIN_E_VALIDATION', `unknown CSV column ${JSON.stringify(h)}; columns are ${COLUMNS.join(', ')}`);
  }
  if (new Set(header).size !== header.length) throw new KakuinError('KAKUIN_E_VALIDATION', 'the CSV header names a column twice');
  if (!header.includes('serialNumber')) throw new KakuinError('KAKUIN_E_VALIDATION', 'the CSV header must name a serialNumber column');
  return records.slice(1).map(({ cells, line }) => {
    const row: Record<string, unknown> = {};
    CSV_LINES.set(row, line);
    header.forEach((h, i) => {
      const v = cells[i];
      if (v !== undefined && v !== '') row[h] = v;
    });
    if (cells.length !== header.length) row.__cells = cells.length;
    return row as ImportRow;
  });
}

/** RFC 4180 records with the line each starts on; KAKUIN_E_CSV_MALFORMED at the first syntax error. */
function csvRecords(input: string): { cells: string[]; line: number }[] {
  const text = input.startsWith('\ufeff') ? input.slice(1) : input;
  const records: { cells: string[]; line: number }[] = [];
  const malformed = (line: number, why: string) => new KakuinError('KAKUIN_E_CSV_MALFORMED', `CSV line ${line}: ${why}; nothing was imported`);
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const startLine = line;
    const startIndex = i;
    const cells: string[] = [];
    let endOfRecord = false;
    while (!endOfRecord) {
      // One field: leading blanks, then either a quoted field or plain text up to `,` or the line end.
      while (text[i] === ' ' || text[i] === '\t') i++;
      let value: string;
      if (text[i] === '"') {
        const quoteLine = line;
        i++;
        value = '';
        for (;;) {
          if (i >= text.length) throw malformed(quoteLine, 'a quoted field is not closed');
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              value += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n') line++;
          value += c;
          i++;
        }
        while (text[i] === ' ' || text[i] === '\t') i++;
        if (i < text.length && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          throw malformed(line, 'text after a closing quote (a quote inside a field is written "")');
        }
      } else {
        const from = i;
        while (i < text.length && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          if (text[i] === '"') throw malformed(line, 'a quote inside an unquoted field (quote the whole field and write the quote as "")');
          i++;
        }
        value = text.slice(from, i).trim();
      }
      cells.push(value);
      if (i - startIndex > MAX_CSV_RECORD_CHARS) throw malformed(startLine, `a row is longer than ${MAX_CSV_RECORD_CHARS} characters`);
      if (text[i] === ',') {
        i++;
      } else {
        i += text[i] === '\r' ? 2 : 1;
        line++;
        endOfRecord = true;
      }
    }
    const blank = cells.length === 1 && cells[0] === '' && !/"/.test(text.slice(startIndex, i));
    if (!blank) records.push({ cells, line: startLine });
  }
  return records;
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
      const line = typeof row === 'object' && row !== null ? CSV_LINES.get(row) : undefined;
      result.errors.push({ row: rowNumber, ...(line !== undefined && { line }), serialNumber: (row as { serialNumber?: unknown } | null)?.serialNumber, ...itemError(e) });
    }
  }
  return result;
}
