/**
 * Pre-registration CSV (RFC 4180): quoting, doubled quotes, CRLF, a BOM, columns in any order; a file
 * that is not CSV is refused as a whole, naming the line, and imports nothing.
 */
import { expect } from 'chai';
import { parseImportCsv } from '../../enrollment/device-import.js';
import { isKakuinError } from '../../errors/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { apiAs, newFactory, type Factory } from './support.js';

function csvError(text: string): { code: string; message: string } {
  try {
    parseImportCsv(text);
  } catch (e) {
    if (isKakuinError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('parseImportCsv accepted the text');
}

describe('device import CSV (RFC 4180)', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks; CRLF; a BOM; columns in any order', () => {
    const text = '\ufeffmodel,serialNumber,mac\r\n"S2, rev ""B""",CSV-1,aa:bb:cc:00:00:01\r\n\r\n"two\r\nlines",CSV-2,\r\nS3 , "CSV-3" ,\r\n';
    const rows = parseImportCsv(text);
    expect(rows).to.deep.equal([
      { model: 'S2, rev "B"', serialNumber: 'CSV-1', mac: 'aa:bb:cc:00:00:01' },
      { model: 'two\r\nlines', serialNumber: 'CSV-2' },
      { model: 'S3', serialNumber: 'CSV-3' },
    ]);
  });

  it('a lone LF file and a last line without a line end read the same', () => {
    expect(parseImportCsv('serialNumber,model\nCSV-1,"a,b"')).to.deep.equal([{ serialNumber: 'CSV-1', model: 'a,b' }]);
  });

  it('refuses an unclosed quote, text after a closing quote and an overlong row with KAKUIN_E_CSV_MALFORMED naming the line', () => {
    const unclosed = csvError('serialNumber,model\nCSV-1,ok\nCSV-2,"never closed\nCSV-3,x\n');
    expect(unclosed.code).to.equal('KAKUIN_E_CSV_MALFORMED');
    expect(unclosed.message).to.match(/^CSV line 3: a quoted field is not closed/);
    const stray = csvError('serialNumber,model\r\nCSV-1,"ok"\r\nCSV-2,"bad"x\r\nCSV-3,fine\r\n');
    expect(stray).to.deep.include({ code: 'KAKUIN_E_CSV_MALFORMED' });
    expect(stray.message).to.match(/^CSV line 3: /);
    const inner = csvError('serialNumber,model\n\nCSV-1,S"2\n');
    expect(inner).to.deep.include({ code: 'KAKUIN_E_CSV_MALFORMED' });
    expect(inner.message).to.match(/^CSV line 3: a quote inside an unquoted field/);
    const long = csvError(`serialNumber,model\nCSV-1,"${'x'.repeat(5000)}"\n`);
    expect(long.code).to.equal('KAKUIN_E_CSV_MALFORMED');
    expect(long.message).to.match(/longer than 4096/);
  });

  it('refuses a header with an unknown or repeated column', () => {
    expect(csvError('serialNumber,colour\nCSV-1,red\n').code).to.equal('KAKUIN_E_VALIDATION');
    expect(csvError('serialNumber,model,model\nCSV-1,a,b\n').message).to.match(/twice/);
  });

  describe('through POST /api/v1/devices/import (text/csv)', function () {
    this.timeout(60_000);
    let svc: TestService;
    let f: Factory;

    before(async () => {
      svc = await startTestService();
      f = await newFactory(svc, 'CSV factory');
    });
    after(async () => svc?.stop());

    const device = async (serialNumber: string) =>
      (await apiAs(svc, f.apiKey)('GET', `/api/v1/station/devices?serialNumber=${encodeURIComponent(serialNumber)}`)).json.devices as { model?: string }[];

    it('a malformed file imports nothing, not even the good rows before the bad line', async () => {
      const r = await apiAs(svc, f.apiKey)('POST', '/api/v1/devices/import', { body: 'serialNumber,model\r\nCSVX-1,ok\r\nCSVX-2,"bad"x\r\n', contentType: 'text/csv' });
      expect(r.status).to.equal(400);
      expect(r.json.code).to.equal('KAKUIN_E_CSV_MALFORMED');
      expect(r.json.message).to.match(/line 3/);
      expect(await device('CSVX-1')).to.deep.equal([]);
    });

    it('quoted values are registered as written; bad rows are reported with their row and the line they start on', async () => {
      const body = '\ufeffmodel,serialNumber\r\n"S2, rev ""B""",CSVA-1\r\n"two\r\nlines",CSVA-2\r\nS2,"CSVA-3"\r\nS2,CSVA bad serial ~\r\n';
      const r = await apiAs(svc, f.apiKey)('POST', '/api/v1/devices/import', { body, contentType: 'text/csv' });
      expect(r.status, r.text).to.equal(200);
      expect(r.json.registered.map((x: { serialNumber: string }) => x.serialNumber)).to.deep.equal(['CSVA-1', 'CSVA-3']);
      expect(r.json.errors.map((x: { row: number; line: number; code: string }) => [x.row, x.line, x.code])).to.deep.equal([
        [2, 3, 'KAKUIN_E_INVALID_IDENTIFIER'], [4, 6, 'KAKUIN_E_INVALID_SERIAL_NUMBER'],
      ]);
      expect((await device('CSVA-1'))[0].model).to.equal('S2, rev "B"');
    });
  });
});
