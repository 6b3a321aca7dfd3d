import { expect } from 'chai';
import { Readable } from 'node:stream';
import { boundedLines, OVERLONG } from '../../enrollment/batch.js';

async function collect(chunks: string[], max: number) {
  const out: (string | symbol)[] = [];
  for await (const l of boundedLines(Readable.from(chunks), max)) out.push(l);
  return out;
}

describe('enrollment: NDJSON lines with a length bound', () => {
  it('splits across chunks, strips CR, keeps the last line without a newline', async () => {
    expect(await collect(['ab\r\nc', 'd\n\nef'], 10)).to.deep.equal(['ab', 'cd', '', 'ef']);
  });

  it('turns an overlong line into one marker without keeping it, and goes on after it', async () => {
    const long = 'x'.repeat(25);
    expect(await collect(['ok\n', long.slice(0, 12), long.slice(12), long, '\nnext\n'], 10)).to.deep.equal(['ok', OVERLONG, 'next']);
    expect(await collect([`${long}\nz`], 10)).to.deep.equal([OVERLONG, 'z']);
  });
});
